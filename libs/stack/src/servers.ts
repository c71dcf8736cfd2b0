import { chmodSync, chownSync, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { MongoClient } from 'mongodb';
import { ensureFerretDB, ensureNatsServer, ensurePostgres, findBinary } from './binaries.js';
import { portOpen, run, spawnServer, StackError, type ManagedProcess } from './processes.js';

export interface RunningServer {
  readonly url: string;
  readonly process: ManagedProcess;
}

type Log = (line: string) => void;

/** FerretDB's PostgreSQL pool; PostgreSQL's `max_connections` leaves room above it. */
export const FERRETDB_PG_POOL = 400;

/** Largest NATS message: a 4 MiB webhook plus its headers and envelope fits with room to spare. */
export const NATS_MAX_PAYLOAD = 8 * 1024 * 1024;

/** A JetStream cluster member: its name, its route port, and the route ports of all members (loopback). */
export interface NatsClusterOptions {
  serverName: string;
  port: number;
  routes: number[];
}

/**
 * How often JetStream syncs its files to disk: `always` (every write, before it acknowledges) or a Go
 * duration (`2m`, nats-server's own default). JetStream acknowledges a write once it is in the file's
 * page cache; with an interval, a power cut or kernel crash loses what was acknowledged since the last
 * sync. A single node has no replica to recover it from, so the stack defaults to `always`.
 */
export const NATS_SYNC_INTERVAL_DEFAULT = 'always';
const SyncInterval = /^(always|\d+(\.\d+)?(ms|s|m|h))$/;

/** The sync interval from `NATS_SYNC_INTERVAL`, checked (a bad value names the variable). */
export function natsSyncInterval(env: NodeJS.ProcessEnv = process.env): string {
  const value = env.NATS_SYNC_INTERVAL?.trim() || NATS_SYNC_INTERVAL_DEFAULT;
  if (!SyncInterval.test(value))
    throw new Error(`NATS_SYNC_INTERVAL must be "always" or a duration such as 2m or 10s (got "${value}")`);
  return value;
}

export async function startNats(options: {
  dir: string;
  port: number;
  monitorPort: number;
  log: Log;
  cluster?: NatsClusterOptions;
  /** `always` or a duration (default: `NATS_SYNC_INTERVAL`, else `always`). */
  syncInterval?: string;
}): Promise<RunningServer> {
  const syncInterval = options.syncInterval ?? natsSyncInterval();
  if (!SyncInterval.test(syncInterval)) throw new Error(`bad NATS sync interval "${syncInterval}"`);
  const binary = await ensureNatsServer(options.log);
  const storeDir = join(options.dir, 'jetstream');
  mkdirSync(storeDir, { recursive: true });
  const configFile = join(options.dir, 'nats.conf');
  writeFileSync(
    configFile,
    [
      `listen: 127.0.0.1:${options.port}`,
      `http: 127.0.0.1:${options.monitorPort}`,
      `max_payload: ${NATS_MAX_PAYLOAD}`,
      `jetstream {`,
      `  store_dir: ${JSON.stringify(storeDir)}`,
      `  max_memory_store: 512MB`,
      `  sync_interval: ${syncInterval}`,
      `}`,
      ...(options.cluster
        ? [
            `server_name: ${options.cluster.serverName}`,
            `cluster {`,
            `  name: puente`,
            `  listen: 127.0.0.1:${options.cluster.port}`,
            `  routes: [${options.cluster.routes.map((port) => `nats-route://127.0.0.1:${port}`).join(', ')}]`,
            `}`,
          ]
        : []),
      '',
    ].join('\n'),
  );
  const process = await spawnServer({
    name: 'nats-server',
    command: binary,
    args: ['-c', configFile],
    logFile: join(options.dir, 'nats.log'),
    ready: async () => {
      // A cluster member is up once it serves its monitor; JetStream there needs a quorum of members first.
      const response = await fetch(
        `http://127.0.0.1:${options.monitorPort}/${options.cluster ? 'varz' : 'healthz?js-enabled-only=true'}`,
      );
      return response.ok;
    },
  });
  return { url: `nats://127.0.0.1:${options.port}`, process };
}

/** The unprivileged account PostgreSQL runs as when this tool runs as root (it refuses root). */
function postgresAccount(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const lookup = (flag: string): number => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  try {
    return { uid: lookup('-u'), gid: lookup('-g') };
  } catch {
    execFileSync('useradd', [
      '--system',
      '--user-group',
      '--no-create-home',
      '--shell',
      '/usr/sbin/nologin',
      'postgres',
    ]);
    return { uid: lookup('-u'), gid: lookup('-g') };
  }
}

export async function startPostgres(options: {
  dir: string;
  port: number;
  log: Log;
  durable: boolean;
}): Promise<RunningServer> {
  const bin = await ensurePostgres(options.log);
  const account = postgresAccount();
  const dataDir = join(options.dir, 'pgdata');
  mkdirSync(options.dir, { recursive: true });
  if (account) {
    chownSync(options.dir, account.uid, account.gid);
    // The postgres account must be able to reach its folder (a mkdtemp parent is 0700).
    const parent = dirname(options.dir);
    if ((statSync(parent).mode & 0o005) !== 0o005) chmodSync(parent, 0o755);
  }
  const ids = account ? { uid: account.uid, gid: account.gid } : {};
  const env = { ...process.env, LC_ALL: 'C.UTF-8', LANG: 'C.UTF-8' };
  if (!existsSync(join(dataDir, 'PG_VERSION'))) {
    await run(
      join(bin, 'initdb'),
      ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync'],
      { ...ids, env },
    ).catch((error: Error) => {
      throw new StackError(
        `initdb failed (${error.message.split('\n')[0]}); is ${options.dir} writable by the postgres user?`,
      );
    });
  }
  const settings = [
    'listen_addresses=127.0.0.1',
    `port=${options.port}`,
    'unix_socket_directories=',
    'wal_level=logical',
    'max_replication_slots=32',
    'max_wal_senders=32',
    'max_connections=500',
    'shared_buffers=256MB',
    ...(options.durable ? [] : ['fsync=off', 'synchronous_commit=off', 'full_page_writes=off']),
  ];
  const url = `postgres://postgres@127.0.0.1:${options.port}`;
  const process_ = await spawnServer({
    name: 'postgres',
    command: join(bin, 'postgres'),
    args: ['-D', dataDir, ...settings.flatMap((setting) => ['-c', setting])],
    logFile: join(options.dir, 'postgres.log'),
    env,
    ...ids,
    stopSignal: 'SIGINT',
    ready: async () => {
      const client = new pg.Client({ connectionString: `${url}/postgres`, connectionTimeoutMillis: 1_000 });
      try {
        await client.connect();
        await client.query('select 1');
        return true;
      } finally {
        await client.end().catch(() => undefined);
      }
    },
  });
  return { url, process: process_ };
}

/**
 * The PostgreSQL server (no database in the path) of a stack's environment: `PUENTE_POSTGRES_URL` when
 * the stack started PostgreSQL itself, else the server of `GLYMS_DATABASE_URL`.
 */
export function postgresServerUrl(env: NodeJS.ProcessEnv): string {
  if (env.PUENTE_POSTGRES_URL) return env.PUENTE_POSTGRES_URL;
  if (!env.GLYMS_DATABASE_URL) throw new Error('no PostgreSQL: set GLYMS_DATABASE_URL, or let the stack start one');
  const url = new URL(env.GLYMS_DATABASE_URL);
  url.pathname = '';
  return url.toString().replace(/\/$/, '');
}

/** Creates the database when it does not exist yet. */
export async function ensureDatabase(serverUrl: string, name: string): Promise<string> {
  const client = new pg.Client({ connectionString: `${serverUrl}/postgres` });
  await client.connect();
  try {
    const existing = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (existing.rowCount === 0) await client.query(`create database ${pg.escapeIdentifier(name)}`);
  } finally {
    await client.end();
  }
  return `${serverUrl}/${name}`;
}

/**
 * FerretDB v1's PostgreSQL backend pushes `{_id: x}` down as `_jsonb->$1 @> $2`: the key is a parameter
 * and the operator is containment, so its own btree index on `(_jsonb->'_id')` never serves it and every
 * lookup, replace or upsert by `_id` scans the whole table (17 ms at 50,000 documents, where `mongod`
 * takes microseconds). A GIN index on the same expression serves `@>` once the key is planned as a
 * constant, which custom plans do. So, in FerretDB's database: custom plans always, an event trigger
 * that gives every table FerretDB creates that index, and the index on the tables that already exist.
 * Without `fastupdate`: its pending list, long after a bulk insert, is scanned by every lookup (a third
 * of the rate here). Measured at 50,000 documents: replace by `_id` 54/s before, about 1,200/s after.
 * PostgreSQL-side only; FerretDB and the Mongo driver see nothing of it.
 */
const FERRETDB_ID_INDEX_SQL = `
create or replace function public.puente_ferretdb_id_index(target regclass) returns void language plpgsql as $fn$
begin
  if exists (select 1 from pg_attribute where attrelid = target and attname = '_jsonb' and not attisdropped) then
    execute format('create index if not exists %I on %s using gin ((_jsonb -> %L)) with (fastupdate = off)',
      left((select relname from pg_class where oid = target), 50) || '_puente_id', target, '_id');
  end if;
end $fn$;

create or replace function public.puente_ferretdb_id_index_trigger() returns event_trigger language plpgsql as $fn$
declare created record;
begin
  for created in select objid from pg_event_trigger_ddl_commands() where command_tag = 'CREATE TABLE' and object_type = 'table' loop
    perform public.puente_ferretdb_id_index(created.objid::regclass);
  end loop;
end $fn$;

do $do$
declare existing record;
begin
  if not exists (select 1 from pg_event_trigger where evtname = 'puente_ferretdb_id_index') then
    create event trigger puente_ferretdb_id_index on ddl_command_end when tag in ('CREATE TABLE')
      execute function public.puente_ferretdb_id_index_trigger();
  end if;
  for existing in
    select c.oid from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where c.relkind = 'r' and n.nspname not in ('pg_catalog', 'information_schema')
      and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = '_jsonb' and not a.attisdropped)
  loop
    perform public.puente_ferretdb_id_index(existing.oid::regclass);
  end loop;
end $do$;
`;

/** Prepares FerretDB's PostgreSQL database so lookups by `_id` use an index (FERRETDB_ID_INDEX_SQL). */
export async function indexFerretDbIds(databaseUrl: string, log: Log): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query(
      `alter database ${pg.escapeIdentifier(client.database ?? 'ferretdb')} set plan_cache_mode = force_custom_plan`,
    );
    await client.query(FERRETDB_ID_INDEX_SQL);
  } catch (error) {
    // Needs a superuser (event triggers); on a server where Puente is not one, FerretDB still works, slower.
    log(`FerretDB's _id lookups stay unindexed: ${(error as Error).message}`);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * A MongoDB wire server: `mongod` when one is on PATH, else FerretDB v1 on the PostgreSQL backend
 * (its SQLite backend scans the whole table for any filter but a bare `_id`).
 */
export async function startMongoWire(options: {
  dir: string;
  port: number;
  postgresUrl: string;
  log: Log;
  database?: string;
}): Promise<RunningServer> {
  const url = `mongodb://127.0.0.1:${options.port}/`;
  const ready = async (): Promise<boolean> => {
    if (!(await portOpen(options.port))) return false;
    const client = new MongoClient(url, { serverSelectionTimeoutMS: 1_000, directConnection: true });
    try {
      await client.db('admin').command({ ping: 1 });
      return true;
    } finally {
      await client.close();
    }
  };
  const mongod = findBinary('mongod');
  if (mongod) {
    const dbPath = join(options.dir, 'mongod');
    mkdirSync(dbPath, { recursive: true });
    const process_ = await spawnServer({
      name: 'mongod',
      command: mongod,
      args: ['--bind_ip', '127.0.0.1', '--port', String(options.port), '--dbpath', dbPath],
      logFile: join(options.dir, 'mongod.log'),
      ready,
    });
    return { url, process: process_ };
  }
  const ferretdb = await ensureFerretDB(options.log);
  const postgresUrl = await ensureDatabase(options.postgresUrl, options.database ?? 'ferretdb');
  await indexFerretDbIds(postgresUrl, options.log);
  const stateDir = join(options.dir, 'ferretdb');
  mkdirSync(stateDir, { recursive: true });
  const process_ = await spawnServer({
    name: 'ferretdb',
    command: ferretdb,
    args: [
      `--listen-addr=127.0.0.1:${options.port}`,
      '--handler=postgresql',
      // FerretDB's update holds one pooled PostgreSQL connection while it takes a second: with its default
      // pool of 50, fifty concurrent updates deadlock. A pool far above any client's concurrency avoids it.
      `--postgresql-url=${postgresUrl}?pool_max_conns=${FERRETDB_PG_POOL}`,
      `--state-dir=${stateDir}`,
      '--debug-addr=-',
      '--telemetry=disable',
      '--log-level=WARN',
      '--log-format=json',
    ],
    logFile: join(options.dir, 'ferretdb.log'),
    ready,
  });
  return { url, process: process_ };
}
