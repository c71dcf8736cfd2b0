import { readdirSync, readFileSync } from 'node:fs';
import { MongoClient } from 'mongodb';
import { DevSecrets, signToken } from '@puente/runtime';
import { sampleBody, signSample } from '@puente/gateway';
import { deliver, FAULT_SECRETS, Stack } from './faults.js';

/**
 * The soak: steady mixed load (Kissflow rows, Inbox Hub messages, WhatsApp Cloud messages, and WebSocket
 * clients subscribed to what changes) through gateway, projectors and realtime for N minutes, sampling
 * every service's resident memory and open file descriptors. After a warm-up (see warmupMinutes), a least-squares
 * slope per service says whether it grows; the soak fails on growth beyond the bounds, or when a
 * delivery is lost.
 */
export interface SoakSample {
  at: number;
  rss: Record<string, number>;
  fds: Record<string, number>;
}

export interface SoakResult {
  minutes: number;
  sent: number;
  acknowledged: number;
  inReadModel: number;
  wsUpdates: number;
  /**
   * Per service, after the warm-up: the RSS troughs (lowest sample) of the first and the second half,
   * their growth per minute, and the open descriptors' slope. Troughs, because between major GCs the
   * heap climbs and falls whether or not anything leaks; a leak raises the floor.
   */
  growth: Record<string, { rssMbPerMin: number; fdsPerMin: number; rssMb: [number, number]; fds: [number, number] }>;
  failures: string[];
}

/** RSS growth a service may show after warm-up (a heap settling) before the soak calls it a leak. */
const MAX_RSS_MB_PER_MIN = 2;
/** Below this the trough moved by noise (page cache, allocator), whatever the rate. */
const MIN_RSS_GROWTH_MB = 16;
const MAX_FDS_PER_MIN = 2;
/**
 * Below this many more descriptors than at the end of warm-up, a slope is a pool opening a socket or two
 * on demand (the MongoDB driver, HTTP keep-alive), not a leak: in a short soak two of them make 2/min.
 */
const MIN_FD_GROWTH = 8;
const RATE_PER_SECOND = 40;
/**
 * The warm-up is the run's first third, but at least this long where the run allows it (half of a
 * shorter run): at 40 webhooks/s `whatsapp` takes about 2.5 min to fill its caches and settle its heap
 * (measured: 185 → 253 MB, then level for the rest of a 10-minute run).
 */
const MIN_WARMUP_MINUTES = 3;

/** Minutes of a run that count as warm-up. */
const warmupMinutes = (minutes: number): number => Math.max(minutes / 3, Math.min(MIN_WARMUP_MINUTES, minutes / 2));

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('VmRSS:'));
  return Number(line?.split(/\s+/)[1] ?? 0) / 1024;
}

const fdCount = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

/** Least-squares slope of y over x. */
function slope(points: [number, number][]): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  const num = points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0);
  const den = points.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  return den === 0 ? 0 : num / den;
}

export async function runSoak(options: {
  minutes: number;
  postgresUrl: string;
  log?: (line: string) => void;
}): Promise<SoakResult> {
  const log = options.log ?? (() => undefined);
  // The projectors' caches are bounded low so they fill within the warm-up; a growing cache is not a leak.
  const stack = await Stack.start(options.postgresUrl, log, { realtime: true, env: { PROJECTION_CACHE_SIZE: '2000' } });
  const failures: string[] = [];
  const samples: SoakSample[] = [];
  const dataset = `DS_Soak_${Date.now().toString(36)}`;
  const session = `soak-${Date.now().toString(36)}`;
  let sent = 0;
  let acknowledged = 0;
  let wsUpdates = 0;
  const acked: { kind: 'row' | 'message'; key: string; version: number }[] = [];
  try {
    const services = () => ({
      gateway: stack.gateway,
      whatsapp: stack.whatsapp,
      'kissflow-sync': stack.kissflow,
      realtime: stack.realtime!,
    });
    // WebSocket clients: each subscribed to the dataset's channel, receiving every change.
    const token = signToken(
      { sub: 'soak', channels: ['kissflow.>', 'whatsapp.>'] },
      DevSecrets.REALTIME_JWT_SECRET,
      24 * 3600,
    );
    const sockets = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const ws = new WebSocket(`${stack.realtimeUrl}?token=${token}`);
        await new Promise((resolve, reject) => {
          ws.addEventListener('open', resolve, { once: true });
          ws.addEventListener('error', reject, { once: true });
        });
        ws.addEventListener('message', (m) => {
          if (String(m.data).includes('"op":"update"')) wsUpdates++;
        });
        ws.send(JSON.stringify({ op: 'subscribe', channel: `kissflow.${dataset}` }));
        return ws;
      }),
    );
    const started = Date.now();
    const end = started + options.minutes * 60_000;
    const sampler = setInterval(() => {
      const at = (Date.now() - started) / 60_000;
      const entries = Object.entries(services()).map(([name, s]) => [name, s.child.pid!] as const);
      samples.push({
        at,
        rss: Object.fromEntries(entries.map(([n, pid]) => [n, rssMb(pid)])),
        fds: Object.fromEntries(entries.map(([n, pid]) => [n, fdCount(pid)])),
      });
    }, 5_000);
    const versions = new Map<string, number>();
    const inflight = new Set<Promise<void>>();
    let i = 0;
    let lastLog = Date.now();
    while (Date.now() < end) {
      const tick = Date.now();
      for (let k = 0; k < RATE_PER_SECOND / 10; k++, i++) {
        let request: { path: string; headers: Record<string, string>; body: string };
        let record: { kind: 'row' | 'message'; key: string; version: number };
        if (i % 3 === 0) {
          const row = `R${i % 200}`;
          const version = (versions.get(row) ?? 0) + 1;
          versions.set(row, version);
          request = signSample(
            'kissflow',
            {
              _id: row,
              Name: `fila ${row}`,
              version,
              _modified_at: new Date(Date.UTC(2026, 0, 1) + version * 1000).toISOString(),
            },
            FAULT_SECRETS,
            { params: { dataset } },
          );
          record = { kind: 'row', key: row, version };
        } else {
          const body = sampleBody('inboxhub', i) as { sessionId: string; data: { messageId: string } };
          body.sessionId = session;
          body.data.messageId = `SOAK${i}X${started.toString(36).toUpperCase()}`;
          request = signSample('inboxhub', body, FAULT_SECRETS);
          record = { kind: 'message', key: body.data.messageId, version: 0 };
        }
        sent++;
        const p = deliver(stack.gatewayUrl, request, () => undefined).then((ok) => {
          if (ok) {
            acknowledged++;
            acked.push(record);
          }
        });
        inflight.add(p);
        void p.finally(() => inflight.delete(p));
      }
      if (Date.now() - lastLog > 30_000) {
        lastLog = Date.now();
        const last = samples.at(-1);
        log(
          `  ${((Date.now() - started) / 60_000).toFixed(1)} min: ${sent} sent, ${acknowledged} acknowledged, ${wsUpdates} WebSocket updates; RSS MB ${
            last
              ? Object.entries(last.rss)
                  .map(([n, v]) => `${n} ${v.toFixed(0)}`)
                  .join(', ')
              : '…'
          }`,
        );
      }
      await sleep(Math.max(0, 100 - (Date.now() - tick)));
    }
    await Promise.all(inflight);
    clearInterval(sampler);
    for (const ws of sockets) ws.close();

    // Everything acknowledged is in the read model.
    const mongo = await MongoClient.connect(stack.mongoUrl);
    let inReadModel = 0;
    try {
      const db = mongo.db();
      const deadline = Date.now() + 60_000;
      for (;;) {
        const messages = new Set(
          (
            await db
              .collection('wa_messages')
              .find({ session }, { projection: { messageId: 1 } })
              .toArray()
          ).map((d) => d.messageId as string),
        );
        const rows = new Map(
          (await db.collection('kissflow_records').find({ dataset }).toArray()).map((r) => [
            r.rowId as string,
            (r.fields as { version?: number }).version ?? 0,
          ]),
        );
        inReadModel = acked.filter((a) =>
          a.kind === 'message' ? messages.has(a.key) : (rows.get(a.key) ?? 0) >= a.version,
        ).length;
        if (inReadModel === acked.length || Date.now() > deadline) break;
        await sleep(500);
      }
    } finally {
      await mongo.close();
    }
    if (inReadModel < acked.length)
      failures.push(`${acked.length - inReadModel} acknowledged deliveries are not in the read model`);
    if (acknowledged < sent) failures.push(`${sent - acknowledged} deliveries were never acknowledged`);

    const growth: SoakResult['growth'] = {};
    const steady = samples.filter((s) => s.at >= warmupMinutes(options.minutes));
    const half = Math.floor(steady.length / 2);
    for (const name of Object.keys(samples[0]?.rss ?? {})) {
      const fds = steady.map((s) => [s.at, s.fds[name]!] as [number, number]);
      const [first, second] = [steady.slice(0, half), steady.slice(half)];
      const trough = (part: SoakSample[]) => Math.min(...part.map((s) => s.rss[name]!));
      const mid = (part: SoakSample[]) => (part[0]!.at + part.at(-1)!.at) / 2;
      const [t1, t2] = [trough(first), trough(second)];
      const rate = (t2 - t1) / Math.max(mid(second) - mid(first), 1 / 60);
      growth[name] = {
        rssMbPerMin: rate,
        fdsPerMin: slope(fds),
        rssMb: [t1, t2],
        fds: [fds[0]?.[1] ?? 0, fds.at(-1)?.[1] ?? 0],
      };
      if (rate > MAX_RSS_MB_PER_MIN && t2 - t1 > MIN_RSS_GROWTH_MB)
        failures.push(
          `${name}: the RSS floor rose ${(t2 - t1).toFixed(0)} MB, ${rate.toFixed(2)} MB/min after warm-up (bound ${MAX_RSS_MB_PER_MIN})`,
        );
      const [fdsFrom, fdsTo] = growth[name].fds;
      if (growth[name].fdsPerMin > MAX_FDS_PER_MIN && fdsTo - fdsFrom >= MIN_FD_GROWTH)
        failures.push(
          `${name}: open descriptors grew from ${fdsFrom} to ${fdsTo}, ${growth[name].fdsPerMin.toFixed(2)}/min after warm-up (bound ${MAX_FDS_PER_MIN})`,
        );
    }
    return { minutes: options.minutes, sent, acknowledged, inReadModel, wsUpdates, growth, failures };
  } finally {
    await stack.stop();
  }
}

export function soakReport(result: SoakResult): string {
  const lines = [
    `${result.minutes} min at ${RATE_PER_SECOND} webhooks/s: ${result.sent} sent, ${result.acknowledged} acknowledged, ${result.inReadModel} in the read model; ${result.wsUpdates} WebSocket updates to 20 clients`,
    '| service | RSS floor, first → second half after warm-up (MB) | floor growth (MB/min) | open fds | fd slope (/min) |',
    '|---|---|---|---|---|',
    ...Object.entries(result.growth).map(
      ([name, g]) =>
        `| ${name} | ${g.rssMb[0].toFixed(0)} → ${g.rssMb[1].toFixed(0)} | ${g.rssMbPerMin.toFixed(2)} | ${g.fds[0]} → ${g.fds[1]} | ${g.fdsPerMin.toFixed(2)} |`,
    ),
  ];
  return lines.join('\n');
}
