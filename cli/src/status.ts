import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { type Bus } from '@puente/bus';
import { StreamNames } from '@puente/contracts';
import { providers, type AnyProvider } from '@puente/gateway';
import { BACKFILL_BUCKET, type BackfillState } from '@puente/kissflow-sync';
import { Buckets as WhatsAppBuckets, type SyncState } from '@puente/whatsapp';
import { SERVICES } from '@puente/runtime';
import { connectBus } from './common.js';

interface ServiceHealth {
  name: string;
  url: string;
  state: 'ready' | 'unready' | 'down';
  detail: string;
}

/** Where each service listens: `.data/services.json` (written by `npm start`), else its port variable, else the default. */
function servicePorts(env: NodeJS.ProcessEnv): Map<string, number> {
  const file = join(resolve(env.PUENTE_ROOT ?? process.cwd()), '.data', 'services.json');
  const written = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, { port: number }>) : {};
  return new Map(
    SERVICES.map((s) => {
      const variable =
        s.portVariable === 'HEALTH_PORT' ? `${s.name.toUpperCase().replace('-', '_')}_HEALTH_PORT` : s.portVariable;
      return [s.name, written[s.name]?.port ?? Number(env[variable] ?? s.port)];
    }),
  );
}

async function health(name: string, port: number): Promise<ServiceHealth> {
  const url = `http://127.0.0.1:${port}/readyz`;
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    const body = (await response.json().catch(() => ({}))) as { checks?: Record<string, string> };
    const checks = Object.entries(body.checks ?? {})
      .map(([check, value]) => `${check} ${value}`)
      .join(', ');
    return { name, url, state: response.ok ? 'ready' : 'unready', detail: checks };
  } catch (error) {
    return {
      name,
      url,
      state: 'down',
      detail: (error as Error).name === 'TimeoutError' ? 'no answer in 2 s' : 'not listening',
    };
  }
}

/** Replication slots of the ERP database and how much WAL each holds back. */
async function cdcSlots(env: NodeJS.ProcessEnv): Promise<string[]> {
  const url = env.GLYMS_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/glyms';
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  try {
    await client.connect();
    const { rows } = await client.query<{ slot_name: string; active: boolean; lag: string | null }>(
      'SELECT slot_name, active, pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint::text AS lag FROM pg_replication_slots',
    );
    if (rows.length === 0) return ['no replication slot (no CDC relay has run against this database)'];
    return rows.map(
      (r) =>
        `${r.slot_name}: ${r.active ? 'active' : 'inactive'}, ${r.lag === null ? 'lag unknown' : `${Math.round(Number(r.lag) / 1024)} KiB behind`}`,
    );
  } catch (error) {
    return [`unknown (${url.replace(/:[^:@/]*@/, ':***@')}: ${(error as Error).message.split('\n')[0]})`];
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Every value of a KV bucket, listed from its stream (nats.js's key iterator can stop early). */
async function kvValues<T>(bus: Bus, bucket: string, prefix: string): Promise<T[]> {
  try {
    const info = await bus.jsm.streams.info(`KV_${bucket}`, { subjects_filter: `$KV.${bucket}.${prefix}>` });
    const kv = await bus.js.views.kv(bucket);
    const out: T[] = [];
    for (const subject of Object.keys(info.state.subjects ?? {})) {
      const entry = await kv.get(subject.slice(`$KV.${bucket}.`.length));
      if (entry && entry.length > 0) out.push(JSON.parse(new TextDecoder().decode(entry.value)) as T);
    }
    return out;
  } catch {
    return [];
  }
}

/**
 * `puente status`: one screen with every service's readiness, each durable consumer's lag, the DLQ
 * depth per consumer, the ERP's replication slots, and the last sync and delivery per source. Exit 1
 * when a service is not ready or dead letters wait.
 */
export async function status(
  env: NodeJS.ProcessEnv,
  out: (line: string) => void,
  list: readonly AnyProvider[] = providers,
): Promise<number> {
  let code = 0;
  out('services');
  const ports = servicePorts(env);
  for (const s of await Promise.all([...ports].map(([name, port]) => health(name, port)))) {
    if (s.state !== 'ready') code = 1;
    out(`  ${s.name.padEnd(14)} ${s.state.padEnd(8)} ${s.url}${s.detail ? `  (${s.detail})` : ''}`);
  }
  let bus: Bus;
  try {
    bus = await connectBus(env);
  } catch (error) {
    out(`NATS: unreachable (${(error as Error).message}); nothing more to show`);
    return 1;
  }
  try {
    out('consumers (pending = not yet delivered, in flight = delivered, not acknowledged)');
    for (const stream of [StreamNames.EVENTS, StreamNames.COMMANDS]) {
      for await (const c of await bus.jsm.consumers.list(stream)) {
        if (!c.config.durable_name) continue;
        const last = c.delivered.last_active
          ? `last delivery ${new Date(c.delivered.last_active).toISOString()}`
          : 'nothing delivered yet';
        out(
          `  ${stream.padEnd(8)} ${c.name.padEnd(36)} pending ${String(c.num_pending).padStart(7)}  in flight ${String(c.num_ack_pending).padStart(5)}  redelivered ${String(c.num_redelivered).padStart(4)}  ${last}`,
        );
      }
    }
    const dlq = await bus.jsm.streams.info(StreamNames.DLQ, { subjects_filter: 'dlq.>' });
    const byConsumer = new Map<string, number>();
    for (const [subject, count] of Object.entries(dlq.state.subjects ?? {}))
      byConsumer.set(subject.split('.')[1]!, (byConsumer.get(subject.split('.')[1]!) ?? 0) + count);
    const total = [...byConsumer.values()].reduce((a, b) => a + b, 0);
    if (total > 0) code = 1;
    out(
      `dead letters: ${total}${total > 0 ? ` (${[...byConsumer].map(([c, n]) => `${c} ${n}`).join(', ')}; npx puente dlq list)` : ''}`,
    );
    out('CDC');
    for (const line of await cdcSlots(env)) out(`  ${line}`);
    out('last sync and delivery per source');
    for (const { name: provider } of list) {
      const message = await bus.jsm.streams
        .getMessage(StreamNames.WEBHOOKS_RAW, { last_by_subj: `raw.${provider}` })
        .catch(() => undefined);
      out(`  ${provider.padEnd(14)} last webhook ${message ? message.time.toISOString() : 'none retained'}`);
    }
    for (const run of await kvValues<BackfillState>(bus, BACKFILL_BUCKET, 'run.')) {
      out(
        `  kissflow ${run.dataset}${run.view ? ` (view ${run.view})` : ''}: ${run.reconcile ? 'reconciliation' : 'backfill'} ${run.phase} ${run.finishedAt ?? new Date(run.heartbeatAt).toISOString()}, ${run.counts.rows} rows${run.reconcile ? `, ${run.counts.deleted} deleted` : ''}${run.error ? ` (${run.error})` : ''}`,
      );
    }
    for (const sync of await kvValues<SyncState>(bus, WhatsAppBuckets.sync, 'sync.')) {
      out(
        `  whatsapp ${sync.session}: full sync ${sync.phase} ${new Date(sync.heartbeatAt).toISOString()}, ${sync.counts.contacts} contacts, ${sync.counts.chats} chats, ${sync.counts.messages} messages${sync.error ? ` (${sync.error})` : ''}`,
      );
    }
  } finally {
    await bus.close();
  }
  return code;
}
