import 'reflect-metadata';
import { setTimeout as sleep } from 'node:timers/promises';
import { Controller, Module, type Type } from '@nestjs/common';
import type { Db } from 'mongodb';
import type { Logger } from 'pino';
import { z } from 'zod';
import { Consumers, decodeEvent, glymsTableSubjects, type ConsumerDefinition } from '@puente/contracts';
import { Outcomes, type Bus, type Delivery, type Outcome } from '@puente/bus';
import { ProjectionStore, projectionHandler } from '@puente/projection';
import { type ServiceDefinition, duration, list, url } from '@puente/runtime';
import { OnJetStream, startJetStreamService } from '@puente/nest-jetstream';
import { CdcModes, DebeziumSource, Lease, LogicalSource, LogTableSource, parseTableName, type CdcSource } from '@puente/cdc';
import { BitrixSettings, bitrixClientFrom, bitrixMissing, keepRefreshTokenAlive, type BitrixClient } from './bitrix/index.js';
import { linksProjection, type BitrixLinkDoc } from './companies/links.js';
import { loadCompanyMapping, type CompanyMapping } from './companies/mapping.js';
import { CompanyPusher } from './companies/pusher.js';
import { CatalogSettings, CatalogSync, loadCatalogMapping, scheduleCatalogSync } from './catalog/index.js';

export * from './bitrix/index.js';
export { linkKey, linksProjection, type BitrixLinkDoc, type MultiValueEntry } from './companies/links.js';
export { CompanyMapping, loadCompanyMapping, mapCompany, originIdOf, type DesiredCompany, type MappedCompany } from './companies/mapping.js';
export { BATCH_LIMIT, CompanyPusher, diffMultiValue, type BitrixBatchApi, type BitrixCommand, type CompanyPusherOptions } from './companies/pusher.js';
export { isResync, publishCompanyResync, RESYNC_PREFIX } from './companies/resync.js';
export * from './catalog/index.js';

export const Config = BitrixSettings.extend(CatalogSettings.shape).extend({
  GLYMS_DATABASE_URL: url(['postgres', 'postgresql']).default('postgres://postgres@127.0.0.1:5432/glyms'),
  GLYMS_CDC_MODE: z.enum(CdcModes).default('logical'),
  /** Tables the `logical` and `debezium` relays publish (`schema.table`, comma separated). */
  GLYMS_CDC_TABLES: list().default(['public.cliente', 'public.servicio']),
  GLYMS_CDC_PUBLICATION: z.string().default('puente_glyms'),
  GLYMS_CDC_SLOT: z.string().default('puente_glyms'),
  /** Warn when the slot holds back more WAL than this many bytes. */
  GLYMS_SLOT_LAG_WARN_BYTES: z.coerce.number().int().min(1).default(256 * 1024 * 1024),
  /** `logtable` mode: the wait between polls of an empty change log. */
  GLYMS_LOGTABLE_POLL_MS: duration().default(1_000),
  KAFKA_BROKERS: list().optional(),
  DEBEZIUM_TOPIC_PREFIX: z.string().default('glyms'),
  /** Path of the companies mapping file (docs/bitrix.md); unset: the demo schema's defaults. */
  BITRIX_COMPANY_MAPPING: z.string().optional(),
  /** How long the companies consumer waits for more changes before pushing: changes to one customer inside it become one call. */
  BITRIX_COALESCE_MS: duration().default(500),
  /** The active replica renews its lease this often x3; a standby takes over after it lapses. */
  BITRIX_LEASE_TTL_MS: duration().default(15_000),
});
export type BitrixSyncConfig = z.infer<typeof Config>;

/** KV bucket of the relay's slot state. */
export const CDC_BUCKET = 'glyms_cdc';
/** KV bucket of the active replica's lease. */
export const LEASE_BUCKET = 'bitrix_lease';

/** The CDC relay of the configured mode. */
export async function cdcSourceFrom(deps: { bus: Bus; config: BitrixSyncConfig; logger: Logger; mapping?: CompanyMapping }): Promise<CdcSource> {
  const { bus, config, logger } = deps;
  const tables = config.GLYMS_CDC_TABLES.map(parseTableName);
  switch (config.GLYMS_CDC_MODE) {
    case 'logical':
      return new LogicalSource({ bus, kv: await bus.kv(CDC_BUCKET, { history: 1 }), databaseUrl: config.GLYMS_DATABASE_URL, tables, publication: config.GLYMS_CDC_PUBLICATION, slot: config.GLYMS_CDC_SLOT, logger, lagWarnBytes: config.GLYMS_SLOT_LAG_WARN_BYTES });
    case 'logtable':
      // The change log's id_cliente points at the companies mapping's table.
      return new LogTableSource({ bus, databaseUrl: config.GLYMS_DATABASE_URL, logger, pollMs: config.GLYMS_LOGTABLE_POLL_MS, ...(deps.mapping ? { customerTable: parseTableName(deps.mapping.table) } : {}) });
    case 'debezium':
      if (!config.KAFKA_BROKERS?.length) throw new Error('GLYMS_CDC_MODE=debezium needs KAFKA_BROKERS');
      return new DebeziumSource({ bus, brokers: config.KAFKA_BROKERS, topicPrefix: config.DEBEZIUM_TOPIC_PREFIX, tables: config.GLYMS_CDC_TABLES, groupId: `puente-bitrix-sync-${config.DEBEZIUM_TOPIC_PREFIX}`, logger });
    default: {
      const unexpected: never = config.GLYMS_CDC_MODE;
      throw new Error(`unknown GLYMS_CDC_MODE ${String(unexpected)}`);
    }
  }
}

/**
 * The companies consumer for a mapping: the contract's consumer for the demo table; for another table,
 * the same durable name suffixed with the table (a consumer's subjects cannot change under its name).
 */
export function companiesConsumer(mapping: CompanyMapping): ConsumerDefinition {
  const { schema, table } = parseTableName(mapping.table);
  if (schema === 'public' && table === 'cliente') return Consumers.bitrixCompanies;
  return { ...Consumers.bitrixCompanies, durable: `${Consumers.bitrixCompanies.durable}-${schema}_${table}`.replace(/[^A-Za-z0-9_-]/g, '_'), filterSubjects: [glymsTableSubjects(schema, table)] };
}

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

  constructor(private readonly deps: { bus: Bus; db: Db; logger: Logger; config: BitrixSyncConfig }) {
    this.mapping = loadCompanyMapping(deps.config.BITRIX_COMPANY_MAPPING);
    this.links = new ProjectionStore({ db: deps.db, bus: deps.bus, writers: 'exclusive', projection: linksProjection() });
    this.catalogLinks = new ProjectionStore({ db: deps.db, bus: deps.bus, writers: 'exclusive', projection: { ...linksProjection(), name: 'bitrix-links-catalog' } });
  }

  async start(): Promise<void> {
    const { bus, logger, config } = this.deps;
    await this.links.init();
    await this.catalogLinks.init();
    const missing = bitrixMissing(config);
    if (missing) logger.warn(`bitrix-sync relays ERP changes but does not push them: ${missing}`);
    else {
      this.client = await bitrixClientFrom({ config, bus, logger });
      // An idle install still rotates its refresh token before it expires (checked every 6 h, refreshed only when old).
      if (this.client.tokens) {
        const stopKeepAlive = keepRefreshTokenAlive(this.client.tokens, { logger });
        this.stops.push(async () => stopKeepAlive());
      }
      this.pusher = new CompanyPusher({ api: this.client, bus, links: this.links, mapping: this.mapping, logger });
    }
    if (this.client && config.BITRIX_CATALOG_INTERVAL_MS > 0) {
      const sync = new CatalogSync({ client: this.client, bus, databaseUrl: config.GLYMS_DATABASE_URL, query: config.BITRIX_CATALOG_QUERY, mapping: loadCatalogMapping(config.BITRIX_CATALOG_MAPPING), logger });
      const schedule = scheduleCatalogSync({ sync, intervalMs: config.BITRIX_CATALOG_INTERVAL_MS, logger });
      this.stops.push(async () => schedule.stop());
    }
    const source = await cdcSourceFrom({ ...this.deps, mapping: this.mapping });
    this.source = source;
    const { stop } = await startJetStreamService(this.module(source), { bus, service: 'bitrix-sync', logger });
    this.stops.push(stop);
    await source.start();
    this.stops.push(() => source.stop());
  }

  async stop(): Promise<void> {
    for (const stop of this.stops.splice(0).reverse()) await stop().catch((error: Error) => this.deps.logger.warn({ err: error.message }, 'stopping bitrix-sync'));
  }

  module(source: CdcSource): Type<unknown> {
    const controllers: Type<unknown>[] = [];
    const catalogHandler = projectionHandler(this.catalogLinks);
    @Controller()
    class CatalogLinksController {
      @OnJetStream(Consumers.bitrixLinks, { batch: true })
      apply(deliveries: Delivery[]): Promise<Outcome[]> {
        return catalogHandler(deliveries) as Promise<Outcome[]>;
      }
    }
    controllers.push(CatalogLinksController);
    const pusher = this.pusher;
    if (pusher !== undefined) {
      const push = (deliveries: Delivery[]) => pusher.handle(deliveries);
      @Controller()
      class CompaniesController {
        @OnJetStream(companiesConsumer(this.mapping), {
          batch: true,
          // Bitrix24 away for minutes is retried for about 14 minutes before a change reaches the DLQ; older retries never overwrite newer pushes (sourceSequence).
          runner: { batchSize: 1_000, lingerMs: this.deps.config.BITRIX_COALESCE_MS, ackWaitMs: 120_000, maxAttempts: 30, backoffMs: [1_000, 2_000, 5_000, 10_000, 30_000] },
        })
        push(deliveries: Delivery[]): Promise<Outcome[]> {
          return push(deliveries);
        }
      }
      controllers.push(CompaniesController);
    }
    if (source instanceof LogTableSource) {
      const logtable = source;
      @Controller()
      class LogOutcomesController {
        @OnJetStream(Consumers.glymsLogtableOutcomes, { batch: true })
        async record(deliveries: Delivery[]): Promise<Outcome[]> {
          const outcomes: Outcome[] = [];
          for (const delivery of deliveries) {
            try {
              await logtable.recordOutcome(decodeEvent(delivery.data));
              outcomes.push(Outcomes.ack);
            } catch (error) {
              outcomes.push(Outcomes.fromError(error));
            }
          }
          return outcomes;
        }
      }
      controllers.push(LogOutcomesController);
    }
    @Module({ controllers })
    class BitrixSyncModule {}
    return BitrixSyncModule;
  }
}

/**
 * Runs the service: waits for the lease, then starts the active part; gives it up and waits again if the
 * lease is lost. Returns a stop function (the service's, and tests').
 */
export async function startBitrixSync(deps: { bus: Bus; db: Db; logger: Logger; config: BitrixSyncConfig }): Promise<{ stop: () => Promise<void>; active: () => BitrixSyncApp | undefined }> {
  // One active replica per slot: two deployments on one bus (other slots) do not wait for each other.
  const lease = new Lease({ kv: await deps.bus.kv(LEASE_BUCKET, { history: 1 }), key: `active.${deps.config.GLYMS_CDC_SLOT}`, logger: deps.logger, ttlMs: deps.config.BITRIX_LEASE_TTL_MS });
  const abort = new AbortController();
  // Made before anything can abort, so a stop that comes while the active part is starting is not missed.
  const aborted = new Promise<void>((resolve) => abort.signal.addEventListener('abort', () => resolve(), { once: true }));
  let app: BitrixSyncApp | undefined;
  let running: Promise<void> = Promise.resolve();
  const cycle = async (): Promise<void> => {
    while (!abort.signal.aborted) {
      if (!(await lease.acquire(abort.signal)) || abort.signal.aborted) return;
      const lost = new Promise<void>((resolve) => lease.onLost(resolve));
      let current: BitrixSyncApp | undefined;
      try {
        current = new BitrixSyncApp(deps);
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
