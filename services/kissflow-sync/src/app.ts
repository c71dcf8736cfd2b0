import 'reflect-metadata';
import { Controller, Module, type Type } from '@nestjs/common';
import type { Db } from 'mongodb';
import type { KV } from 'nats';
import type { Logger } from 'pino';
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { ChannelRoutes, Collections, Consumers, encodeToken, type ConsumerDefinition, type KissflowMappings } from '@puente/contracts';
import type { Bus, Delivery, Outcome } from '@puente/bus';
import { ProjectionStore, projectionHandler, type ReadModel, type Replayable } from '@puente/projection';
import { loadConfig, type ServiceDefinition, url } from '@puente/runtime';
import { OnJetStream, startJetStreamService } from '@puente/nest-jetstream';
import { Backfill, BackfillBusyError } from './backfill.js';
import { KissflowClient } from './client.js';
import { loadMappings } from './mapping.js';
import { recordsProjection, type KissflowRecordDoc } from './records.js';

export { Backfill, BackfillBusyError, modifiedAtOf, rowMessageId, type BackfillCounts, type BackfillOptions, type BackfillState } from './backfill.js';
export { KissflowClient, type KissflowRow } from './client.js';
export { applyMapping, coerce, loadMappings } from './mapping.js';
export { recordKey, recordsProjection, rowDigest, type KissflowRecordDoc } from './records.js';

export const Config = z.object({
  KISSFLOW_BASE_URL: url(['https', 'http']).optional(),
  KISSFLOW_ACCOUNT_ID: z.string().optional(),
  KISSFLOW_ACCESS_KEY_ID: z.string().optional(),
  KISSFLOW_ACCESS_KEY_SECRET: z.string().optional(),
  /** Rows per list page (public clients settled on 100: larger pages have come back truncated). */
  KISSFLOW_PAGE_SIZE: z.coerce.number().int().min(1).max(1_000).default(100),
  KISSFLOW_TIMEOUT_MS: z.coerce.number().int().min(100).max(300_000).default(30_000),
  /** Extra attempts after a timeout, a lost connection or a 5xx (429s wait as asked and do not count). */
  KISSFLOW_RETRIES: z.coerce.number().int().min(0).max(20).default(4),
  /** Row-detail calls at once (rows the list sent without `_modified_at`, and reconciliation checks). */
  KISSFLOW_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(8),
  /** Path of a JSON mapping file (docs/kissflow.md); unset: rows are kept as sent. */
  KISSFLOW_MAPPINGS: z.string().optional(),
  /** Comma-separated datasets this service reconciles on a schedule (unset: none). */
  KISSFLOW_RECONCILE_DATASETS: z.string().optional().transform((v) => v?.split(',').map((s) => s.trim()).filter(Boolean) ?? []),
  KISSFLOW_RECONCILE_INTERVAL_MS: z.coerce.number().int().min(1_000).max(7 * 86_400_000).default(6 * 3_600_000),
  /** A running backfill whose worker has not saved its page for this long is resumed by the next run. */
  KISSFLOW_BACKFILL_STALE_MS: z.coerce.number().int().min(100).max(3_600_000).default(60_000),
  /**
   * Comma-separated datasets this instance projects (default: all). Its consumer then reads only those
   * datasets' subjects under a durable name of its own: a way to split datasets across instances.
   */
  KISSFLOW_DATASETS: z.string().optional().transform((v) => v?.split(',').map((s) => s.trim()).filter(Boolean)),
  /** `exclusive` (default): one instance applies the projection; `shared`: replicas pull one consumer (see docs/kissflow.md). */
  PROJECTION_WRITERS: z.enum(['exclusive', 'shared']).default('exclusive'),
  /** Documents an exclusive writer keeps in memory per read model (its memory is bounded by this). */
  PROJECTION_CACHE_SIZE: z.coerce.number().int().min(0).max(1_000_000).default(50_000),
});
export type KissflowConfig = z.infer<typeof Config>;

/** The projection's consumer for a set of datasets (all when none): filters `evt.kissflow.record.*.<dataset>`, durable name suffixed with a hash of the set. */
export function consumerFor(datasets: readonly string[] | undefined): ConsumerDefinition {
  const base = Consumers.kissflowRecords;
  if (!datasets || datasets.length === 0) return base;
  const suffix = createHash('sha256').update([...datasets].sort().join('\n')).digest('hex').slice(0, 10);
  return { durable: `${base.durable}-${suffix}`, stream: base.stream, filterSubjects: datasets.map((dataset) => `evt.kissflow.record.*.${encodeToken(dataset)}`) };
}

/** The records read model as `puente replay kissflow-records` rebuilds it: this configuration's consumer, datasets and mapping. */
export function recordsReadModel(config: Pick<KissflowConfig, 'KISSFLOW_DATASETS' | 'KISSFLOW_MAPPINGS'>): ReadModel {
  const datasets = config.KISSFLOW_DATASETS;
  return {
    name: 'kissflow-records',
    group: { lead: [recordsProjection(loadMappings(config.KISSFLOW_MAPPINGS))] },
    consumer: consumerFor(datasets),
    routes: [ChannelRoutes.kissflowRecords],
    scope: (collection) => (datasets && collection === Collections.kissflowRecords ? { dataset: { $in: datasets } } : undefined),
  };
}

/** The read models this service owns that `puente replay` can rebuild. */
export const replayable: readonly Replayable[] = [{ name: 'kissflow-records', readModel: (env) => recordsReadModel(loadConfig(Config, env)) }];

/** Events a projector applies per batch: a backfill arrives by the thousand, and each batch costs a few round trips whatever its size. */
const PROJECTION_BATCH = 1_024;

/** KV bucket of backfill runs (one key per dataset and view) and, while reconciling, the row ids each page returned. */
export const BACKFILL_BUCKET = 'kissflow_backfill';

export function openBackfillBucket(bus: Bus): Promise<KV> {
  return bus.kv(BACKFILL_BUCKET, { history: 1 });
}

/** The Kissflow client from configuration, or why there is none. */
export function kissflowFrom(config: KissflowConfig): KissflowClient | string {
  const missing = KissflowClient.missing(config);
  if (missing) return missing;
  return new KissflowClient({ baseUrl: config.KISSFLOW_BASE_URL!, accountId: config.KISSFLOW_ACCOUNT_ID!, accessKeyId: config.KISSFLOW_ACCESS_KEY_ID!, accessKeySecret: config.KISSFLOW_ACCESS_KEY_SECRET!, timeoutMs: config.KISSFLOW_TIMEOUT_MS, retries: config.KISSFLOW_RETRIES });
}

/** A backfill runner from configuration (the CLI and the scheduled reconciliation). */
export function backfillFrom(deps: { bus: Bus; kv: KV; db?: Db; logger: Logger; config: KissflowConfig }): Backfill {
  const client = kissflowFrom(deps.config);
  if (typeof client === 'string') throw new Error(client);
  return new Backfill({ bus: deps.bus, kv: deps.kv, client, logger: deps.logger, ...(deps.db ? { db: deps.db } : {}), pageSize: deps.config.KISSFLOW_PAGE_SIZE, concurrency: deps.config.KISSFLOW_CONCURRENCY, staleAfterMs: deps.config.KISSFLOW_BACKFILL_STALE_MS });
}

/** The service: the `kissflow_records` projection, and reconciliation of the configured datasets on a schedule. */
export class KissflowSyncApp {
  readonly records: ProjectionStore<KissflowRecordDoc>;
  private timer: NodeJS.Timeout | undefined;
  private reconciling: Promise<void> | undefined;
  private stopping = false;

  constructor(private readonly deps: { bus: Bus; db: Db; logger: Logger; config: KissflowConfig; mappings: KissflowMappings; kv: KV }) {
    this.records = new ProjectionStore({ db: deps.db, bus: deps.bus, writers: deps.config.PROJECTION_WRITERS, cacheSize: deps.config.PROJECTION_CACHE_SIZE, projection: recordsProjection(deps.mappings) });
  }

  /** Reconciles every configured dataset once, one after the other (a run already going elsewhere is skipped). */
  async reconcileAll(): Promise<void> {
    const { config, logger } = this.deps;
    const backfill = backfillFrom(this.deps);
    for (const dataset of config.KISSFLOW_RECONCILE_DATASETS) {
      if (this.stopping) return;
      try {
        const state = await backfill.run({ dataset, reconcile: true });
        logger.info({ dataset, runId: state.runId, ...state.counts }, 'kissflow reconciliation completed');
      } catch (error) {
        if (error instanceof BackfillBusyError) logger.info({ dataset }, error.message);
        else logger.error({ dataset, err: (error as Error).message }, 'kissflow reconciliation failed; it resumes on the next run');
      }
    }
  }

  /** Starts the schedule (first run one interval after start) when datasets and the API are configured. */
  startSchedule(): void {
    const { config, logger } = this.deps;
    if (config.KISSFLOW_RECONCILE_DATASETS.length === 0) return;
    const missing = KissflowClient.missing(config);
    if (missing) {
      logger.warn({ reason: missing }, 'KISSFLOW_RECONCILE_DATASETS is set but reconciliation cannot run');
      return;
    }
    this.timer = setInterval(() => {
      this.reconciling ??= this.reconcileAll().finally(() => (this.reconciling = undefined));
    }, config.KISSFLOW_RECONCILE_INTERVAL_MS).unref();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    await Promise.race([this.reconciling, new Promise((resolve) => setTimeout(resolve, 5_000).unref())]);
  }

  module(consumer: ConsumerDefinition): Type<unknown> {
    const handler = projectionHandler(this.records);
    @Controller()
    class KissflowRecordsController {
      @OnJetStream(consumer, { batch: true, runner: { batchSize: PROJECTION_BATCH } })
      project(deliveries: Delivery[]): Promise<Outcome[]> {
        return handler(deliveries) as Promise<Outcome[]>;
      }
    }
    @Module({ controllers: [KissflowRecordsController] })
    class KissflowSyncModule {}
    return KissflowSyncModule;
  }
}

/** Builds and starts the service on a bus and database (the service's `start`, and tests). */
export async function startKissflowSync(deps: { bus: Bus; db: Db; logger: Logger; config: KissflowConfig; consumer?: ConsumerDefinition }): Promise<{ app: KissflowSyncApp; stop: () => Promise<void> }> {
  const mappings = loadMappings(deps.config.KISSFLOW_MAPPINGS);
  const kv = await openBackfillBucket(deps.bus);
  const app = new KissflowSyncApp({ ...deps, mappings, kv });
  await app.records.init();
  const { stop } = await startJetStreamService(app.module(deps.consumer ?? consumerFor(deps.config.KISSFLOW_DATASETS)), { bus: deps.bus, service: 'kissflow-sync', logger: deps.logger });
  app.startSchedule();
  return {
    app,
    stop: async () => {
      await app.stop();
      await stop();
      // The checkpoint trails the batches by up to a quarter second: write the last one.
      await app.records.close().catch((error: Error) => deps.logger.warn({ err: error.message }, 'could not write the last checkpoint'));
    },
  };
}

export const service: ServiceDefinition<typeof Config> = {
  name: 'kissflow-sync',
  config: Config,
  mongo: true,
  healthPort: { variable: 'HEALTH_PORT', default: 8081 },
  async start({ bus, db, logger, config }) {
    const { stop } = await startKissflowSync({ bus, db: db!, logger, config });
    return { stop };
  },
};
