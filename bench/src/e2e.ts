import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { Bus } from '@puente/bus';
import { encodeToken } from '@puente/contracts';
import { DevSecrets, signToken } from '@puente/runtime';
import { freePort, spawnService, stopService, waitReady, type RunningServiceProcess } from '@puente/stack';
import type { BenchEnv } from './bus.js';
import type { LoadCommand, LoadReply, LoadSetup } from './e2e-load.js';
import { machine, metric, percentile, type BenchResult } from './result.js';

/**
 * `npm run bench -- e2e`: a signed Kissflow webhook posted to the gateway until a WebSocket client of
 * the realtime service receives the changed document, through gateway, NATS JetStream, kissflow-sync and
 * MongoDB, each service in its own process as deployed. First the sustained rate the whole stack
 * reaches (a burst, completions per second), then latency at half of it, with a breakdown per hop taken
 * in this process on core NATS subscriptions: gateway (post → event on `EVENTS`), projection (event →
 * change notice: consumer delivery, MongoDB write, notice), push (notice → WebSocket frame).
 * The load generator runs in a worker thread (e2e-load.ts) with its own heap, so its garbage never pauses
 * the thread that takes the time stamps. Target: e2e p99 within 3× the sum of the hops' p50s.
 */
const root = fileURLToPath(new URL('../../', import.meta.url));
const BURST = Number(process.env.BENCH_E2E_BURST ?? 3_000);
const SECONDS = Number(process.env.BENCH_E2E_SECONDS ?? 15);
/** The rate the target is checked at, as a fraction of the sustained rate. */
const FRACTION = Number(process.env.BENCH_E2E_FRACTION ?? 0.5);
/**
 * Lower rates measured after it, for information: how the tail grows with the load (on a small machine
 * the target's rate keeps every core busy). `BENCH_E2E_SWEEP=` (empty) skips them.
 */
const SWEEP = (process.env.BENCH_E2E_SWEEP ?? '0.25,0.125')
  .split(',')
  .filter((f) => f.trim() !== '')
  .map(Number);

const quantile = (values: number[], q: number) =>
  percentile(
    [...values].sort((a, b) => a - b),
    q * 100,
  );

interface Timing {
  posted: number;
  event: number;
  notice: number;
  pushed: number;
}

const HOPS = ['gateway', 'projection', 'push'] as const;

/** A paced phase's figures: e2e p50 and p99, and each hop's p50 and p99 (ms). */
interface Phase {
  fraction: number;
  rate: number;
  /** The machine's busy share of all cores while the phase was posted (NaN where `/proc/stat` is missing). */
  busy: number;
  p50: number;
  p99: number;
  hopP50: Record<(typeof HOPS)[number], number>;
  hopP99: Record<(typeof HOPS)[number], number>;
}

function summarize(complete: readonly Timing[], fraction: number, rate: number, busy: number): Phase {
  const hops = {
    gateway: complete.map((t) => t.event - t.posted),
    projection: complete.map((t) => t.notice - t.event),
    push: complete.map((t) => t.pushed - t.notice),
  };
  const e2e = complete.map((t) => t.pushed - t.posted);
  const of = (q: number) => Object.fromEntries(HOPS.map((hop) => [hop, quantile(hops[hop], q)])) as Phase['hopP50'];
  return { fraction, rate, busy, p50: quantile(e2e, 0.5), p99: quantile(e2e, 0.99), hopP50: of(0.5), hopP99: of(0.99) };
}

/** All cores' busy and total jiffies so far (Linux `/proc/stat`), or undefined elsewhere. */
function cpuTimes(): { busy: number; total: number } | undefined {
  try {
    // user nice system idle iowait irq softirq steal; guest and guest_nice are already counted in user and nice.
    const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
    const total = fields.reduce((a, b) => a + b, 0);
    return { busy: total - fields[3]! - (fields[4] ?? 0), total };
  } catch {
    return undefined;
  }
}

const sumOf = (hops: Phase['hopP50']) => hops.gateway + hops.projection + hops.push;

export async function runE2eBench(env: BenchEnv): Promise<BenchResult> {
  const ns = `be2e${Math.random().toString(36).slice(2, 8)}`;
  const dataset = `DS_${ns}`;
  const mongoUrl = `${env.mongoUrl.replace(/\/?$/, '/')}${ns}`;
  const ports = { gateway: await freePort(), kissflow: await freePort(), realtime: await freePort() };
  const common = {
    ...process.env,
    NODE_ENV: 'development',
    LOG_LEVEL: 'warn',
    NATS_URL: env.natsUrl,
    MONGO_URL: mongoUrl,
  };
  // BENCH_E2E_NODE_FLAGS (e.g. --trace-gc): added to every service's flags, for looking at the tail.
  const extra = process.env.BENCH_E2E_NODE_FLAGS ?? '';
  const services: RunningServiceProcess[] = [
    spawnService(
      root,
      'gateway',
      ports.gateway,
      {
        ...common,
        GATEWAY_PORT: String(ports.gateway),
        NODE_OPTIONS: '--max-old-space-size=160 --max-semi-space-size=16',
        NODE_FLAGS: extra,
      },
      process.stderr,
    ),
    spawnService(
      root,
      'kissflow-sync',
      ports.kissflow,
      { ...common, HEALTH_PORT: String(ports.kissflow), KISSFLOW_DATASETS: dataset, NODE_FLAGS: extra },
      process.stderr,
    ),
    spawnService(
      root,
      'realtime',
      ports.realtime,
      {
        ...common,
        REALTIME_PORT: String(ports.realtime),
        NODE_FLAGS: `--max-semi-space-size=2 --optimize-for-size ${extra}`,
      },
      process.stderr,
    ),
  ];
  const bus = await Bus.connect({ servers: env.natsUrl, name: 'bench-e2e' });
  try {
    await Promise.all(services.map((s) => waitReady(s, 60_000)));
    // Timings per row number (`R<n>`), high-resolution wall time; NaN until seen. `posted` is written by the
    // load generator's thread. Flat arrays, no object per webhook: the observer's heap stays small, so its
    // own garbage collection does not delay the time stamps it takes.
    const capacity = BURST + Math.ceil(5_000 * SECONDS * (1 + SWEEP.length));
    const shared = new SharedArrayBuffer(capacity * 8);
    const posted = new Float64Array(shared).fill(Number.NaN);
    const [event, notice, pushedAt] = [0, 0, 0].map(() => new Float64Array(capacity).fill(Number.NaN)) as [
      Float64Array,
      Float64Array,
      Float64Array,
    ];
    const now = () => performance.timeOrigin + performance.now();
    const decoder = new TextDecoder();
    /** The row number after `marker` in a JSON text (`R` and digits), or -1. */
    const rowAfter = (text: string, marker: string) => {
      const at = text.indexOf(marker);
      return at < 0 ? -1 : Number.parseInt(text.slice(at + marker.length, at + marker.length + 12), 10);
    };
    /** Records the first time row n was seen; whether this was it. */
    const stamp = (into: Float64Array, n: number, at: number) => {
      if (n < 0 || n >= capacity || !Number.isNaN(into[n]!)) return false;
      into[n] = at;
      return true;
    };
    const subject = `evt.kissflow.record.upserted.${encodeToken(dataset)}`;
    bus.nc.subscribe(subject, {
      callback: (_e, msg) => void stamp(event, rowAfter(decoder.decode(msg.data), '"rowId":"R'), now()),
    });
    bus.nc.subscribe(`chg.kissflow.${encodeToken(dataset)}.>`, {
      callback: (_e, msg) => void stamp(notice, rowAfter(decoder.decode(msg.data), `"key":"${dataset}:R`), now()),
    });
    await bus.nc.flush();
    let pushed = 0;
    let onPush: (() => void) | undefined;
    const token = signToken({ sub: 'bench', channels: ['kissflow.>'] }, DevSecrets.REALTIME_JWT_SECRET, 3600);
    const ws = new WebSocket(`ws://127.0.0.1:${ports.realtime}/ws?token=${token}`);
    await new Promise((resolve, reject) => {
      ws.addEventListener('open', resolve, { once: true });
      ws.addEventListener('error', reject, { once: true });
    });
    let subscribed!: () => void;
    const ready = new Promise<void>((resolve) => (subscribed = resolve));
    ws.addEventListener('message', (m) => {
      const at = now();
      const text = String(m.data);
      if (!text.startsWith('{"op":"update"')) {
        if (text.includes('"op":"snapshot"')) subscribed();
        return;
      }
      if (stamp(pushedAt, rowAfter(text, `"_id":"${dataset}:R`), at)) {
        pushed++;
        onPush?.();
      }
    });
    ws.send(JSON.stringify({ op: 'subscribe', channel: `kissflow.${dataset}` }));
    await ready;

    const loader = new Worker(new URL('./e2e-load.js', import.meta.url), {
      workerData: { gatewayUrl: `http://127.0.0.1:${ports.gateway}`, dataset, posted: shared } satisfies LoadSetup,
    });
    const load = (command: LoadCommand) =>
      new Promise<number>((resolve, reject) => {
        loader.once('message', (reply: LoadReply) =>
          reply.ok ? resolve(reply.posted) : reject(new Error(`e2e bench: ${reply.error}`)),
        );
        loader.once('error', reject);
        loader.postMessage(command);
      });
    const until = (count: number, timeoutMs: number) =>
      new Promise<void>((resolve, reject) => {
        if (pushed >= count) return resolve();
        const timer = setTimeout(
          () => reject(new Error(`e2e bench: ${pushed} of ${count} documents pushed in ${timeoutMs} ms`)),
          timeoutMs,
        );
        onPush = () => {
          if (pushed >= count) {
            clearTimeout(timer);
            resolve();
          }
        };
      });

    /** Posts at `fraction` of the sustained rate for SECONDS from row `from`; the phase's figures and its rows. */
    const paced = async (from: number, sustained: number, fraction: number) => {
      const rate = sustained * fraction;
      const before = cpuTimes();
      const count = await load({ kind: 'paced', from, rate, seconds: SECONDS });
      const after = cpuTimes();
      const busy = before && after ? (after.busy - before.busy) / (after.total - before.total) : Number.NaN;
      await until(from + count, 60_000);
      const complete: Timing[] = [];
      for (let n = from; n < from + count; n++) {
        const t = { posted: posted[n]!, event: event[n]!, notice: notice[n]!, pushed: pushedAt[n]! };
        if (![t.posted, t.event, t.notice, t.pushed].some(Number.isNaN)) complete.push(t);
      }
      if (complete.length < count * 0.99)
        throw new Error(`e2e bench: only ${complete.length} of ${count} webhooks timed at every hop`);
      const phase = summarize(complete, fraction, rate, busy);
      env.log(
        `at ${Math.round(rate)}/s (${fraction} of it) for ${SECONDS} s, cores ${Math.round(busy * 100)} % busy: ${complete.length} of ${count} timed; e2e p50 ${phase.p50.toFixed(1)} ms, p99 ${phase.p99.toFixed(1)} ms (3 × Σ hop p50s: ${(3 * sumOf(phase.hopP50)).toFixed(1)} ms); hop p50s: ${HOPS.map((h) => `${h} ${phase.hopP50[h].toFixed(1)}`).join(', ')} ms (p99s ${HOPS.map((h) => phase.hopP99[h].toFixed(1)).join(' / ')})`,
      );
      return { phase, complete, next: from + count };
    };

    const drive = async () => {
      try {
        // 1. Sustained rate: a burst, 32 at a time; completions (WebSocket frames) per second.
        const burstStart = performance.now();
        await load({ kind: 'burst', from: 0, count: BURST, concurrency: 32 });
        await until(BURST, 120_000);
        const sustained = BURST / ((performance.now() - burstStart) / 1000);
        env.log(
          `sustained: ${BURST} webhooks to WebSocket in ${((performance.now() - burstStart) / 1000).toFixed(1)} s = ${Math.round(sustained)}/s`,
        );
        // 2. Latency at half that rate, paced (by the load generator's thread); then the lower rates.
        const target = await paced(BURST, sustained, FRACTION);
        const sweep: Phase[] = [];
        let from = target.next;
        for (const fraction of SWEEP) {
          const run = await paced(from, sustained, fraction);
          sweep.push(run.phase);
          from = run.next;
        }
        return { sustained, target, sweep };
      } finally {
        ws.close();
        await loader.terminate();
      }
    };
    const { sustained, target, sweep } = await drive();
    // For looking at the tail: every timed webhook of the target's phase, in posting order, milliseconds since the first.
    if (process.env.BENCH_E2E_TIMINGS) {
      const t0 = target.complete[0]?.posted ?? 0;
      writeFileSync(
        process.env.BENCH_E2E_TIMINGS,
        target.complete
          .map((t) => `${[t.posted, t.event, t.notice, t.pushed].map((v) => (v - t0).toFixed(3)).join(' ')}\n`)
          .join(''),
      );
    }
    const { p50, p99, hopP50, rate, busy } = target.phase;
    const sumP50 = sumOf(hopP50);
    const hopMetric = (name: (typeof HOPS)[number]) =>
      metric({
        metric: `e2e_hop_${name}_p50`,
        value: hopP50[name],
        unit: 'ms',
        baseline: `e2e p50 (${p50.toFixed(1)} ms): this hop's share`,
        baselineValue: p50,
        lowerIsBetter: true,
        target: 0,
        targetOn: 'value',
      });
    const sweepMetric = (phase: Phase) =>
      metric({
        metric: `e2e_latency_p99_at_${String(Math.round(phase.fraction * 1000) / 10).replace('.', '_')}pct`,
        value: phase.p99,
        unit: 'ms',
        baseline: `3 × the sum of the hops' p50s at ${Math.round(phase.rate)} webhooks/s (${phase.fraction} of the sustained rate, cores ${Math.round(phase.busy * 100)} % busy; for information: how the tail grows with the load)`,
        baselineValue: 3 * sumOf(phase.hopP50),
        lowerIsBetter: true,
        target: 0,
        targetOn: 'value',
      });
    return {
      name: 'e2e',
      at: new Date().toISOString(),
      machine: machine(),
      metrics: [
        metric({
          metric: 'e2e_sustained_rate',
          value: sustained,
          unit: 'webhooks/s',
          baseline: `a burst of ${BURST} signed webhooks, 32 at a time, until every WebSocket frame arrived (the rate the latency runs at half of)`,
          baselineValue: sustained,
          target: 0,
          targetOn: 'value',
        }),
        metric({
          metric: 'e2e_latency_p99',
          value: p99,
          unit: 'ms',
          baseline: `3 × the sum of the hops' p50s (${HOPS.map((h) => `${h} ${hopP50[h].toFixed(1)}`).join(' + ')} ms), at ${Math.round(rate)} webhooks/s (${FRACTION} of the sustained rate), cores ${Math.round(busy * 100)} % busy`,
          baselineValue: 3 * sumP50,
          lowerIsBetter: true,
          target: 1,
        }),
        metric({
          metric: 'e2e_latency_p50',
          value: p50,
          unit: 'ms',
          baseline: "the sum of the hops' p50s",
          baselineValue: sumP50,
          lowerIsBetter: true,
          target: 0,
          targetOn: 'value',
        }),
        ...HOPS.map(hopMetric),
        ...sweep.map(sweepMetric),
      ],
    };
  } finally {
    await bus.close();
    for (const s of services) await stopService(s).catch(() => undefined);
  }
}
