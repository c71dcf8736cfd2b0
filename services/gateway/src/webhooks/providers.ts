import { evolutionProvider } from './evolution/evolutionProvider.js';
import { inboxHubProvider } from './inboxhub/inboxHubProvider.js';
import { kissflowProvider } from './kissflow/kissflowProvider.js';
import type { AnyProvider } from './provider.js';
import { wahaProvider } from './waha/wahaProvider.js';
import { whatsappCloudProvider } from './whatsapp-cloud/whatsappCloudProvider.js';

/**
 * The webhook providers the gateway receives, in one list: it drives the routes, `/readyz`, the metric
 * labels, WEBHOOKS_RAW re-normalizing, `send-sample`, the test and development secrets and the CLI.
 * A new provider is a folder under `webhooks/` exporting one descriptor, plus one line here.
 */
export const providers = [
  kissflowProvider,
  inboxHubProvider,
  evolutionProvider,
  wahaProvider,
  whatsappCloudProvider,
] as const satisfies readonly AnyProvider[];

/** The name of a built-in provider (`raw.<name>` in WEBHOOKS_RAW). */
export type ProviderName = (typeof providers)[number]['name'];

/** Every secret variable of the built-in providers. */
export type ProviderSecretName = (typeof providers)[number]['secrets'][number]['variable'];

/** The provider of that name in the list, or undefined. */
export function providerNamed(name: string, list: readonly AnyProvider[] = providers): AnyProvider | undefined {
  return list.find((provider) => provider.name === name);
}
