import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import type { Db } from 'mongodb';
import {
  Collections,
  createEvent,
  type DomainEvent,
  type EventData,
  type SendMessageV1,
  type WhatsAppProvider,
} from '@puente/contracts';
import type { Bus } from '@puente/bus';
import { connectTestBus, eventually, uniqueName } from '@puente/bus/testing';
import { contentHash } from '@puente/media';
import { testDatabase } from '@puente/projection/testing';
import { Config, openBuckets, startWhatsApp, type WhatsAppApp } from '../index.js';
import { attemptKey } from './handler.js';
import { obtainOutgoingMedia, OutgoingMediaError } from './outgoingMedia.js';
import type { CommandDoc, MessageDoc } from '../readModels.js';
import { FakeEvolution, FakeGraph, FakeInboxHub, FakeWaha, FileServer } from '../testing/index.js';

/*
 * Sending media, upload first, through each provider against its fake, with the real bus and database:
 * the service has the bytes before any provider is called (from the media store, or fetched and kept),
 * and a file that cannot be had fails the send with nothing sent.
 */
const logger = pino({ level: 'silent' });
/** A number of its own: COMMANDS is a work queue, one consumer per session subject across the test files sharing NATS. */
const CLOUD_NUMBER = `1065403${String(randomBytes(4).readUInt32BE() % 1e8).padStart(8, '0')}`;
const MAX_BYTES = 64 * 1024;
let bus: Bus;
let database: Awaited<ReturnType<typeof testDatabase>>;
let db: Db;
let inboxHub: FakeInboxHub;
let graph: FakeGraph;
let evolution: FakeEvolution;
let waha: FakeWaha;
let files: FileServer;
let running: { app: WhatsAppApp; stop: () => Promise<void> };

/** What differs per provider: its session, and what its fake saw. */
interface Target {
  provider: WhatsAppProvider;
  session: string;
  /** The bytes the fake received for the message it answered with this id. */
  received: (messageId: string) => Buffer | undefined;
  /** Requests the fake received for the session (uploads and sends). */
  calls: () => number;
}

const targets: Target[] = [
  {
    provider: 'inboxhub',
    session: uniqueName('media-ih-'),
    received: (id) => inboxHub.files.get(id)?.bytes,
    calls() {
      return inboxHub.requests.filter((r) => r.path.includes(`/${this.session}/`)).length;
    },
  },
  {
    provider: 'cloud-api',
    session: CLOUD_NUMBER,
    received(id) {
      const send = graph.sends.find((s) => s.wamid === id);
      const content = send?.body[String(send.body.type)] as { id?: string } | undefined;
      return content?.id ? graph.uploads.get(content.id)?.bytes : undefined;
    },
    calls: () => graph.sends.length + graph.uploads.size,
  },
  {
    provider: 'evolution',
    session: uniqueName('media-evo-'),
    received: (id) => evolution.files.get(id)?.bytes,
    calls() {
      return evolution.requests.filter((r) => r.path.endsWith(`/${this.session}`)).length;
    },
  },
  {
    provider: 'waha',
    session: uniqueName('media-waha-'),
    received: (id) => waha.files.get(id)?.bytes,
    calls() {
      return waha.requests.filter((r) => (r.body as { session?: string } | undefined)?.session === this.session).length;
    },
  },
];

before(async () => {
  bus = await connectTestBus();
  database = await testDatabase();
  db = database.db;
  inboxHub = await new FakeInboxHub().start();
  graph = await new FakeGraph({ phoneNumberIds: [CLOUD_NUMBER] }).start();
  evolution = await new FakeEvolution().start();
  waha = await new FakeWaha({ engine: 'NOWEB' }).start();
  files = await new FileServer().start();
  for (const { provider, session } of targets) {
    if (provider === 'inboxhub') inboxHub.seed(session, { contacts: 0, chats: 0, messagesPerChat: 0 });
    if (provider === 'evolution') evolution.instances.add(session);
    if (provider === 'waha') waha.sessions.set(session, 'WORKING');
    await bus.publishEvent(
      createEvent(
        'whatsapp.session.status.v1',
        { session, provider, status: 'connected', timestamp: new Date(Date.now() - 2 * 3_600_000).toISOString() },
        { source: 'urn:test' },
      ) as DomainEvent,
    );
  }
  const config = Config.parse({
    // The test's file server is on loopback.
    MEDIA_FETCH_PRIVATE_NETWORKS: 'allow',
    WHATSAPP_SESSIONS: targets.map((t) => t.session).join(','),
    INBOXHUB_API_URL: inboxHub.url,
    INBOXHUB_API_KEY: inboxHub.apiKey,
    INBOXHUB_EMAIL: inboxHub.email,
    INBOXHUB_PASSWORD: inboxHub.password,
    INBOXHUB_SYNC_CHATS: '0',
    WHATSAPP_ACCESS_TOKEN: graph.accessToken,
    WHATSAPP_GRAPH_URL: graph.url,
    EVOLUTION_API_URL: evolution.url,
    EVOLUTION_API_KEY: evolution.apiKey,
    WAHA_API_URL: waha.url,
    WAHA_API_KEY: waha.apiKey,
    WHATSAPP_TIMEOUT_MS: '3000',
    MEDIA_MAX_BYTES: String(MAX_BYTES),
    MEDIA_FETCH_TIMEOUT_MS: '3000',
  });
  running = await startWhatsApp({ bus, db, logger, config });
  await eventually(
    async () =>
      (await db
        .collection(Collections.waSessions)
        .countDocuments({ _id: { $in: targets.map((t) => t.session) } as never })) === targets.length
        ? true
        : undefined,
    10_000,
    'every session in the read model',
  );
});
after(async () => {
  await running?.stop();
  await Promise.all([inboxHub.stop(), graph.stop(), evolution.stop(), waha.stop(), files.stop()]);
  await database.drop();
  await bus.close();
});

const docs = <T>(name: string) => db.collection<T & { _id: string }>(name);
const commandEnded = (commandId: string) =>
  eventually(
    async () => {
      const doc = await docs<CommandDoc>(Collections.commands).findOne({ _id: commandId });
      return doc && doc.status !== 'queued' ? doc : undefined;
    },
    15_000,
    `command ${commandId} to end`,
  );

/** Publishes a send of `media` (and a caption) to the target's session. */
const publishSend = (target: Target, commandId: string, media: NonNullable<SendMessageV1['media']>, text?: string) =>
  bus.publishEvent(
    createEvent(
      'whatsapp.send_message.v1',
      {
        commandId,
        session: target.session,
        to: '34612345678@s.whatsapp.net',
        ...(text ? { text } : {}),
        media,
        requestedAt: new Date().toISOString(),
      } satisfies EventData<'whatsapp.send_message.v1'>,
      { source: 'urn:test' },
    ) as DomainEvent,
  );

/** Sends and waits for the command's outcome. */
async function send(target: Target, media: NonNullable<SendMessageV1['media']>, text?: string): Promise<CommandDoc> {
  const commandId = uniqueName('cmd-');
  await publishSend(target, commandId, media, text);
  return commandEnded(commandId);
}

/** A JPEG-looking file of `size` random bytes (the fakes check types and sizes, not pixels). */
const jpeg = (size: number) => Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), randomBytes(size - 4)]);

/** The provider's message document once it carries the send's media. */
const sentMessage = (session: string, messageId: string) =>
  eventually(
    async () => {
      const doc = await docs<MessageDoc>(Collections.waMessages).findOne({ _id: `${session}:${messageId}` });
      return doc?.media?.hash ? doc : undefined;
    },
    10_000,
    'the sent message with its media',
  );

for (const target of targets)
  describe(`sending media through ${target.provider}`, () => {
    test('a stored file is uploaded, then sent: the provider got the same bytes, the message carries its hash', async () => {
      const bytes = jpeg(20_000);
      const { media } = await running.app.media.put(bytes, { contentType: 'image/jpeg', fileName: 'foto.jpg' });
      const command = await send(target, { type: 'image', hash: media.hash }, 'la foto');
      assert.equal(command.status, 'sent', JSON.stringify(command.error));
      const id = command.providerMessageId!;
      assert.deepEqual(target.received(id), bytes);
      const message = await sentMessage(target.session, id);
      assert.deepEqual(
        [message.type, message.media?.hash, message.media?.bytes, message.media?.mimeType, message.text],
        ['image', media.hash, bytes.length, 'image/jpeg', 'la foto'],
      );
    });

    test('a URL is fetched by the service first, kept, then sent', async () => {
      const bytes = Buffer.concat([Buffer.from('%PDF-1.4\n'), randomBytes(9_000)]);
      const name = `${uniqueName('factura-')}.pdf`;
      files.files.set(name, { bytes, contentType: 'application/pdf' });
      const command = await send(target, { type: 'document', url: `${files.url}/${name}` });
      assert.equal(command.status, 'sent', JSON.stringify(command.error));
      assert.deepEqual(target.received(command.providerMessageId!), bytes);
      assert.ok(await running.app.media.stat(contentHash(bytes)), 'the fetched file is kept');
      const message = await sentMessage(target.session, command.providerMessageId!);
      assert.deepEqual([message.media?.hash, message.media?.fileName], [contentHash(bytes), name]);
    });

    test('a URL that answers 404 fails the send; the provider is never called', async () => {
      const before = target.calls();
      const command = await send(target, { type: 'image', url: `${files.url}/missing.jpg` });
      assert.deepEqual([command.status, command.error?.code], ['failed', 'MEDIA_UNAVAILABLE']);
      assert.match(command.error!.message, /404/);
      assert.equal(target.calls(), before);
    });

    test('a file over the cap fails TOO_LARGE, declared or not; the provider is never called', async () => {
      const before = target.calls();
      const name = uniqueName('big-');
      files.files.set(`${name}.jpg`, { bytes: jpeg(MAX_BYTES + 1), contentType: 'image/jpeg' });
      files.files.set(`${name}-chunked.jpg`, { bytes: jpeg(MAX_BYTES * 2), contentType: 'image/jpeg', chunked: true });
      for (const file of [`${name}.jpg`, `${name}-chunked.jpg`]) {
        const command = await send(target, { type: 'image', url: `${files.url}/${file}` });
        assert.deepEqual([command.status, command.error?.code], ['failed', 'TOO_LARGE'], file);
        // Cut off while reading: the whole body was never taken in.
        assert.doesNotMatch(command.error!.message, new RegExp(String(MAX_BYTES * 2)));
      }
      assert.equal(target.calls(), before);
    });

    test('a hash the store does not hold fails MEDIA_NOT_FOUND', async () => {
      const before = target.calls();
      const command = await send(target, { type: 'image', hash: contentHash(randomBytes(16)) });
      assert.deepEqual([command.status, command.error?.code], ['failed', 'MEDIA_NOT_FOUND']);
      assert.equal(target.calls(), before);
    });
  });

test('Cloud API: media outside its types is refused before any upload', async () => {
  const cloud = targets.find((t) => t.provider === 'cloud-api')!;
  const before = cloud.calls();
  const { media } = await running.app.media.put(Buffer.from('GIF89a fake gif'), { contentType: 'image/gif' });
  const command = await send(cloud, { type: 'image', hash: media.hash });
  assert.deepEqual([command.status, command.error?.code], ['failed', 'UNSUPPORTED_MEDIA']);
  assert.match(command.error!.message, /image\/gif/);
  assert.equal(cloud.calls(), before);
});

test('fetching is not sending: the same command, failed for a missing file, is sent once the file is there', async () => {
  const waha = targets.find((t) => t.provider === 'waha')!;
  const name = `${uniqueName('late-')}.jpg`;
  const commandId = uniqueName('cmd-');
  const command = () => publishSend(waha, commandId, { type: 'image', url: `${files.url}/${name}` });
  await command();
  assert.equal((await commandEnded(commandId)).status, 'failed');
  const bytes = jpeg(3_000);
  files.files.set(name, { bytes, contentType: 'image/jpeg' });
  await command();
  const sent = await eventually(
    async () => {
      const doc = await docs<CommandDoc>(Collections.commands).findOne({ _id: commandId });
      return doc?.status === 'sent' ? doc : undefined;
    },
    15_000,
    'the retried command to be sent',
  );
  assert.deepEqual(waha.received(sent.providerMessageId!), bytes);
});

test('only http and https URLs are fetched', async () => {
  const target = targets[0]!;
  const before = target.calls();
  const command = await send(target, { type: 'document', url: 'ftp://127.0.0.1/f.pdf' });
  assert.deepEqual([command.status, command.error?.code], ['failed', 'MEDIA_UNAVAILABLE']);
  assert.match(command.error!.message, /only http and https/);
  assert.equal(target.calls(), before);
});

test('a send URL on a non-public network is not fetched unless MEDIA_FETCH_PRIVATE_NETWORKS=allow', async () => {
  const name = `${uniqueName('inner-')}.pdf`;
  const bytes = randomBytes(1_000);
  files.files.set(name, { bytes, contentType: 'application/pdf' });
  const requests = files.requests.length;
  for (const url of [
    `${files.url}/${name}`,
    `http://localhost:${new URL(files.url).port}/${name}`,
    'http://169.254.169.254/latest/meta-data/iam/security-credentials/',
    'http://[::ffff:127.0.0.1]:9/x.pdf',
    'http://10.1.2.3/x.pdf',
  ]) {
    const refused = await obtainOutgoingMedia(running.app.media, { type: 'document', url }, { timeoutMs: 2_000 }).then(
      () => undefined,
      (error: unknown) => error,
    );
    assert.ok(refused instanceof OutgoingMediaError, url);
    assert.equal(refused.code, 'MEDIA_UNAVAILABLE');
    assert.match(refused.message, /not on a public network/, url);
  }
  assert.equal(files.requests.length, requests, 'nothing was asked of the inner host');
  const allowed = await obtainOutgoingMedia(
    running.app.media,
    { type: 'document', url: `${files.url}/${name}` },
    { timeoutMs: 2_000, privateNetworks: 'allow' },
  );
  assert.deepEqual(allowed.data, bytes);
});

test('a command seen again after an attempt is never failed for its media: it ends unknown', async () => {
  const target = targets[0]!;
  const before = target.calls();
  const commandId = uniqueName('cmd-');
  // An earlier delivery got as far as the attempt (and may have sent); the file is gone since.
  const { attempts } = await openBuckets(bus);
  await attempts.create(attemptKey(commandId), new TextEncoder().encode('{}'));
  await publishSend(target, commandId, { type: 'image', url: `${files.url}/gone.jpg` });
  const command = await commandEnded(commandId);
  assert.deepEqual([command.status, command.error?.code], ['unknown', 'RESULT_LOST']);
  assert.equal(target.calls(), before);
  assert.ok(!files.requests.includes('/gone.jpg'), 'the file was not fetched again');
});
