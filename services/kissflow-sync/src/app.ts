import 'reflect-metadata';
import { Controller, Inject, Module, type DynamicModule } from '@nestjs/common';
import type { Db } from 'mongodb';
import type { KV } from 'nats';
import type { Logger } from 'pino';
import type { ConsumerDefinition, KissflowMappings } from '@puente/contracts';
import type { BatchHandler, Bus, Delivery, Outcome } from '@puente/bus';
import { ProjectionStore, projectionHandler } from '@puente/projection';
import type { ServiceDefinition } from '@puente/runtime';
import { OnJetStream, startJetStreamService } from '@puente/nest-jetstream';
import { backfillFrom, BackfillBusyError, openBackfillBucket } from './backfill.js';
import { KissflowClient } from './client.js';
import { Config, type KissflowConfig } from './config.js';
import { loadMappings } from './mapping.js';
import { consumerFor } from './readModel.js';
import { recordsProjection, type KissflowRecordDoc } from './records.js';

/** Events a projector applies per batch: a backfill arrives by the thousand, and each batch costs a few round trips whatever its size. */
const PROJECTION_BATCH = 1_024;

/** Provider token of the records' `ProjectionStore`, built by the composition root. */
const RECORDS = Symbol('kissflow-sync records store');

/** The records projection's consumer (bound as `records` at start: its datasets come from configuration). */
@Controller()
class KissflowRecordsController {
  private readonly handler: BatchHandler;

  constructor(@Inject(RECORDS) records: ProjectionStore<KissflowRecordDoc>) {
    this.handler = projectionHandler(records);
  }

  @OnJetStream('records', { batch: true, runner: { batchSize: PROJECTION_BATCH } })
  project(deliveries: Delivery[]): Promise<Outcome[]> {
    return this.handler(deliveries) as Promise<Outcome[]>;
  }
}

@Module({})
class KissflowSyncModule {}

/** The service: the `kissflow_records` projection, and reconciliation of the configured datasets on a schedule. */
export class KissflowSyncApp {
  readonly records: ProjectionStore<KissflowRecordDoc>;
  private timer: NodeJS.Timeout | undefined;
  private reconciling: Promise<void> | undefined;
  private stopping = false;

  constructor(
    private readonly deps: {
      bus: Bus;
      db: Db;
      logger: Logger;
      config: KissflowConfig;
      mappings: KissflowMappings;
      kv: KV;
    },
  ) {
    this.records = new ProjectionStore({
      db: deps.db,
      bus: deps.bus,
      writers: deps.config.PROJECTION_WRITERS,
      cacheSize: deps.config.PROJECTION_CACHE_SIZE,
      projection: recordsProjection(deps.mappings),
    });
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
        else
          logger.error(
            { dataset, err: (error as Error).message },
            'kissflow reconciliation failed; it resumes on the next run',
          );
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

  /** The Nest module of the service's consumer, its controller given the records' store. */
  module(): DynamicModule {
    return {
      module: KissflowSyncModule,
      controllers: [KissflowRecordsController],
      providers: [{ provide: RECORDS, useValue: this.records }],
    };
  }
}

/** Builds and starts the service on a bus and database (the service's `start`, and tests). */
export async function startKissflowSync(deps: {
  bus: Bus;
  db: Db;
  logger: Logger;
  config: KissflowConfig;
  consumer?: ConsumerDefinition;
}): Promise<{ app: KissflowSyncApp; stop: () => Promise<void> }> {
  const mappings = loadMappings(deps.config.KISSFLOW_MAPPINGS);
  const kv = await openBackfillBucket(deps.bus);
  const app = new KissflowSyncApp({ ...deps, mappings, kv });
  await app.records.init();
  const consumers = { records: { consumer: deps.consumer ?? consumerFor(deps.config.KISSFLOW_DATASETS) } };
  const { stop } = await startJetStreamService(app.module(), {
    bus: deps.bus,
    service: 'kissflow-sync',
    logger: deps.logger,
    consumers,
  });
  app.startSchedule();
  return {
    app,
    stop: async () => {
      await app.stop();
      await stop();
      // The checkpoint trails the batches by up to a quarter second: write the last one.
      await app.records
        .close()
        .catch((error: Error) => deps.logger.warn({ err: error.message }, 'could not write the last checkpoint'));
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
