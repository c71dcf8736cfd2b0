import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MongoClient } from 'mongodb';
import { Channels, Collections, encodeToken, StreamNames } from '@puente/contracts';
import { Bus } from '@puente/bus';
import { signToken } from '@puente/realtime';
import { freePort, stopService, waitReady } from '@puente/stack';
import type { BenchEnv } from './bus.js';
import { machine, metric, percentile, type BenchResult } from './result.js';

const CONNECTIONS = Number(process.env.BENCH_RT_CONNECTIONS ?? 5_000);
const HOT = Math.min(CONNECTIONS, Number(process.env.BENCH_RT_HOT ?? 1_000));
const CHANNELS = 101;
const RATE = 200;
const SECONDS = Number(process.env.BENCH_RT_SECONDS ?? 15);
const SECRET = 'bench-realtime-secret-not-real';
const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
const root = fileURLToPath(new URL('../../', import.meta.url));
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A Node process with the open-files limit raised (5,000 sockets each side) and an IPC channel. */
function node(script: string, env: NodeJS.ProcessEnv, flags: string[] = []): ChildProcess {
  return spawn(
    'sh',
    [
      '-c',
      'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"',
      process.execPath,
      ...flags,
      script,
    ],
    { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] },
  );
}

/** The V8 limits the realtime service ships with (deploy/k8s/base/realtime.yaml, docker-compose.yml). */
export const REALTIME_NODE_FLAGS = (process.env.REALTIME_NODE_FLAGS ?? '--max-semi-space-size=2 --optimize-for-size')
  .split(' ')
  .filter(Boolean);

function message<T>(child: ChildProcess, what: string, timeoutMs = 120_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`realtime bench: no ${what} within ${timeoutMs} ms`)), timeoutMs);
    child.once('message', (m) => (clearTimeout(timer), resolve(m as T)));
    child.once(
      'exit',
      (code) => (clearTimeout(timer), reject(new Error(`realtime bench: a process exited (${code}) before ${what}`))),
    );
  });
}

const rssOf = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;

/** 200 changes/s spread evenly over the channels, as a projector publishes them to `CHANGES`. */
async function publishChanges(bus: Bus, datasets: string[], seconds: number, revBase: number): Promise<number> {
  const total = RATE * seconds;
  const started = now();
  const pending: Promise<unknown>[] = [];
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / RATE;
    const wait = due - now();
    if (wait > 1) await sleep(wait);
    const dataset = datasets[i % datasets.length]!;
    const rowId = `r${Math.floor(i / datasets.length) % 20}`;
    const key = `${dataset}:${rowId}`;
    const rev = revBase + i + 1;
    const doc = { _id: key, dataset, rowId, fields: { sentAt: now(), i }, _rev: rev, _position: rev };
    pending.push(
      bus.publish(
        `chg.${Channels.kissflow(dataset)}.${encodeToken(key)}`,
        { collection: Collections.kissflowRecords, key, rev, position: rev, deleted: false, doc },
        { expectStream: StreamNames.CHANGES },
      ),
    );
  }
  await Promise.all(pending);
  return total;
}

interface LoadStats {
  frames: number;
  latencies: number[];
  closed: number;
  errors: number;
}

/** One run: the load generator against a server, changes published for SECONDS. */
async function drive(
  bus: Bus,
  url: string,
  datasets: string[],
  revBase: number,
  onIdle?: () => void | Promise<void>,
): Promise<{ rate: number; p50: number; p99: number; stats: LoadStats }> {
  const load = node(here('./realtime-load.js'), {
    ...process.env,
    LOAD_URL: url,
    LOAD_CONNECTIONS: String(CONNECTIONS),
    LOAD_HOT: String(HOT),
    LOAD_CHANNELS: JSON.stringify(datasets.map((d) => Channels.kissflow(d))),
  });
  try {
    await message(load, 'connections');
    // Idle long enough for V8's memory reducer to collect the connection storm's garbage.
    await sleep(Number(process.env.BENCH_RT_IDLE_MS ?? 15_000));
    await onIdle?.();
    load.send({ count: true });
    const started = now();
    await publishChanges(bus, datasets, SECONDS, revBase);
    await sleep(1_000);
    load.send({ stop: true });
    const stats = await message<LoadStats>(load, "the load generator's figures");
    const elapsed = (now() - started) / 1000;
    const sorted = stats.latencies.sort((a, b) => a - b);
    return { rate: stats.frames / elapsed, p50: percentile(sorted, 50), p99: percentile(sorted, 99), stats };
  } finally {
    load.kill('SIGKILL');
  }
}

/** `npm run bench -- realtime`: 5,000 WebSocket connections, 200 changes/s over 101 channels, Puente against a bare `ws` broadcaster. */
export async function runRealtimeBench(env: BenchEnv): Promise<BenchResult> {
  const ns = `brt${Math.random().toString(36).slice(2, 8)}`;
  const datasets = Array.from({ length: CHANNELS }, (_, i) => `${ns}_${i}`);
  const bus = await Bus.connect({ servers: env.natsUrl, name: 'bench-realtime' });
  const mongo = await MongoClient.connect(env.mongoUrl);
  try {
    await bus.ensureStreams();
    // Each change reaches every connection on its channel: HOT on the first, the rest split over the others.
    const expectedFrames = (RATE * SECONDS * CONNECTIONS) / CHANNELS;

    // Baseline: a bare ws server.
    const rawPort = await freePort();
    const raw = node(here('./realtime-raw.js'), { ...process.env, RAW_PORT: String(rawPort), NATS_URL: env.natsUrl });
    let baseline: Awaited<ReturnType<typeof drive>>;
    try {
      await message(raw, 'the raw server');
      baseline = await drive(bus, `ws://127.0.0.1:${rawPort}`, datasets, 0);
    } finally {
      raw.kill('SIGKILL');
    }
    env.log(
      `raw ws: ${Math.round(baseline.rate)} frames/s, p50 ${baseline.p50.toFixed(1)} ms, p99 ${baseline.p99.toFixed(1)} ms (${baseline.stats.frames} frames, ~${Math.round(expectedFrames)} expected)`,
    );

    // Puente: the realtime service as deployed, in its own process.
    const port = await freePort();
    const child = node(
      `${root}services/realtime/dist/main.js`,
      {
        ...process.env,
        NODE_ENV: 'development',
        LOG_LEVEL: 'warn',
        REALTIME_PORT: String(port),
        NATS_URL: env.natsUrl,
        MONGO_URL: `${env.mongoUrl.replace(/\/?$/, '/')}${ns}`,
        REALTIME_JWT_SECRET: SECRET,
      },
      REALTIME_NODE_FLAGS,
    );
    const service = {
      name: 'realtime',
      port,
      child,
      exited: new Promise<number | null>((resolve) => child.once('exit', resolve)),
    };
    let puente: Awaited<ReturnType<typeof drive>>;
    let perConnection = 0;
    try {
      await waitReady(service, 60_000);
      await sleep(1_000);
      const before = rssOf(child.pid!);
      // /stats is for operators: a token that reads every channel.
      const statsHeaders = { authorization: `Bearer ${signToken({ sub: 'bench', channels: ['>'] }, SECRET, 3600)}` };
      const statsBefore = (await (await fetch(`http://127.0.0.1:${port}/stats`, { headers: statsHeaders })).json()) as {
        memory: Record<string, number>;
      };
      const token = signToken({ sub: 'bench', channels: ['kissflow.>'] }, SECRET, 3600);
      puente = await drive(bus, `ws://127.0.0.1:${port}/ws?token=${token}`, datasets, RATE * SECONDS, async () => {
        perConnection = (rssOf(child.pid!) - before) / CONNECTIONS;
        const idle = (await (await fetch(`http://127.0.0.1:${port}/stats`, { headers: statsHeaders })).json()) as {
          memory: Record<string, number>;
        };
        const per = (name: string) => Math.round((idle.memory[name]! - statsBefore.memory[name]!) / CONNECTIONS);
        env.log(
          `per idle connection: RSS ${Math.round(perConnection)} B, heap used ${per('heapUsed')} B, heap total ${per('heapTotal')} B, external ${per('external')} B, array buffers ${per('arrayBuffers')} B`,
        );
      });
    } finally {
      await stopService(service);
    }
    if (puente.stats.errors > 0 || puente.stats.closed > 0)
      throw new Error(
        `realtime bench: ${puente.stats.errors} errors and ${puente.stats.closed} closed connections on Puente`,
      );
    env.log(
      `puente: ${Math.round(puente.rate)} frames/s, p50 ${puente.p50.toFixed(1)} ms, p99 ${puente.p99.toFixed(1)} ms (${puente.stats.frames} frames, ${puente.stats.closed} closed, ${puente.stats.errors} errors); ${Math.round(perConnection)} bytes RSS per idle connection`,
    );
    return {
      name: 'realtime',
      at: new Date().toISOString(),
      machine: machine(),
      metrics: [
        metric({
          metric: 'realtime_delivered_rate',
          value: puente.rate,
          unit: 'frames/s',
          baseline: `a bare ws server broadcasting the same frames to the same ${CONNECTIONS} connections (${HOT} on one channel, the rest over ${CHANNELS - 1}), ${RATE} changes/s for ${SECONDS} s`,
          baselineValue: baseline.rate,
          target: 0.7,
        }),
        metric({
          metric: 'realtime_latency_p99',
          value: puente.p99,
          unit: 'ms',
          baseline: "the bare ws server's p99, CHANGES publish to client receipt",
          baselineValue: baseline.p99,
          target: 1 / 3,
          lowerIsBetter: true,
        }),
        metric({
          metric: 'realtime_latency_p50',
          value: puente.p50,
          unit: 'ms',
          baseline: "the bare ws server's p50",
          baselineValue: baseline.p50,
          target: 1 / 3,
          lowerIsBetter: true,
        }),
        metric({
          metric: 'realtime_rss_per_idle_connection',
          value: perConnection / 1024,
          unit: 'KB',
          baseline:
            'the 20 KB budget per idle connection (server RSS growth over the connections, subscribed and idle)',
          baselineValue: 20,
          target: 1,
          lowerIsBetter: true,
        }),
      ],
    };
  } finally {
    await mongo
      .db(ns)
      .dropDatabase()
      .catch(() => undefined);
    await mongo.close();
    for (const dataset of datasets)
      await bus.jsm.streams
        .purge(StreamNames.CHANGES, { filter: `chg.${Channels.kissflow(dataset)}.>` })
        .catch(() => undefined);
    await bus.close();
  }
}
