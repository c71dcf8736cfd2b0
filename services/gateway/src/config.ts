import { z } from 'zod';
import { bytes, DevSecrets, port } from '@puente/runtime';
import type { AnyProvider } from './webhooks/provider.js';
import { providers, type ProviderSecretName } from './webhooks/providers.js';

/** The providers' own variables (Inbox Hub's signature scheme, say); the gateway reads them only through `providerSettings`. */
const providerVariables = Object.assign(
  {},
  ...providers.map((provider: AnyProvider) => provider.settings?.variables ?? {}),
) as Record<never, z.ZodType>;

/** The gateway's variables, and each provider's. */
export const Config = z.object({
  GATEWAY_PORT: port().default(8080),
  WEBHOOK_MAX_BYTES: bytes().default(4 * 1024 * 1024),
  ...providerVariables,
});
export type GatewayConfig = z.infer<typeof Config>;

/** Each provider's settings from the validated configuration. */
export function providerSettings(
  config: Readonly<Record<string, unknown>>,
  list: readonly AnyProvider[] = providers,
): Record<string, unknown> {
  return Object.fromEntries(
    list.flatMap((provider) => (provider.settings ? [[provider.name, provider.settings.read(config)]] : [])),
  );
}

/** The command API's bearer tokens: a secret that belongs to no provider. */
const API_TOKENS_DEV = 'dev-api-token';

/** Every secret a gateway with these providers verifies with, each with its development value. */
export function gatewaySecrets(list: readonly AnyProvider[] = providers): Record<string, string> {
  return {
    ...Object.fromEntries(list.flatMap((provider) => provider.secrets.map((secret) => [secret.variable, secret.dev]))),
    API_TOKENS: API_TOKENS_DEV,
    // Agents' access tokens (realtime's key) are accepted by the command API too.
    REALTIME_JWT_SECRET: DevSecrets.REALTIME_JWT_SECRET,
  };
}

/** The built-in gateway's secrets and their development values (several values each during a rotation). */
export const GatewaySecrets = gatewaySecrets() as Record<GatewaySecretName, string>;
export type GatewaySecretName = ProviderSecretName | 'API_TOKENS' | 'REALTIME_JWT_SECRET';
