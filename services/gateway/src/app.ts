import type { Server } from 'node:http';
import { z } from 'zod';
import type { Bus } from '@puente/bus';
import { bytes, createHttpServer, listen, port, RouteTable, type Check, type Logger, type ServiceDefinition } from '@puente/runtime';
import { commandRoutes } from './commands/commandRoutes.js';
import type { AnyProvider } from './webhooks/provider.js';
import { providers, type ProviderSecretName } from './webhooks/providers.js';
import { createWebhookReceiver } from './webhooks/receive.js';

export { providers, providerNamed, type ProviderName, type ProviderSecretName } from './webhooks/providers.js';
export type { AnyProvider, ProviderDescriptor, ProviderRoute, ProviderSample, ProviderSecret, ProviderSettings, VerifyContext } from './webhooks/provider.js';

/** The providers' own variables (Inbox Hub's signature scheme, say); the gateway reads them only through `providerSettings`. */
const providerVariables = Object.assign({}, ...providers.map((provider: AnyProvider) => provider.settings?.variables ?? {})) as Record<never, z.ZodType>;

/** The gateway's variables, and each provider's. */
export const Config = z.object({
  GATEWAY_PORT: port().default(8080),
  WEBHOOK_MAX_BYTES: bytes().default(4 * 1024 * 1024),
  ...providerVariables,
});
export type GatewayConfig = z.infer<typeof Config>;

/** The command API's bearer tokens: the gateway's one secret that belongs to no provider. */
const API_TOKENS_DEV = 'dev-api-token';

/** Every secret a gateway with these providers verifies with, each with its development value. */
export function gatewaySecrets(list: readonly AnyProvider[] = providers): Record<string, string> {
  return { ...Object.fromEntries(list.flatMap((provider) => provider.secrets.map((secret) => [secret.variable, secret.dev]))), API_TOKENS: API_TOKENS_DEV };
}

/** The built-in gateway's secrets and their development values (several values each during a rotation). */
export const GatewaySecrets = gatewaySecrets() as Record<GatewaySecretName, string>;
export type GatewaySecretName = ProviderSecretName | 'API_TOKENS';

export interface GatewayOptions {
  bus: Bus;
  logger: Logger;
  checks: Record<string, Check>;
  /** The values of every secret of the providers, and `API_TOKENS`. */
  secrets: Readonly<Record<string, readonly string[]>>;
  maxBodyBytes: number;
  /** The webhook providers to receive (default: the built-in ones). */
  providers?: readonly AnyProvider[];
  /** Provider settings by provider name (default: each provider's defaults). */
  settings?: Readonly<Record<string, unknown>>;
  /** The clock (tests pin it). */
  now?: () => Date;
}

/** Builds the gateway's HTTP server (not listening); tests call this, `main.ts` listens. */
export function build(options: GatewayOptions): Server {
  const now = options.now ?? (() => new Date());
  const list = options.providers ?? providers;
  const known = gatewaySecrets(list);
  const missing = Object.keys(known).filter((name) => options.secrets[name] === undefined);
  if (missing.length > 0) throw new Error(`the gateway needs the values of ${missing.join(', ')}`);
  const secret = (name: string) => options.secrets[name] ?? [];
  const receiver = createWebhookReceiver({ bus: options.bus, logger: options.logger, providers: list, secret, settings: options.settings ?? {}, devValues: new Set(Object.values(known)), maxBodyBytes: options.maxBodyBytes, now });

  const routes = new RouteTable([
    ...receiver.routes,
    ...commandRoutes({ bus: options.bus, secret, now }),
  ], {
    onProblem: (error, { requestId, path }) => {
      if (error.status >= 500) options.logger.warn({ requestId, code: error.code, err: error.cause }, error.message);
      else options.logger.info({ requestId, code: error.code, path }, error.message);
    },
  });

  return createHttpServer({
    checks: options.checks,
    readyDetail: receiver.readyDetail,
    route: routes.route,
    onError: (error, requestId) => options.logger.error({ err: error, requestId }, 'request failed'),
  });
}

/** Each provider's settings from the validated configuration. */
export function providerSettings(config: Readonly<Record<string, unknown>>, list: readonly AnyProvider[] = providers): Record<string, unknown> {
  return Object.fromEntries(list.flatMap((provider) => (provider.settings ? [[provider.name, provider.settings.read(config)]] : [])));
}

export const service: ServiceDefinition<typeof Config, GatewaySecretName> = {
  name: 'gateway',
  config: Config,
  secrets: GatewaySecrets,
  mongo: false,
  async start({ config, logger, checks, bus, secrets }) {
    const http = await listen(build({ bus, logger, checks, secrets, maxBodyBytes: config.WEBHOOK_MAX_BYTES, settings: providerSettings(config) }), config.GATEWAY_PORT);
    return { urls: { webhooks: `http://127.0.0.1:${http.port}/webhooks/` }, stop: http.close };
  },
};
