import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { MongoClient } from 'mongodb';
import { pino, type Logger } from 'pino';
import { StreamNames } from '@puente/contracts';
import { Bus, ConsumerRunner, redriveConsumerName, type Delivery } from '@puente/bus';
import { ProjectionStore } from '@puente/projection';
import {
  BitrixClient,
  type BitrixBatchApi,
  CompanyMapping,
  CompanyPusher,
  companiesConsumer,
  linksProjection,
} from '@puente/bitrix-sync';
import { FakeBitrix24 } from '@puente/bitrix-sync/testing';
import { changeMessage, LogicalSource, type RowChange } from '@puente/cdc';
import { createCustomerTable, createTestGlymsDatabase, type TestGlymsDatabase } from '@puente/cdc/testing';
import { findBinary, locatePostgres } from '@puente/stack';
import type { BenchEnv } from './bus.js';
import { machine, metric, percentile, type BenchResult, type Metric } from './result.js';

/**
 * `npm run bench -- bitrix`: the two halves of bitrix-sync under load.
 *
 * 1. Relay: pgbench inserts customers into a table of a fresh Glyms database, first alone at full speed
 *    (its own rate R, the same run's baseline), then at R/2 while the logical CDC relay
 *    (`LogicalSource`) publishes the inserts to `EVENTS`. Rows relayed per second against rows inserted
 *    per second, and the lag of each row from its commit in PostgreSQL to its storage in JetStream.
 * 2. Push: 2,000 changed customers through the companies consumer (`companiesConsumer` +
 *    `ConsumerRunner` + `CompanyPusher`, as the service runs them) into `FakeBitrix24` with a small
 *    bucket, against the most that bucket lets through in the same time.
 */
const SECONDS = Number(process.env.BENCH_BITRIX_SECONDS ?? 30);
/** pgbench's unthrottled run (about 10 s; never longer than the throttled one). */
const BASELINE_SECONDS = Math.max(2, Math.min(10, SECONDS));
/** pgbench clients (and threads): enough to saturate the server, so R is pgbench's own ceiling here. */
const CLIENTS = Number(process.env.BENCH_BITRIX_CLIENTS ?? Math.max(2, cpus().length * 2));
const COMPANIES = Number(process.env.BENCH_BITRIX_COMPANIES ?? 2_000);
/** The portal's bucket in the push run, and the client limiter's settings (the same numbers). */
const BUCKET = { burst: 5, drainPerSecond: 2 } as const;
/** The companies consumer's runner settings in the service (`app.ts`: batches of 1,000, `BITRIX_COALESCE_MS` default 500, ack wait 2 min). */
const RUNNER = { batchSize: 1_000, lingerMs: 500, ackWaitMs: 120_000 } as const;
/** Commit-to-JetStream bound for the relay's p99. */
const LAG_BOUND_MS = 1_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** pgbench beside the PostgreSQL server binaries the stack runs (Debian ships them together), else on PATH. */
function pgbenchBinary(): string {
  const bin = locatePostgres();
  const found = bin && existsSync(join(bin, 'pgbench')) ? join(bin, 'pgbench') : findBinary('pgbench');
  if (found) return found;
  throw new Error(
    'bitrix bench: pgbench not found (it ships with the PostgreSQL server, Debian package postgresql-<version>; or put pgbench on PATH)',
  );
}

interface PgbenchRun {
  /** Transactions (= rows) pgbench reports as processed. */
  transactions: number;
  /** pgbench's own rate, without connection time. */
  tps: number;
  /** Wall clock of the process (ms since epoch), start and end. */
  startedAt: number;
  endedAt: number;
}

/** Runs pgbench with a one-statement script (one insert per transaction) against `table`. */
async function pgbench(
  db: TestGlymsDatabase,
  table: string,
  options: { seconds: number; rate?: number; dir: string },
): Promise<PgbenchRun> {
  const script = join(options.dir, `${table}.sql`);
  writeFileSync(
    script,
    [
      '\\set n random(1, 1000000000)',
      `insert into public.${table} (razon_social, email, telefono) values ('Cliente ' || :n, 'c' || :n || '@bench.example', '+51 1 ' || (:n % 10000000));`,
      '',
    ].join('\n'),
  );
  const url = new URL(db.url);
  const args = [
    '-n',
    '-f',
    script,
    '-c',
    String(CLIENTS),
    '-j',
    String(Math.min(CLIENTS, cpus().length)),
    '-T',
    String(options.seconds),
    ...(options.rate ? ['-R', String(Math.max(1, Math.round(options.rate)))] : []),
    '-h',
    url.hostname,
    '-p',
    url.port || '5432',
    '-U',
    decodeURIComponent(url.username || 'postgres'),
    decodeURIComponent(url.pathname.slice(1)),
  ];
  const startedAt = Date.now();
  const child = spawn(pgbenchBinary(), args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...(url.password ? { PGPASSWORD: decodeURIComponent(url.password) } : {}) },
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  const endedAt = Date.now();
  const transactions = /number of transactions actually processed: (\d+)/.exec(out)?.[1];
  const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(out)?.[1];
  if (code !== 0 || !transactions || !tps)
    throw new Error(
      `bitrix bench: pgbench failed (exit ${code}): ${(err || out).trim().split('\n').slice(-3).join(' | ')}`,
    );
  return { transactions: Number(transactions), tps: Number(tps), startedAt, endedAt };
}

/** Messages stored in `EVENTS` on exactly `subject`. */
export async function storedCount(bus: Bus, subject: string): Promise<number> {
  const info = await bus.jsm.streams.info(StreamNames.EVENTS, { subjects_filter: subject });
  return info.state.subjects?.[subject] ?? 0;
}

interface RelayRun {
  baselineTps: number;
  offeredRate: number;
  rows: number;
  insertedRate: number;
  relayed: number;
  relayedRate: number;
  lags: number[];
  tailMs: number;
}

/** The relay half: pgbench alone, then pgbench at half its rate with the relay running. */
async function relayBench(env: BenchEnv, bus: Bus, logger: Logger, ns: string): Promise<RelayRun> {
  const dir = mkdtempSync(join(tmpdir(), 'puente-bench-pgbench-'));
  const db = await createTestGlymsDatabase('bench_glyms_');
  const table = `${ns}_cliente`;
  const subject = `evt.glyms.${table}.created`;
  try {
    // The baseline writes into a table of its own: rows it leaves are not part of the relay's initial load.
    await createCustomerTable(db, `${table}_base`);
    await createCustomerTable(db, table);
    const baseline = await pgbench(db, `${table}_base`, { seconds: BASELINE_SECONDS, dir });
    env.log(`pgbench alone: ${Math.round(baseline.tps)} inserts/s (${CLIENTS} clients, ${BASELINE_SECONDS} s)`);

    const relay = new LogicalSource({
      bus,
      kv: await bus.kv('glyms_cdc', { history: 1 }),
      databaseUrl: db.url,
      tables: [{ schema: 'public', table }],
      publication: `pub_${table}`,
      slot: table,
      logger,
    });
    await relay.start();
    try {
      // One row through first: the stream is up before the clock starts.
      await db.sql(`insert into public.${table} (razon_social) values ('Calentamiento')`);
      for (const deadline = Date.now() + 30_000; (await storedCount(bus, subject)) < 1;) {
        if (Date.now() > deadline)
          throw new Error('bitrix bench: the relay did not publish the warm-up row within 30 s');
        await sleep(100);
      }
      const offeredRate = baseline.tps / 2;
      const run = await pgbench(db, table, { seconds: SECONDS, rate: offeredRate, dir });
      const rows = Number((await db.sql<{ n: string }>(`select count(*) as n from public.${table}`))[0]!.n) - 1;
      const insertedRate = rows / ((run.endedAt - run.startedAt) / 1000);
      env.log(
        `pgbench at R/2 = ${Math.round(offeredRate)}/s with the relay: ${rows} rows in ${((run.endedAt - run.startedAt) / 1000).toFixed(1)} s = ${Math.round(insertedRate)} rows/s`,
      );
      // Wait for the relay to catch up (or to stop making progress).
      let stored = await storedCount(bus, subject);
      for (let last = stored, idleSince = Date.now(); stored < rows + 1 && Date.now() - idleSince < 15_000;) {
        await sleep(250);
        stored = await storedCount(bus, subject);
        if (stored > last) [last, idleSince] = [stored, Date.now()];
      }
      const read = await readLags(bus, subject, stored);
      const relayed = read.lags.length - 1;
      const endedAt = stored >= rows + 1 ? read.lastStoredAt : Date.now();
      return {
        baselineTps: baseline.tps,
        offeredRate,
        rows,
        insertedRate,
        relayed,
        relayedRate: relayed / ((endedAt - run.startedAt) / 1000),
        lags: read.lags.slice(1),
        tailMs: read.lastStoredAt - run.endedAt,
      };
    } finally {
      await relay.stop();
    }
  } finally {
    await db.drop().catch(() => undefined);
    await bus.jsm.streams.purge(StreamNames.EVENTS, { filter: `evt.glyms.${table}.>` }).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Reads the `n` events on `subject` in stream order with an ordered consumer: for each, JetStream's
 * stored timestamp (set by the server when it stored the message) minus the row's commit time as
 * PostgreSQL recorded it (`data.commitTime`, from pgoutput's BEGIN, millisecond precision). Both
 * clocks are this machine's.
 */
async function readLags(bus: Bus, subject: string, n: number): Promise<{ lags: number[]; lastStoredAt: number }> {
  const lags: number[] = [];
  let lastStoredAt = 0;
  if (n === 0) return { lags, lastStoredAt };
  const consumer = await bus.js.consumers.get(StreamNames.EVENTS, { filterSubjects: [subject] });
  const messages = await consumer.consume({ max_messages: 1_000 });
  for await (const msg of messages) {
    const storedAt = msg.info.timestampNanos / 1e6;
    const { data } = msg.json<{ data: { commitTime?: string } }>();
    lags.push(data.commitTime ? storedAt - Date.parse(data.commitTime) : Number.NaN);
    lastStoredAt = Math.max(lastStoredAt, storedAt);
    if (lags.length >= n) break;
  }
  await messages.close();
  return { lags, lastStoredAt };
}

interface PushRun {
  seconds: number;
  rate: number;
  ceiling: number;
  requests: number;
  commands: number;
  limitErrors: number;
  totalRequests: number;
  seedSeconds: number;
  /** Until every change was handled: outcomes published and applied to `bitrix_links`. */
  handledSeconds: number;
  handledCeiling: number;
}

/** The customer row as the ERP holds it, before (`version` 0) and after (`version` 1) the measured change. */
function customerRow(id: number, version: 0 | 1): Record<string, unknown> {
  const pad = String(id).padStart(4, '0');
  return {
    id_cliente: id,
    razon_social: `Empresa ${pad} S.A.C.${version ? ' (actualizada)' : ''}`,
    ruc: `20${String(100_000_000 + id)}`,
    email: `contacto${pad}@empresa.example`,
    telefono: `+51 1 ${version ? '556' : '555'} ${pad}`,
    idclientetipo: 1,
    idtipot: 1,
    activo: true,
    updated_at: new Date().toISOString(),
  };
}

/** The change events of customers 1..n, as the relay publishes them (same function, same message ids). */
function changeEvents(
  table: string,
  n: number,
  op: 'created' | 'updated',
  base: number,
): ReturnType<typeof changeMessage>[] {
  const commitTime = new Date().toISOString();
  return Array.from({ length: n }, (_, i) => {
    const id = i + 1;
    const position = `0/${(base + id).toString(16).toUpperCase()}`;
    const change: RowChange = {
      schema: 'public',
      table,
      op,
      key: { id_cliente: id },
      row: customerRow(id, op === 'created' ? 0 : 1),
      position,
      commitTime,
    };
    return changeMessage('logical', change, position);
  });
}

/** The push half: 2,000 companies seeded, then 2,000 updates timed through the real consumer. */
async function pushBench(env: BenchEnv, bus: Bus, logger: Logger, ns: string): Promise<PushRun> {
  const table = `${ns}_push`;
  const mapping = CompanyMapping.parse({ table: `public.${table}`, originatorId: ns });
  const definition = companiesConsumer(mapping);
  const fake = await new FakeBitrix24({ bucket: { ...BUCKET } }).start();
  const client = new BitrixClient({ auth: { kind: 'webhook', url: fake.webhookUrl() }, bucket: { ...BUCKET }, logger });
  const mongo = await MongoClient.connect(env.mongoUrl, { maxPoolSize: 20 });
  const db = mongo.db(`${ns}_links`);
  let handled = 0;
  let waiting: { count: number; resolve: () => void } | undefined;
  const handledAt = (count: number) =>
    new Promise<void>((resolve) => {
      if (handled >= count) resolve();
      else waiting = { count, resolve };
    });
  let runner: ConsumerRunner | undefined;
  try {
    const links = new ProjectionStore({ db, bus, writers: 'exclusive', projection: linksProjection() });
    await links.init();
    // Times spent waiting on Bitrix24 (the limiter included) per handler call, to tell it from Puente's own work.
    let inBitrix = 0;
    let lastAnswerAt = 0;
    const api: BitrixBatchApi = {
      batch: async (commands, options) => {
        const t0 = performance.now();
        try {
          return await client.batch(commands, options);
        } finally {
          inBitrix += performance.now() - t0;
          lastAnswerAt = Date.now();
        }
      },
    };
    const pusher = new CompanyPusher({ api, bus, links, mapping, logger });
    runner = new ConsumerRunner({
      bus,
      consumer: definition,
      logger,
      ...RUNNER,
      handle: async (deliveries: readonly Delivery[]) => {
        const t0 = performance.now();
        const requests = pusher.stats.requests;
        inBitrix = 0;
        const outcomes = await pusher.handle(deliveries);
        env.log(
          `  handler: ${deliveries.length} changes, ${pusher.stats.requests - requests} requests, ${((performance.now() - t0) / 1000).toFixed(2)} s (${(inBitrix / 1000).toFixed(2)} s in Bitrix24 calls)`,
        );
        handled += deliveries.length;
        if (waiting && handled >= waiting.count) waiting.resolve();
        return outcomes;
      },
    });
    await runner.start();

    // Seed (not timed): the companies and their links, through the same consumer.
    const seedStarted = performance.now();
    await bus.publishEvents(changeEvents(table, COMPANIES, 'created', 0));
    await handledAt(COMPANIES);
    const seedSeconds = (performance.now() - seedStarted) / 1000;
    const seeded = [...fake.companies.values()].filter((c) => c.ORIGINATOR_ID === ns).length;
    const linked = await db.collection(linksProjection().collection).countDocuments({ status: 'synced' });
    if (seeded !== COMPANIES || linked !== COMPANIES)
      throw new Error(`bitrix bench: the seed made ${seeded} companies and ${linked} links, expected ${COMPANIES}`);
    env.log(
      `seed: ${COMPANIES} companies created in ${seedSeconds.toFixed(1)} s (${pusher.stats.requests} requests, ${fake.counters.limitErrors} refused)`,
    );
    // The portal's bucket (and the limiter's copy) empty again before the clock starts.
    await sleep(Math.ceil((BUCKET.burst / BUCKET.drainPerSecond) * 1000) + 500);

    const before = { ...pusher.stats };
    const started = Date.now();
    await bus.publishEvents(changeEvents(table, COMPANIES, 'updated', 1_000_000));
    await handledAt(2 * COMPANIES);
    const handledSeconds = (Date.now() - started) / 1000;
    // The clock stops when Bitrix24 answered the last request: the ceiling counts the requests the bucket
    // admits until then. Recording the last batch's outcomes after it needs no request (reported beside it).
    const seconds = (lastAnswerAt - started) / 1000;
    const stale = [...fake.companies.values()].filter(
      (c) =>
        c.ORIGINATOR_ID === ns &&
        (!String(c.TITLE).endsWith('(actualizada)') ||
          (c.PHONE as { VALUE: string }[] | undefined)?.length !== 1 ||
          !(c.PHONE as { VALUE: string }[])[0]!.VALUE.startsWith('+51 1 556')),
    );
    if (stale.length > 0)
      throw new Error(`bitrix bench: ${stale.length} companies do not hold their updated title and phone`);
    const requests = pusher.stats.requests - before.requests;
    // The most `batch` requests the bucket admits in `seconds` from empty, each carrying 50 company updates (1 sub-call each).
    const ceiling = ((BUCKET.burst + BUCKET.drainPerSecond * seconds) * 50) / 1 / seconds;
    return {
      seconds,
      rate: COMPANIES / seconds,
      ceiling,
      requests,
      commands: pusher.stats.commands - before.commands,
      limitErrors: fake.counters.limitErrors,
      totalRequests: fake.requests.length,
      seedSeconds,
      handledSeconds,
      handledCeiling: ((BUCKET.burst + BUCKET.drainPerSecond * handledSeconds) * 50) / handledSeconds,
    };
  } finally {
    await runner?.stop().catch(() => undefined);
    await bus.jsm.consumers.delete(StreamNames.EVENTS, definition.durable).catch(() => undefined);
    await bus.jsm.consumers.delete(StreamNames.DLQ, redriveConsumerName(definition.durable)).catch(() => undefined);
    await bus.jsm.streams.purge(StreamNames.EVENTS, { filter: `evt.glyms.${table}.>` }).catch(() => undefined);
    await db.dropDatabase().catch(() => undefined);
    await mongo.close();
    await fake.stop();
  }
}

export async function runBitrixBench(env: BenchEnv): Promise<BenchResult> {
  const ns = `bbx${Math.random().toString(36).slice(2, 8)}`;
  const logger = pino({ level: process.env.BENCH_LOG_LEVEL ?? 'warn' }, pino.destination(2));
  const bus = await Bus.connect({ servers: env.natsUrl, name: 'bench-bitrix' });
  try {
    await bus.ensureStreams();
    const relay = await relayBench(env, bus, logger, ns);
    const sorted = relay.lags.filter((l) => Number.isFinite(l)).sort((a, b) => a - b);
    const p50 = percentile(sorted, 50);
    const p99 = percentile(sorted, 99);
    env.log(
      `relay: ${relay.relayed}/${relay.rows} rows in EVENTS, ${Math.round(relay.relayedRate)} rows/s; commit -> JetStream p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${(sorted.at(-1) ?? Number.NaN).toFixed(1)} ms; last row stored ${relay.tailMs} ms after pgbench ended`,
    );
    const push = await pushBench(env, bus, logger, ns);
    env.log(
      `push: ${COMPANIES} updates in Bitrix24 after ${push.seconds.toFixed(1)} s = ${push.rate.toFixed(1)} companies/s (ceiling ${push.ceiling.toFixed(1)}/s), ${push.requests} requests, ${push.commands} sub-calls; every outcome recorded after ${push.handledSeconds.toFixed(1)} s`,
    );
    const metrics: Metric[] = [
      metric({
        metric: 'bitrix_relay_rate',
        value: relay.relayedRate,
        unit: 'rows/s',
        baseline: `rows/s pgbench inserted meanwhile (${relay.rows} rows, ${SECONDS} s, one insert per transaction, at R/2 = ${Math.round(relay.offeredRate)}/s; R = pgbench alone, ${CLIENTS} clients: ${Math.round(relay.baselineTps)}/s); relayed = rows stored in EVENTS / (pgbench start → last row stored)`,
        baselineValue: relay.insertedRate,
        target: 0.95,
      }),
      metric({
        metric: 'bitrix_relay_lag_p99',
        value: Math.max(p99, 0.01),
        unit: 'ms',
        baseline: 'bound: commit in PostgreSQL → stored in JetStream within 1 s',
        baselineValue: LAG_BOUND_MS,
        target: 1,
        lowerIsBetter: true,
      }),
      // Reported, not gated.
      metric({
        metric: 'bitrix_relay_lag_p50',
        value: Math.max(p50, 0.01),
        unit: 'ms',
        baseline: 'bound 1 s (as p99)',
        baselineValue: LAG_BOUND_MS,
        target: 0,
        targetOn: 'value',
        lowerIsBetter: true,
      }),
      metric({
        metric: 'bitrix_push_rate',
        value: push.rate,
        unit: 'companies/s',
        baseline: `ceiling of a bucket of burst ${BUCKET.burst}, ${BUCKET.drainPerSecond}/s over the same ${push.seconds.toFixed(1)} s (burst of ${COMPANIES} updates published → last request answered): (burst + drain × s) requests × 50 updates ÷ s; through the companies consumer into FakeBitrix24`,
        baselineValue: push.ceiling,
        target: 0.9,
      }),
      // Reported, not gated: the same run until every change's outcome was recorded (no request needed after the last answer).
      metric({
        metric: 'bitrix_push_rate_recorded',
        value: COMPANIES / push.handledSeconds,
        unit: 'companies/s',
        baseline: `the same ceiling over ${push.handledSeconds.toFixed(1)} s, until every outcome was published and applied to bitrix_links`,
        baselineValue: push.handledCeiling,
        target: 0,
        targetOn: 'value',
      }),
      metric({
        metric: 'bitrix_push_subcalls_per_company',
        value: push.commands / COMPANIES,
        unit: 'sub-calls',
        baseline: 'fewest sub-calls per update of a known company (1); target ≤ 1.05',
        baselineValue: 1,
        target: 0.95,
        lowerIsBetter: true,
      }),
      metric({
        metric: 'bitrix_push_within_limit',
        value: 1 - push.limitErrors / Math.max(1, push.totalRequests),
        unit: 'fraction',
        baseline: `every request within the portal's bucket (${push.totalRequests} requests, seed and measured, ${push.limitErrors} answered QUERY_LIMIT_EXCEEDED)`,
        baselineValue: 1,
        target: 1,
        targetOn: 'value',
      }),
    ];
    return { name: 'bitrix', at: new Date().toISOString(), machine: machine(), metrics };
  } finally {
    await bus.close();
  }
}
