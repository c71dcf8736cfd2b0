import type { Logger } from 'pino';
import { z } from 'zod';
import type { Bus } from '@puente/bus';
import { duration, url } from '@puente/runtime';
import { BitrixClient } from './client.js';
import { BitrixNotConfiguredError } from './errors.js';
import { LeakyBucket } from './limiter.js';
import { BitrixTokenStore, TOKEN_BUCKET } from './tokens.js';

/** `https://<portal>/rest/<user id>/<code>/` (the `.json` method suffix is added per call). */
const webhookUrl = () =>
  url(['https', 'http']).refine(
    (value) => /\/rest\/\d+\/[^/]+\/?$/.test(new URL(value).pathname),
    'must be an inbound webhook URL such as https://<portal>/rest/<user id>/<code>/',
  );

/**
 * The Bitrix24 settings (environment variables), to merge into the service's config schema. Either
 * `BITRIX_WEBHOOK_URL`, or `BITRIX_PORTAL_URL` with `BITRIX_CLIENT_ID` and `BITRIX_CLIENT_SECRET` (OAuth:
 * authorize once with `npx puente bitrix auth-url`).
 */
export const BitrixSettings = z.object({
  BITRIX_PORTAL_URL: url(['https', 'http']).optional(),
  BITRIX_CLIENT_ID: z.string().min(1).optional(),
  BITRIX_CLIENT_SECRET: z.string().min(1).optional(),
  /** The OAuth token server (a local stand-in in tests). */
  BITRIX_OAUTH_URL: url(['https', 'http']).default('https://oauth.bitrix.info'),
  BITRIX_WEBHOOK_URL: webhookUrl().optional(),
  /** Requests the portal's leaky bucket holds (50; Enterprise plan 250). */
  BITRIX_RATE_BURST: z.coerce.number().int().min(1).max(10_000).default(50),
  /** Requests it drains per second (2; Enterprise plan 5). */
  BITRIX_RATE_PER_SECOND: z.coerce.number().positive().max(1_000).default(2),
  /** Per request; the cloud cuts requests at 60 s. */
  BITRIX_TIMEOUT_MS: duration().default(30_000),
  /** Extra attempts after a timeout, lost connection or 5xx. */
  BITRIX_RETRIES: z.coerce.number().int().min(0).max(20).default(3),
  /** The NATS key-value bucket holding the OAuth tokens (tests use their own, so they never touch a real install's). */
  BITRIX_TOKEN_BUCKET: z
    .string()
    .regex(/^[-\w]+$/, 'must be a bucket name (letters, digits, - and _)')
    .default(TOKEN_BUCKET),
  /** An idle install refreshes its refresh token when it is older than this. */
  BITRIX_REFRESH_TOKEN_MAX_AGE_DAYS: z.coerce.number().positive().max(365).default(25),
});
export type BitrixSettings = z.infer<typeof BitrixSettings>;

/** Says in one line what is missing to talk to Bitrix24, or undefined when the config is complete. */
export function bitrixMissing(config: Partial<BitrixSettings>): string | undefined {
  if (config.BITRIX_WEBHOOK_URL) return undefined;
  const missing = (['BITRIX_PORTAL_URL', 'BITRIX_CLIENT_ID', 'BITRIX_CLIENT_SECRET'] as const).filter(
    (name) => !config[name],
  );
  if (missing.length === 0) return undefined;
  return `Bitrix24 not configured: set BITRIX_WEBHOOK_URL, or BITRIX_PORTAL_URL, BITRIX_CLIENT_ID and BITRIX_CLIENT_SECRET (missing ${missing.join(', ')})`;
}

/** What the factories below take; `tokenBucket` overrides `BITRIX_TOKEN_BUCKET`. */
export interface BitrixDeps {
  config: BitrixSettings;
  bus: Bus;
  logger?: Logger;
  tokenBucket?: string;
}

/** The shared OAuth token store for this config (throws `BitrixNotConfiguredError` without an OAuth app). */
export async function bitrixTokenStoreFrom({
  config,
  bus,
  logger,
  tokenBucket,
}: BitrixDeps): Promise<BitrixTokenStore> {
  const missing = (['BITRIX_PORTAL_URL', 'BITRIX_CLIENT_ID', 'BITRIX_CLIENT_SECRET'] as const).filter(
    (name) => !config[name],
  );
  if (missing.length > 0)
    throw new BitrixNotConfiguredError(`Bitrix24 OAuth app not configured: set ${missing.join(', ')}`);
  return new BitrixTokenStore({
    kv: await bus.kv(tokenBucket ?? config.BITRIX_TOKEN_BUCKET, { history: 1 }),
    portalUrl: config.BITRIX_PORTAL_URL,
    oauthUrl: config.BITRIX_OAUTH_URL,
    clientId: config.BITRIX_CLIENT_ID!,
    clientSecret: config.BITRIX_CLIENT_SECRET!,
    timeoutMs: Math.min(config.BITRIX_TIMEOUT_MS, 15_000),
    refreshTokenMaxAgeMs: config.BITRIX_REFRESH_TOKEN_MAX_AGE_DAYS * 86_400_000,
    ...(logger ? { logger } : {}),
  });
}

/**
 * A client for this config: webhook mode when `BITRIX_WEBHOOK_URL` is set, else OAuth with tokens in
 * the bus's `bitrix_tokens` bucket. Throws `BitrixNotConfiguredError` (message from `bitrixMissing`).
 * Build one per process and share it, so that every caller goes through the same rate limiter.
 */
export async function bitrixClientFrom({
  config,
  bus,
  logger,
  tokenBucket,
  fence,
}: BitrixDeps & { fence?: () => Promise<void> }): Promise<BitrixClient> {
  const missing = bitrixMissing(config);
  if (missing) throw new BitrixNotConfiguredError(missing);
  const bucket = new LeakyBucket({ burst: config.BITRIX_RATE_BURST, drainPerSecond: config.BITRIX_RATE_PER_SECOND });
  const common = {
    bucket,
    timeoutMs: config.BITRIX_TIMEOUT_MS,
    retries: config.BITRIX_RETRIES,
    ...(logger ? { logger } : {}),
    ...(fence ? { fence } : {}),
  };
  if (config.BITRIX_WEBHOOK_URL)
    return new BitrixClient({ ...common, auth: { kind: 'webhook', url: config.BITRIX_WEBHOOK_URL } });
  const tokens = await bitrixTokenStoreFrom({
    config,
    bus,
    ...(logger ? { logger } : {}),
    ...(tokenBucket ? { tokenBucket } : {}),
  });
  return new BitrixClient({ ...common, auth: { kind: 'oauth', tokens, portalUrl: config.BITRIX_PORTAL_URL } });
}
