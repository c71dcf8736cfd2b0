import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import type { Db } from 'mongodb';
import { Collections, createEvent, type DomainEvent, type EventData, type EventType } from '@puente/contracts';
import { ConsumerRunner, type Bus } from '@puente/bus';
import { connectTestBus, eventually, uniqueName } from '@puente/bus/testing';
import { testDatabase } from '@puente/projection/testing';
import { consumersFor } from './consumers.js';
import { Config, startWhatsApp, WhatsAppProjections, type WhatsAppApp } from './index.js';
import type { CommandDoc, ConversationDoc, MessageDoc } from './readModels.js';
import { FakeGraph, FakeInboxHub, FileServer, reportSentStatus } from './testing/index.js';

const logger = pino({ level: 'silent' });
let bus: Bus;
let database: Awaited<ReturnType<typeof testDatabase>>;
let db: Db;
let inboxHub: FakeInboxHub;
let graph: FakeGraph;
/** Serves the files media sends name by URL (the service fetches them before sending). */
let files: FileServer;
const CLOUD_NUMBER = '106540352242922';

before(async () => {
  bus = await connectTestBus();
  database = await testDatabase();
  db = database.db;
  inboxHub = await new FakeInboxHub({ tokenTtlSeconds: 2 }).start();
  graph = await new FakeGraph({ phoneNumberIds: [CLOUD_NUMBER], throughputPerSecond: 3 }).start();
  files = await new FileServer().start();
  files.files.set('f.pdf', { bytes: Buffer.from('%PDF-1.4 factura'), contentType: 'application/pdf' });
});
after(async () => {
  await inboxHub.stop();
  await graph.stop();
  await files.stop();
  await database.drop();
  await bus.close();
});

function config(extra: Record<string, string> = {}) {
  return Config.parse({
    // The test's file server is on loopback.
    MEDIA_FETCH_PRIVATE_NETWORKS: 'allow',
    INBOXHUB_API_URL: inboxHub.url,
    INBOXHUB_API_KEY: inboxHub.apiKey,
    INBOXHUB_EMAIL: inboxHub.email,
    INBOXHUB_PASSWORD: inboxHub.password,
    INBOXHUB_RETRIES: '2',
    INBOXHUB_TIMEOUT_MS: '2000',
    INBOXHUB_SYNC_PAGE_SIZE: '8',
    INBOXHUB_SYNC_CHATS: '20',
    INBOXHUB_SYNC_MESSAGES: '20',
    WHATSAPP_ACCESS_TOKEN: graph.accessToken,
    WHATSAPP_GRAPH_URL: graph.url,
    WHATSAPP_SEND_RATE: '50',
    ...extra,
  });
}

/** The service's consumers for the given sessions, in this process. */
async function start(
  sessions: string[],
  extra: Record<string, string> = {},
): Promise<{ app: WhatsAppApp; stop: () => Promise<void> }> {
  return startWhatsApp({ bus, db, logger, config: config({ WHATSAPP_SESSIONS: sessions.join(','), ...extra }) });
}

const event = <T extends EventType>(type: T, data: EventData<T>) =>
  createEvent(type, data, { source: 'urn:test' }) as DomainEvent;
const publish = (e: DomainEvent) => bus.publishEvent(e);
const docs = <T>(name: string) => db.collection<T & { _id: string }>(name);
/** The command's document once it has this status. */
const commandWithStatus = (commandId: string, status: CommandDoc['status'], what: string) =>
  eventually(
    async () => {
      const doc = await docs<CommandDoc>(Collections.commands).findOne({ _id: commandId });
      return doc?.status === status ? doc : undefined;
    },
    15_000,
    what,
  );
/** Resolves once the session's full sync has completed. */
const syncCompleted = (session: string) =>
  eventually(
    async () => {
      const doc = await docs<{ sync?: { phase: string } }>(Collections.waSessions).findOne({ _id: session });
      return doc?.sync?.phase === 'completed' ? true : undefined;
    },
    60_000,
    'the sync to complete',
  );
/** Every session the tests below used, for the replay test at the end. */
const used: string[] = [];

/** A session the fake Inbox Hub holds (seeded so) and Puente knows as Inbox Hub's, disconnected a minute ago (no sync starts by itself). */
async function knownInboxHubSession(session: string, seed: Parameters<FakeInboxHub['seed']>[1]): Promise<string> {
  used.push(session);
  inboxHub.seed(session, seed);
  await publish(
    event('whatsapp.session.status.v1', {
      session,
      provider: 'inboxhub',
      status: 'disconnected',
      timestamp: new Date(Date.now() - 60_000).toISOString(),
    }),
  );
  return session;
}

describe('whatsapp service', () => {
  test('send through Inbox Hub: pending, then sent with the provider id; a later status moves the same document; the agent who sent it is kept', async () => {
    const session = await knownInboxHubSession(uniqueName('ih-'), { contacts: 0, chats: 0, messagesPerChat: 0 });
    const running = await start([session]);
    try {
      const commandId = uniqueName('cmd-');
      await publish(
        event('whatsapp.send_message.v1', {
          commandId,
          session,
          to: '+34 612 345 678'.replace(/ /g, ''),
          text: 'Su pedido está listo ✅',
          sentBy: 'ana',
          requestedAt: new Date().toISOString(),
        }),
      );
      const command = await commandWithStatus(commandId, 'sent', 'the command to be sent');
      assert.equal(inboxHub.sends.filter((s) => s.session === session).length, 1);
      const wamid = command.providerMessageId!;
      const message = await reportSentStatus(bus, db, {
        session,
        provider: 'inboxhub',
        commandId,
        messageId: wamid,
        status: 'delivered',
      });
      assert.deepEqual(
        [message.text, message.commandId, message.chatId, message.sentBy, command.sentBy],
        ['Su pedido está listo ✅', commandId, '34612345678@s.whatsapp.net', 'ana', 'ana'],
      );
    } finally {
      await running.stop();
    }
  });

  test("Cloud API: text, template and media sends stay within the number's throughput; refusals for now are retried, none sent twice", async () => {
    const session = CLOUD_NUMBER;
    used.push(session);
    await publish(
      event('whatsapp.session.status.v1', {
        session,
        provider: 'cloud-api',
        status: 'connected',
        timestamp: new Date(Date.now() - 60_000).toISOString(),
      }),
    );
    const before = graph.sends.length;
    const refusedBefore = graph.rateLimited;
    const running = await start([session], { WHATSAPP_SEND_RATE: '20' }); // faster than the fake's 3/s: Meta's 130429 answers must be retried
    try {
      const ids = Array.from({ length: 9 }, () => uniqueName('cmd-'));
      // Whether the sender's pace alone crosses the fake's 3/s depends on the machine's load (sends paced
      // slower than 3/s are never refused): the first two sends are refused for throughput whatever the pace.
      graph.refuseForThroughput(2);
      await Promise.all(
        ids.map((commandId, i) => {
          const kind = i % 3;
          return publish(
            event('whatsapp.send_message.v1', {
              commandId,
              session,
              to: '34612345678',
              requestedAt: new Date().toISOString(),
              ...(kind === 0
                ? { text: `hola ${i} 👋` }
                : kind === 1
                  ? { template: { name: 'order_ready', language: 'es' } }
                  : {
                      text: 'factura',
                      media: { type: 'document' as const, url: `${files.url}/f.pdf`, fileName: 'f.pdf' },
                    }),
            }),
          );
        }),
      );
      await eventually(
        async () =>
          (await docs<CommandDoc>(Collections.commands).countDocuments({ _id: { $in: ids }, status: 'sent' })) ===
          ids.length
            ? true
            : undefined,
        30_000,
        'every send to be sent',
      );
      const sent = graph.sends.slice(before);
      assert.equal(sent.length, 9, 'each command sent exactly once');
      assert.ok(graph.rateLimited - refusedBefore >= 2, 'the fake refused some sends for throughput');
      assert.deepEqual(new Set(sent.map((s) => s.body.type)), new Set(['text', 'template', 'document']));
      const perSecond = new Map<number, number>();
      for (const s of sent) perSecond.set(Math.floor(s.at / 1000), (perSecond.get(Math.floor(s.at / 1000)) ?? 0) + 1);
      assert.ok(Math.max(...perSecond.values()) <= 3);
    } finally {
      await running.stop();
    }
  });

  /** A send the provider took whose answer never comes back readable ends `unknown`, then `sent` from the provider's report; never sent twice. */
  async function sendWithUnreadableAnswer(mode: 'holdSendAnswers' | 'garbleSendAnswers'): Promise<void> {
    const session = uniqueName(mode === 'holdSendAnswers' ? 'lost-' : 'garbled-');
    used.push(session);
    inboxHub.seed(session, { contacts: 0, chats: 0, messagesPerChat: 0 });
    await publish(
      event('whatsapp.session.status.v1', {
        session,
        provider: 'inboxhub',
        status: 'connected',
        timestamp: new Date(Date.now() - 3_600_000 * 2).toISOString(),
      }),
    );
    inboxHub[mode] = true;
    let running = await start([session], { INBOXHUB_TIMEOUT_MS: '800' });
    const commandId = uniqueName('cmd-');
    try {
      await publish(
        event('whatsapp.send_message.v1', {
          commandId,
          session,
          to: '34612345678@s.whatsapp.net',
          text: 'solo una vez',
          requestedAt: new Date().toISOString(),
        }),
      );
      await eventually(
        async () =>
          (await docs<CommandDoc>(Collections.commands).findOne({ _id: commandId }))?.status === 'unknown'
            ? true
            : undefined,
        15_000,
        'the command to be unknown',
      );
      assert.equal(inboxHub.sends.filter((s) => s.session === session).length, 1);
      // The provider's own report of the message arrives (its webhook, through the gateway in production).
      const sent = inboxHub.sends.find((s) => s.session === session)!;
      await publish(
        event('whatsapp.message.sent.v1', {
          session,
          provider: 'inboxhub',
          messageId: sent.messageId,
          chatId: '34612345678@s.whatsapp.net',
          fromMe: true,
          type: 'text',
          text: 'solo una vez',
          timestamp: new Date().toISOString(),
        }),
      );
      const command = await commandWithStatus(commandId, 'sent', 'the command to be reconciled');
      assert.equal(command.providerMessageId, sent.messageId);
      // A redelivery of the command (a new instance) still does not send it again.
      await running.stop();
      running = await start([session]);
      const stored = await bus.jsm.streams.info('COMMANDS', { subjects_filter: `cmd.whatsapp.*.${session}` });
      assert.equal(
        Object.values(stored.state.subjects ?? {}).reduce((a, b) => a + b, 0),
        0,
        'the command left the work queue',
      );
      assert.equal(inboxHub.sends.filter((s) => s.session === session).length, 1);
    } finally {
      inboxHub[mode] = false;
      await running.stop();
    }
  }

  test('a send whose answer is lost is not sent again: unknown, then sent once the provider reports it', () =>
    sendWithUnreadableAnswer('holdSendAnswers'));

  test('a 2xx answer that cannot be read never fails the send: unknown, then sent once the provider reports it', () =>
    sendWithUnreadableAnswer('garbleSendAnswers'));

  test("mark read: the provider is told and the conversation's unread count resets", async () => {
    const session = uniqueName('read-');
    used.push(session);
    inboxHub.seed(session, { contacts: 0, chats: 0, messagesPerChat: 0 });
    const chat = '34655555555@s.whatsapp.net';
    const running = await start([session]);
    try {
      const old = new Date(Date.now() - 60_000).toISOString();
      for (const id of ['R1', 'R2'])
        await publish(
          event('whatsapp.message.received.v1', {
            session,
            provider: 'inboxhub',
            messageId: id,
            chatId: chat,
            from: chat,
            fromMe: false,
            type: 'text',
            text: id,
            timestamp: old,
          }),
        );
      await eventually(
        async () =>
          (await docs<ConversationDoc>(Collections.waConversations).findOne({ _id: `${session}:${chat}` }))
            ?.unreadCount === 2
            ? true
            : undefined,
        10_000,
        'two unread',
      );
      await publish(
        event('whatsapp.mark_read.v1', {
          commandId: uniqueName('cmd-'),
          session,
          chatId: chat,
          requestedAt: new Date().toISOString(),
        }),
      );
      await eventually(
        async () =>
          (await docs<ConversationDoc>(Collections.waConversations).findOne({ _id: `${session}:${chat}` }))
            ?.unreadCount === 0
            ? true
            : undefined,
        10_000,
        'none unread',
      );
      assert.deepEqual(
        inboxHub.reads.filter((r) => r.session === session),
        [{ session, chatId: chat }],
      );
    } finally {
      await running.stop();
    }
  });

  test('a full sync starts when a session connects and imports 3 pages of each kind, every item once', async () => {
    const session = uniqueName('sync-');
    used.push(session);
    const seeded = inboxHub.seed(session, { contacts: 20, chats: 20, messagesPerChat: 20 }); // page size 8: 3 pages each
    const running = await start([session]);
    try {
      await publish(
        event('whatsapp.session.status.v1', {
          session,
          provider: 'inboxhub',
          status: 'connected',
          timestamp: new Date().toISOString(),
        }),
      );
      await syncCompleted(session);
      await eventually(
        async () =>
          (await docs<MessageDoc>(Collections.waMessages).countDocuments({ session })) === 400 ? true : undefined,
        20_000,
        '400 messages',
      );
      assert.equal(await docs(Collections.waContacts).countDocuments({ session, name: { $exists: true } }), 20);
      assert.equal(await docs(Collections.waConversations).countDocuments({ session }), 20);
      const chat = await docs<ConversationDoc>(Collections.waConversations).findOne({
        _id: `${session}:${seeded.chats[1]!.chatId}`,
      });
      assert.deepEqual(
        [chat?.name, chat?.unreadCount],
        ['Chat 1', 1],
        "the provider's unread count, not the imported messages",
      );
      const session_ = await docs<{ sync: { counts: Record<string, number> }; lastSyncAt?: string }>(
        Collections.waSessions,
      ).findOne({ _id: session });
      assert.deepEqual(session_?.sync.counts, { contacts: 20, chats: 20, messages: 400 });
      assert.ok(session_?.lastSyncAt);
      assert.ok(
        inboxHub.calls.filter((c) => c === 'GET /contacts').length === 3 &&
          inboxHub.calls.filter((c) => c === 'GET /chats').length === 3,
      );
    } finally {
      await running.stop();
    }
  });

  test('"sync now": a sync_session command runs the full sync through the session\'s provider (Inbox Hub) to completion; a Cloud API session fails it', async () => {
    // Known as an Inbox Hub session, not connecting now: nothing but the command starts a sync.
    const session = await knownInboxHubSession(uniqueName('syncnow-'), { contacts: 3, chats: 2, messagesPerChat: 2 });
    // Another Cloud API session than the other tests' number: a workqueue refuses two consumers whose filters overlap.
    const cloudSession = uniqueName('cloud-');
    const running = await start([session, cloudSession]);
    try {
      await eventually(
        async () => ((await docs(Collections.waSessions).findOne({ _id: session })) ? true : undefined),
        15_000,
        'the session read model',
      );
      const contactsBefore = inboxHub.calls.filter((c) => c === 'GET /contacts').length;
      const commandId = uniqueName('sync-cmd-');
      await publish(
        event('whatsapp.sync_session.v1', { commandId, session, sentBy: 'ana', requestedAt: new Date().toISOString() }),
      );
      const command = await commandWithStatus(commandId, 'sent', 'the sync command to be carried out');
      assert.equal(command.kind, 'sync_session');
      await syncCompleted(session);
      const synced = await docs<{ sync: { counts: Record<string, number> } }>(Collections.waSessions).findOne({
        _id: session,
      });
      assert.deepEqual(synced?.sync.counts, { contacts: 3, chats: 2, messages: 4 });
      assert.ok(inboxHub.calls.filter((c) => c === 'GET /contacts').length > contactsBefore);

      await publish(
        event('whatsapp.session.status.v1', {
          session: cloudSession,
          provider: 'cloud-api',
          status: 'connected',
          timestamp: new Date(Date.now() - 60_000).toISOString(),
        }),
      );
      await eventually(
        async () =>
          (await docs<{ provider?: string }>(Collections.waSessions).findOne({ _id: cloudSession }))?.provider ===
          'cloud-api'
            ? true
            : undefined,
        15_000,
        'the Cloud API session read model',
      );
      const refusedId = uniqueName('sync-cmd-');
      await publish(
        event('whatsapp.sync_session.v1', {
          commandId: refusedId,
          session: cloudSession,
          requestedAt: new Date().toISOString(),
        }),
      );
      const refused = await commandWithStatus(refusedId, 'failed', 'the Cloud API sync command to fail');
      assert.equal(refused.error?.code, 'SYNC_NOT_SUPPORTED');
    } finally {
      await running.stop();
    }
  });

  test('replaying EVENTS into empty collections reproduces the same documents', async () => {
    const replayDb = database.client.db(`${db.databaseName}_replay`);
    const projections = new WhatsAppProjections(replayDb, bus);
    await projections.init();
    const consumer = consumersFor(used).projections;
    const runner = new ConsumerRunner({
      bus,
      consumer: { ...consumer, durable: uniqueName('replay-') },
      handle: projections.handler(),
    });
    await runner.start();
    try {
      const live = await db.collection(Collections.waMessages).countDocuments({ session: { $in: used } });
      await eventually(
        async () =>
          (await replayDb.collection(Collections.waMessages).countDocuments({ session: { $in: used } })) === live
            ? true
            : undefined,
        30_000,
        'the replay to catch up',
      );
      await new Promise((resolve) => setTimeout(resolve, 500));
      for (const name of [
        Collections.waMessages,
        Collections.waConversations,
        Collections.waContacts,
        Collections.commands,
      ]) {
        const read = async (target: Db) =>
          (
            await target
              .collection(name)
              .find({ session: { $in: used } })
              .sort({ _id: 1 })
              .toArray()
          ).map(({ _rev, ...doc }) => (void _rev, doc));
        assert.deepEqual(await read(replayDb), await read(db), name);
      }
      const sessions = async (target: Db) =>
        (
          await target
            .collection(Collections.waSessions)
            .find({ _id: { $in: used as never[] } })
            .sort({ _id: 1 })
            .toArray()
        ).map(({ _rev, ...doc }) => (void _rev, doc));
      assert.deepEqual(await sessions(replayDb), await sessions(db));
    } finally {
      await runner.stop();
      await replayDb.dropDatabase();
    }
  });
});
