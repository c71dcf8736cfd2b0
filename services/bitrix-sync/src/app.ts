import 'reflect-metadata';
import { setTimeout as sleep } from 'node:timers/promises';
import { Controller, Inject, Module, type DynamicModule, type Provider, type Type } from '@nestjs/common';
import type { Db } from 'mongodb';
import type { Logger } from 'pino';
import { Consumers, decodeEvent } from '@puente/contracts';
import { Outcomes, type BatchHandler, type Bus, type Delivery, type Outcome } from '@puente/bus';
import { ProjectionStore, projectionHandler } from '@puente/projection';
import type { ServiceDefinition } from '@puente/runtime';
import { OnJetStream, startJetStreamService, type ConsumerBinding } from '@puente/nest-jetstream';
import { Lease, LogTableSource, type CdcSource } from '@puente/cdc';
import { bitrixClientFrom, bitrixMissing, keepRefreshTokenAlive, type BitrixClient } from './bitrix/index.js';
import { cdcSourceFrom } from './cdcSource.js';
import { companiesConsumer } from './companies/consumer.js';
import { linksProjection, type BitrixLinkDoc } from './companies/links.js';
import { loadCompanyMapping, type CompanyMapping } from './companies/mapping.js';
import { CompanyPusher } from './companies/pusher.js';
import { CatalogSync, loadCatalogMapping, scheduleCatalogSync } from './catalog/index.js';
import { Config, type BitrixSyncConfig } from './config.js';

/** KV bucket of the active replica's lease. */
export const LEASE_BUCKET = 'bitrix_lease';

/**
 * The active part of the service, run by the replica that holds the lease: the CDC relay, the companies
 * pusher (when Bitrix24 is configured), and, in `logtable` mode, the write-back of outcomes to the log.
 */
export class BitrixSyncApp {
  readonly links: ProjectionStore<BitrixLinkDoc>;
  /** The same read model for catalog outcomes, applied from the stream (their keys never meet the pusher's). */
  readonly catalogLinks: ProjectionStore<BitrixLinkDoc>;
  readonly mapping: CompanyMapping;
  client: BitrixClient | undefined;
  pusher: CompanyPusher | undefined;
  source: CdcSource | undefined;
  private stops: (() => Promise<void>)[] = [];

  constructor(
    private readonly deps: {
      bus: Bus;
      db: Db;
      logger: Logger;
      config: BitrixSyncConfig;
      /** The lease's fencing check, run before every Bitrix24 request (see `Lease.assertHeld`). */
      fence?: () => Promise<void>;
    },
  ) {
    this.mapping = loadCompanyMapping(deps.config.BITRIX_COMPANY_MAPPING);
    this.links = new ProjectionStore({
      db: deps.db,
      bus: deps.bus,
      writers: 'exclusive',
      projection: linksProjection(),
    });
    this.catalogLinks = new ProjectionStore({
      db: deps.db,
      bus: deps.bus,
      writers: 'exclusive',
      projection: { ...linksProjection(), name: 'bitrix-links-catalog' },
    });
  }

  async start(): Promise<void> {
    const { bus, logger, config } = this.deps;
    await this.links.init();
    await this.catalogLinks.init();
    const missing = bitrixMissing(config);
    if (missing) logger.warn(`bitrix-sync relays ERP changes but does not push them: ${missing}`);
    else {
      this.client = await bitrixClientFrom({
        config,
        bus,
        logger,
        ...(this.deps.fence ? { fence: this.deps.fence } : {}),
      });
      // An idle install still rotates its refresh token before it expires (checked every 6 h, refreshed only when old).
      if (this.client.tokens) {
        const stopKeepAlive = keepRefreshTokenAlive(this.client.tokens, { logger });
        this.stops.push(async () => stopKeepAlive());
      }
      this.pusher = new CompanyPusher({ api: this.client, bus, links: this.links, mapping: this.mapping, logger });
    }
    if (this.client && config.BITRIX_CATALOG_INTERVAL_MS > 0) {
      const sync = new CatalogSync({
        client: this.client,
        bus,
        databaseUrl: config.GLYMS_DATABASE_URL,
        query: config.BITRIX_CATALOG_QUERY,
        mapping: loadCatalogMapping(config.BITRIX_CATALOG_MAPPING),
        logger,
      });
      const schedule = scheduleCatalogSync({ sync, intervalMs: config.BITRIX_CATALOG_INTERVAL_MS, logger });
      this.stops.push(async () => schedule.stop());
    }
    const source = await cdcSourceFrom({ ...this.deps, mapping: this.mapping });
    this.source = source;
    const { stop } = await startJetStreamService(this.module(source), {
      bus,
      service: 'bitrix-sync',
      logger,
      consumers: this.consumers(),
    });
    this.stops.push(stop);
    await source.start();
    this.stops.push(() => source.stop());
  }

  async stop(): Promise<void> {
    for (const stop of this.stops.splice(0).reverse())
      await stop().catch((error: Error) => this.deps.logger.warn({ err: error.message }, 'stopping bitrix-sync'));
  }

  /** The Nest module of the consumers this replica runs, their controllers given what they use through providers. */
  module(source: CdcSource): DynamicModule {
    const controllers: Type<unknown>[] = [CatalogLinksController];
    const providers: Provider[] = [{ provide: CATALOG_LINKS, useValue: this.catalogLinks }];
    if (this.pusher !== undefined) {
      controllers.push(CompaniesController);
      providers.push({ provide: CompanyPusher, useValue: this.pusher });
    }
    if (source instanceof LogTableSource) {
      controllers.push(LogOutcomesController);
      providers.push({ provide: LogTableSource, useValue: source });
    }
    return { module: BitrixSyncModule, controllers, providers };
  }

  /** The consumers bound by name: the companies consumer follows the mapping's table, its linger the configuration. */
  consumers(): Record<string, ConsumerBinding> {
    return {
      companies: {
        consumer: companiesConsumer(this.mapping),
        runner: { lingerMs: this.deps.config.BITRIX_COALESCE_MS },
      },
    };
  }
}

/** Provider token of the catalog outcomes' `ProjectionStore`. */
const CATALOG_LINKS = Symbol('bitrix-sync catalog links store');

/** Applies catalog outcomes to the links read model. */
@Controller()
class CatalogLinksController {
  private readonly handler: BatchHandler;

  constructor(@Inject(CATALOG_LINKS) catalogLinks: ProjectionStore<BitrixLinkDoc>) {
    this.handler = projectionHandler(catalogLinks);
  }

  @OnJetStream(Consumers.bitrixLinks, { batch: true })
  apply(deliveries: Delivery[]): Promise<Outcome[]> {
    return this.handler(deliveries) as Promise<Outcome[]>;
  }
}

/** Pushes ERP customer changes to Bitrix24 companies (when Bitrix24 is configured). */
@Controller()
class CompaniesController {
  constructor(@Inject(CompanyPusher) private readonly pusher: CompanyPusher) {}

  @OnJetStream('companies', {
    batch: true,
    // Bitrix24 away for minutes is retried for about 14 minutes before a change reaches the DLQ; older retries never overwrite newer pushes (sourceSequence).
    runner: { batchSize: 1_000, ackWaitMs: 120_000, maxAttempts: 30, backoffMs: [1_000, 2_000, 5_000, 10_000, 30_000] },
  })
  push(deliveries: Delivery[]): Promise<Outcome[]> {
    return this.pusher.handle(deliveries);
  }
}

/** In `logtable` mode, writes each change's outcome back to the ERP's change log. */
@Controller()
class LogOutcomesController {
  constructor(@Inject(LogTableSource) private readonly logtable: LogTableSource) {}

  @OnJetStream(Consumers.glymsLogtableOutcomes, { batch: true })
  async record(deliveries: Delivery[]): Promise<Outcome[]> {
    const outcomes: Outcome[] = [];
    for (const delivery of deliveries) {
      try {
        await this.logtable.recordOutcome(decodeEvent(delivery.data));
        outcomes.push(Outcomes.ack);
      } catch (error) {
        outcomes.push(Outcomes.fromError(error));
      }
    }
    return outcomes;
  }
}

@Module({})
class BitrixSyncModule {}

/**
 * Runs the service: waits for the lease, then starts the active part; gives it up and waits again if the
 * lease is lost. Returns a stop function (the service's, and tests').
 */
export async function startBitrixSync(deps: {
  bus: Bus;
  db: Db;
  logger: Logger;
  config: BitrixSyncConfig;
}): Promise<{ stop: () => Promise<void>; active: () => BitrixSyncApp | undefined }> {
  // One active replica per slot: two deployments on one bus (other slots) do not wait for each other.
  const lease = new Lease({
    kv: await deps.bus.kv(LEASE_BUCKET, { history: 1 }),
    key: `active.${deps.config.GLYMS_CDC_SLOT}`,
    logger: deps.logger,
    ttlMs: deps.config.BITRIX_LEASE_TTL_MS,
  });
  const abort = new AbortController();
  // Made before anything can abort, so a stop that comes while the active part is starting is not missed.
  const aborted = new Promise<void>((resolve) =>
    abort.signal.addEventListener('abort', () => resolve(), { once: true }),
  );
  let app: BitrixSyncApp | undefined;
  let running: Promise<void> = Promise.resolve();
  const cycle = async (): Promise<void> => {
    while (!abort.signal.aborted) {
      if (!(await lease.acquire(abort.signal)) || abort.signal.aborted) return;
      const lost = new Promise<void>((resolve) => lease.onLost(resolve));
      let current: BitrixSyncApp | undefined;
      try {
        // Every Bitrix24 request first checks the lease is still ours: a replica that stalled past it writes nothing.
        current = new BitrixSyncApp({ ...deps, fence: () => lease.assertHeld() });
        app = current;
        await current.start();
      } catch (error) {
        deps.logger.error({ err: (error as Error).message }, 'bitrix-sync could not start its work; retrying in 30 s');
        await current?.stop();
        app = undefined;
        await lease.release();
        await sleep(30_000, undefined, { signal: abort.signal }).catch(() => undefined);
        continue;
      }
      await Promise.race([lost, aborted]);
      await current.stop();
      app = undefined;
    }
  };
  running = cycle();
  return {
    active: () => app,
    stop: async () => {
      abort.abort();
      await running;
      await lease.release();
    },
  };
}

export const service: ServiceDefinition<typeof Config> = {
  name: 'bitrix-sync',
  config: Config,
  mongo: true,
  healthPort: { variable: 'HEALTH_PORT', default: 8083 },
  async start({ bus, db, logger, config }) {
    // Bad mapping files are bad configuration: refuse to start, naming the file and the problem.
    loadCompanyMapping(config.BITRIX_COMPANY_MAPPING);
    loadCatalogMapping(config.BITRIX_CATALOG_MAPPING);
    return startBitrixSync({ bus, db: db!, logger, config });
  },
};
