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

export async function startNats(options: { dir: string; port: number; monitorPort: number; log: Log; cluster?: NatsClusterOptions }): Promise<RunningServer> {
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
      const response = await fetch(`http://127.0.0.1:${options.monitorPort}/${options.cluster ? 'varz' : 'healthz?js-enabled-only=true'}`);
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
    execFileSync('useradd', ['--system', '--user-group', '--no-create-home', '--shell', '/usr/sbin/nologin', 'postgres']);
    return { uid: lookup('-u'), gid: lookup('-g') };
  }
}

export async function startPostgres(options: { dir: string; port: number; log: Log; durable: boolean }): Promise<RunningServer> {
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
    await run(join(bin, 'initdb'), ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync'], { ...ids, env }).catch((error: Error) => {
      throw new StackError(`initdb failed (${error.message.split('\n')[0]}); is ${options.dir} writable by the postgres user?`);
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

/** Creates the database when it does not exist yet. */
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
 * A MongoDB wire server: `mongod` when one is on PATH, else FerretDB v1 on the PostgreSQL backend
 * (its SQLite backend scans the whole table for any filter but a bare `_id`).
 */
export async function startMongoWire(options: { dir: string; port: number; postgresUrl: string; log: Log; database?: string }): Promise<RunningServer> {
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
