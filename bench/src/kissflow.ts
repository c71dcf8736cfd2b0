import { fileURLToPath } from 'node:url';
import { MongoClient, type Db } from 'mongodb';
import { pino } from 'pino';
import { Collections, createEvent, encodeToken } from '@puente/contracts';
import { Bus } from '@puente/bus';
import { freePort, spawnService, stopService, waitReady } from '@puente/stack';
import {
  Backfill,
  KissflowClient,
  modifiedAtOf,
  openBackfillBucket,
  recordKey,
  recordsProjection,
  type KissflowRecordDoc,
} from '@puente/kissflow-sync';
import { FakeKissflow } from '@puente/kissflow-sync/testing';
import type { BenchEnv } from './bus.js';
import { machine, metric, type BenchResult } from './result.js';

const ROWS = Number(process.env.BENCH_KISSFLOW_ROWS ?? 50_000);
/** The client's default page size (docs/kissflow.md). */
const PAGE_SIZE = 100;
const BATCH = 256;
const root = fileURLToPath(new URL('../../', import.meta.url));

const rate = (n: number, started: number) => n / ((performance.now() - started) / 1000);

/** The fake API's own serving rate: every page fetched in order, nothing done with the rows. */
async function rawServe(fake: FakeKissflow, dataset: string): Promise<number> {
  const started = performance.now();
  let rows = 0;
  for (let page = 1; ; page++) {
    const response = await fetch(
      `${fake.url}/dataset/2/${fake.accountId}/${dataset}/list?page_number=${page}&page_size=${PAGE_SIZE}`,
      { headers: { 'x-access-key-id': fake.accessKeyId, 'x-access-key-secret': fake.accessKeySecret } },
    );
    const body = (await response.json()) as { Data: unknown[] };
    rows += body.Data.length;
    if (body.Data.length < PAGE_SIZE) break;
  }
  return rate(rows, started);
}

/** A raw driver bulkWrite of the documents the projection stores for the same rows, in batches, into an empty collection. */
async function rawBulkWrite(db: Db, fake: FakeKissflow, dataset: string): Promise<number> {
  const projection = recordsProjection();
  const docs = [...fake.datasets.get(dataset)!.values()].map((row, i) => {
    const event = createEvent(
      'kissflow.record.upserted.v1',
      { dataset, rowId: row._id, fields: row, modifiedAt: modifiedAtOf(row), origin: 'backfill' },
      { source: 'urn:puente:bench' },
    );
    const key = recordKey(dataset, row._id);
    return { ...projection.evolve(null, event, { key, position: i + 1 })!, _id: key, _position: i + 1, _rev: 1 };
  });
  const collection = db.collection<KissflowRecordDoc & { _id: string }>(Collections.kissflowRecords);
  const started = performance.now();
  for (let i = 0; i < docs.length; i += BATCH)
    await collection.bulkWrite(
      docs.slice(i, i + BATCH).map((document) => ({ insertOne: { document } })),
      { ordered: false },
    );
  return rate(docs.length, started);
}

/**
 * Puente end to end: the kissflow-sync service in its own process (as deployed) projecting, while the
 * backfill (as `puente kissflow backfill` runs it) pages through the fake API and publishes; the clock
 * stops when the change notice of the last row is out (the notice follows the row's write).
 */
async function endToEnd(
  env: BenchEnv,
  bus: Bus,
  db: Db,
  fake: FakeKissflow,
  dataset: string,
): Promise<{ rate: number; backfillSeconds: number }> {
  const port = await freePort();
  const service = spawnService(
    root,
    'kissflow-sync',
    port,
    {
      ...process.env,
      NODE_ENV: 'development',
      LOG_LEVEL: 'warn',
      HEALTH_PORT: String(port),
      NATS_URL: env.natsUrl,
      MONGO_URL: `${env.mongoUrl.replace(/\/?$/, '/')}${db.databaseName}`,
      KISSFLOW_DATASETS: dataset,
    },
    process.stderr,
  );
  try {
    await waitReady(service, 60_000);
    let noticed = 0;
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    const subscription = bus.nc.subscribe(`chg.kissflow.${encodeToken(dataset)}.>`, {
      callback: () => ++noticed === ROWS && done(),
    });
    const client = new KissflowClient({
      baseUrl: fake.url,
      accountId: fake.accountId,
      accessKeyId: fake.accessKeyId,
      accessKeySecret: fake.accessKeySecret,
      timeoutMs: 30_000,
      retries: 2,
    });
    const backfill = new Backfill({
      bus,
      kv: await openBackfillBucket(bus),
      client,
      logger: pino({ level: 'silent' }),
      pageSize: PAGE_SIZE,
    });
    const started = performance.now();
    const state = await backfill.run({ dataset });
    const backfillSeconds = (performance.now() - started) / 1000;
    await finished;
    const result = rate(ROWS, started);
    subscription.unsubscribe();
    const stored = await db.collection(Collections.kissflowRecords).countDocuments({ dataset });
    if (state.counts.rows !== ROWS || stored !== ROWS)
      throw new Error(`kissflow bench: ${state.counts.rows} rows published, ${stored} stored, expected ${ROWS}`);
    return { rate: result, backfillSeconds };
  } finally {
    await stopService(service);
  }
}

/** `npm run bench -- kissflow`: a 50k-row backfill from the fake API into the read model against the fake's serving rate and a raw bulkWrite. */
export async function runKissflowBench(env: BenchEnv): Promise<BenchResult> {
  const ns = `bkf${Math.random().toString(36).slice(2, 8)}`;
  const dataset = `DS_${ns}`;
  const fake = await new FakeKissflow({ rateLimitPerSecond: 1_000_000 }).start();
  const bus = await Bus.connect({ servers: env.natsUrl, name: 'bench-kissflow' });
  const client = await MongoClient.connect(env.mongoUrl, { maxPoolSize: 20 });
  const rawDb = client.db(`${ns}_raw`);
  const puenteDb = client.db(`${ns}_puente`);
  try {
    await bus.ensureStreams();
    fake.seed(dataset, ROWS);
    const serve = await rawServe(fake, dataset);
    env.log(`fake API alone: ${Math.round(serve)} rows/s (${ROWS} rows, pages of ${PAGE_SIZE})`);
    const write = await rawBulkWrite(rawDb, fake, dataset);
    env.log(`raw bulkWrite of the same documents: ${Math.round(write)} rows/s`);
    const puente = await endToEnd(env, bus, puenteDb, fake, dataset);
    env.log(
      `backfill -> read model: ${Math.round(puente.rate)} rows/s (listing and publishing took ${puente.backfillSeconds.toFixed(1)} s)`,
    );
    return {
      name: 'kissflow',
      at: new Date().toISOString(),
      machine: machine(),
      metrics: [
        metric({
          metric: 'kissflow_backfill_rate',
          value: puente.rate,
          unit: 'rows/s',
          baseline: `lower of the fake API's own serving rate (${Math.round(serve)}/s) and a raw driver bulkWrite of the same documents (${Math.round(write)}/s), each alone; ${ROWS} rows`,
          baselineValue: Math.min(serve, write),
          target: 0.5,
        }),
      ],
    };
  } finally {
    await bus.jsm.streams
      .purge('EVENTS', { filter: `evt.kissflow.record.*.${encodeToken(dataset)}` })
      .catch(() => undefined);
    await rawDb.dropDatabase().catch(() => undefined);
    await puenteDb.dropDatabase().catch(() => undefined);
    await client.close();
    await bus.close();
    await fake.stop();
  }
}
