import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import type { Db } from 'mongodb';
import { Collections, createEvent, type DomainEvent, type EventData, type EventType } from '@puente/contracts';
import type { Bus } from '@puente/bus';
import { connectTestBus, eventually, uniqueName } from '@puente/bus/testing';
import { testDatabase } from '@puente/projection/testing';
import { Config, startWhatsApp } from '../index.js';
import { FakeWaha } from '../testing/index.js';

/*
 * A gateway session's full sync on connect, against a fake that lists as the gateway's source does,
 * through the real bus and database: every contact, chat and message once, and once again after a
 * second sync.
 */
const logger = pino({ level: 'silent' });
let bus: Bus;
let database: Awaited<ReturnType<typeof testDatabase>>;
let db: Db;
let waha: FakeWaha;

before(async () => {
  bus = await connectTestBus();
  database = await testDatabase();
  db = database.db;
  waha = await new FakeWaha({ engine: 'NOWEB' }).start();
});
after(async () => {
  await waha.stop();
  await database.drop();
  await bus.close();
});

const event = <T extends EventType>(type: T, data: EventData<T>) =>
  createEvent(type, data, { source: 'urn:test' }) as DomainEvent;
const count = (name: string, filter: Record<string, unknown>) => db.collection(name).countDocuments(filter);
type SessionDoc = { _id: string; sync?: { syncId: string; phase: string; counts: Record<string, number> } };

/** 12 contacts, 12 chats of 12 messages each, as NOWEB lists them (page size 5: 3 pages of each). */
function seedWaha(session: string) {
  const number = (i: number) => `3461000${String(i).padStart(4, '0')}`;
  const chats = Array.from({ length: 12 }, (_, i) => ({
    id: `${number(i)}@s.whatsapp.net`,
    name: `Chat ${i}`,
    conversationTimestamp: 1_700_000_000 + i,
    archived: i === 0,
  }));
  waha.history.set(session, {
    contacts: Array.from({ length: 12 }, (_, i) => ({ id: `${number(i)}@c.us`, pushname: `Contact ${i}` })),
    chats,
    messages: Object.fromEntries(
      chats.map((_, c) => [
        `${number(c)}@c.us`,
        Array.from({ length: 12 }, (_, m) => {
          const fromMe = m % 2 === 0;
          const id = `WAHA${c}X${m}`;
          return {
            id: `${fromMe}_${number(c)}@c.us_${id}`,
            timestamp: 1_700_000_000 + c * 100 + (12 - m),
            from: fromMe ? '34699999999@c.us' : `${number(c)}@c.us`,
            to: fromMe ? `${number(c)}@c.us` : '34699999999@c.us',
            fromMe,
            body: `message ${m} of chat ${c}`,
            hasMedia: false,
            ack: 2,
            _data: { key: { id } },
          };
        }),
      ]),
    ),
  });
}

describe('full sync through WAHA', () => {
  test('a session that connects imports every contact, chat and message once; a second sync adds nothing', async () => {
    const session = uniqueName('waha-sync-');
    waha.sessions.set(session, 'WORKING');
    seedWaha(session);
    const config = Config.parse({
      WHATSAPP_SESSIONS: session,
      WAHA_API_URL: waha.url,
      WAHA_API_KEY: waha.apiKey,
      INBOXHUB_SYNC_PAGE_SIZE: '5',
    });
    const running = await startWhatsApp({ bus, db, logger, config });
    const connect = () =>
      bus.publishEvent(
        event('whatsapp.session.status.v1', {
          session,
          provider: 'waha',
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
      assert.deepEqual(first.counts, { contacts: 12, chats: 12, messages: 144 });
      await eventually(async () => ((await all())[2] === 144 ? true : undefined), 20_000, '144 messages');
      assert.deepEqual(await all(), [12, 12, 144]);
      // The webhook's id (the serialized id's third part): the same message arriving live is the same document.
      const doc = await db
        .collection<{ _id: string; text?: string; direction?: string }>(Collections.waMessages)
        .findOne({ _id: `${session}:WAHA3X1` });
      assert.deepEqual([doc?.text, doc?.direction], ['message 1 of chat 3', 'in']);
      const chat = await db
        .collection<{ _id: string; name?: string }>(Collections.waConversations)
        .findOne({ _id: `${session}:34610000000@s.whatsapp.net` });
      assert.equal(chat?.name, 'Chat 0');

      await connect();
      const second = await completed(first.syncId);
      assert.deepEqual(second.counts, { contacts: 12, chats: 12, messages: 144 });
      assert.deepEqual(await all(), [12, 12, 144], 'nothing new');
      const lists = waha.requests.filter((r) => r.method === 'GET');
      assert.equal(lists.filter((r) => r.path === '/api/contacts/all').length, 2);
      assert.ok(lists.every((r) => r.apiKey === waha.apiKey));
    } finally {
      await running.stop();
    }
  });
});
