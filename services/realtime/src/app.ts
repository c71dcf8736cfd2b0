import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { handleHealth, port, type Check, type Logger, type ServiceDefinition } from '@puente/runtime';

export const Config = z.object({
  REALTIME_PORT: port().default(8090),
});
export type GatewayConfig = z.infer<typeof Config>;

export interface GatewayOptions {
  logger: Logger;
  checks: Record<string, Check>;
}

/** Builds the realtime's HTTP server (not listening); tests call this, `main.ts` listens. */
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

export const service: ServiceDefinition<typeof Config, 'REALTIME_JWT_SECRET'> = {
  name: 'realtime',
  config: Config,
  secrets: ['REALTIME_JWT_SECRET'],
  mongo: true,
  async start({ config, logger, checks }) {
    const server = build({ logger, checks });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.REALTIME_PORT, '0.0.0.0', () => resolve());
    });
    return {
      urls: { dashboard: `http://127.0.0.1:${config.REALTIME_PORT}/`, websocket: `ws://127.0.0.1:${config.REALTIME_PORT}/ws` },
      stop: () => new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
    };
  },
};
