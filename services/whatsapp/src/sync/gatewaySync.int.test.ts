import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import type { Db } from 'mongodb';
import { Collections, createEvent, type DomainEvent, type EventData, type EventType } from '@puente/contracts';
import type { Bus } from '@puente/bus';
import { connectTestBus, eventually, uniqueName } from '@puente/bus/testing';
import { testDatabase } from '@puente/projection/testing';
import { Config, startWhatsApp } from '../index.js';
import { FakeEvolution, FakeWaha } from '../testing/index.js';

/*
 * A gateway session's full sync on connect, against fakes that list as the gateways' sources do,
 * through the real bus and database: every contact, chat and message once, and once again after a
 * second sync.
 */
const logger = pino({ level: 'silent' });
let bus: Bus;
let database: Awaited<ReturnType<typeof testDatabase>>;
let db: Db;
let waha: FakeWaha;
let evolution: FakeEvolution;

before(async () => {
  bus = await connectTestBus();
  database = await testDatabase();
  db = database.db;
  waha = await new FakeWaha({ engine: 'NOWEB' }).start();
  evolution = await new FakeEvolution().start();
});
after(async () => {
  await waha.stop();
  await evolution.stop();
  await database.drop();
  await bus.close();
});

const event = <T extends EventType>(type: T, data: EventData<T>) =>
  createEvent(type, data, { source: 'urn:test' }) as DomainEvent;
const count = (name: string, filter: Record<string, unknown>) => db.collection(name).countDocuments(filter);
type SessionDoc = { _id: string; sync?: { syncId: string; phase: string; counts: Record<string, number> } };

/** 12 contacts, 12 chats of 12 messages each (page size 5: 3 pages of each); even messages are the session's own. */
const N = 12;
const number = (i: number) => `3461000${String(i).padStart(4, '0')}`;
const indexes = Array.from({ length: N }, (_, i) => i);
const text = (c: number, m: number) => `message ${m} of chat ${c}`;
const time = (c: number, m: number) => 1_700_000_000 + c * 100 + (N - m);

interface Gateway {
  provider: 'evolution' | 'waha';
  /** Registers a working session with the fake and its history; returns the id of chat 3's message 1 as the webhooks carry it. */
  open: (session: string) => string;
  variables: () => Record<string, string>;
  /** The contact list calls the fake received for a session. */
  contactCalls: (session: string) => number;
}

const gateways: Gateway[] = [
  {
    provider: 'waha',
    open: (session) => {
      waha.sessions.set(session, 'WORKING');
      waha.history.set(session, {
        contacts: indexes.map((i) => ({ id: `${number(i)}@c.us`, pushname: `Contact ${i}` })),
        chats: indexes.map((i) => ({
          id: `${number(i)}@s.whatsapp.net`,
          name: `Chat ${i}`,
          conversationTimestamp: time(i, 0),
          archived: i === 0,
        })),
        messages: Object.fromEntries(
          indexes.map((c) => [
            `${number(c)}@c.us`,
            indexes.map((m) => {
              const fromMe = m % 2 === 0;
              return {
                id: `${fromMe}_${number(c)}@c.us_WAHA${c}X${m}`,
                timestamp: time(c, m),
                from: fromMe ? '34699999999@c.us' : `${number(c)}@c.us`,
                to: fromMe ? `${number(c)}@c.us` : '34699999999@c.us',
                fromMe,
                body: text(c, m),
                hasMedia: false,
                ack: 2,
              };
            }),
          ]),
        ),
      });
      return 'WAHA3X1';
    },
    variables: () => ({ WAHA_API_URL: waha.url, WAHA_API_KEY: waha.apiKey }),
    // WAHA names the session in the query, which the fake does not record: this fake serves one session.
    contactCalls: () =>
      waha.requests.filter((r) => r.method === 'GET' && r.path === '/api/contacts/all' && r.apiKey === waha.apiKey)
        .length,
  },
  {
    provider: 'evolution',
    open: (session) => {
      evolution.instances.add(session);
      evolution.history.set(session, {
        contacts: indexes.map((i) => ({ remoteJid: `${number(i)}@s.whatsapp.net`, pushName: `Contact ${i}` })),
        chats: indexes.map((i) => ({
          id: null,
          remoteJid: `${number(i)}@s.whatsapp.net`,
          pushName: `Chat ${i}`,
          updatedAt: new Date(time(i, 0) * 1000).toISOString(),
          unreadCount: 0,
        })),
        messages: indexes.flatMap((c) =>
          indexes.map((m) => ({
            id: `row-${c}-${m}`,
            key: { remoteJid: `${number(c)}@s.whatsapp.net`, fromMe: m % 2 === 0, id: `EVO${c}X${m}` },
            pushName: m % 2 === 0 ? 'Você' : null,
            messageType: 'conversation',
            message: { conversation: text(c, m) },
            messageTimestamp: time(c, m),
            instanceId: `fake-${session}`,
            source: 'android',
          })),
        ),
      });
      return 'EVO3X1';
    },
    variables: () => ({ EVOLUTION_API_URL: evolution.url, EVOLUTION_API_KEY: evolution.apiKey }),
    contactCalls: (session) =>
      evolution.requests.filter((r) => r.path === `/chat/findContacts/${session}` && r.apiKey === evolution.apiKey)
        .length,
  },
];

for (const gateway of gateways)
  describe(`full sync through ${gateway.provider}`, () => {
    test('a session that connects imports every contact, chat and message once; a second sync adds nothing', async () => {
      const session = uniqueName(`${gateway.provider}-sync-`);
      const liveId = gateway.open(session);
      const config = Config.parse({
        WHATSAPP_SESSIONS: session,
        ...gateway.variables(),
        INBOXHUB_SYNC_PAGE_SIZE: '5',
      });
      const running = await startWhatsApp({ bus, db, logger, config });
      const connect = () =>
        bus.publishEvent(
          event('whatsapp.session.status.v1', {
            session,
            provider: gateway.provider,
            status: 'connected',
            timestamp: new Date().toISOString(),
          }),
        );
      const completed = (other?: string) =>
        eventually(
          async () => {
            const doc = await db.collection<SessionDoc>(Collections.waSessions).findOne({ _id: session });
            return doc?.sync?.phase === 'completed' && doc.sync.syncId !== other ? doc.sync : undefined;
          },
          60_000,
          'the sync to complete',
        );
      const all = async () => [
        await count(Collections.waContacts, { session, name: { $exists: true } }),
        await count(Collections.waConversations, { session }),
        await count(Collections.waMessages, { session }),
      ];
      try {
        await connect();
        const first = await completed();
        assert.deepEqual(first.counts, { contacts: N, chats: N, messages: N * N });
        await eventually(async () => ((await all())[2] === N * N ? true : undefined), 20_000, 'every message');
        assert.deepEqual(await all(), [N, N, N * N]);
        // The webhook's id: the same message arriving live is the same document.
        const doc = await db
          .collection<{ _id: string; text?: string; direction?: string }>(Collections.waMessages)
          .findOne({ _id: `${session}:${liveId}` });
        assert.deepEqual([doc?.text, doc?.direction], [text(3, 1), 'in']);
        const chat = await db
          .collection<{ _id: string; name?: string }>(Collections.waConversations)
          .findOne({ _id: `${session}:${number(0)}@s.whatsapp.net` });
        assert.equal(chat?.name, 'Chat 0');

        await connect();
        const second = await completed(first.syncId);
        assert.deepEqual(second.counts, { contacts: N, chats: N, messages: N * N });
        assert.deepEqual(await all(), [N, N, N * N], 'nothing new');
        assert.ok(gateway.contactCalls(session) >= 2, 'contacts listed with the key, once per sync');
      } finally {
        await running.stop();
      }
    });
  });
