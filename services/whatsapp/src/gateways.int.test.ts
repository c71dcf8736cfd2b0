import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import type { Db } from 'mongodb';
import {
  Collections,
  createEvent,
  type DomainEvent,
  type EventData,
  type EventType,
  type WhatsAppProvider,
} from '@puente/contracts';
import type { Bus } from '@puente/bus';
import { connectTestBus, eventually, uniqueName } from '@puente/bus/testing';
import { testDatabase } from '@puente/projection/testing';
import { Config, startWhatsApp } from './index.js';
import type { CommandDoc, MessageDoc } from './readModels.js';
import { FakeEvolution, FakeWaha, reportSentStatus, type GatewaySend } from './testing/index.js';

/*
 * Sending and mark-read through the Baileys gateways, against fakes that answer as their sources do:
 * the same at-most-once guarantees as Inbox Hub and the Cloud API, through the real bus and database.
 */
const logger = pino({ level: 'silent' });
let bus: Bus;
let database: Awaited<ReturnType<typeof testDatabase>>;
let db: Db;
let evolution: FakeEvolution;
let waha: FakeWaha;
const REFUSED_NUMBER = '34600000000';

before(async () => {
  bus = await connectTestBus();
  database = await testDatabase();
  db = database.db;
  evolution = await new FakeEvolution({ notOnWhatsApp: [REFUSED_NUMBER] }).start();
  waha = await new FakeWaha({ engine: 'NOWEB' }).start();
});
after(async () => {
  await evolution.stop();
  await waha.stop();
  await database.drop();
  await bus.close();
});

const event = <T extends EventType>(type: T, data: EventData<T>) =>
  createEvent(type, data, { source: 'urn:test' }) as DomainEvent;
const publish = (e: DomainEvent) => bus.publishEvent(e);
const docs = <T>(name: string) => db.collection<T & { _id: string }>(name);
const commandIn = (commandId: string, status: CommandDoc['status']) =>
  eventually(
    async () => {
      const doc = await docs<CommandDoc>(Collections.commands).findOne({ _id: commandId });
      return doc?.status === status ? doc : undefined;
    },
    15_000,
    `command ${commandId} to be ${status}`,
  );

/** What differs per gateway: its fake, how a session is made known to it, and how to get a refusal. */
interface Gateway {
  provider: Extract<WhatsAppProvider, 'evolution' | 'waha'>;
  fake: () => FakeEvolution | FakeWaha;
  /** Registers a working session with the fake. */
  open: (session: string) => void;
  /** A session and recipient the gateway refuses with a 4xx. */
  refusal: (session: string) => { to: string };
  variables: Record<string, string>;
  /** Mark-read calls the fake received for a session. */
  reads: (session: string) => unknown[];
}

const gateways: Gateway[] = [
  {
    provider: 'evolution',
    fake: () => evolution,
    open: (session) => evolution.instances.add(session),
    refusal: () => ({ to: `${REFUSED_NUMBER}@s.whatsapp.net` }),
    get variables() {
      return { EVOLUTION_API_URL: evolution.url, EVOLUTION_API_KEY: evolution.apiKey };
    },
    reads: (session) => evolution.reads.filter((r) => r.instance === session).map(({ instance: _i, ...key }) => key),
  },
  {
    provider: 'waha',
    fake: () => waha,
    open: (session) => waha.sessions.set(session, 'WORKING'),
    refusal: (session) => {
      waha.sessions.set(session, 'SCAN_QR_CODE');
      return { to: '34612345678@s.whatsapp.net' };
    },
    get variables() {
      return { WAHA_API_URL: waha.url, WAHA_API_KEY: waha.apiKey };
    },
    reads: (session) => waha.seen.filter((r) => r.session === session),
  },
];

for (const gateway of gateways)
  describe(`sending through ${gateway.provider}`, () => {
    const sendsOf = (session: string): GatewaySend[] => gateway.fake().sends.filter((s) => s.session === session);

    /** A session of this provider known to the read model, and the service's consumers for it. */
    async function session(prefix: string, variables = gateway.variables) {
      const name = uniqueName(`${gateway.provider}-${prefix}-`);
      gateway.open(name);
      await publish(
        event('whatsapp.session.status.v1', {
          session: name,
          provider: gateway.provider,
          status: 'connected',
          timestamp: new Date(Date.now() - 3_600_000 * 2).toISOString(),
        }),
      );
      const config = Config.parse({ WHATSAPP_SESSIONS: name, WHATSAPP_TIMEOUT_MS: '2000', ...variables });
      // The session's provider must be in the read model before a command is handled.
      const running = await startWhatsApp({ bus, db, logger, config });
      await eventually(
        async () => ((await docs(Collections.waSessions).findOne({ _id: name })) ? true : undefined),
        10_000,
        'the session in the read model',
      );
      return { name, running };
    }

    const send = (commandId: string, name: string, to: string, text: string) =>
      publish(
        event('whatsapp.send_message.v1', {
          commandId,
          session: name,
          to,
          text,
          requestedAt: new Date().toISOString(),
        }),
      );

    test("a send ends sent with the provider's id; a later status moves the same document to read", async () => {
      const { name, running } = await session('send');
      try {
        const commandId = uniqueName('cmd-');
        await send(commandId, name, '+34612345678', 'Su pedido está listo ✅');
        const command = await commandIn(commandId, 'sent');
        const sends = sendsOf(name);
        assert.equal(sends.length, 1);
        assert.equal(command.providerMessageId, sends[0]!.messageId);
        const message = await reportSentStatus(bus, db, {
          session: name,
          provider: gateway.provider,
          commandId,
          messageId: command.providerMessageId!,
          chatId: '34612345678@s.whatsapp.net',
          status: 'read',
        });
        assert.deepEqual(
          [message.text, message.commandId, message.chatId],
          ['Su pedido está listo ✅', commandId, '34612345678@s.whatsapp.net'],
        );
      } finally {
        await running.stop();
      }
    });

    test('an unreadable 2xx ends unknown and is not sent again; the webhook then proves it sent', async () => {
      const opened = await session('garbled');
      const name = opened.name;
      let running = opened.running;
      const commandId = uniqueName('cmd-');
      gateway.fake().garbleSendAnswers = true;
      try {
        await send(commandId, name, '34612345678@s.whatsapp.net', 'solo una vez');
        const unknown = await commandIn(commandId, 'unknown');
        assert.equal(unknown.error?.code, 'BAD_RESPONSE');
        assert.equal(sendsOf(name).length, 1);
        const sent = sendsOf(name)[0]!;
        await publish(
          event('whatsapp.message.sent.v1', {
            session: name,
            provider: gateway.provider,
            messageId: sent.messageId,
            chatId: '34612345678@s.whatsapp.net',
            fromMe: true,
            type: 'text',
            text: 'solo una vez',
            timestamp: new Date().toISOString(),
          }),
        );
        assert.equal((await commandIn(commandId, 'sent')).providerMessageId, sent.messageId);
        // A new instance sees nothing left to do: the command is not sent again.
        await running.stop();
        running = await startWhatsApp({
          bus,
          db,
          logger,
          config: Config.parse({ WHATSAPP_SESSIONS: name, ...gateway.variables }),
        });
        const stored = await bus.jsm.streams.info('COMMANDS', { subjects_filter: `cmd.whatsapp.*.${name}` });
        assert.equal(
          Object.values(stored.state.subjects ?? {}).reduce((a, b) => a + b, 0),
          0,
          'the command left the work queue',
        );
        assert.equal(sendsOf(name).length, 1);
      } finally {
        gateway.fake().garbleSendAnswers = false;
        await running.stop();
      }
    });

    test('a refusal (4xx) ends failed with the provider’s reason, nothing sent', async () => {
      const { name, running } = await session('refused');
      try {
        const commandId = uniqueName('cmd-');
        await send(commandId, name, gateway.refusal(name).to, 'no');
        const failed = await commandIn(commandId, 'failed');
        assert.match(failed.error?.code ?? '', /^4\d\d$/);
        assert.equal(sendsOf(name).length, 0);
      } finally {
        await running.stop();
      }
    });

    test('mark read tells the provider about the chat’s newest inbound message', async () => {
      const { name, running } = await session('read');
      const chat = '34655555555@s.whatsapp.net';
      try {
        const old = Date.now() - 60_000;
        for (const [i, id] of ['R1', 'R2'].entries())
          await publish(
            event('whatsapp.message.received.v1', {
              session: name,
              provider: gateway.provider,
              messageId: id,
              chatId: chat,
              from: chat,
              fromMe: false,
              type: 'text',
              text: id,
              timestamp: new Date(old + i * 1_000).toISOString(),
            }),
          );
        await eventually(
          async () =>
            (await docs<MessageDoc>(Collections.waMessages).countDocuments({ session: name })) === 2 ? true : undefined,
          10_000,
          'both messages stored',
        );
        const commandId = uniqueName('cmd-');
        await publish(
          event('whatsapp.mark_read.v1', {
            commandId,
            session: name,
            chatId: chat,
            requestedAt: new Date().toISOString(),
          }),
        );
        await eventually(
          async () => (gateway.reads(name).length > 0 ? true : undefined),
          10_000,
          'the provider to be told',
        );
        assert.deepEqual(
          gateway.reads(name),
          gateway.provider === 'evolution'
            ? [
                { id: 'R2', fromMe: false, remoteJid: chat },
                { id: 'R1', fromMe: false, remoteJid: chat },
              ]
            : [{ session: name, chatId: '34655555555@c.us', messageId: 'false_34655555555@c.us_R2' }],
        );
      } finally {
        await running.stop();
      }
    });

    test('a session no event has named yet sends through the gateway when it is the only one configured', async () => {
      const name = uniqueName(`${gateway.provider}-first-`);
      gateway.open(name);
      const running = await startWhatsApp({
        bus,
        db,
        logger,
        config: Config.parse({ WHATSAPP_SESSIONS: name, ...gateway.variables }),
      });
      try {
        const commandId = uniqueName('cmd-');
        await send(commandId, name, '34612345678@s.whatsapp.net', 'primero');
        const command = await commandIn(commandId, 'sent');
        assert.deepEqual([sendsOf(name).length, command.providerMessageId], [1, sendsOf(name)[0]!.messageId]);
      } finally {
        await running.stop();
      }
    });

    test('unconfigured, a send fails naming the variables to set', async () => {
      const { name, running } = await session('unconfigured', {});
      try {
        const commandId = uniqueName('cmd-');
        await send(commandId, name, '34612345678@s.whatsapp.net', 'x');
        const failed = await commandIn(commandId, 'failed');
        assert.equal(failed.error?.code, 'PROVIDER_NOT_CONFIGURED');
        for (const variable of Object.keys(gateway.variables))
          assert.match(failed.error?.message ?? '', new RegExp(variable));
        assert.equal(sendsOf(name).length, 0);
      } finally {
        await running.stop();
      }
    });
  });
