import { MongoClient, type Db } from 'mongodb';
import { z } from 'zod';
import { Bus } from '@puente/bus';
import { CommonConfig, ConfigError, loadConfig, resolveSecrets, streamOverrides, type SecretName } from './config.js';
import { createLogger, type Logger } from './logger.js';
import { startMetrics } from './metrics.js';
import { startTelemetry, type Telemetry } from './telemetry.js';
import { startHealthServer, type Check } from './httpServer.js';

/** The database a MongoDB URL names, or `puente`. */
export function mongoDatabaseName(url: string): string {
  const match = /^mongodb(?:\+srv)?:\/\/[^/]+\/([^?]+)/.exec(url);
  return match?.[1] ? decodeURIComponent(match[1]) : 'puente';
}

export interface ServiceContext<C, K extends string = SecretName> {
  readonly name: string;
  readonly config: C;
  /** The secrets the service declared, each a list (several at once during a rotation). */
  readonly secrets: Record<K, string[]>;
  readonly env: NodeJS.ProcessEnv;
  readonly logger: Logger;
  readonly bus: Bus;
  /** Present when the service asked for MongoDB. */
  readonly db: Db | undefined;
  /** Readiness checks; a service adds its own before returning from `start`. */
  readonly checks: Record<string, Check>;
}

export interface StartedService {
  /** Stops consuming and serving (drains); connections are closed afterwards by the runtime. */
  stop(): Promise<void>;
  /** URLs to print once ready. */
  urls?: Record<string, string>;
}

export interface ServiceDefinition<S extends z.ZodObject, K extends string = never> {
  name: string;
  /** The service's own variables (merged with the common ones). */
  config: S;
  /**
   * Secrets it needs: development values outside production; in production, required and never a dev
   * value. Names (development values from `DevSecrets`), or each name with its development value.
   */
  secrets?: readonly (K & SecretName)[] | Readonly<Record<K, string>>;
  mongo: boolean;
  /** Variable and default port of a health-only HTTP server; omit when the service serves health itself. */
  healthPort?: { variable: string; default: number };
  start(context: ServiceContext<z.infer<S> & CommonConfig, K>): Promise<StartedService>;
}

export interface RunningService {
  readonly logger: Logger;
  /** Stops everything in reverse order, bounded by SHUTDOWN_TIMEOUT. */
  shutdown(reason: string): Promise<void>;
}

/**
 * The composition every service shares: validated configuration (a bad value stops the service with
 * its name), logs, telemetry, the bus with its streams, MongoDB, health endpoints and a bounded
 * graceful shutdown on SIGTERM and SIGINT.
 */
export async function runService<S extends z.ZodObject, K extends string = never>(
  definition: ServiceDefinition<S, K>,
  env: NodeJS.ProcessEnv,
): Promise<RunningService> {
  const schema = CommonConfig.extend(definition.config.shape).extend(
    definition.healthPort
      ? {
          [definition.healthPort.variable]: z.coerce
            .number()
            .int()
            .min(0)
            .max(65535)
            .default(definition.healthPort.default),
        }
      : {},
  );
  let config: z.infer<S> & CommonConfig;
  let secrets: Record<K, string[]>;
  try {
    config = loadConfig(schema, env) as z.infer<S> & CommonConfig;
    secrets = resolveSecrets<K>(definition.secrets ?? [], env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(
        `${JSON.stringify({ level: 'fatal', service: definition.name, code: error.code, variables: error.variables, msg: error.message })}\n`,
      );
      process.exit(78);
    }
    throw error;
  }
  const logger = createLogger({ service: definition.name, level: config.LOG_LEVEL });
  const telemetry: Telemetry = startTelemetry(definition.name, env);
  const meters = startMetrics(definition.name, env);
  const closers: { name: string; close: () => Promise<void> }[] = [
    { name: 'telemetry', close: () => telemetry.shutdown() },
    { name: 'metrics', close: () => meters.shutdown() },
  ];
  let shuttingDown: Promise<void> | undefined;
  let draining = false;

  const shutdown = (reason: string): Promise<void> => {
    shuttingDown ??= (async () => {
      logger.info({ reason }, 'shutting down');
      const timer = setTimeout(() => {
        logger.error({ timeoutMs: config.SHUTDOWN_TIMEOUT }, 'shutdown did not finish in time; exiting');
        process.exit(1);
      }, config.SHUTDOWN_TIMEOUT);
      timer.unref();
      draining = true;
      if (config.DRAIN_DELAY > 0) {
        logger.info({ delayMs: config.DRAIN_DELAY }, 'not ready any more; still serving while traffic moves away');
        await new Promise((resolve) => setTimeout(resolve, config.DRAIN_DELAY));
      }
      for (const closer of closers.reverse()) {
        try {
          await closer.close();
        } catch (error) {
          logger.warn({ err: error, step: closer.name }, 'shutdown step failed');
        }
      }
      clearTimeout(timer);
      logger.info('stopped');
    })();
    return shuttingDown;
  };

  try {
    const bus = await Bus.connect({
      servers: config.NATS_URL,
      name: `puente-${definition.name}`,
      ...(config.NATS_TOKEN ? { token: config.NATS_TOKEN } : {}),
      ...(config.NATS_CREDS ? { credsFile: config.NATS_CREDS } : {}),
      replicas: config.NATS_REPLICAS,
    });
    closers.push({ name: 'bus', close: () => bus.close() });
    await bus.ensureStreams(undefined, streamOverrides(config));
    const checks: Record<string, Check> = { nats: () => bus.connected, accepting: () => !draining };

    let db: Db | undefined;
    if (definition.mongo) {
      const client = new MongoClient(config.MONGO_URL, {
        maxPoolSize: config.MONGO_POOL_SIZE,
        serverSelectionTimeoutMS: 5_000,
      });
      await client.connect();
      closers.push({ name: 'mongo', close: () => client.close() });
      db = client.db(mongoDatabaseName(config.MONGO_URL));
      const database = db;
      checks.mongo = async () => (await database.command({ ping: 1 })).ok === 1;
    }

    const started = await definition.start({ name: definition.name, config, secrets, env, logger, bus, db, checks });
    const urls: Record<string, string> = { ...started.urls };
    if (definition.healthPort) {
      const health = await startHealthServer({
        port: (config as Record<string, number>)[definition.healthPort.variable]!,
        checks,
      });
      closers.push({ name: 'health', close: () => health.close() });
      urls.health = `http://127.0.0.1:${health.port}/readyz`;
    }
    closers.push({ name: definition.name, close: () => started.stop() });
    logger.info({ urls, telemetry: telemetry.mode }, 'ready');
  } catch (error) {
    logger.fatal({ err: error }, 'could not start');
    await shutdown('start-up failed');
    process.exit(1);
  }

  const onSignal = (signal: NodeJS.Signals) => {
    void shutdown(signal).then(() => process.exit(0));
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  return { logger, shutdown };
}
