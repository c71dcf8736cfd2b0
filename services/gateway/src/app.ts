import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { bytes, handleHealth, port, type Check, type Logger, type ServiceDefinition } from '@puente/runtime';

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
  return createServer((req, res) => {
    const requestId = (req.headers['x-request-id'] as string | undefined) ?? randomUUID();
    res.setHeader('x-request-id', requestId);
    void route(req, res, options).catch((error: unknown) => {
      options.logger.error({ err: error, requestId }, 'request failed');
      if (!res.headersSent) send(res, 500, { error: 'internal', requestId });
    });
  });
}

async function route(req: IncomingMessage, res: ServerResponse, options: GatewayOptions): Promise<void> {
  if (await handleHealth(req, res, options.checks)) return;
  send(res, 404, { error: 'not_found', message: `no route for ${req.method} ${(req.url ?? '').split('?')[0]}`, requestId: res.getHeader('x-request-id') });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** Every secret the gateway verifies with; several values each during a rotation. */
export const GatewaySecrets = ['KISSFLOW_WEBHOOK_SECRET', 'INBOXHUB_WEBHOOK_SECRET', 'WHATSAPP_APP_SECRET', 'WHATSAPP_VERIFY_TOKEN', 'EVOLUTION_WEBHOOK_SECRET', 'WAHA_WEBHOOK_SECRET', 'API_TOKENS'] as const;

export const service: ServiceDefinition<typeof Config, (typeof GatewaySecrets)[number]> = {
  name: 'gateway',
  config: Config,
  secrets: GatewaySecrets,
  mongo: false,
  async start({ config, logger, checks }) {
    const server = build({ logger, checks });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.GATEWAY_PORT, '0.0.0.0', () => resolve());
    });
    return {
      urls: { webhooks: `http://127.0.0.1:${config.GATEWAY_PORT}/webhooks/` },
      stop: () => new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
    };
  },
};
