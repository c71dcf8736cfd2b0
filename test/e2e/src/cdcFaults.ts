import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { Bus } from '@puente/bus';
import { StreamNames } from '@puente/contracts';
import {
  ensureDatabase,
  freePort,
  GLYMS_SCHEMA,
  spawnService,
  startPostgres,
  stopService,
  waitReady,
  type RunningServer,
  type RunningServiceProcess,
} from '@puente/stack';
import { FakeBitrix24 } from '@puente/bitrix-sync/testing';
import { readEvents } from '@puente/cdc/testing';
import { runCli } from './cli.js';
import type { FaultRow } from './faults.js';

/** Faults that strike the CDC path: the ERP's PostgreSQL under the relay, and a misbehaving Bitrix24. */
export const CDC_FAULTS = ['postgres-restart', 'bitrix-503-expired-tokens', 'bitrix-subcall-errors'] as const;
export type CdcFault = (typeof CDC_FAULTS)[number];

/** A row of the fault table (faults.ts), for a CDC fault. */
export type CdcFaultRow = FaultRow & { fault: CdcFault };

const root = fileURLToPath(new URL('../../../', import.meta.url));
const CUSTOMERS = 40;
const WORKERS = 4;
const GIVE_UP_MS = 90_000;
const SETTLE_MS = 120_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * One CDC fault: an ERP database of its own (on a PostgreSQL server of its own, so restarting it does not
 * touch the MongoDB-wire server's), customers already synced to a fake Bitrix24 (OAuth, tokens in KV),
 * then `changes` updates committed by writers that retry like an application does, while the fault
 * strikes. Checks, once settled: every committed update is in `EVENTS` once by message id, every company
 * in Bitrix24 holds its customer's last committed state, no company or phone entry exists twice, and
 * nothing reached the companies consumer's DLQ.
 */
export async function runCdcFault(
  env: { natsUrl: string; mongoUrl: string; log: (line: string) => void },
  fault: CdcFault,
  changes: number,
): Promise<CdcFaultRow> {
  const dir = mkdtempSync(join(tmpdir(), 'puente-cdc-faults-'));
  const port = await freePort();
  const startServer = () => startPostgres({ dir: join(dir, 'postgres'), port, log: env.log, durable: true });
  let server: RunningServer = await startServer();
  const databaseUrl = await ensureDatabase(server.url, 'glyms');
  const sql = async (text: string, values?: unknown[]) => {
    const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 2_000 });
    client.on('error', () => undefined);
    await client.connect();
    try {
      return (await client.query(text, values)).rows as Record<string, unknown>[];
    } finally {
      await client.end().catch(() => undefined);
    }
  };
  await sql(GLYMS_SCHEMA);
  // bitrix_links is keyed by customer id: each fault's service gets a database of its own (MONGO_URL below).
  const tag = `${fault.slice(0, 8).replace(/-/g, '')}${Date.now().toString(36)}`;
  // A customer table of this fault's own: its subjects, and so its companies consumer, are its own.
  const table = `cliente_${tag}`.toLowerCase();
  await sql(`create table public.${table} (like public.cliente including all)`);
  await sql(
    `insert into public.${table} (razon_social, telefono) select '${tag} C' || g || ' v0', '+51 1 555 ' || lpad(g::text, 4, '0') from generate_series(1, ${CUSTOMERS}) g`,
  );
  const fake = await new FakeBitrix24({ bucket: { burst: 50, drainPerSecond: 20 } }).start();
  const mappingFile = join(dir, 'companies.json');
  writeFileSync(mappingFile, JSON.stringify({ table: `public.${table}`, originatorId: tag }));
  const serviceEnv: NodeJS.ProcessEnv = {
    ...process.env,
    NODE_ENV: 'development',
    LOG_LEVEL: 'warn',
    NATS_URL: env.natsUrl,
    MONGO_URL: env.mongoUrl.replace(/\/[^/]*$/, `/cdc_${tag}`),
    GLYMS_DATABASE_URL: databaseUrl,
    ...fake.env('oauth'),
    BITRIX_TOKEN_BUCKET: `tokens_${tag}`,
    BITRIX_COMPANY_MAPPING: mappingFile,
    GLYMS_CDC_SLOT: `slot_${tag}`,
    GLYMS_CDC_PUBLICATION: `pub_${tag}`,
    GLYMS_CDC_TABLES: `public.${table}`,
    BITRIX_CATALOG_INTERVAL_MS: '0',
    BITRIX_COALESCE_MS: '100',
    BITRIX_LEASE_TTL_MS: '3000',
    OTEL_SDK_DISABLED: 'true',
  };
  const auth = await runCli(['bitrix', 'auth', '--code', fake.issueCode()], serviceEnv);
  if (auth.code !== 0) throw new Error(`bitrix auth failed: ${auth.output}`);
  const healthPort = await freePort();
  const sink = new Writable({ write: (_c, _e, done) => done() });
  const service: RunningServiceProcess = spawnService(
    root,
    'bitrix-sync',
    healthPort,
    { ...serviceEnv, HEALTH_PORT: String(healthPort) },
    process.env.FAULTS_LOG ? process.stderr : sink,
  );
  const bus = await Bus.connect({ servers: env.natsUrl, name: 'cdc-faults-check' });
  const companies = () => [...fake.companies.values()].filter((c) => c.ORIGINATOR_ID === tag);
  try {
    await waitReady(service, 60_000);
    for (const deadline = Date.now() + 60_000; companies().length < CUSTOMERS; await sleep(200))
      if (Date.now() > deadline) throw new Error('the customers never reached Bitrix24');
    // The load: each writer owns the customers id ≡ w (mod WORKERS), so each customer's updates commit in order.
    const lastAcked = new Map<number, number>();
    const acknowledged = new Set<number>();
    let struck = 0;
    let strikeEnded = 0;
    let firstAckAfter = 0;
    let strike: Promise<void> | undefined;
    let issued = 0;
    const writer = async (w: number) => {
      for (let version = w + 1; version <= changes; version += WORKERS) {
        const id = 1 + ((version - 1) % CUSTOMERS);
        if (++issued === Math.floor(changes / 3) && !strike) {
          struck = Date.now();
          env.log(`  ${fault}: striking after ${issued} changes`);
          strike = (async () => {
            if (fault === 'postgres-restart') {
              await server.process.stop();
              // The guard returns when its shell ends; the postmaster may still be shutting down (it waits for its WAL senders).
              for (
                const end = Date.now() + 60_000;
                existsSync(join(dir, 'postgres', 'pgdata', 'postmaster.pid')) && Date.now() < end;
              )
                await sleep(100);
              await sleep(2_000);
              server = await startServer();
            } else if (fault === 'bitrix-subcall-errors') {
              // Bitrix24 answers the batch 200 but fails one sub-call in it (any method: add, update, the
              // read-back, the lookup), at random, while the customers keep changing.
              for (const end = Date.now() + 10_000; Date.now() < end; await sleep(100)) {
                if (fake.injected.some((e) => e.subCall)) continue;
                fake.inject({
                  status: 500,
                  error: 'INTERNAL_SERVER_ERROR',
                  description: 'injected by the fault suite',
                  subCall: true,
                  match: () => Math.random() < 0.3,
                });
              }
            } else {
              for (const end = Date.now() + 10_000; Date.now() < end; await sleep(250)) {
                if (Math.random() < 0.5) fake.expireAccessTokens();
                else
                  fake.inject({
                    status: 503,
                    error: 'INTERNAL_SERVER_ERROR',
                    description: 'injected by the fault suite',
                    times: 1 + Math.floor(Math.random() * 3),
                  });
              }
            }
            strikeEnded = Date.now();
          })();
        }
        const started = Date.now();
        for (const giveUp = Date.now() + GIVE_UP_MS; Date.now() < giveUp; await sleep(200)) {
          try {
            await sql(`update public.${table} set razon_social = $2, telefono = $3 where id_cliente = $1`, [
              id,
              `${tag} C${id} v${version}`,
              `+51 1 600 ${String(version).padStart(4, '0')}`,
            ]);
            acknowledged.add(version);
            lastAcked.set(id, version);
            if (struck && started >= struck && !firstAckAfter) firstAckAfter = Date.now();
            break;
          } catch {
            // PostgreSQL is away: the application retries the same update.
          }
        }
      }
    };
    await Promise.all(Array.from({ length: WORKERS }, (_, w) => writer(w)));
    await strike;
    // Settle: Bitrix24 holds every customer's last committed state.
    const title = (id: number) => `${tag} C${id} v${lastAcked.get(id) ?? 0}`;
    const settled = Date.now() + SETTLE_MS;
    for (;;) {
      const byOrigin = new Map(companies().map((c) => [String(c.ORIGIN_ID), c]));
      const done = [...Array(CUSTOMERS).keys()].every((i) => byOrigin.get(String(i + 1))?.TITLE === title(i + 1));
      if (done || Date.now() > settled) break;
      await sleep(500);
    }
    const events = (await readEvents(bus, `evt.glyms.${table}.>`)).filter((e) =>
      String((e.event.data as { row?: { razon_social?: string } }).row?.razon_social ?? '').startsWith(`${tag} `),
    );
    const versionsInEvents = new Map<number, number>();
    for (const e of events) {
      const match = /v(\d+)$/.exec(String((e.event.data as { row?: { razon_social?: string } }).row?.razon_social));
      if (match) versionsInEvents.set(Number(match[1]), (versionsInEvents.get(Number(match[1])) ?? 0) + 1);
    }
    const inEvents = [...acknowledged].filter((v) => versionsInEvents.has(v)).length;
    const byOrigin = new Map<string, number>();
    for (const c of companies()) byOrigin.set(String(c.ORIGIN_ID), (byOrigin.get(String(c.ORIGIN_ID)) ?? 0) + 1);
    const duplicateCompanies = [...byOrigin.values()].reduce((sum, n) => sum + n - 1, 0);
    const duplicateEntries = companies().reduce(
      (sum, c) => sum + Math.max(0, ((c.PHONE as unknown[] | undefined)?.length ?? 0) - 1),
      0,
    );
    const duplicateMsgIds = events.length - new Set(events.map((e) => e.msgId)).size;
    const stale = [...Array(CUSTOMERS).keys()].filter(
      (i) => companies().find((c) => String(c.ORIGIN_ID) === String(i + 1))?.TITLE !== title(i + 1),
    );
    const dlq = await bus.jsm.streams.info(StreamNames.DLQ, {
      subjects_filter: `dlq.bitrix-companies-public_${table}.>`,
    });
    const deadLetters = Object.values(dlq.state.subjects ?? {}).reduce((a, b) => a + b, 0);
    const lost = acknowledged.size - inEvents + stale.length;
    return {
      fault,
      sent: changes,
      acknowledged: acknowledged.size,
      inReadModel: inEvents,
      duplicates: duplicateCompanies + duplicateEntries + duplicateMsgIds,
      lost,
      recoverSeconds: firstAckAfter ? (Math.max(firstAckAfter, strikeEnded) - struck) / 1000 : Number.NaN,
      deadLetters,
      ...(lost > 0 || duplicateCompanies + duplicateEntries + duplicateMsgIds > 0
        ? {
            details: `stale customers ${stale.map((i) => i + 1).join(',')}; duplicate companies ${duplicateCompanies}, entries ${duplicateEntries}, message ids ${duplicateMsgIds}`,
          }
        : {}),
    };
  } finally {
    await stopService(service).catch(() => undefined);
    await bus.close();
    await fake.stop();
    await server.process.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}
