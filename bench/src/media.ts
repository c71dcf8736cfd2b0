import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { GridFSBucket, MongoClient, type Db } from 'mongodb';
import { Bus } from '@puente/bus';
import { Collections, Consumers, createEvent, encodeToken, StreamNames, subjectOf } from '@puente/contracts';
import { providerNamed } from '@puente/gateway';
import { MediaStore } from '@puente/media';
import { freePort, spawnService, stopService, waitReady, type RunningServiceProcess } from '@puente/stack';
import type { BenchEnv } from './bus.js';
import { machine, metric, type BenchResult, type Metric } from './result.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
/** Image messages posted through the whole path. */
const IMAGES = Number(process.env.BENCH_MEDIA_IMAGES ?? 200);
const IMAGE_BYTES = 200 * 1024;
/** Text events the projections apply in each phase of the "downloads do not stall the read models" metric. */
const EVENTS = Number(process.env.BENCH_MEDIA_EVENTS ?? 20_000);
/** Media downloads per second running beside the projections in the loaded phase. */
const DOWNLOADS_PER_SECOND = 5;
/** Concurrent downloads of the whatsapp service (its default), and concurrent writers of the GridFS baseline. */
const CONCURRENCY = 4;
const BIG_BYTES = 10 * 1024 ** 2;
const TAIL_BYTES = 64 * 1024;
const READS = Number(process.env.BENCH_MEDIA_READS ?? 200);
const SESSION = 'bench-media';
const DEV_INBOXHUB_SECRET = 'dev-inboxhub-webhook-secret';

/** Deterministic bytes: the same files every run, each one different (so each is stored once). */
function fileBytes(n: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  let s = (n * 2654435761) >>> 0 || 1;
  for (let i = 0; i < length; i += 4) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out.writeUInt32LE(s >>> 0, Math.min(i, length - 4));
  }
  return out;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The provider's media host: `GET /img/<n>.jpg` answers image n. */
async function mediaHost(): Promise<{ server: Server; url: (n: number) => string; served: () => number }> {
  let served = 0;
  const server = createServer((req, res) => {
    const n = Number(/^\/img\/(\d+)\.jpg$/.exec(req.url ?? '')?.[1] ?? Number.NaN);
    if (!Number.isInteger(n)) {
      res.writeHead(404).end();
      return;
    }
    served++;
    const body = fileBytes(n, IMAGE_BYTES);
    res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': body.length });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, url: (n) => `http://127.0.0.1:${port}/img/${n}.jpg`, served: () => served };
}

/** Posts Inbox Hub `message.received` webhooks of image n, signed as the gateway's development secret expects. */
function imagePoster(gatewayPort: number, url: (n: number) => string) {
  const inboxhub = providerNamed('inboxhub');
  if (!inboxhub) throw new Error('the gateway has no inboxhub provider');
  return async (n: number): Promise<void> => {
    const at = new Date(Date.UTC(2026, 10, 1) + n * 1000).toISOString();
    const body = {
      event: 'message.received',
      sessionId: SESSION,
      timestamp: at,
      data: {
        messageId: `IMG${n}`,
        chatId: `5491100${100_000 + (n % 50)}@s.whatsapp.net`,
        from: `5491100${100_000 + (n % 50)}@s.whatsapp.net`,
        fromMe: false,
        type: 'image',
        media: { url: url(n), mimetype: 'image/jpeg', fileName: `foto-${n}.jpg` },
        timestamp: at,
      },
    };
    const raw = Buffer.from(JSON.stringify(body));
    const signed = inboxhub.sample.sign(raw, DEV_INBOXHUB_SECRET, { now: new Date(), params: {} });
    for (let attempt = 0; ; attempt++) {
      const response = await fetch(`http://127.0.0.1:${gatewayPort}${signed.path}`, {
        method: 'POST',
        headers: signed.headers,
        body: raw,
      });
      await response.arrayBuffer();
      if (response.ok) return;
      if (attempt >= 5) throw new Error(`the gateway answered ${response.status} to image ${n}`);
      await sleep(200);
    }
  };
}

/** Runs `work` over 0..count-1 with `concurrency` at a time. */
async function pool(count: number, concurrency: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) await work(next++);
    }),
  );
}

/**
 * Waits until `count` more media items of the session are kept (`media.stored` events in EVENTS, counted by
 * the stream: polling the read model would load the very database being measured) and the read models
 * have applied them; fails on any `media.failed`.
 */
async function storedEvents(bus: Bus, before: number, count: number, timeoutMs: number): Promise<number> {
  const token = encodeToken(SESSION);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const info = await bus.jsm.streams.info(StreamNames.EVENTS, { subjects_filter: `evt.whatsapp.media.*.${token}` });
    const subjects = info.state.subjects ?? {};
    const failed = subjects[`evt.whatsapp.media.failed.${token}`] ?? 0;
    if (failed > 0) throw new Error(`${failed} media items were not kept (see the whatsapp log)`);
    const stored = subjects[`evt.whatsapp.media.stored.${token}`] ?? 0;
    if (stored >= before + count) break;
    if (Date.now() > deadline) throw new Error(`only ${stored - before} of ${count} media items were kept in time`);
    await sleep(20);
  }
  const last = (await bus.jsm.streams.info(StreamNames.EVENTS)).state.last_seq;
  for (;;) {
    const info = await bus.jsm.consumers.info(StreamNames.EVENTS, Consumers.whatsappProjections.durable);
    if (info.ack_floor.stream_seq >= last) return before + count;
    await sleep(20);
  }
}

/** Checks (after the timing) that the image messages' documents show their media stored. */
async function assertStored(db: Db, first: number, count: number): Promise<void> {
  const ids = Array.from({ length: count }, (_, i) => `${SESSION}:IMG${first + i}`);
  const stored = await db
    .collection(Collections.waMessages)
    .countDocuments({ _id: { $in: ids as never[] }, 'media.state': 'stored' });
  if (stored !== count) throw new Error(`${count - stored} of ${count} image messages do not show their media stored`);
}

/** Publishes `count` text messages straight into EVENTS and returns the rate the read models applied them at (events/s). */
async function projectionRate(bus: Bus, phase: string, count: number): Promise<number> {
  const base = Date.UTC(2026, 10, 2);
  const started = performance.now();
  let last = 0;
  for (let first = 0; first < count; first += 500) {
    const acks = Array.from({ length: Math.min(500, count - first) }, (_, j) => {
      const i = first + j;
      const event = createEvent(
        'whatsapp.message.received.v1',
        {
          session: SESSION,
          provider: 'inboxhub',
          messageId: `${phase}-${i}`,
          chatId: `5491100${200_000 + (i % 400)}@s.whatsapp.net`,
          fromMe: false,
          type: 'text',
          text: 'Hola, ¿tienen stock del repuesto? 🙏',
          timestamp: new Date(base + i).toISOString(),
        },
        { source: 'urn:puente:bench' },
      );
      return bus.publish(subjectOf(event), event, { msgId: `bench-media:${phase}:${i}` });
    });
    last = Math.max(last, ...(await Promise.all(acks)).map((a) => a.seq));
  }
  const consumer = Consumers.whatsappProjections.durable;
  for (;;) {
    const info = await bus.jsm.consumers.info(StreamNames.EVENTS, consumer);
    if (info.ack_floor.stream_seq >= last) break;
    await sleep(20);
  }
  return count / ((performance.now() - started) / 1000);
}

/** The time (ms, median of `READS`) to read the last 64 KB of a 10 MB item with `others` more items stored. */
async function tailRead(client: MongoClient, ns: string, others: number): Promise<number> {
  const db = client.db(`${ns}_tail${others}`);
  const store = new MediaStore(db, { maxItemBytes: BIG_BYTES, budgetBytes: 64 * 1024 ** 3 });
  await pool(others, CONCURRENCY, async (i) => {
    await store.put(fileBytes(10_000 + i, 64 * 1024), { contentType: 'image/jpeg' });
  });
  const { media } = await store.put(fileBytes(1, BIG_BYTES), { contentType: 'video/mp4' });
  const range = { start: media.length - TAIL_BYTES, end: media.length - 1 };
  const times: number[] = [];
  for (let i = 0; i < READS; i++) {
    const started = performance.now();
    let read = 0;
    for await (const part of store.read(media, range)) read += part.length;
    times.push(performance.now() - started);
    if (read !== TAIL_BYTES) throw new Error(`read ${read} bytes, not ${TAIL_BYTES}`);
  }
  await db.dropDatabase();
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)]!;
}

/**
 * `npm run bench -- media`: image messages (200 KB) posted to the gateway as Inbox Hub webhooks, downloaded
 * by the whatsapp service from a local media host and kept in the media store, against the driver's own
 * GridFS writing the same files into the same server (messages/s and bytes/s, target ≥ 0.5); the read
 * models' event rate while 5 downloads/s run beside them, against the same with none (target ≥ 0.8); and
 * reading the last 64 KB of a 10 MB item with 1,000 items stored against 10 (target: at most 1.5× the time).
 */
export async function runMediaBench(env: BenchEnv): Promise<BenchResult> {
  const ns = `bmedia${Math.random().toString(36).slice(2, 8)}`;
  const mongoUrl = `${env.mongoUrl.replace(/\/?$/, '/')}${ns}`;
  const client = await MongoClient.connect(env.mongoUrl);
  const db = client.db(ns);
  const host = await mediaHost();
  const ports = { gateway: await freePort(), whatsapp: await freePort() };
  const common = {
    ...process.env,
    NODE_ENV: 'development',
    LOG_LEVEL: 'warn',
    NATS_URL: env.natsUrl,
    MONGO_URL: mongoUrl,
  };
  const services: RunningServiceProcess[] = [
    spawnService(root, 'gateway', ports.gateway, { ...common, GATEWAY_PORT: String(ports.gateway) }, process.stderr),
    spawnService(
      root,
      'whatsapp',
      ports.whatsapp,
      { ...common, HEALTH_PORT: String(ports.whatsapp), MEDIA_DOWNLOAD_CONCURRENCY: String(CONCURRENCY) },
      process.stderr,
    ),
  ];
  const bus = await Bus.connect({ servers: env.natsUrl, name: 'bench-media' });
  const metrics: Metric[] = [];
  try {
    await Promise.all(services.map((s) => waitReady(s, 60_000)));
    const post = imagePoster(ports.gateway, host.url);

    // 1. The whole path against GridFS writing the same files.
    await post(IMAGES + 1_000_000);
    let kept = await storedEvents(bus, 0, 1, 60_000);
    await assertStored(db, IMAGES + 1_000_000, 1);
    env.log(`whole path: ${IMAGES} images of ${IMAGE_BYTES / 1024} KB`);
    const started = performance.now();
    await pool(IMAGES, 16, (i) => post(i));
    kept = await storedEvents(bus, kept, IMAGES, 600_000);
    const pathSeconds = (performance.now() - started) / 1000;
    await assertStored(db, 0, IMAGES);
    env.log(`GridFS baseline: the same ${IMAGES} files, ${CONCURRENCY} writers`);
    const bucket = new GridFSBucket(client.db(`${ns}_gridfs`), { bucketName: 'baseline' });
    const baselineStarted = performance.now();
    await pool(IMAGES, CONCURRENCY, async (i) => {
      const upload = bucket.openUploadStream(`foto-${i}.jpg`, { metadata: { contentType: 'image/jpeg' } });
      await new Promise<void>((resolve, reject) => {
        upload.once('finish', () => resolve());
        upload.once('error', reject);
        upload.end(fileBytes(i, IMAGE_BYTES));
      });
    });
    const gridfsSeconds = (performance.now() - baselineStarted) / 1000;
    metrics.push(
      metric({
        metric: 'image messages stored through the whole path (messages/s)',
        value: IMAGES / pathSeconds,
        unit: 'messages/s',
        baseline: `GridFSBucket writes of the same ${IMAGES} files, ${CONCURRENCY} at a time`,
        baselineValue: IMAGES / gridfsSeconds,
        target: 0.5,
      }),
      metric({
        metric: 'media bytes stored through the whole path (MB/s)',
        value: (IMAGES * IMAGE_BYTES) / 1024 ** 2 / pathSeconds,
        unit: 'MB/s',
        baseline: 'GridFSBucket writes of the same bytes',
        baselineValue: (IMAGES * IMAGE_BYTES) / 1024 ** 2 / gridfsSeconds,
        target: 0.5,
      }),
    );

    // 2. The read models' rate with and without downloads beside them (alternated, best of two each).
    const idle: number[] = [];
    const loaded: number[] = [];
    let downloaded = IMAGES;
    for (let round = 0; round < 2; round++) {
      env.log(`read models, round ${round + 1}: ${EVENTS} events alone`);
      idle.push(await projectionRate(bus, `idle${round}`, EVENTS));
      env.log(`read models, round ${round + 1}: ${EVENTS} events with ${DOWNLOADS_PER_SECOND} downloads/s`);
      const firstLoaded = downloaded;
      let running = true;
      const load = (async () => {
        while (running) {
          const tick = performance.now();
          await Promise.all(Array.from({ length: DOWNLOADS_PER_SECOND }, () => post(downloaded++)));
          await sleep(Math.max(0, 1_000 - (performance.now() - tick)));
        }
      })();
      await sleep(1_000);
      loaded.push(await projectionRate(bus, `loaded${round}`, EVENTS));
      running = false;
      await load;
      kept = await storedEvents(bus, kept, downloaded - firstLoaded, 120_000);
      await assertStored(db, firstLoaded, downloaded - firstLoaded);
    }
    metrics.push(
      metric({
        metric: `read models' event rate with ${DOWNLOADS_PER_SECOND} media downloads/s beside them`,
        value: Math.max(...loaded),
        unit: 'events/s',
        baseline: 'the same events with no downloads',
        baselineValue: Math.max(...idle),
        target: 0.8,
      }),
    );
  } finally {
    await bus.close();
    await Promise.all(services.map((s) => stopService(s)));
    host.server.close();
  }

  try {
    // 3. Reads are `_id` lookups: the time to read a tail does not grow with what is stored.
    env.log('tail reads: 10 items stored');
    const few = await tailRead(client, ns, 10);
    env.log('tail reads: 1,000 items stored');
    const many = await tailRead(client, ns, 1_000);
    metrics.push(
      metric({
        metric: 'last 64 KB of a 10 MB item, 1,000 items stored (ms, median)',
        value: many,
        unit: 'ms',
        baseline: 'the same read with 10 items stored',
        baselineValue: few,
        target: 1 / 1.5,
        lowerIsBetter: true,
      }),
    );
  } finally {
    for (const name of [ns, `${ns}_gridfs`]) await client.db(name).dropDatabase();
    await client.close();
  }
  return { name: 'media', at: new Date().toISOString(), machine: machine(), metrics };
}
