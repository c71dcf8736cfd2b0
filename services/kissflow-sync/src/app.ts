import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { z } from 'zod';
import { type ServiceDefinition, url } from '@puente/runtime';
import { startJetStreamService } from '@puente/nest-jetstream';

/** Kissflow dataset projections; backfill and reconciliation from the Kissflow REST API. */
@Module({})
export class KissflowSyncModule {}

export const Config = z.object({
  KISSFLOW_BASE_URL: url(['https', 'http']).optional(),
  KISSFLOW_ACCOUNT_ID: z.string().optional(),
  KISSFLOW_ACCESS_KEY_ID: z.string().optional(),
  KISSFLOW_ACCESS_KEY_SECRET: z.string().optional(),
});

export const service: ServiceDefinition<typeof Config> = {
  name: 'kissflow-sync',
  config: Config,
  mongo: true,
  healthPort: { variable: 'HEALTH_PORT', default: 8081 },
  async start({ bus, logger }) {
    const { stop } = await startJetStreamService(KissflowSyncModule, { bus, service: 'kissflow-sync', logger });
    return { stop };
  },
};
