import type { z } from 'zod';
import type { Normalized, RawDelivery, WebhookRequest } from './delivery.js';

/**
 * One secret a provider is verified with. Its variable holds one value, or several comma-separated
 * during a rotation; `npm start` and tests use the development and test values.
 */
export interface ProviderSecret {
  /** The environment variable, e.g. `KISSFLOW_WEBHOOK_SECRET`. */
  readonly variable: string;
  /** The obviously fake value used outside production when the variable is unset. */
  readonly dev: string;
  /** Values the gateway's tests configure; two or more prove rotation. */
  readonly test: readonly string[];
}

/** What `verify` and a handshake get besides the request. */
export interface VerifyContext<S> {
  /** The configured values of one of the provider's secrets (several during a rotation). */
  secret(variable: string): readonly string[];
  /** The provider's own settings (from its configuration variables, or its defaults). */
  readonly settings: S;
  /** The gateway's clock (tests pin it). */
  readonly now: Date;
}

/** A route that receives deliveries: verify, keep in WEBHOOKS_RAW, normalize, publish, answer 200. */
export interface DeliveryRoute {
  readonly method: 'POST';
  /**
   * The path: literal segments, `:name` parameters (`[^/]+`), `:name(regex)` for a narrower one, and a
   * trailing `?` for an optional last segment (`/webhooks/evolution/:event([a-z0-9-]+)?`).
   */
  readonly path: string;
}

/** A subscription handshake (Meta's GET verification): answers 200 with plain text, or throws an HttpError. */
export interface HandshakeRoute<S> {
  readonly method: 'GET';
  readonly path: string;
  answer(url: string, context: VerifyContext<S>): string;
}

export type ProviderRoute<S> = DeliveryRoute | HandshakeRoute<S>;

/** Where and with which headers to send a body the provider signed. */
export interface SignedRequest {
  path: string;
  headers: Record<string, string>;
}

/** A signed HTTP request, ready to send. */
export interface SignedSample extends SignedRequest {
  body: string;
}

/** What `send-sample`, the property tests and the benchmarks send: a realistic body, signed as the provider signs. */
export interface ProviderSample {
  /** A realistic delivery body (`n` varies ids and text). */
  body(n: number, now: Date): unknown;
  /** The body's text as the provider serializes it (Meta escapes non-ASCII); `JSON.stringify` when absent. */
  serialize?(body: unknown): string;
  /**
   * Signs exactly these bytes the way the provider does, with the value of its first secret: the path
   * and headers to send them with (`params` fill the route's path parameters). The property tests sign
   * any bytes at all with it.
   */
  sign(
    raw: string | Uint8Array,
    secret: string,
    options: { now: Date; params: Readonly<Record<string, string>> },
  ): SignedRequest;
  /**
   * Whether the signature covers the body (an HMAC does). A bearer secret or a JWT (Kissflow, Evolution)
   * does not: a body changed in transit is then another delivery, not a forgery.
   */
  readonly signsBody: boolean;
}

/** Provider-specific configuration (Inbox Hub's HMAC scheme, say), read once at start-up. */
export interface ProviderSettings<S> {
  /** Its variables, merged into the gateway's configuration (a bad value stops the gateway naming it). */
  readonly variables: z.ZodRawShape;
  /** The settings from the validated configuration. */
  read(config: Readonly<Record<string, unknown>>): S;
  /** The settings of a gateway built without configuration (tests, benchmarks). */
  readonly defaults: S;
}

/**
 * Everything the gateway, the raw-delivery tools, `send-sample`, the tests and the CLI know about one
 * webhook provider. `S` is its settings, `V` what `verify` hands to `normalize` (a delivery id, say).
 * Methods, not function properties: a list of providers with different `S` and `V` is one type.
 */
export interface ProviderDescriptor<S = undefined, V = void> {
  /** The `raw.<name>` subject token in WEBHOOKS_RAW, the metric and `/readyz` label, the CLI's name. */
  readonly name: string;
  readonly routes: readonly ProviderRoute<S>[];
  /** Its secrets; the first is the one it signs deliveries with (`/readyz` reports on it, samples sign with it). */
  readonly secrets: readonly [ProviderSecret, ...ProviderSecret[]];
  readonly settings?: ProviderSettings<S>;
  /** Checks the credentials on the raw bytes, before any parsing; what it returns goes to `normalize`. */
  verify(request: WebhookRequest, context: VerifyContext<S>): V | Promise<V>;
  /** The verified delivery as domain events (an HttpError or ZodError for what it cannot read). */
  normalize(request: WebhookRequest, verified: V): Normalized;
  /** A kept copy through the normalizer again (not verified again: it was when it arrived). */
  renormalize(raw: RawDelivery): Normalized;
  /**
   * Credentials the provider writes into its bodies (Evolution's instance `apikey`), besides the
   * configured secrets: the copy kept in WEBHOOKS_RAW has them redacted.
   */
  credentialsIn?(body: Buffer): string[];
  readonly sample: ProviderSample;
}

/** Any provider, whatever its settings and verification result. */
export type AnyProvider = ProviderDescriptor<unknown, unknown>;
