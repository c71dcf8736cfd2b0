/**
 * The gateway's public surface: what the CLI, the benchmarks and the end-to-end tests use. Everything
 * else under `src/` is private; fixtures and the test gateway are in `./testing`.
 */

// Building and running the gateway.
export { build, service, type GatewayOptions } from './app.js';
export {
  Config,
  GatewaySecrets,
  gatewaySecrets,
  providerSettings,
  type GatewayConfig,
  type GatewaySecretName,
} from './config.js';

// The webhook providers: one descriptor each, in one list.
export { providers, providerNamed, type ProviderName, type ProviderSecretName } from './webhooks/providers.js';
export type {
  AnyProvider,
  ProviderDescriptor,
  ProviderRoute,
  ProviderSample,
  ProviderSecret,
  ProviderSettings,
  SignedRequest,
  SignedSample,
  VerifyContext,
} from './webhooks/provider.js';
export type { Normalized, NormalizedEvent, RawDelivery, WebhookRequest } from './webhooks/delivery.js';

// Realistic, correctly signed deliveries (`puente send-sample`, benchmarks, end-to-end tests).
export {
  SampleProviders,
  sampleBody,
  sampleSecrets,
  signSample,
  type SampleProvider,
  type SampleSecrets,
} from './samples.js';
export { metaSerialize } from './webhooks/whatsapp-cloud/whatsappCloudProvider.js';

// The verified bodies kept in WEBHOOKS_RAW (`puente webhooks list|show|redeliver`).
export { getRawDelivery, listRawDeliveries, redeliver, renormalize } from './webhooks/raw.js';
export type { Accepted } from './webhooks/publish.js';

// Inbox Hub's verifier and normalizer on their own (the benchmark's raw JetStream baseline pays the normalizer's cost).
export {
  DEFAULT_INBOXHUB_SCHEME,
  normalizeInboxHub,
  verifyInboxHub,
  type HmacScheme,
} from './webhooks/inboxhub/inboxhub.js';
