import { writeFileSync } from 'node:fs';
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

const quantile = (values: number[], q: number) => percentile([...values].sort((a, b) => a - b), q * 100);

interface Timing { posted: number; event: number; notice: number; pushed: number }

export async function runE2eBench(env: BenchEnv): Promise<BenchResult> {
  const ns = `be2e${Math.random().toString(36).slice(2, 8)}`;
  const dataset = `DS_${ns}`;
  const mongoUrl = `${env.mongoUrl.replace(/\/?$/, '/')}${ns}`;
  const ports = { gateway: await freePort(), kissflow: await freePort(), realtime: await freePort() };
  const common = { ...process.env, NODE_ENV: 'development', LOG_LEVEL: 'warn', NATS_URL: env.natsUrl, MONGO_URL: mongoUrl };
  // BENCH_E2E_NODE_FLAGS (e.g. --trace-gc): added to every service's flags, for looking at the tail.
  const extra = process.env.BENCH_E2E_NODE_FLAGS ?? '';
  const services: RunningServiceProcess[] = [
    spawnService(root, 'gateway', ports.gateway, { ...common, GATEWAY_PORT: String(ports.gateway), NODE_OPTIONS: '--max-old-space-size=160 --max-semi-space-size=16', NODE_FLAGS: extra }, process.stderr),
    spawnService(root, 'kissflow-sync', ports.kissflow, { ...common, HEALTH_PORT: String(ports.kissflow), KISSFLOW_DATASETS: dataset, NODE_FLAGS: extra }, process.stderr),
    spawnService(root, 'realtime', ports.realtime, { ...common, REALTIME_PORT: String(ports.realtime), NODE_FLAGS: `--max-semi-space-size=2 --optimize-for-size ${extra}` }, process.stderr),
  ];
  const bus = await Bus.connect({ servers: env.natsUrl, name: 'bench-e2e' });
  try {
    await Promise.all(services.map((s) => waitReady(s, 60_000)));
    // Timings per row number (`R<n>`), high-resolution wall time; NaN until seen. `posted` is written by the
    // load generator's thread. Flat arrays, no object per webhook: the observer's heap stays small, so its
    // own garbage collection does not delay the time stamps it takes.
    const capacity = BURST + Math.ceil(5_000 * SECONDS);
    const shared = new SharedArrayBuffer(capacity * 8);
    const posted = new Float64Array(shared).fill(Number.NaN);
    const [event, notice, pushedAt] = [0, 0, 0].map(() => new Float64Array(capacity).fill(Number.NaN)) as [Float64Array, Float64Array, Float64Array];
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
    bus.nc.subscribe(subject, { callback: (_e, msg) => void stamp(event, rowAfter(decoder.decode(msg.data), '"rowId":"R'), now()) });
    bus.nc.subscribe(`chg.kissflow.${encodeToken(dataset)}.>`, { callback: (_e, msg) => void stamp(notice, rowAfter(decoder.decode(msg.data), `"key":"${dataset}:R`), now()) });
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

    const loader = new Worker(new URL('./e2e-load.js', import.meta.url), { workerData: { gatewayUrl: `http://127.0.0.1:${ports.gateway}`, dataset, posted: shared } satisfies LoadSetup });
    const load = (command: LoadCommand) => new Promise<number>((resolve, reject) => {
      loader.once('message', (reply: LoadReply) => (reply.ok ? resolve(reply.posted) : reject(new Error(`e2e bench: ${reply.error}`))));
      loader.once('error', reject);
      loader.postMessage(command);
    });
    const until = (count: number, timeoutMs: number) => new Promise<void>((resolve, reject) => {
      if (pushed >= count) return resolve();
      const timer = setTimeout(() => reject(new Error(`e2e bench: ${pushed} of ${count} documents pushed in ${timeoutMs} ms`)), timeoutMs);
      onPush = () => {
        if (pushed >= count) {
          clearTimeout(timer);
          resolve();
        }
      };
    });

    const drive = async () => {
      try {
        // 1. Sustained rate: a burst, 32 at a time; completions (WebSocket frames) per second.
        const burstStart = performance.now();
        await load({ kind: 'burst', from: 0, count: BURST, concurrency: 32 });
        await until(BURST, 120_000);
        const sustained = BURST / ((performance.now() - burstStart) / 1000);
        env.log(`sustained: ${BURST} webhooks to WebSocket in ${((performance.now() - burstStart) / 1000).toFixed(1)} s = ${Math.round(sustained)}/s`);
        // 2. Latency at half that rate, paced (by the load generator's thread).
        const rate = sustained * Number(process.env.BENCH_E2E_FRACTION ?? 0.5);
        const count = await load({ kind: 'paced', from: BURST, rate, seconds: SECONDS });
        await until(BURST + count, 60_000);
        return { rate, sustained, count };
      } finally {
        ws.close();
        await loader.terminate();
      }
    };
    const measured = await drive();
    const { rate, sustained } = measured;
    const complete: Timing[] = [];
    for (let n = BURST; n < BURST + measured.count; n++) {
      const t = { posted: posted[n]!, event: event[n]!, notice: notice[n]!, pushed: pushedAt[n]! };
      if (![t.posted, t.event, t.notice, t.pushed].some(Number.isNaN)) complete.push(t);
    }
    // For looking at the tail: every timed webhook, in posting order, milliseconds since the first.
    if (process.env.BENCH_E2E_TIMINGS) {
      const t0 = complete[0]?.posted ?? 0;
      writeFileSync(process.env.BENCH_E2E_TIMINGS, complete.map((t) => `${[t.posted, t.event, t.notice, t.pushed].map((v) => (v - t0).toFixed(3)).join(' ')}\n`).join(''));
    }
    const e2e = complete.map((t) => t.pushed - t.posted);
    const hops = {
      gateway: complete.map((t) => t.event - t.posted),
      projection: complete.map((t) => t.notice - t.event),
      push: complete.map((t) => t.pushed - t.notice),
    };
    const p50s = Object.fromEntries(Object.entries(hops).map(([k, v]) => [k, quantile(v, 0.5)])) as Record<keyof typeof hops, number>;
    const sumP50 = p50s.gateway + p50s.projection + p50s.push;
    const [p50, p99] = [quantile(e2e, 0.5), quantile(e2e, 0.99)];
    env.log(`at ${Math.round(rate)}/s for ${SECONDS} s: ${complete.length} of ${measured.count} timed; e2e p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms; hop p50s: gateway ${p50s.gateway.toFixed(1)}, projection ${p50s.projection.toFixed(1)}, push ${p50s.push.toFixed(1)} ms (p99s ${Object.values(hops).map((v) => quantile(v, 0.99).toFixed(1)).join(' / ')})`);
    if (complete.length < measured.count * 0.99) throw new Error(`e2e bench: only ${complete.length} of ${measured.count} webhooks timed at every hop`);
    const hopMetric = (name: keyof typeof hops) => metric({
      metric: `e2e_hop_${name}_p50`, value: p50s[name], unit: 'ms', baseline: `e2e p50 (${p50.toFixed(1)} ms): this hop's share`, baselineValue: p50, lowerIsBetter: true, target: 0, targetOn: 'value',
    });
    return {
      name: 'e2e',
      at: new Date().toISOString(),
      machine: machine(),
      metrics: [
        metric({ metric: 'e2e_sustained_rate', value: sustained, unit: 'webhooks/s', baseline: `a burst of ${BURST} signed webhooks, 32 at a time, until every WebSocket frame arrived (the rate the latency runs at half of)`, baselineValue: sustained, target: 0, targetOn: 'value' }),
        metric({ metric: 'e2e_latency_p99', value: p99, unit: 'ms', baseline: `3 × the sum of the hops' p50s (gateway ${p50s.gateway.toFixed(1)} + projection ${p50s.projection.toFixed(1)} + push ${p50s.push.toFixed(1)} ms), at ${Math.round(rate)} webhooks/s`, baselineValue: 3 * sumP50, lowerIsBetter: true, target: 1 }),
        metric({ metric: 'e2e_latency_p50', value: p50, unit: 'ms', baseline: 'the sum of the hops\' p50s', baselineValue: sumP50, lowerIsBetter: true, target: 0, targetOn: 'value' }),
        hopMetric('gateway'), hopMetric('projection'), hopMetric('push'),
      ],
    };
  } finally {
    await bus.close();
    for (const s of services) await stopService(s).catch(() => undefined);
  }
}
