import type { AnyProvider, SignedSample } from './webhooks/provider.js';
import { providerNamed, providers, type ProviderName } from './webhooks/providers.js';

/** The providers `send-sample` and the property tests know. */
export const SampleProviders: readonly ProviderName[] = providers.map((provider) => provider.name);
export type SampleProvider = ProviderName;

/** Each provider's signing secret (the value of its first secret), by provider name. */
export type SampleSecrets = Readonly<Partial<Record<string, string>>>;

/**
 * Each provider's signing secret: the value `lookup` finds for its variable (the environment's, say),
 * else the provider's development value.
 */
export function sampleSecrets(
  lookup: (variable: string) => string | undefined = () => undefined,
  list: readonly AnyProvider[] = providers,
): Record<string, string> {
  return Object.fromEntries(
    list.map((provider) => [provider.name, lookup(provider.secrets[0].variable) ?? provider.secrets[0].dev]),
  );
}

function provider(name: string, list: readonly AnyProvider[]): AnyProvider {
  const found = providerNamed(name, list);
  if (!found) throw new Error(`no provider ${name}: ${list.map((p) => p.name).join(', ')}`);
  return found;
}

/** A realistic delivery body for a provider (n varies ids and text). */
export function sampleBody(
  name: string,
  n: number,
  now = new Date(),
  list: readonly AnyProvider[] = providers,
): unknown {
  return provider(name, list).sample.body(n, now);
}

/** Serializes and signs a body the way the provider does; `params` fill the route's path parameters (a Kissflow dataset). */
export function signSample(
  name: string,
  body: unknown,
  secrets: SampleSecrets,
  options: { params?: Record<string, string>; now?: Date; providers?: readonly AnyProvider[] } = {},
): SignedSample {
  const secret = secrets[name];
  if (secret === undefined) throw new Error(`no sample secret for ${name}`);
  const { sample } = provider(name, options.providers ?? providers);
  const raw = sample.serialize ? sample.serialize(body) : JSON.stringify(body);
  return { ...sample.sign(raw, secret, { now: options.now ?? new Date(), params: options.params ?? {} }), body: raw };
}
