import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Bus } from '@puente/bus';
import { encodeToken } from '@puente/contracts';
import { sampleSecrets, signSample } from '@puente/gateway/samples';
import { DevSecrets, signToken } from '@puente/runtime';
import { freePort, spawnService, stopService, waitReady, type RunningServiceProcess } from '@puente/stack';
import type { BenchEnv } from './bus.js';
import { machine, metric, percentile, type BenchResult } from './result.js';

/**
 * `npm run bench -- e2e`: a signed Kissflow webhook posted to the gateway until a WebSocket client of
 * the realtime service receives the changed document, through gateway, NATS JetStream, kissflow-sync and
 * MongoDB, each service in its own process as deployed. First the sustained rate the whole stack
 * reaches (a burst, completions per second), then latency at half of it, with a breakdown per hop taken
 * in this process on core NATS subscriptions: gateway (post → event on `EVENTS`), projection (event →
 * change notice: consumer delivery, MongoDB write, notice), push (notice → WebSocket frame).
 * Target: e2e p99 within 3× the sum of the hops' p50s.
 */
const root = fileURLToPath(new URL('../../', import.meta.url));
/** The services run with NODE_ENV=development and no secrets set: the development values. */
const SECRETS = sampleSecrets((name) => DevSecrets[name]);
const BURST = Number(process.env.BENCH_E2E_BURST ?? 3_000);
const SECONDS = Number(process.env.BENCH_E2E_SECONDS ?? 15);

const quantile = (values: number[], q: number) => percentile([...values].sort((a, b) => a - b), q * 100);

interface Timing { posted: number; event?: number; notice?: number; pushed?: number }

export async function runE2eBench(env: BenchEnv): Promise<BenchResult> {
  const ns = `be2e${Math.random().toString(36).slice(2, 8)}`;
  const dataset = `DS_${ns}`;
  const mongoUrl = `${env.mongoUrl.replace(/\/?$/, '/')}${ns}`;
  const ports = { gateway: await freePort(), kissflow: await freePort(), realtime: await freePort() };
  const common = { ...process.env, NODE_ENV: 'development', LOG_LEVEL: 'warn', NATS_URL: env.natsUrl, MONGO_URL: mongoUrl };
  const services: RunningServiceProcess[] = [
    spawnService(root, 'gateway', ports.gateway, { ...common, GATEWAY_PORT: String(ports.gateway), NODE_OPTIONS: '--max-old-space-size=160 --max-semi-space-size=16' }, process.stderr),
    spawnService(root, 'kissflow-sync', ports.kissflow, { ...common, HEALTH_PORT: String(ports.kissflow), KISSFLOW_DATASETS: dataset }, process.stderr),
    spawnService(root, 'realtime', ports.realtime, { ...common, REALTIME_PORT: String(ports.realtime), NODE_FLAGS: '--max-semi-space-size=2 --optimize-for-size' }, process.stderr),
  ];
  const bus = await Bus.connect({ servers: env.natsUrl, name: 'bench-e2e' });
  try {
    await Promise.all(services.map((s) => waitReady(s, 60_000)));
    const timings = new Map<string, Timing>();
    const rowOf = (key: string) => key.slice(dataset.length + 1);
    const subject = `evt.kissflow.record.upserted.${encodeToken(dataset)}`;
    bus.nc.subscribe(subject, { callback: (_e, msg) => {
      const at = performance.now();
      const row = (JSON.parse(new TextDecoder().decode(msg.data)) as { data: { rowId: string } }).data.rowId;
      const t = timings.get(row);
      if (t && t.event === undefined) t.event = at;
    } });
    bus.nc.subscribe(`chg.kissflow.${encodeToken(dataset)}.>`, { callback: (_e, msg) => {
      const at = performance.now();
      const t = timings.get(rowOf((JSON.parse(new TextDecoder().decode(msg.data)) as { key: string }).key));
      if (t && t.notice === undefined) t.notice = at;
    } });
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
      const at = performance.now();
      const frame = JSON.parse(String(m.data)) as { op: string; doc?: { _id: string } };
      if (frame.op === 'snapshot') subscribed();
      if (frame.op !== 'update' || !frame.doc) return;
      const t = timings.get(rowOf(frame.doc._id));
      if (t && t.pushed === undefined) {
        t.pushed = at;
        pushed++;
        onPush?.();
      }
    });
    ws.send(JSON.stringify({ op: 'subscribe', channel: `kissflow.${dataset}` }));
    await ready;

    let n = 0;
    const post = async () => {
      const row = `R${n++}`;
      const sample = signSample('kissflow', { _id: row, Name: `Documento ${row}`, Monto: n, _modified_at: new Date().toISOString() }, SECRETS, { dataset });
      timings.set(row, { posted: performance.now() });
      const res = await fetch(`http://127.0.0.1:${ports.gateway}${sample.path}`, { method: 'POST', headers: sample.headers, body: sample.body });
      await res.arrayBuffer();
      if (!res.ok) throw new Error(`gateway answered ${res.status}`);
    };
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

    // 1. Sustained rate: a burst, 32 at a time; completions (WebSocket frames) per second.
    const burstStart = performance.now();
    let next = 0;
    await Promise.all(Array.from({ length: 32 }, async () => {
      while (next++ < BURST) await post();
    }));
    await until(BURST, 120_000);
    const sustained = BURST / ((performance.now() - burstStart) / 1000);
    env.log(`sustained: ${BURST} webhooks to WebSocket in ${((performance.now() - burstStart) / 1000).toFixed(1)} s = ${Math.round(sustained)}/s`);

    // 2. Latency at half that rate, paced.
    const rate = sustained * Number(process.env.BENCH_E2E_FRACTION ?? 0.5);
    const measured: string[] = [];
    const start = performance.now();
    const inflight: Promise<void>[] = [];
    for (let i = 0; performance.now() - start < SECONDS * 1000; i++) {
      const due = start + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      measured.push(`R${n}`);
      inflight.push(post());
    }
    await Promise.all(inflight);
    await until(BURST + measured.length, 60_000);
    ws.close();

    const complete = measured.map((row) => timings.get(row)!).filter((t) => t.event !== undefined && t.notice !== undefined && t.pushed !== undefined) as Required<Timing>[];
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
    env.log(`at ${Math.round(rate)}/s for ${SECONDS} s: ${complete.length} of ${measured.length} timed; e2e p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms; hop p50s: gateway ${p50s.gateway.toFixed(1)}, projection ${p50s.projection.toFixed(1)}, push ${p50s.push.toFixed(1)} ms (p99s ${Object.values(hops).map((v) => quantile(v, 0.99).toFixed(1)).join(' / ')})`);
    if (complete.length < measured.length * 0.99) throw new Error(`e2e bench: only ${complete.length} of ${measured.length} webhooks timed at every hop`);
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
