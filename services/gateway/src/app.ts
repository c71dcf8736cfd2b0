import type { Server } from 'node:http';
import type { Bus } from '@puente/bus';
import {
  createHttpServer,
  listen,
  RouteTable,
  TokenRevocations,
  type Check,
  type Logger,
  type ServiceDefinition,
} from '@puente/runtime';
import { commandRoutes } from './commands/commandRoutes.js';
import { Config, gatewaySecrets, GatewaySecrets, providerSettings, type GatewaySecretName } from './config.js';
import type { AnyProvider } from './webhooks/provider.js';
import { providers } from './webhooks/providers.js';
import { createWebhookReceiver } from './webhooks/receive.js';

/** What the gateway is built from: its collaborators, its secrets' values and its settings. */
export interface GatewayOptions {
  bus: Bus;
  logger: Logger;
  checks: Record<string, Check>;
  /** The values of every secret of the providers, `API_TOKENS` and `REALTIME_JWT_SECRET` (agents' tokens). */
  secrets: Readonly<Record<string, readonly string[]>>;
  maxBodyBytes: number;
  /** The webhook providers to receive (default: the built-in ones). */
  providers?: readonly AnyProvider[];
  /** Provider settings by provider name (default: each provider's defaults). */
  settings?: Readonly<Record<string, unknown>>;
  /** The clock (tests pin it). */
  now?: () => Date;
  /** Revoked agent tokens (default: the bus's `puente_token_revocations` bucket, answers cached 2 s). */
  revocations?: TokenRevocations;
}

/** Builds the gateway's HTTP server (not listening); tests call this, `main.ts` listens. */
export function build(options: GatewayOptions): Server {
  const now = options.now ?? (() => new Date());
  const list = options.providers ?? providers;
  const known = gatewaySecrets(list);
  const missing = Object.keys(known).filter((name) => options.secrets[name] === undefined);
  if (missing.length > 0) throw new Error(`the gateway needs the values of ${missing.join(', ')}`);
  const secret = (name: string) => options.secrets[name] ?? [];
  const receiver = createWebhookReceiver({
    bus: options.bus,
    logger: options.logger,
    providers: list,
    secret,
    settings: options.settings ?? {},
    devValues: new Set(Object.values(known)),
    maxBodyBytes: options.maxBodyBytes,
    now,
  });

  const routes = new RouteTable(
    [
      ...receiver.routes,
      ...commandRoutes({
        bus: options.bus,
        secret,
        now,
        revocations: options.revocations ?? new TokenRevocations(options.bus),
      }),
    ],
    {
      onProblem: (error, { requestId, path }) => {
        if (error.status >= 500) options.logger.warn({ requestId, code: error.code, err: error.cause }, error.message);
        else options.logger.info({ requestId, code: error.code, path }, error.message);
      },
    },
  );

  return createHttpServer({
    checks: options.checks,
    readyDetail: receiver.readyDetail,
    route: routes.route,
    onError: (error, requestId) => options.logger.error({ err: error, requestId }, 'request failed'),
  });
}

/** The gateway as the runtime runs it (`main.ts`): configuration, secrets, and a listening `build()`. */
export const service: ServiceDefinition<typeof Config, GatewaySecretName> = {
  name: 'gateway',
  config: Config,
  secrets: GatewaySecrets,
  mongo: false,
  async start({ config, logger, checks, bus, secrets }) {
    const http = await listen(
      build({
        bus,
        logger,
        checks,
        secrets,
        maxBodyBytes: config.WEBHOOK_MAX_BYTES,
        settings: providerSettings(config),
      }),
      config.GATEWAY_PORT,
    );
    return { urls: { webhooks: `http://127.0.0.1:${http.port}/webhooks/` }, stop: http.close };
  },
};
