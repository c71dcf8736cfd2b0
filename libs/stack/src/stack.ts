import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureDatabase, startMongoWire, startNats, startPostgres, type RunningServer } from './servers.js';
import { freePort, isAlive, portOpen, preferredPort } from './processes.js';
import { startKafka } from './kafka.js';

export type ServerName = 'nats' | 'mongo' | 'postgres' | 'kafka';

export interface StackOptions {
  /** Where data, logs and the state file live. */
  dir: string;
  /** `dev`: standard ports when free, durable storage. `test`: random ports, no fsync. */
  mode: 'dev' | 'test';
  /**
   * Which servers the caller needs. Default: NATS, the MongoDB-wire server and PostgreSQL, plus Kafka
   * in `test` mode (the Debezium tests need it; `npm start` defaults to logical CDC, which does not).
   */
  needs?: readonly ServerName[];
  /** Where `NATS_URL`, `MONGO_URL`, `GLYMS_DATABASE_URL` and `KAFKA_BROKERS` are read from. */
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
}

export interface Stack {
  natsUrl?: string;
  mongoUrl?: string;
  /** The PostgreSQL server (no database) this stack started, when it started one. */
  postgresUrl?: string;
  /** The Glyms ERP database URL: `GLYMS_DATABASE_URL`, or `glyms` on the local server. */
  glymsUrl?: string;
  /** Kafka bootstrap servers (`host:port`, comma separated): `KAFKA_BROKERS`, or the broker this stack runs. */
  kafkaBrokers?: string;
  /** How each server was resolved: `env`, `reused` or `started`. */
  origin: Partial<Record<ServerName, 'env' | 'reused' | 'started'>>;
  /** Environment variables that point services and tests at this stack. */
  env(): Record<string, string>;
  /** Stops what this call started, in reverse order; leaves the rest alone. */
  stop(): Promise<void>;
}

interface StateEntry {
  url: string;
  pid: number;
  port: number;
}
type State = Partial<Record<ServerName, StateEntry>>;

const STANDARD_PORTS = {
  nats: 4222,
  natsMonitor: 8222,
  mongo: 27017,
  postgres: 5432,
  kafka: 9092,
  kafkaController: 9093,
} as const;

function readState(file: string): State {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as State;
  } catch {
    return {};
  }
}

async function reusable(entry: StateEntry | undefined): Promise<StateEntry | undefined> {
  if (entry && isAlive(entry.pid) && (await portOpen(entry.port))) return entry;
  return undefined;
}

/**
 * Resolves each server in order: the URL from the environment; a server this tool already started
 * (recorded in `<dir>/stack.json`); otherwise starts one, installing its binary when missing.
 */
export async function startStack(options: StackOptions): Promise<Stack> {
  const env = options.env ?? process.env;
  const needs = new Set<ServerName>(
    options.needs ?? (options.mode === 'test' ? ['nats', 'mongo', 'postgres', 'kafka'] : ['nats', 'mongo', 'postgres']),
  );
  const log = options.log ?? ((line: string) => process.stderr.write(`[stack] ${line}\n`));
  mkdirSync(options.dir, { recursive: true });
  const stateFile = join(options.dir, 'stack.json');
  const state = readState(stateFile);
  const started: RunningServer[] = [];
  const origin: Stack['origin'] = {};
  const port = (standard: number): Promise<number> => (options.mode === 'dev' ? preferredPort(standard) : freePort());
  const record = (name: ServerName, server: RunningServer, serverPort: number): void => {
    started.push(server);
    origin[name] = 'started';
    state[name] = { url: server.url, pid: server.process.pid, port: serverPort };
    writeFileSync(stateFile, JSON.stringify(state, null, 2));
  };
  const stop = async (): Promise<void> => {
    for (const server of started.reverse()) await server.process.stop();
    const current = readState(stateFile);
    for (const name of Object.keys(origin) as ServerName[]) if (origin[name] === 'started') delete current[name];
    if (Object.keys(current).length === 0) rmSync(stateFile, { force: true });
    else writeFileSync(stateFile, JSON.stringify(current, null, 2));
  };

  // Kafka depends on nothing else and its JVM takes a while to come up, so it starts beside the others.
  let kafka: Promise<string> | undefined;
  try {
    let natsUrl: string | undefined;
    let mongoUrl: string | undefined;
    let postgresUrl: string | undefined;
    let glymsUrl: string | undefined;

    /** The environment's URL, else a server this tool already runs, else a new one. */
    const resolveServer = async (
      name: ServerName,
      envUrl: string | undefined,
      start: () => Promise<{ server: RunningServer; port: number }>,
    ): Promise<string> => {
      if (envUrl) {
        origin[name] = 'env';
        return envUrl;
      }
      const reused = await reusable(state[name]);
      if (reused) {
        origin[name] = 'reused';
        return reused.url;
      }
      const { server, port: serverPort } = await start();
      record(name, server, serverPort);
      return server.url;
    };

    if (needs.has('kafka')) {
      kafka = resolveServer('kafka', env.KAFKA_BROKERS, async () => {
        const kafkaPort = await port(STANDARD_PORTS.kafka);
        const controllerPort = await port(STANDARD_PORTS.kafkaController);
        return {
          server: await startKafka({ dir: join(options.dir, 'kafka'), port: kafkaPort, controllerPort, log }),
          port: kafkaPort,
        };
      });
      // Awaited below; until then a failure must not surface as an unhandled rejection.
      kafka.catch(() => undefined);
    }

    if (needs.has('nats')) {
      natsUrl = await resolveServer('nats', env.NATS_URL, async () => {
        const natsPort = await port(STANDARD_PORTS.nats);
        return {
          server: await startNats({
            dir: join(options.dir, 'nats'),
            port: natsPort,
            monitorPort: await port(STANDARD_PORTS.natsMonitor),
            log,
          }),
          port: natsPort,
        };
      });
    }
    // PostgreSQL backs the Glyms demo database and FerretDB; it is not needed when both come from the environment.
    if ((needs.has('mongo') && !env.MONGO_URL) || (needs.has('postgres') && !env.GLYMS_DATABASE_URL)) {
      postgresUrl = await resolveServer('postgres', undefined, async () => {
        const pgPort = await port(STANDARD_PORTS.postgres);
        return {
          server: await startPostgres({
            dir: join(options.dir, 'postgres'),
            port: pgPort,
            log,
            durable: options.mode === 'dev',
          }),
          port: pgPort,
        };
      });
    }
    if (needs.has('postgres')) glymsUrl = env.GLYMS_DATABASE_URL ?? (await ensureDatabase(postgresUrl!, 'glyms'));
    if (needs.has('mongo')) {
      mongoUrl = await resolveServer('mongo', env.MONGO_URL, async () => {
        const mongoPort = await port(STANDARD_PORTS.mongo);
        return {
          server: await startMongoWire({
            dir: join(options.dir, 'mongo'),
            port: mongoPort,
            postgresUrl: postgresUrl!,
            log,
          }),
          port: mongoPort,
        };
      });
    }
    const kafkaBrokers = kafka ? await kafka : undefined;

    return {
      natsUrl,
      mongoUrl,
      postgresUrl,
      glymsUrl,
      kafkaBrokers,
      origin,
      env: () => ({
        ...(natsUrl ? { NATS_URL: natsUrl } : {}),
        ...(mongoUrl ? { MONGO_URL: mongoUrl } : {}),
        ...(glymsUrl ? { GLYMS_DATABASE_URL: glymsUrl } : {}),
        ...(postgresUrl ? { PUENTE_POSTGRES_URL: postgresUrl } : {}),
        ...(kafkaBrokers ? { KAFKA_BROKERS: kafkaBrokers } : {}),
      }),
      stop,
    };
  } catch (error) {
    // A Kafka still starting would otherwise be recorded after the stop and left running.
    await kafka?.catch(() => undefined);
    await stop();
    throw error;
  }
}

/**
 * The URL of a server a running stack in `dir` started (`npm start`, `npm run stack -- up`), if it is
 * still alive: how the CLI finds the local hub without configuration.
 */
export async function runningServerUrl(dir: string, name: ServerName): Promise<string | undefined> {
  return (await reusable(readState(join(dir, 'stack.json'))[name]))?.url;
}
