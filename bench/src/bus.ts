import { MongoClient, type AnyBulkWriteOperation } from 'mongodb';
import { AckPolicy, type JetStreamClient } from 'nats';
import { createEvent, type DomainEvent } from '@puente/contracts';
import { Bus, ConsumerRunner, Outcomes } from '@puente/bus';
import { evolveDoc, keysOf, ProjectionStore, type PositionedEvent, type ProjectedDoc } from '@puente/projection';
import { messageEvents, messageFixtureProjection } from '@puente/projection/testing';
import { machine, median, metric, type BenchResult, type Metric } from './result.js';

export interface BenchEnv {
  natsUrl: string;
  mongoUrl: string;
  log: (line: string) => void;
}

const ROUNDS = 3;
const WINDOW = 256;
const id = () => Math.random().toString(36).slice(2, 10);

function samplePayload(): Uint8Array {
  const event = createEvent(
    'whatsapp.message.received.v1',
    {
      session: 'ventas',
      provider: 'inboxhub',
      messageId: '3EB0C767D26A1B2E5F8A',
      chatId: '34612345678@s.whatsapp.net',
      from: '34612345678@s.whatsapp.net',
      fromMe: false,
      pushName: 'Juan Pérez',
      type: 'text',
      text: 'Hola, ¿cómo estás? 👋 '.repeat(20),
      timestamp: '2025-10-15T10:30:00.000Z',
    },
    { source: 'urn:puente:bench' },
  );
  return new TextEncoder().encode(JSON.stringify(event));
}

/** Runs `publish(i)` for i < n with at most `window` in flight; returns messages per second. */
async function windowed(n: number, window: number, publish: (i: number) => Promise<unknown>): Promise<number> {
  const started = performance.now();
  const inFlight = new Set<Promise<unknown>>();
  for (let i = 0; i < n; i++) {
    if (inFlight.size >= window) await Promise.race(inFlight);
    const p = publish(i).finally(() => inFlight.delete(p));
    inFlight.add(p);
  }
  await Promise.all(inFlight);
  return n / ((performance.now() - started) / 1000);
}

async function rawPublish(js: JetStreamClient, subject: string, data: Uint8Array, msgID: string): Promise<void> {
  await js.publish(subject, data, { msgID });
}

async function benchPublish(bus: Bus, env: BenchEnv): Promise<Metric[]> {
  const data = samplePayload();
  const awaited = { bus: [] as number[], raw: [] as number[] };
  const piped = { bus: [] as number[], raw: [] as number[] };
  const nAwaited = 3_000;
  const nPiped = 30_000;
  for (let round = 0; round < ROUNDS; round++) {
    const ns = id();
    awaited.raw.push(
      await windowed(nAwaited, 1, (i) => rawPublish(bus.js, `evt.bench.${ns}.raw`, data, `${ns}-r-${i}`)),
    );
    awaited.bus.push(
      await windowed(nAwaited, 1, (i) => bus.publish(`evt.bench.${ns}.bus`, data, { msgId: `${ns}-b-${i}` })),
    );
    piped.raw.push(
      await windowed(nPiped, WINDOW, (i) => rawPublish(bus.js, `evt.bench.${ns}.praw`, data, `${ns}-pr-${i}`)),
    );
    const started = performance.now();
    await bus.pipeline(WINDOW).publishAll(
      Array.from({ length: nPiped }, (_, i) => ({
        subject: `evt.bench.${ns}.pbus`,
        payload: data,
        options: { msgId: `${ns}-pb-${i}` },
      })),
    );
    piped.bus.push(nPiped / ((performance.now() - started) / 1000));
    env.log(
      `publish round ${round + 1}: awaited ${Math.round(awaited.bus.at(-1)!)} vs raw ${Math.round(awaited.raw.at(-1)!)} msg/s; pipelined ${Math.round(piped.bus.at(-1)!)} vs raw ${Math.round(piped.raw.at(-1)!)} msg/s`,
    );
  }
  return [
    metric({
      metric: 'publish_awaited_rate',
      value: median(awaited.bus),
      unit: 'msg/s',
      baseline: 'raw nats js.publish, awaited one at a time, same payloads and msg ids',
      baselineValue: median(awaited.raw),
      target: 0.9,
    }),
    metric({
      metric: 'publish_pipelined_rate',
      value: median(piped.bus),
      unit: 'msg/s',
      baseline: `raw nats js.publish with ${WINDOW} in flight, same payloads and msg ids (Puente: pipeline(${WINDOW}).publishAll)`,
      baselineValue: median(piped.raw),
      target: 0.9,
    }),
  ];
}

async function benchConsume(bus: Bus, env: BenchEnv): Promise<Metric[]> {
  const n = 20_000;
  const ns = id();
  const subject = `evt.bench.${ns}.consume`;
  const data = samplePayload();
  await windowed(n, WINDOW, (i) => rawPublish(bus.js, subject, data, `${ns}-c-${i}`));
  const runner: number[] = [];
  const raw: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    // Raw: a durable pull consumer and a consume() loop that acks every message.
    const rawName = `bench-raw-${ns}-${round}`;
    await bus.jsm.consumers.add('EVENTS', {
      durable_name: rawName,
      ack_policy: AckPolicy.Explicit,
      filter_subject: subject,
      max_ack_pending: 1024,
    });
    let started = performance.now();
    const consumer = await bus.js.consumers.get('EVENTS', rawName);
    const messages = await consumer.consume({ max_messages: 256 });
    let count = 0;
    for await (const msg of messages) {
      msg.ack();
      if (++count === n) break;
    }
    raw.push(n / ((performance.now() - started) / 1000));
    messages.stop();

    // Puente's runner with a handler that acks every message.
    const name = `bench-runner-${ns}-${round}`;
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    let handled = 0;
    const r = new ConsumerRunner({
      bus,
      consumer: { durable: name, stream: 'EVENTS', filterSubjects: [subject] },
      redrive: false,
      handle: async (deliveries) => {
        handled += deliveries.length;
        if (handled >= n) done();
        return deliveries.map(() => Outcomes.ack);
      },
    });
    started = performance.now();
    await r.start();
    await finished;
    runner.push(n / ((performance.now() - started) / 1000));
    await r.stop();
    env.log(
      `consume round ${round + 1}: runner ${Math.round(runner.at(-1)!)} vs raw consume() ${Math.round(raw.at(-1)!)} msg/s`,
    );
  }
  return [
    metric({
      metric: 'consume_rate',
      value: median(runner),
      unit: 'msg/s',
      baseline: 'raw nats consume() loop acking each message, same stream and messages',
      baselineValue: median(raw),
      target: 0.8,
    }),
  ];
}

/** 2,000 message documents, five events each (content, sent, delivered, read, a late duplicate), interleaved. */
function projectionWorkload(): PositionedEvent[] {
  const docs = 2_000;
  const perDoc = Array.from({ length: docs }, (_, d) => {
    const events = messageEvents('bench', `m${d}`, ['sent', 'delivered', 'read']);
    return [...events, events[0]!];
  });
  const events: DomainEvent[] = [];
  for (let step = 0; step < 5; step++) for (let d = 0; d < docs; d++) events.push(perDoc[(d * 7919) % docs]![step]!);
  return events.map((event, i) => ({ event, position: i + 1 }));
}

async function benchProjection(bus: Bus, env: BenchEnv): Promise<Metric[]> {
  const client = await MongoClient.connect(env.mongoUrl, { maxPoolSize: 20 });
  const db = client.db(`bench_${id()}`);
  const workload = projectionWorkload();
  const batch = 256;
  const store: number[] = [];
  const raw: number[] = [];
  try {
    // The writes the raw baseline makes: for every event, the document as it stands after that event.
    const projection = messageFixtureProjection('precompute');
    const state = new Map<string, ProjectedDoc | null>();
    const perEvent = workload.map(({ event, position }) => {
      const key = keysOf(projection, event)[0]!;
      const before = state.get(key) ?? null;
      const after = evolveDoc(projection, before as never, event, { key, position }) ?? before;
      state.set(key, after);
      return { key, doc: { ...after, _id: key, _position: position }, first: before === null };
    });
    for (let round = 0; round < ROUNDS; round++) {
      const rawCollection = db.collection<{ _id: string }>(`raw_${round}`);
      let started = performance.now();
      for (let i = 0; i < perEvent.length; i += batch) {
        const ops: AnyBulkWriteOperation<{ _id: string }>[] = perEvent
          .slice(i, i + batch)
          .map((w) =>
            w.first
              ? { insertOne: { document: w.doc } }
              : { replaceOne: { filter: { _id: w.key }, replacement: w.doc } },
          );
        await rawCollection.bulkWrite(ops, { ordered: false });
      }
      raw.push(workload.length / ((performance.now() - started) / 1000));

      const projectionStore = new ProjectionStore({
        db,
        bus,
        projection: messageFixtureProjection(`store_${round}_${id()}`),
      });
      await projectionStore.init();
      started = performance.now();
      for (let i = 0; i < workload.length; i += batch) await projectionStore.apply(workload.slice(i, i + batch));
      store.push(workload.length / ((performance.now() - started) / 1000));
      env.log(
        `projection round ${round + 1}: store ${Math.round(store.at(-1)!)} vs raw bulkWrite ${Math.round(raw.at(-1)!)} events/s`,
      );
    }
  } finally {
    await db.dropDatabase().catch(() => undefined);
    await client.close();
  }
  return [
    metric({
      metric: 'projection_apply_rate',
      value: median(store),
      unit: 'events/s',
      baseline:
        'raw driver bulkWrite of the same per-event writes (insert, then replace by _id), same server, same batches',
      baselineValue: median(raw),
      target: 0.5,
    }),
  ];
}

/** `npm run bench -- bus`: the bus library and projection store against raw client calls, in one run. */
export async function runBusBench(env: BenchEnv): Promise<BenchResult> {
  const bus = await Bus.connect({ servers: env.natsUrl, name: 'bench' });
  try {
    await bus.ensureStreams();
    const metrics = [
      ...(await benchPublish(bus, env)),
      ...(await benchConsume(bus, env)),
      ...(await benchProjection(bus, env)),
    ];
    return { name: 'bus', at: new Date().toISOString(), machine: machine(), metrics };
  } finally {
    await bus.jsm.streams.purge('EVENTS', { filter: 'evt.bench.>' }).catch(() => undefined);
    await bus.close();
  }
}
