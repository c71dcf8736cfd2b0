import { after, before } from 'node:test';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import type { Bus } from '@puente/bus';
import { connectTestBus } from '@puente/bus/testing';
import { build, type GatewaySecretName } from './app.js';
import type { HmacScheme } from './webhooks/inboxhub/inboxhub.js';

/** Obviously fake secrets for tests; the second value of each proves rotation. */
export const TEST_SECRETS: Record<GatewaySecretName, string[]> = {
  KISSFLOW_WEBHOOK_SECRET: ['test-kissflow-secret-current', 'test-kissflow-secret-previous'],
  INBOXHUB_WEBHOOK_SECRET: ['test-inboxhub-secret', 'whsec_dGVzdC1zdGFuZGFyZC13ZWJob29rcy1rZXktMDAx'],
  WHATSAPP_APP_SECRET: ['test-whatsapp-app-secret'],
  WHATSAPP_VERIFY_TOKEN: ['test-verify-token'],
  EVOLUTION_WEBHOOK_SECRET: ['test-evolution-secret'],
  WAHA_WEBHOOK_SECRET: ['test-waha-secret'],
  API_TOKENS: ['test-api-token'],
};

/** A gateway on a free loopback port against the given bus. */
export async function startTestGateway(bus: Bus, options: { maxBodyBytes?: number; inboxHubScheme?: HmacScheme } = {}): Promise<{ url: string; close: () => Promise<void> }> {
  const server = build({ bus, logger: pino({ level: 'silent' }), checks: { nats: () => bus.connected }, secrets: TEST_SECRETS, maxBodyBytes: options.maxBodyBytes ?? 4 * 1024 * 1024, ...(options.inboxHubScheme ? { inboxHubScheme: options.inboxHubScheme } : {}) });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** For a test file: a bus and a gateway started before its tests and stopped after them. */
export function useTestGateway(options: Parameters<typeof startTestGateway>[1] = {}): { readonly bus: Bus; readonly url: string } {
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
