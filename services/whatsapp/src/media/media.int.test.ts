import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import {
  Collections,
  createEvent,
  StreamNames,
  type DomainEvent,
  type MessageContent,
  type WhatsAppProvider,
} from '@puente/contracts';
import type { Bus } from '@puente/bus';
import { connectTestBus, eventually, uniqueName } from '@puente/bus/testing';
import { contentHash } from '@puente/media';
import { testDatabase } from '@puente/projection/testing';
import { Config, startWhatsApp } from '../index.js';
import { consumersFor } from '../consumers.js';
import type { MessageDoc } from '../readModels.js';
import { FakeEvolution, FakeGraph, FakeInboxHub, FakeWaha, FileServer } from '../testing/index.js';

/*
 * Incoming media kept, per provider, through the real bus and database against fakes that serve media
 * as the providers do (auth, expiry, errors): stored once, byte-identical, on the message document.
 */
const logger = pino({ level: 'silent' });
let bus: Bus;
let graph: FakeGraph;
let inboxHub: FakeInboxHub;
let evolution: FakeEvolution;
let waha: FakeWaha;

before(async () => {
  bus = await connectTestBus();
  graph = await new FakeGraph().start();
  inboxHub = await new FakeInboxHub().start();
  evolution = await new FakeEvolution().start();
  waha = await new FakeWaha().start();
});
after(async () => {
  await Promise.all([graph.stop(), inboxHub.stop(), evolution.stop(), waha.stop()]);
  await bus.close();
});

interface File {
  bytes: Buffer;
  mimeType: string;
  fileName?: string;
}
type Media = NonNullable<MessageContent['media']>;

/** What differs per provider: its variables, how a session and a message's media become known to its fake. */
interface Provider {
  name: WhatsAppProvider;
  variables: () => Record<string, string>;
  open: (session: string) => void;
  /** The fake now holds the media of a message; the descriptor its webhook normalizes to. */
  arrive: (session: string, messageId: string, file: File) => Media;
  /** A message whose media the provider no longer has at all (its URL, if any, expired too). */
  gone: (session: string, messageId: string, file: File) => Media;
  /** The URL the next arrival (or lookup) hands out has expired already. */
  expireNextUrl: () => void;
}

const chat = '34612345678@s.whatsapp.net';

const providers: Provider[] = [
  {
    name: 'cloud-api',
    variables: () => ({ WHATSAPP_ACCESS_TOKEN: graph.accessToken, WHATSAPP_GRAPH_URL: graph.url }),
    open: () => undefined,
    arrive: (_s, _m, file) => ({
      id: graph.addMedia(file.bytes, file.mimeType, file.fileName),
      mimeType: file.mimeType,
      ...(file.fileName ? { fileName: file.fileName } : {}),
    }),
    gone: (session, messageId, file) => {
      const media = providers[0]!.arrive(session, messageId, file);
      graph.expireMedia(media.id!);
      return media;
    },
    expireNextUrl: () => graph.mediaFiles.expireNextUrls(1),
  },
  {
    name: 'inboxhub',
    variables: () => ({
      INBOXHUB_API_URL: inboxHub.url,
      INBOXHUB_API_KEY: inboxHub.apiKey,
      INBOXHUB_EMAIL: inboxHub.email,
      INBOXHUB_PASSWORD: inboxHub.password,
    }),
    open: (session) => inboxHub.seed(session, { contacts: 0, chats: 0, messagesPerChat: 0 }),
    arrive: (session, messageId, file) => ({
      url: inboxHub.addMedia(session, messageId, file),
      mimeType: file.mimeType,
      ...(file.fileName ? { fileName: file.fileName } : {}),
    }),
    gone: (session, messageId, file) => {
      inboxHub.mediaFiles.expireNextUrls(1);
      const media = providers[1]!.arrive(session, messageId, file);
      inboxHub.forgetMedia(session, messageId);
      return media;
    },
    expireNextUrl: () => inboxHub.mediaFiles.expireNextUrls(1),
  },
  {
    name: 'evolution',
    variables: () => ({ EVOLUTION_API_URL: evolution.url, EVOLUTION_API_KEY: evolution.apiKey }),
    open: (session) => evolution.instances.add(session),
    arrive: (session, messageId, file) => {
      evolution.media.set(`${session}:${messageId}`, file);
      // What Evolution's webhook carries: WhatsApp's encrypted CDN file, never to be downloaded as the media.
      return { url: `https://mmg.whatsapp.net/v/t62.7118-24/${messageId}.enc`, mimeType: file.mimeType };
    },
    gone: (session, messageId, file) => {
      const media = providers[2]!.arrive(session, messageId, file);
      evolution.media.delete(`${session}:${messageId}`);
      return media;
    },
    expireNextUrl: () => undefined,
  },
  {
    name: 'waha',
    variables: () => ({ WAHA_API_URL: waha.url, WAHA_API_KEY: waha.apiKey }),
    open: (session) => waha.sessions.set(session, 'WORKING'),
    arrive: (session, messageId, file) => ({
      url: waha.addMedia(session, { chatId: '34612345678@c.us', id: messageId, fromMe: false }, file),
      mimeType: file.mimeType,
    }),
    gone: (session, messageId, file) => {
      waha.mediaFiles.expireNextUrls(1);
      const media = providers[3]!.arrive(session, messageId, file);
      waha.media.delete(`false_34612345678@c.us_${messageId}`);
      return media;
    },
    expireNextUrl: () => waha.mediaFiles.expireNextUrls(1),
  },
];

const image = (): File => ({ bytes: randomBytes(3_000), mimeType: 'image/jpeg' });
const voice = (): File => ({ bytes: randomBytes(2_000), mimeType: 'audio/ogg; codecs=opus' });
const pdf = (): File => ({ bytes: randomBytes(2_500), mimeType: 'application/pdf', fileName: 'contrato.pdf' });

/** A host on another origin serving one file under `path`, recording each request's headers. */
async function fileHost(file: File, path: string): Promise<FileServer> {
  const host = await new FileServer().start();
  host.files.set(path.slice(1), { bytes: file.bytes, contentType: file.mimeType });
  return host;
}

/** The service for one session of a provider, on a database of its own (so the store's usage is this test's). */
async function service(provider: Provider, overrides: Record<string, string> = {}) {
  const database = await testDatabase();
  const session = uniqueName(`${provider.name}-media-`);
  provider.open(session);
  const config = Config.parse({
    WHATSAPP_SESSIONS: session,
    WHATSAPP_TIMEOUT_MS: '2000',
    MEDIA_DOWNLOAD_TIMEOUT_MS: '5000',
    ...provider.variables(),
    ...overrides,
  });
  const running = await startWhatsApp({ bus, db: database.db, logger, config });
  const receive = (messageId: string, type: MessageContent['type'], media: Media, imported = false) =>
    bus.publishEvent(
      createEvent(
        imported ? 'whatsapp.message.imported.v1' : 'whatsapp.message.received.v1',
        {
          session,
          provider: provider.name,
          messageId,
          chatId: chat,
          from: chat,
          fromMe: false,
          type,
          media,
          timestamp: new Date().toISOString(),
        },
        { source: 'urn:test' },
      ) as DomainEvent,
    );
  const settled = (messageId: string) =>
    eventually(
      async () => {
        const doc = await database.db
          .collection<MessageDoc & { _id: string }>(Collections.waMessages)
          .findOne({ _id: `${session}:${messageId}` });
        return doc?.media?.state ? doc : undefined;
      },
      20_000,
      `the media of ${messageId} to be stored or unavailable`,
    );
  /** The media consumer has nothing pending or in flight. */
  const idle = () =>
    eventually(
      async () => {
        const info = await bus.jsm.consumers.info(StreamNames.EVENTS, consumersFor([session]).media.durable);
        return info.num_pending === 0 && info.num_ack_pending === 0 ? true : undefined;
      },
      15_000,
      'the media consumer to be idle',
    );
  return {
    session,
    app: running.app,
    receive,
    settled,
    idle,
    stop: async () => {
      await running.stop();
      await database.drop();
    },
  };
}

for (const provider of providers)
  describe(`incoming media - ${provider.name}`, () => {
    test('an image, a voice note and a document are stored once each, byte-identical, on their messages', async () => {
      const s = await service(provider);
      try {
        const files = { IMG: image(), VOICE: voice(), DOC: pdf() };
        const types = { IMG: 'image', VOICE: 'voice', DOC: 'document' } as const;
        const media = Object.fromEntries(
          Object.entries(files).map(([id, file]) => [id, provider.arrive(s.session, id, file)]),
        );
        for (const id of Object.keys(files) as (keyof typeof files)[]) await s.receive(id, types[id], media[id]!);
        for (const [id, file] of Object.entries(files)) {
          const doc = await s.settled(id);
          assert.equal(doc.media?.state, 'stored', `${id}: ${JSON.stringify(doc.media?.error)}`);
          assert.equal(doc.media?.hash, contentHash(file.bytes));
          assert.equal(doc.media?.bytes, file.bytes.length);
          assert.equal(doc.media?.mimeType, file.mimeType);
          const stored = await s.app.media.stat(doc.media!.hash!);
          assert.ok(stored);
          assert.ok((await s.app.media.bytes(stored)).equals(file.bytes), `${id} read back byte-identical`);
        }
        const total = Object.values(files).reduce((sum, f) => sum + f.bytes.length, 0);
        assert.deepEqual(await s.app.media.usage(), { items: 3, bytes: total });
        // The same messages again (a duplicate delivery, then a full sync's import): nothing new is stored.
        for (const id of Object.keys(files) as (keyof typeof files)[]) {
          await s.receive(id, types[id], media[id]!);
          await s.receive(id, types[id], media[id]!, true);
        }
        await s.idle();
        assert.deepEqual(await s.app.media.usage(), { items: 3, bytes: total });
      } finally {
        await s.stop();
      }
    });

    test('media the provider no longer has ends unavailable, EXPIRED', async () => {
      const s = await service(provider);
      try {
        await s.receive('GONE', 'image', provider.gone(s.session, 'GONE', image()));
        const doc = await s.settled('GONE');
        assert.equal(doc.media?.state, 'unavailable');
        assert.equal(doc.media?.error?.code, 'EXPIRED');
        assert.deepEqual(await s.app.media.usage(), { items: 0, bytes: 0 });
      } finally {
        await s.stop();
      }
    });
  });

describe('incoming media - expiry, limits and retries', () => {
  const [cloud, hub, evolutionProvider, wahaProvider] = providers as [Provider, Provider, Provider, Provider];
  for (const provider of [cloud, hub, wahaProvider])
    test(`${provider.name}: an expired URL is downloaded again through the provider and stored`, async () => {
      const s = await service(provider);
      try {
        const file = pdf();
        provider.expireNextUrl();
        await s.receive('LATE', 'document', provider.arrive(s.session, 'LATE', file));
        const doc = await s.settled('LATE');
        assert.equal(doc.media?.state, 'stored', JSON.stringify(doc.media?.error));
        assert.equal(doc.media?.hash, contentHash(file.bytes));
      } finally {
        await s.stop();
      }
    });

  test("waha: a file URL written with WAHA's default base URL (localhost:3000) is fetched from WAHA_API_URL", async () => {
    const s = await service(wahaProvider);
    try {
      const file = image();
      const { url, mimeType } = wahaProvider.arrive(s.session, 'BASEURL', file);
      const asWahaWritesIt = `http://localhost:3000${new URL(url!).pathname}`;
      await s.receive('BASEURL', 'image', { url: asWahaWritesIt, mimeType });
      const doc = await s.settled('BASEURL');
      assert.equal(doc.media?.state, 'stored', JSON.stringify(doc.media?.error));
      assert.equal(doc.media?.hash, contentHash(file.bytes));
    } finally {
      await s.stop();
    }
  });

  test("evolution: the stored S3 object of Evolution's webhook is downloaded, even without Evolution's API", async () => {
    const file = image();
    const bucket = await fileHost(file, '/evolution/imageMessage/1717_foto.jpg');
    const s = await service({ ...evolutionProvider, variables: () => ({}) });
    try {
      const url = `${bucket.url}/evolution/imageMessage/1717_foto.jpg`;
      await s.receive('S3', 'image', { url, mimeType: file.mimeType });
      const doc = await s.settled('S3');
      assert.equal(doc.media?.state, 'stored', JSON.stringify(doc.media?.error));
      assert.equal(doc.media?.hash, contentHash(file.bytes));
      // A Baileys CDN URL alone (no S3 object) needs Evolution's API: without it, NO_SOURCE, naming the variables.
      await s.receive('CDN', 'image', { url: 'https://mmg.whatsapp.net/v/t62/1_n.enc', mimeType: 'image/jpeg' });
      const none = await s.settled('CDN');
      assert.equal(none.media?.error?.code, 'NO_SOURCE');
      assert.match(none.media!.error!.message, /EVOLUTION_API_URL/);
      assert.ok(
        bucket.headers.every((headers) => headers.apikey === undefined),
        "Evolution's key never goes to another host",
      );
    } finally {
      await s.stop();
      await bucket.stop();
    }
  });

  test("inboxhub: a message read back in Baileys' shape (WhatsApp's encrypted CDN URL) is stored through the path", async () => {
    const s = await service(hub);
    try {
      const file = image();
      hub.arrive(s.session, 'BAILEYS', file);
      const url = 'https://mmg.whatsapp.net/v/t62.7118-24/12345_67890.enc?ccb=11-4&oh=x&oe=y';
      await s.receive('BAILEYS', 'image', { url, mimeType: file.mimeType }, true);
      const doc = await s.settled('BAILEYS');
      assert.equal(doc.media?.state, 'stored', JSON.stringify(doc.media?.error));
      assert.equal(doc.media?.hash, contentHash(file.bytes));
    } finally {
      await s.stop();
    }
  });

  test('an item over MEDIA_MAX_BYTES is unavailable, TOO_LARGE, before it is downloaded', async () => {
    const s = await service(cloud, { MEDIA_MAX_BYTES: '2048' });
    try {
      const downloads = graph.mediaFiles.downloads.length;
      await s.receive('BIG', 'image', cloud.arrive(s.session, 'BIG', image()));
      const doc = await s.settled('BIG');
      assert.equal(doc.media?.state, 'unavailable');
      assert.equal(doc.media?.error?.code, 'TOO_LARGE');
      assert.equal(graph.mediaFiles.downloads.length, downloads);
    } finally {
      await s.stop();
    }
  });

  test('media past a full store is unavailable, BUDGET; what was kept stays', async () => {
    const s = await service(hub, { MEDIA_BUDGET_BYTES: '4096' });
    try {
      await s.receive('FIRST', 'image', hub.arrive(s.session, 'FIRST', image()));
      assert.equal((await s.settled('FIRST')).media?.state, 'stored');
      await s.receive('SECOND', 'image', hub.arrive(s.session, 'SECOND', image()));
      const doc = await s.settled('SECOND');
      assert.equal(doc.media?.state, 'unavailable');
      assert.equal(doc.media?.error?.code, 'BUDGET');
      assert.equal((await s.app.media.usage()).items, 1);
    } finally {
      await s.stop();
    }
  });

  test('a 503 from the download is retried on its own schedule and the media ends stored', async () => {
    const s = await service(cloud);
    try {
      const file = voice();
      graph.mediaFiles.failNext(1, 503);
      await s.receive('FLAKY', 'voice', cloud.arrive(s.session, 'FLAKY', file));
      const doc = await s.settled('FLAKY');
      assert.equal(doc.media?.state, 'stored', JSON.stringify(doc.media?.error));
      assert.equal(doc.media?.hash, contentHash(file.bytes));
    } finally {
      await s.stop();
    }
  });

  test('a download that keeps failing ends UNREACHABLE after MEDIA_RETRY_FOR_MS, without credentials in the error', async () => {
    const s = await service(cloud, { MEDIA_RETRY_FOR_MS: '1000' });
    try {
      graph.mediaFiles.failNext(2, 503);
      await s.receive('DOWN', 'image', cloud.arrive(s.session, 'DOWN', image()));
      const doc = await s.settled('DOWN');
      assert.equal(doc.media?.state, 'unavailable');
      assert.equal(doc.media?.error?.code, 'UNREACHABLE');
      assert.ok(!doc.media!.error!.message.includes(graph.accessToken));
    } finally {
      await s.stop();
    }
  });

  test("Inbox Hub's credentials never go to a media URL on another host", async () => {
    const file = image();
    const cdn = await fileHost(file, '/cdn/foto.jpg');
    const s = await service(hub);
    try {
      // Another origin on the same host: a different port is another origin.
      await s.receive('CDN', 'image', { url: `${cdn.url}/cdn/foto.jpg`, mimeType: file.mimeType });
      assert.equal((await s.settled('CDN')).media?.state, 'stored');
      assert.equal(cdn.headers.length, 1);
      assert.equal(cdn.headers[0]!.authorization, undefined);
      assert.equal(cdn.headers[0]!['x-api-key'], undefined);
    } finally {
      await s.stop();
      await cdn.stop();
    }
  });

  test("without Inbox Hub's API a media URL on another host is still kept; a message naming none is NO_SOURCE", async () => {
    const file = pdf();
    const cdn = await fileHost(file, '/cdn/contrato.pdf');
    const s = await service({ ...hub, variables: () => ({}) });
    try {
      await s.receive('BARE', 'document', { url: `${cdn.url}/cdn/contrato.pdf`, mimeType: file.mimeType });
      const stored = await s.settled('BARE');
      assert.equal(stored.media?.state, 'stored');
      assert.deepEqual(await s.app.media.bytes((await s.app.media.stat(stored.media!.hash!))!), file.bytes);
      await s.receive('NOURL', 'image', { mimeType: 'image/jpeg' });
      const none = await s.settled('NOURL');
      assert.equal(none.media?.state, 'unavailable');
      assert.equal(none.media?.error?.code, 'NO_SOURCE');
      assert.match(none.media!.error!.message, /INBOXHUB_API_URL/);
    } finally {
      await s.stop();
      await cdn.stop();
    }
  });
});
