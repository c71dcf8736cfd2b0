import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Db } from 'mongodb';
import { pino } from 'pino';
import { Channels, Collections } from '@puente/contracts';
import type { Bus } from '@puente/bus';
import { connectTestBus, eventually, uniqueName } from '@puente/bus/testing';
import { testDatabase } from '@puente/projection/testing';
import { sampleBody, signSample } from '@puente/gateway';
import { startTestGateway, TEST_SAMPLE_SECRETS } from '@puente/gateway/testing';
import { startTestRealtime } from '@puente/realtime/testing';
import { Config, startWhatsApp, type MessageDoc } from '@puente/whatsapp';
import { FakeGraph, FileServer } from '@puente/whatsapp/testing';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

let bus: Bus;
let gateway: Awaited<ReturnType<typeof startTestGateway>>;
let database: Awaited<ReturnType<typeof testDatabase>>;
let db: Db;
let graph: FakeGraph;
let files: FileServer;
let realtime: Awaited<ReturnType<typeof startTestRealtime>>;

before(async () => {
  bus = await connectTestBus();
  gateway = await startTestGateway(bus);
  database = await testDatabase();
  db = database.db;
  graph = await new FakeGraph().start();
  files = await new FileServer().start();
  realtime = await startTestRealtime(bus, db);
});
after(async () => {
  await realtime.close();
  await files.stop();
  await graph.stop();
  await gateway.close();
  await database.drop();
  await bus.close();
});

async function post(sample: ReturnType<typeof signSample>): Promise<void> {
  const response = await fetch(`${gateway.url}${sample.path}`, {
    method: 'POST',
    headers: sample.headers,
    body: sample.body,
  });
  assert.equal(response.status, 200, await response.text());
}

/** An Inbox Hub `message.received` delivery of a media message whose file is on another host. */
function inboxHubMedia(session: string, messageId: string, type: string, url: string, mimetype: string) {
  const at = new Date().toISOString();
  return signSample(
    'inboxhub',
    {
      event: 'message.received',
      sessionId: session,
      timestamp: at,
      data: {
        messageId,
        chatId: '34612345678@s.whatsapp.net',
        from: '34612345678@s.whatsapp.net',
        fromMe: false,
        type,
        media: { url, mimetype, fileName: url.split('/').pop() },
        timestamp: at,
      },
    },
    TEST_SAMPLE_SECRETS,
  );
}

/** A Cloud API delivery of an image by its media id. */
function cloudImage(phoneNumberId: string, mediaId: string) {
  const body = sampleBody('whatsapp-cloud', 7) as {
    entry: { changes: { value: { metadata: { phone_number_id: string }; messages: Record<string, unknown>[] } }[] }[];
  };
  const value = body.entry[0]!.changes[0]!.value;
  value.metadata.phone_number_id = phoneNumberId;
  const message = value.messages[0]!;
  delete message.text;
  message.type = 'image';
  message.image = {
    id: mediaId,
    mime_type: 'image/jpeg',
    sha256: 'c2hhMjU2LW9mLXRoZS1pbWFnZQ==',
    caption: 'la factura',
  };
  return { sample: signSample('whatsapp-cloud', body, TEST_SAMPLE_SECRETS), messageId: message.id as string };
}

describe('media end to end', () => {
  test('image, voice note and document: webhook -> gateway -> kept once -> byte-identical through realtime', async () => {
    const session = uniqueName('ih-media-');
    const phoneNumberId = String(100_000_000_000 + Math.floor(Math.random() * 1e9));
    const running = await startWhatsApp({
      bus,
      db,
      logger,
      config: Config.parse({
        WHATSAPP_SESSIONS: `${session},${phoneNumberId}`,
        WHATSAPP_ACCESS_TOKEN: graph.accessToken,
        WHATSAPP_GRAPH_URL: graph.url,
      }),
    });
    try {
      const items = {
        FOTO: { type: 'image', bytes: randomBytes(150_000), mime: 'image/jpeg', name: 'foto.jpg' },
        NOTA: { type: 'audio', bytes: randomBytes(40_000), mime: 'audio/ogg; codecs=opus', name: 'nota.ogg' },
        DOC: { type: 'document', bytes: randomBytes(300_000), mime: 'application/pdf', name: 'contrato.pdf' },
      } as const;
      for (const [id, item] of Object.entries(items)) {
        files.files.set(item.name, { bytes: item.bytes, contentType: item.mime });
        const sample = inboxHubMedia(session, id, item.type, `${files.url}/${item.name}`, item.mime);
        await post(sample);
        if (id === 'FOTO') await post(sample); // the provider's retry: the same delivery again
      }
      const cloudBytes = randomBytes(60_000);
      const cloud = cloudImage(phoneNumberId, graph.addMedia(cloudBytes, 'image/jpeg'));
      await post(cloud.sample);

      const stored = (s: string, id: string) =>
        eventually(
          async () => {
            const doc = await db
              .collection<MessageDoc & { _id: string }>(Collections.waMessages)
              .findOne({ _id: `${s}:${id}` });
            return doc?.media?.state ? doc : undefined;
          },
          20_000,
          `the media of ${id}`,
        );
      const read = async (s: string, id: string, headers: Record<string, string>) => {
        const response = await fetch(`${realtime.url}/media/${encodeURIComponent(s)}/${encodeURIComponent(id)}`, {
          headers,
        });
        return { status: response.status, headers: response.headers, bytes: Buffer.from(await response.arrayBuffer()) };
      };
      for (const [id, item] of Object.entries(items)) {
        const doc = await stored(session, id);
        assert.equal(doc.media?.state, 'stored', `${id}: ${JSON.stringify(doc.media)}`);
        assert.equal(doc.media?.bytes, item.bytes.length);
        const token = realtime.token([Channels.whatsappMessages(session, doc.chatId!)]);
        const whole = await read(session, id, { authorization: `Bearer ${token}` });
        assert.equal(whole.status, 200);
        assert.deepEqual(whole.bytes, item.bytes, `${id} comes back byte-identical`);
        assert.equal(whole.headers.get('content-type'), item.mime);
        const tail = await read(session, id, { authorization: `Bearer ${token}`, range: 'bytes=-1000' });
        assert.equal(tail.status, 206);
        assert.deepEqual(tail.bytes, item.bytes.subarray(item.bytes.length - 1000));
      }
      const cloudDoc = await stored(phoneNumberId, cloud.messageId);
      assert.equal(cloudDoc.media?.state, 'stored');
      const cloudToken = realtime.token([Channels.whatsappMessages(phoneNumberId, cloudDoc.chatId!)]);
      // What <img> uses: a short-lived link minted with the token; the link itself carries no token.
      const link = await fetch(
        `${realtime.url}/media/${encodeURIComponent(phoneNumberId)}/${encodeURIComponent(cloud.messageId)}/link`,
        { method: 'POST', headers: { authorization: `Bearer ${cloudToken}` } },
      );
      assert.equal(link.status, 200);
      const { url } = (await link.json()) as { url: string };
      assert.ok(!url.includes(cloudToken));
      const viaLink = await fetch(`${realtime.url}${url}`);
      assert.equal(viaLink.status, 200);
      assert.deepEqual(Buffer.from(await viaLink.arrayBuffer()), cloudBytes);
      // A token for another chat of the session may not read it.
      const other = realtime.token([Channels.whatsappMessages(session, '5491100000000@s.whatsapp.net')]);
      assert.equal((await read(session, 'FOTO', { authorization: `Bearer ${other}` })).status, 403);
      assert.equal((await read(session, 'FOTO', {})).status, 401);
      // Each file once: the retried delivery stored nothing new.
      assert.deepEqual(await running.app.media.usage(), {
        items: 4,
        bytes: Object.values(items).reduce((sum, i) => sum + i.bytes.length, 0) + cloudBytes.length,
      });
      assert.equal(files.requests.filter((p) => p === '/foto.jpg').length, 1, 'the retried delivery downloads nothing');
    } finally {
      await running.stop();
    }
  });
});
