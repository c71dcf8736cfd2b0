import type { Server } from 'node:http';
import { z } from 'zod';
import { bytes, createHttpServer, listen, port, type Check, type Logger, type ServiceDefinition } from '@puente/runtime';

export const Config = z.object({
  GATEWAY_PORT: port().default(8080),
  WEBHOOK_MAX_BYTES: bytes().default(4 * 1024 * 1024),
});
export type GatewayConfig = z.infer<typeof Config>;

export interface GatewayOptions {
  logger: Logger;
  checks: Record<string, Check>;
}

/** Builds the gateway's HTTP server (not listening); tests call this, `main.ts` listens. */
export function build(options: GatewayOptions): Server {
  return createHttpServer({ checks: options.checks, onError: (error, requestId) => options.logger.error({ err: error, requestId }, 'request failed') });
}

/** Every secret the gateway verifies with; several values each during a rotation. */
export const GatewaySecrets = ['KISSFLOW_WEBHOOK_SECRET', 'INBOXHUB_WEBHOOK_SECRET', 'WHATSAPP_APP_SECRET', 'WHATSAPP_VERIFY_TOKEN', 'EVOLUTION_WEBHOOK_SECRET', 'WAHA_WEBHOOK_SECRET', 'API_TOKENS'] as const;

export const service: ServiceDefinition<typeof Config, (typeof GatewaySecrets)[number]> = {
  name: 'gateway',
  config: Config,
  secrets: GatewaySecrets,
  mongo: false,
  async start({ config, logger, checks }) {
    const http = await listen(build({ logger, checks }), config.GATEWAY_PORT);
    return { urls: { webhooks: `http://127.0.0.1:${http.port}/webhooks/` }, stop: http.close };
  },
};
