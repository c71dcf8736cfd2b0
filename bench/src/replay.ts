import { MongoClient, type AnyBulkWriteOperation, type Db } from 'mongodb';
import { DeliverPolicy } from 'nats';
import { Collections, createEvent, encodeToken, StreamNames, type DomainEvent } from '@puente/contracts';
import { Bus } from '@puente/bus';
import { evolveDoc, keysOf, ProjectionStore, rebuild, renamed, type ProjectedDoc } from '@puente/projection';
import { recordKey, recordsProjection } from '@puente/kissflow-sync';
import type { BenchEnv } from './bus.js';
import { machine, metric, type BenchResult } from './result.js';

const EVENTS = Number(process.env.BENCH_REPLAY_EVENTS ?? 500_000);
const ROWS = Math.max(1, Math.min(50_000, Math.floor(EVENTS / 10)));
const BATCH = 1_024;
/** The raw baseline's bulk size: FerretDB v1 deadlocks past ~400 update statements in one command (libs/projection/src/store.ts). */
const WRITE_BATCH = 256;

/** Versions of ROWS Kissflow rows, each version of every row before the next (times moving forward). */
function workload(dataset: string): DomainEvent[] {
  const base = Date.UTC(2026, 0, 1);
  return Array.from({ length: EVENTS }, (_, i) => {
    const rowId = `R${String(i % ROWS).padStart(6, '0')}`;
    const version = Math.floor(i / ROWS);
    return createEvent(
      'kissflow.record.upserted.v1',
      {
        dataset,
        rowId,
        fields: {
          _id: rowId,
          Name: `Documento ${rowId}`,
          Monto: (i * 37) % 10_000,
          Estado: version % 2 ? 'Aprobado' : 'Pendiente',
          version,
        },
        modifiedAt: new Date(base + version * 60_000 + (i % ROWS)).toISOString(),
        origin: 'backfill',
      },
      { source: 'urn:puente:bench', time: new Date(base).toISOString() },
    ) as DomainEvent;
  });
}

const rate = (n: number, started: number) => n / ((performance.now() - started) / 1000);

async function rawRead(bus: Bus, filter: string, first: number): Promise<number> {
  const consumer = await bus.js.consumers.get(StreamNames.EVENTS, {
    filterSubjects: [filter],
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: first,
  });
  const started = performance.now();
  let count = 0;
  while (count < EVENTS) {
    for await (const msg of await consumer.fetch({ max_messages: BATCH, expires: 2_000 })) {
      void msg;
      count++;
    }
  }
  const result = rate(count, started);
  await consumer.delete().catch(() => undefined);
  return result;
}

/** The raw baseline: for each event, the row as it stands after it (insert the first time, replace by `_id` after), in batches. */
async function rawBulkWrite(db: Db, events: DomainEvent[]): Promise<number> {
  const projection = recordsProjection();
  const state = new Map<string, ProjectedDoc>();
  const writes = events.map((event, i) => {
    const [key] = keysOf(projection, event) as [string];
    const before = state.get(key) ?? null;
    const after = evolveDoc(projection, before as never, event, { key, position: i + 1 })!;
    state.set(key, after);
    const doc = { ...after, _id: key, _position: i + 1 } as unknown as { _id: string };
    return before ? { replaceOne: { filter: { _id: key }, replacement: doc } } : { insertOne: { document: doc } };
  }) as AnyBulkWriteOperation<{ _id: string }>[];
  const collection = db.collection<{ _id: string }>(Collections.kissflowRecords);
  const started = performance.now();
  for (let i = 0; i < writes.length; i += WRITE_BATCH)
    await collection.bulkWrite(writes.slice(i, i + WRITE_BATCH), { ordered: false });
  return rate(events.length, started);
}

/** `npm run bench -- replay`: rebuilding a read model from 500k events against a raw read and a raw bulkWrite of the same writes. */
export async function runReplayBench(env: BenchEnv): Promise<BenchResult> {
  const ns = `brp${Math.random().toString(36).slice(2, 8)}`;
  const dataset = `DS_${ns}`;
  const filter = `evt.kissflow.record.upserted.${encodeToken(dataset)}`;
  const bus = await Bus.connect({ servers: env.natsUrl, name: 'bench-replay' });
  const mongo = await MongoClient.connect(env.mongoUrl, { maxPoolSize: 20 });
  const rawDb = mongo.db(`${ns}_raw`);
  const puenteDb = mongo.db(`${ns}_puente`);
  try {
    await bus.ensureStreams();
    const events = workload(dataset);
    const first = (await bus.jsm.streams.info(StreamNames.EVENTS)).state.last_seq + 1;
    await bus.pipeline(256).publishAll(events.map((e) => ({ subject: filter, payload: e, options: { msgId: e.id } })));
    env.log(`published ${events.length} Kissflow events (${ROWS} rows, ${Math.ceil(EVENTS / ROWS)} versions each)`);
    const read = await rawRead(bus, filter, first);
    env.log(`raw ordered-consumer read: ${Math.round(read)} events/s`);
    const write = await rawBulkWrite(rawDb, events);
    env.log(`raw bulkWrite of the same per-event writes: ${Math.round(write)} events/s`);
    const projection = recordsProjection();
    const started = performance.now();
    const result = await rebuild({
      bus,
      db: puenteDb,
      from: first,
      target: {
        name: `bench-${ns}`,
        consumer: { durable: `bench-replay-${ns}`, stream: 'EVENTS', filterSubjects: [filter] },
        collections: [{ collection: Collections.kissflowRecords, checkpoint: projection.name }],
        staging: (suffix) => {
          const store = new ProjectionStore({
            db: puenteDb,
            bus,
            writers: 'exclusive',
            notify: false,
            projection: renamed(projection, suffix),
          });
          return { init: () => store.init(), apply: async (batch) => (await store.apply(batch)).outcomes };
        },
      },
      onProgress: (p) =>
        p.phase === 'replaying' &&
        p.events % (BATCH * 50) < BATCH &&
        env.log(`  rebuild: ${p.events} events, ${Math.round(p.eventsPerSecond)} events/s`),
    });
    const replay = rate(result.events, started);
    const stored = await puenteDb.collection(Collections.kissflowRecords).countDocuments();
    if (result.events !== EVENTS || stored !== ROWS)
      throw new Error(
        `replay bench: ${result.events} events replayed, ${stored} documents, expected ${EVENTS} and ${ROWS}`,
      );
    const sample = await puenteDb
      .collection(Collections.kissflowRecords)
      .findOne({ _id: recordKey(dataset, 'R000000') } as never);
    env.log(
      `rebuild (replay into staging, then swap into the empty live collection): ${Math.round(replay)} events/s, ${result.seconds.toFixed(1)} s; live: ${result.inserted} inserted; last version of R000000: ${(sample?.fields as { version?: number } | undefined)?.version}`,
    );
    return {
      name: 'replay',
      at: new Date().toISOString(),
      machine: machine(),
      metrics: [
        metric({
          metric: 'replay_rebuild_rate',
          value: replay,
          unit: 'events/s',
          baseline: `lower of a raw ordered-consumer read of the same stream (${Math.round(read)}/s) and a raw driver bulkWrite of the same per-event writes (${Math.round(write)}/s), each alone; ${EVENTS} events over ${ROWS} rows`,
          baselineValue: Math.min(read, write),
          target: 0.5,
        }),
      ],
    };
  } finally {
    await bus.jsm.streams.purge(StreamNames.EVENTS, { filter }).catch(() => undefined);
    await rawDb.dropDatabase().catch(() => undefined);
    await puenteDb.dropDatabase().catch(() => undefined);
    await mongo.close();
    await bus.close();
  }
}
