import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Db } from 'mongodb';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { Collections, createEvent } from '@puente/contracts';
import { freePort, spawnService, stopService, waitReady } from '@puente/stack';
import type { Bus } from '@puente/bus';
import { connectTestBus, eventually, uniqueName } from '@puente/bus/testing';
import { testDatabase } from '@puente/projection/testing';
import { sampleBody, signSample, type SampleProvider } from '@puente/gateway';
import { startTestGateway, TEST_SAMPLE_SECRETS } from '@puente/gateway/testing';
import { Config, startWhatsApp, type MessageDoc } from '@puente/whatsapp';
import { FakeInboxHub } from '@puente/whatsapp/testing';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const secrets = TEST_SAMPLE_SECRETS;

let bus: Bus;
let gateway: { url: string; close: () => Promise<void> };
let database: Awaited<ReturnType<typeof testDatabase>>;
let db: Db;
let inboxHub: FakeInboxHub;

before(async () => {
  bus = await connectTestBus();
  gateway = await startTestGateway(bus);
  database = await testDatabase();
  db = database.db;
  inboxHub = await new FakeInboxHub().start();
});
after(async () => {
  await inboxHub.stop();
  await gateway.close();
  await database.drop();
  await bus.close();
});

function config(extra: Record<string, string> = {}) {
  return Config.parse({
    INBOXHUB_API_URL: inboxHub.url,
    INBOXHUB_API_KEY: inboxHub.apiKey,
    INBOXHUB_EMAIL: inboxHub.email,
    INBOXHUB_PASSWORD: inboxHub.password,
    INBOXHUB_SYNC_PAGE_SIZE: '8',
    ...extra,
  });
}

/** A provider's sample delivery for a session of this test. */
function delivery(provider: SampleProvider, session: string, n: number) {
  const body = sampleBody(provider, n) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  if (provider === 'inboxhub') body.sessionId = session;
  if (provider === 'evolution') body.instance = session;
  if (provider === 'waha') body.session = session;
  if (provider === 'whatsapp-cloud') body.entry[0].changes[0].value.metadata.phone_number_id = session;
  return signSample(provider, body, secrets);
}

async function post(sample: ReturnType<typeof signSample>): Promise<void> {
  const response = await fetch(`${gateway.url}${sample.path}`, {
    method: 'POST',
    headers: sample.headers,
    body: sample.body,
  });
  assert.equal(response.status, 200, await response.text());
}

describe('whatsapp end to end', () => {
  test('webhook -> gateway -> read models, for Inbox Hub, Evolution API, WAHA and the Cloud API', async () => {
    const sessions = {
      inboxhub: uniqueName('ih-'),
      evolution: uniqueName('evo-'),
      waha: uniqueName('waha-'),
      'whatsapp-cloud': String(100_000_000_000 + Math.floor(Math.random() * 1e9)),
    } as const;
    const running = await startWhatsApp({
      bus,
      db,
      logger,
      config: config({ WHATSAPP_SESSIONS: Object.values(sessions).join(',') }),
    });
    try {
      for (const [provider, session] of Object.entries(sessions) as [SampleProvider, string][]) {
        for (let n = 0; n < 3; n++) {
          const sample = delivery(provider, session, n);
          await post(sample);
          if (n === 0) await post(sample); // a provider's retry: the same delivery again
        }
      }
      for (const [provider, session] of Object.entries(sessions)) {
        const messages = await eventually(
          async () => {
            const found = await db
              .collection<MessageDoc & { _id: string }>(Collections.waMessages)
              .find({ session })
              .toArray();
            return found.length === 3 ? found : undefined;
          },
          15_000,
          `${provider}: three messages`,
        );
        for (const m of messages) {
          assert.equal(m.direction, 'in');
          assert.ok(m.text && m.text.length > 0, `${provider}: text`);
          assert.match(m.chatId ?? '', /^\d+@s\.whatsapp\.net$/, `${provider}: normalized chat JID (WAHA sends @c.us)`);
        }
        // The other read models are written right after the messages of the same batch.
        const unread = async () =>
          (await db.collection(Collections.waConversations).find({ session }).toArray()).reduce(
            (sum, c) => sum + (c.unreadCount as number),
            0,
          );
        await eventually(async () => ((await unread()) >= 3 ? true : undefined), 10_000, `${provider}: unread counts`);
        await new Promise((resolve) => setTimeout(resolve, 300));
        assert.equal(await unread(), 3, `${provider}: each message counted once, the retry not at all`);
        const sessionDoc = await eventually(
          () =>
            db
              .collection(Collections.waSessions)
              .findOne({ _id: session as never })
              .then((d) =>
                ((d?.counters as { messagesIn?: number } | undefined)?.messagesIn ?? 0) >= 3 ? d : undefined,
              ),
          10_000,
          'session counters',
        );
        assert.equal((sessionDoc!.counters as { messagesIn: number }).messagesIn, 3);
      }
    } finally {
      await running.stop();
    }
  });

  test('a message typed on the phone arrives with its text, direction out, through Inbox Hub, Evolution API and WAHA', async () => {
    const sessions = { inboxhub: uniqueName('ih-'), evolution: uniqueName('evo-'), waha: uniqueName('waha-') } as const;
    const running = await startWhatsApp({
      bus,
      db,
      logger,
      config: config({ WHATSAPP_SESSIONS: Object.values(sessions).join(',') }),
    });
    try {
      // Inbox Hub's message.sent carries the message; the chat is named only by the contact's number.
      const typed = signSample(
        'inboxhub',
        {
          event: 'message.sent',
          sessionId: sessions.inboxhub,
          data: {
            message_id: '3EB0PHONE1',
            phone_number: '34612345678',
            type: 'text',
            content: 'Escrito en el teléfono',
            timestamp: '2025-10-15T10:45:00.000Z',
          },
        },
        secrets,
      );
      await post(typed);
      await post(typed); // a retry: still one message
      await post(
        signSample(
          'evolution',
          {
            event: 'send.message',
            instance: sessions.evolution,
            data: {
              key: { remoteJid: '5511999999999@s.whatsapp.net', fromMe: true, id: 'BAEPHONE1' },
              message: { conversation: 'Escrito en el teléfono' },
              messageTimestamp: 1717689300,
            },
          },
          secrets,
        ),
      );
      await post(
        signSample(
          'waha',
          {
            id: `evt_${uniqueName('')}`,
            timestamp: 1667561700000,
            session: sessions.waha,
            event: 'message.any',
            payload: {
              id: 'true_11111111111@c.us_WAHAPHONE1',
              timestamp: 1667561700,
              from: '22222222222@c.us',
              fromMe: true,
              to: '11111111111@c.us',
              body: 'Escrito en el teléfono',
              hasMedia: false,
            },
          },
          secrets,
        ),
      );
      const ids = { inboxhub: '3EB0PHONE1', evolution: 'BAEPHONE1', waha: 'WAHAPHONE1' } as const;
      const messages = db.collection<MessageDoc & { _id: string }>(Collections.waMessages);
      for (const [provider, session] of Object.entries(sessions) as [keyof typeof ids, string][]) {
        const m = await eventually(
          () => messages.findOne({ _id: `${session}:${ids[provider]}` }).then((d) => d ?? undefined),
          15_000,
          `${provider}: the message`,
        );
        assert.equal(await messages.countDocuments({ session }), 1, `${provider}: one document`);
        assert.deepEqual(
          [m.direction, m.status, m.text, m.placeholder],
          ['out', 'sent', 'Escrito en el teléfono', undefined],
          provider,
        );
        assert.match(m.chatId ?? '', /^\d+@s\.whatsapp\.net$/, `${provider}: normalized chat JID`);
      }
      await post(
        signSample(
          'inboxhub',
          {
            event: 'message.delivered',
            sessionId: sessions.inboxhub,
            data: { message_id: '3EB0PHONE1', phone_number: '34612345678', status: 'delivered' },
          },
          secrets,
        ),
      );
      await eventually(
        () =>
          messages
            .findOne({ _id: `${sessions.inboxhub}:3EB0PHONE1` })
            .then((d) => (d?.status === 'delivered' && d.text === 'Escrito en el teléfono' ? true : undefined)),
        10_000,
        'inboxhub: delivered, text kept',
      );
    } finally {
      await running.stop();
    }
  });

  test('a full sync killed half way (SIGKILL) and resumed by the service ends with every item once', async () => {
    const session = uniqueName('sync-');
    inboxHub.seed(session, { contacts: 20, chats: 20, messagesPerChat: 20 });
    const env = {
      ...process.env,
      INBOXHUB_API_URL: inboxHub.url,
      INBOXHUB_API_KEY: inboxHub.apiKey,
      INBOXHUB_EMAIL: inboxHub.email,
      INBOXHUB_PASSWORD: inboxHub.password,
      INBOXHUB_SYNC_PAGE_SIZE: '8',
      INBOXHUB_SYNC_CHATS: '20',
      INBOXHUB_SYNC_MESSAGES: '20',
    };
    const before = inboxHub.calls.length;
    const child: ChildProcess = spawn(
      process.execPath,
      [`${root}cli/bin/puente.js`, 'whatsapp', 'sync', '--session', session],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    // Kill it in the middle of the messages: after about a third of their 60 pages.
    await eventually(
      () => (inboxHub.calls.slice(before).filter((c) => c.endsWith('/messages')).length >= 20 ? true : undefined),
      30_000,
      'the sync to be half way',
    );
    child.kill('SIGKILL');
    await exited;
    assert.match(output, /%/, 'the CLI shows progress');
    assert.doesNotMatch(output, /completed/, 'killed before the end');
    const atKill = inboxHub.calls.length;
    const running = await startWhatsApp({
      bus,
      db,
      logger,
      config: config({
        WHATSAPP_SESSIONS: session,
        INBOXHUB_SYNC_STALE_MS: '200',
        INBOXHUB_SYNC_CHATS: '20',
        INBOXHUB_SYNC_MESSAGES: '20',
      }),
    });
    try {
      // The service resumes a sync whose worker stopped reporting.
      await new Promise((resolve) => setTimeout(resolve, 300));
      await running.app.resumeStaleSyncs();
      await eventually(
        async () =>
          (await db.collection(Collections.waSessions).findOne({ _id: session as never }))?.sync?.phase === 'completed'
            ? true
            : undefined,
        60_000,
        'the resumed sync to complete',
      );
      const messages = db.collection<MessageDoc & { _id: string; _rev: number }>(Collections.waMessages);
      await eventually(
        async () => ((await messages.countDocuments({ session })) === 400 ? true : undefined),
        20_000,
        '400 messages',
      );
      assert.ok(
        inboxHub.calls.slice(atKill).filter((c) => c.endsWith('/messages')).length > 0,
        'the service read the rest',
      );
      assert.ok(
        inboxHub.calls.slice(before).filter((c) => c.endsWith('/messages')).length < 80,
        'resumed from the cursor, not from the start',
      );
      assert.equal(await messages.countDocuments({ session, _rev: { $ne: 1 } }), 0, 'no message written twice');
      const doc = await db.collection(Collections.waSessions).findOne({ _id: session as never });
      assert.deepEqual(doc?.sync?.counts, { contacts: 20, chats: 20, messages: 400 });
      assert.equal(doc?.counters?.messagesIn + doc?.counters?.messagesOut, 400, 'each message counted once');
      assert.equal(await db.collection(Collections.waContacts).countDocuments({ session }), 20);
      assert.equal(await db.collection(Collections.waConversations).countDocuments({ session }), 20);
    } finally {
      await running.stop();
    }
  });

  test('register-webhook points Inbox Hub at the gateway; its reports of a send move the one message document to delivered', async () => {
    const session = uniqueName('hook-');
    inboxHub.seed(session, { contacts: 0, chats: 0, messagesPerChat: 0 });
    const env = {
      ...process.env,
      INBOXHUB_API_URL: inboxHub.url,
      INBOXHUB_API_KEY: inboxHub.apiKey,
      INBOXHUB_EMAIL: inboxHub.email,
      INBOXHUB_PASSWORD: inboxHub.password,
      INBOXHUB_WEBHOOK_SECRET: secrets.inboxhub,
    };
    const registered = await cli(['whatsapp', 'register-webhook', '--session', session, '--url', gateway.url], env);
    assert.equal(registered.code, 0, registered.output);
    assert.equal(inboxHub.sessions.get(session)!.webhook?.url, `${gateway.url}/webhooks/inboxhub`);
    assert.ok(inboxHub.sessions.get(session)!.webhook?.events.includes('message.delivered'));
    assert.equal(
      (await cli(['whatsapp', 'register-webhook', '--session', session], env)).code,
      2,
      'a missing --url is a usage error',
    );
    const running = await startWhatsApp({ bus, db, logger, config: config({ WHATSAPP_SESSIONS: session }) });
    try {
      const commandId = uniqueName('cmd-');
      await bus.publishEvent(
        createEvent(
          'whatsapp.send_message.v1',
          {
            commandId,
            session,
            to: '34612345678',
            text: 'hola desde Puente 👋',
            requestedAt: new Date().toISOString(),
          },
          { source: 'urn:test' },
        ),
      );
      const send = await eventually(() => inboxHub.sends.find((s) => s.session === session), 15_000, 'the send');
      await inboxHub.notify(session, 'message.delivered', {
        messageId: send.messageId,
        chatId: '34612345678@s.whatsapp.net',
        status: 'delivered',
        timestamp: new Date().toISOString(),
      });
      const doc = await eventually(
        async () => {
          const found = await db
            .collection<MessageDoc & { _id: string }>(Collections.waMessages)
            .findOne({ _id: `${session}:${send.messageId}` });
          return found?.status === 'delivered' && found.commandId === commandId ? found : undefined;
        },
        15_000,
        'the message delivered',
      );
      assert.equal(doc.text, 'hola desde Puente 👋');
      // The pending document's tombstone and the provider's document are two writes (no multi-document
      // transaction): a reader may see both for a moment; it settles on one.
      await eventually(
        async () =>
          (await db.collection(Collections.waMessages).countDocuments({ session, _deleted: { $ne: true } })) === 1
            ? true
            : undefined,
        5_000,
        'one document for the message',
      );
    } finally {
      await running.stop();
    }
  });

  test("a command whose process dies after the provider accepted it is not sent again; the provider's webhook proves it sent", async () => {
    const session = uniqueName('dies-');
    inboxHub.seed(session, { contacts: 0, chats: 0, messagesPerChat: 0 }).webhook = {
      url: `${gateway.url}/webhooks/inboxhub`,
      secret: secrets.inboxhub,
      events: ['*'],
    };
    await bus.publishEvent(
      createEvent(
        'whatsapp.session.status.v1',
        {
          session,
          provider: 'inboxhub',
          status: 'connected',
          timestamp: new Date(Date.now() - 7_200_000).toISOString(),
        },
        { source: 'urn:test' },
      ),
    );
    inboxHub.holdSendAnswers = true; // the message leaves; its answer never comes back
    const port = await freePort();
    const env = {
      ...process.env,
      MONGO_URL: `${process.env.MONGO_URL}${db.databaseName}`,
      LOG_LEVEL: 'warn',
      HEALTH_PORT: String(port),
      WHATSAPP_SESSIONS: session,
      WHATSAPP_ACK_WAIT_MS: '3000',
      INBOXHUB_API_URL: inboxHub.url,
      INBOXHUB_API_KEY: inboxHub.apiKey,
      INBOXHUB_EMAIL: inboxHub.email,
      INBOXHUB_PASSWORD: inboxHub.password,
      INBOXHUB_TIMEOUT_MS: '60000',
    };
    const service = spawnService(root, 'whatsapp', port, env, new Writable({ write: (_c, _e, done) => done() }));
    const commandId = uniqueName('cmd-');
    try {
      await waitReady(service, 30_000);
      await bus.publishEvent(
        createEvent(
          'whatsapp.send_message.v1',
          { commandId, session, to: '34612345678', text: 'una sola vez', requestedAt: new Date().toISOString() },
          { source: 'urn:test' },
        ),
      );
      await eventually(
        () => inboxHub.sends.find((s) => s.session === session),
        15_000,
        'the provider to accept the send',
      );
      service.child.kill('SIGKILL');
      await service.exited;
    } finally {
      inboxHub.holdSendAnswers = false;
      await stopService(service);
    }
    const running = await startWhatsApp({
      bus,
      db,
      logger,
      config: config({
        WHATSAPP_SESSIONS: session,
        WHATSAPP_ACK_WAIT_MS: '3000',
        WHATSAPP_RECONCILE_INTERVAL_MS: '500',
      }),
    });
    try {
      // The provider reported the message (its webhook, when it left) before the command came back.
      const commands = db.collection<{ _id: string; status: string; providerMessageId?: string }>(Collections.commands);
      await eventually(
        async () => ((await commands.findOne({ _id: commandId }))?.status === 'sent' ? true : undefined),
        30_000,
        'the redelivered command to be proven sent',
      );
      assert.equal(inboxHub.sends.filter((s) => s.session === session).length, 1, 'not sent again');
      const sent = inboxHub.sends.find((s) => s.session === session)!;
      assert.equal((await commands.findOne({ _id: commandId }))?.providerMessageId, sent.messageId);
      const message = await eventually(
        () =>
          db
            .collection<MessageDoc & { _id: string }>(Collections.waMessages)
            .findOne({ _id: `${session}:${sent.messageId}`, commandId })
            .then((m) => m ?? undefined),
        10_000,
        'the message document',
      );
      assert.deepEqual([message.text, message.status, message.placeholder], ['una sola vez', 'sent', undefined]);
    } finally {
      await running.stop();
    }
  });
});

async function cli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [`${root}cli/bin/puente.js`, ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { code, output };
}
