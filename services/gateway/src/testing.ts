import { after, before } from 'node:test';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import type { Bus } from '@puente/bus';
import { connectTestBus } from '@puente/bus/testing';
import { build } from './app.js';
import type { GatewaySecretName } from './config.js';
import { sampleSecrets } from './samples.js';
import type { AnyProvider } from './webhooks/provider.js';
import { providers, type ProviderName } from './webhooks/providers.js';

export { echoProvider } from './testing/echoProvider.js';

/** The command API's test token (a secret that belongs to no provider). */
const API_TOKENS = ['test-api-token'];

/** The key of agents' access tokens in tests: the same value as realtime's test key, so both accept one token. */
export const TEST_AGENT_TOKEN_SECRET = 'test-realtime-secret-not-real';

/** The test values of every secret of these providers (the second value of some proves rotation), `API_TOKENS` and `REALTIME_JWT_SECRET`. */
export function testSecrets(list: readonly AnyProvider[] = providers): Record<string, string[]> {
  return {
    ...Object.fromEntries(
      list.flatMap((provider) => provider.secrets.map((secret) => [secret.variable, [...secret.test]])),
    ),
    API_TOKENS,
    REALTIME_JWT_SECRET: [TEST_AGENT_TOKEN_SECRET],
  };
}

/** Obviously fake secrets for tests, from the provider descriptors; the second value of some proves rotation. */
export const TEST_SECRETS = testSecrets() as Record<GatewaySecretName, string[]>;

/** Each built-in provider's first test secret, by provider name, for `signSample`. */
export const TEST_SAMPLE_SECRETS = sampleSecrets(
  (variable) => TEST_SECRETS[variable as GatewaySecretName]?.[0],
) as Record<ProviderName, string>;

export interface TestGatewayOptions {
  maxBodyBytes?: number;
  /** Provider settings by provider name (Inbox Hub's HMAC scheme, say). */
  settings?: Readonly<Record<string, unknown>>;
  /** The providers to receive (default: the built-in ones); their test secrets are configured. */
  providers?: readonly AnyProvider[];
}

/** A gateway on a free loopback port against the given bus. */
export async function startTestGateway(
  bus: Bus,
  options: TestGatewayOptions = {},
): Promise<{ url: string; close: () => Promise<void> }> {
  const server = build({
    bus,
    logger: pino({ level: 'silent' }),
    checks: { nats: () => bus.connected },
    secrets: testSecrets(options.providers),
    maxBodyBytes: options.maxBodyBytes ?? 4 * 1024 * 1024,
    ...(options.settings ? { settings: options.settings } : {}),
    ...(options.providers ? { providers: options.providers } : {}),
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** For a test file: a bus and a gateway started before its tests and stopped after them. */
export function useTestGateway(options: TestGatewayOptions = {}): { readonly bus: Bus; readonly url: string } {
  let bus: Bus | undefined;
  let gateway: { url: string; close: () => Promise<void> } | undefined;
  before(async () => {
    bus = await connectTestBus();
    gateway = await startTestGateway(bus, options);
  });
  after(async () => {
    await gateway?.close();
    await bus?.close();
  });
  return {
    get bus() {
      return bus!;
    },
    get url() {
      return gateway!.url;
    },
  };
}
