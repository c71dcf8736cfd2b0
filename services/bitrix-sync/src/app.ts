import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { z } from 'zod';
import { type ServiceDefinition, url, list } from '@puente/runtime';
import { startJetStreamService } from '@puente/nest-jetstream';

/** Glyms CDC in, Bitrix24 companies and catalog out. */
@Module({})
export class BitrixSyncModule {}

export const Config = z.object({
  GLYMS_DATABASE_URL: url(['postgres', 'postgresql']).default('postgres://postgres@127.0.0.1:5432/glyms'),
  GLYMS_CDC_MODE: z.enum(['logical', 'logtable', 'debezium']).default('logical'),
  KAFKA_BROKERS: list().optional(),
  DEBEZIUM_TOPIC_PREFIX: z.string().optional(),
  BITRIX_PORTAL_URL: url(['https', 'http']).optional(),
  BITRIX_CLIENT_ID: z.string().optional(),
  BITRIX_CLIENT_SECRET: z.string().optional(),
  BITRIX_OAUTH_URL: url(['https', 'http']).default('https://oauth.bitrix.info'),
  BITRIX_WEBHOOK_URL: url(['https', 'http']).optional(),
});

export const service: ServiceDefinition<typeof Config> = {
  name: 'bitrix-sync',
  config: Config,
  mongo: true,
  healthPort: { variable: 'HEALTH_PORT', default: 8083 },
  async start({ bus, logger, config }) {
    if (!config.BITRIX_WEBHOOK_URL && !(config.BITRIX_PORTAL_URL && config.BITRIX_CLIENT_ID && config.BITRIX_CLIENT_SECRET)) {
      logger.warn('idle: set BITRIX_WEBHOOK_URL, or BITRIX_PORTAL_URL with BITRIX_CLIENT_ID and BITRIX_CLIENT_SECRET, to sync with Bitrix24');
    }
    const { stop } = await startJetStreamService(BitrixSyncModule, { bus, service: 'bitrix-sync', logger });
    return { stop };
  },
};
