import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { z } from 'zod';
import { type ServiceDefinition, url } from '@puente/runtime';
import { startJetStreamService } from '@puente/nest-jetstream';

/** WhatsApp projections, full sync and commands. */
@Module({})
export class WhatsappModule {}

export const Config = z.object({
  INBOXHUB_API_URL: url(['https', 'http']).optional(),
  INBOXHUB_API_KEY: z.string().optional(),
  INBOXHUB_EMAIL: z.string().optional(),
  INBOXHUB_PASSWORD: z.string().optional(),
  WHATSAPP_ACCESS_TOKEN: z.string().optional(),
  WHATSAPP_GRAPH_URL: url(['https', 'http']).default('https://graph.facebook.com/v21.0'),
});

export const service: ServiceDefinition<typeof Config> = {
  name: 'whatsapp',
  config: Config,
  mongo: true,
  healthPort: { variable: 'HEALTH_PORT', default: 8082 },
  async start({ bus, logger }) {
    const { stop } = await startJetStreamService(WhatsappModule, { bus, service: 'whatsapp', logger });
    return { stop };
  },
};
