import type { Logger } from 'pino';
import type { Bus } from '@puente/bus';
import { DebeziumSource, LogicalSource, LogTableSource, parseTableName, type CdcSource } from '@puente/cdc';
import type { BitrixSyncConfig } from './config.js';
import type { CompanyMapping } from './companies/mapping.js';

/** KV bucket of the relay's slot state. */
export const CDC_BUCKET = 'glyms_cdc';

/** The CDC relay of the configured mode. */
export async function cdcSourceFrom(deps: {
  bus: Bus;
  config: BitrixSyncConfig;
  logger: Logger;
  mapping?: CompanyMapping;
}): Promise<CdcSource> {
  const { bus, config, logger } = deps;
  const tables = config.GLYMS_CDC_TABLES.map(parseTableName);
  switch (config.GLYMS_CDC_MODE) {
    case 'logical':
      return new LogicalSource({
        bus,
        kv: await bus.kv(CDC_BUCKET, { history: 1 }),
        databaseUrl: config.GLYMS_DATABASE_URL,
        tables,
        publication: config.GLYMS_CDC_PUBLICATION,
        slot: config.GLYMS_CDC_SLOT,
        logger,
        lagWarnBytes: config.GLYMS_SLOT_LAG_WARN_BYTES,
      });
    case 'logtable':
      // The change log's id_cliente points at the companies mapping's table.
      return new LogTableSource({
        bus,
        databaseUrl: config.GLYMS_DATABASE_URL,
        logger,
        pollMs: config.GLYMS_LOGTABLE_POLL_MS,
        ...(deps.mapping ? { customerTable: parseTableName(deps.mapping.table) } : {}),
      });
    case 'debezium':
      if (!config.KAFKA_BROKERS?.length) throw new Error('GLYMS_CDC_MODE=debezium needs KAFKA_BROKERS');
      return new DebeziumSource({
        bus,
        brokers: config.KAFKA_BROKERS,
        topicPrefix: config.DEBEZIUM_TOPIC_PREFIX,
        tables: config.GLYMS_CDC_TABLES,
        groupId: `puente-bitrix-sync-${config.DEBEZIUM_TOPIC_PREFIX}`,
        logger,
      });
    default: {
      const unexpected: never = config.GLYMS_CDC_MODE;
      throw new Error(`unknown GLYMS_CDC_MODE ${String(unexpected)}`);
    }
  }
}
