import type { Server } from 'node:http';
import { z } from 'zod';
import { createHttpServer, listen, port, type Check, type Logger, type ServiceDefinition } from '@puente/runtime';

export const Config = z.object({
  REALTIME_PORT: port().default(8090),
});
export type RealtimeConfig = z.infer<typeof Config>;

export interface RealtimeOptions {
  logger: Logger;
  checks: Record<string, Check>;
}

/** Builds the realtime HTTP server (not listening); tests call this, `main.ts` listens. */
export function build(options: RealtimeOptions): Server {
  return createHttpServer({ checks: options.checks, onError: (error, requestId) => options.logger.error({ err: error, requestId }, 'request failed') });
}

export const service: ServiceDefinition<typeof Config, 'REALTIME_JWT_SECRET'> = {
  name: 'realtime',
  config: Config,
  secrets: ['REALTIME_JWT_SECRET'],
  mongo: true,
  async start({ config, logger, checks }) {
    const http = await listen(build({ logger, checks }), config.REALTIME_PORT);
    return { urls: { dashboard: `http://127.0.0.1:${http.port}/`, websocket: `ws://127.0.0.1:${http.port}/ws` }, stop: http.close };
  },
};
