import { context, metrics, propagation } from '@opentelemetry/api';
import { z } from 'zod';
import { SpanKind, withSpan, type Bus } from '@puente/bus';
import { StreamNames } from '@puente/contracts';
import { sendJson, type Logger } from '@puente/runtime';
import { ContractViolationError, GatewayError } from '../http/errors.js';
import { readBody, safeHeaders } from '../http/body.js';
import { compilePath, type Handler, type RouteEntry } from '../router.js';
import { contractViolation, type Normalized, type WebhookRequest } from './delivery.js';
import type { AnyProvider, VerifyContext } from './provider.js';
import { publishNormalized, storeRaw } from './publish.js';

/** What receiving webhooks needs from the gateway. */
export interface ReceiverOptions {
  bus: Bus;
  logger: Logger;
  providers: readonly AnyProvider[];
  /** The configured values of a secret (throws for one the gateway was not given). */
  secret: (variable: string) => readonly string[];
  /** Each provider's settings by name; a provider missing here uses its defaults. */
  settings: Readonly<Record<string, unknown>>;
  /** Values that are development secrets (`/readyz` says so). */
  devValues: ReadonlySet<string>;
  maxBodyBytes: number;
  now: () => Date;
}

/** Receiving webhooks: one route entry per provider path, and the `/readyz` provider detail. */
export interface WebhookReceiver {
  routes: RouteEntry[];
  readyDetail: () => Promise<Record<string, unknown>>;
}

/** Every provider's routes (verify, keep, normalize, publish, answer), the delivery metric and `/readyz`'s provider detail. */
export function createWebhookReceiver(options: ReceiverOptions): WebhookReceiver {
  const { bus, logger, now } = options;
  /** When this gateway last stored a delivery from each provider (`/readyz` detail; seeded from WEBHOOKS_RAW once). */
  const lastDelivery = new Map<string, string>();
  let seeded: Promise<void> | undefined;
  const seed = () => (seeded ??= (async () => {
    for (const { name } of options.providers) {
      const message = await bus.jsm.streams.getMessage(StreamNames.WEBHOOKS_RAW, { last_by_subj: `raw.${name}` }).catch(() => undefined);
      if (message && !lastDelivery.has(name)) lastDelivery.set(name, message.time.toISOString());
    }
  })().catch(() => (seeded = undefined)));

  const deliveries = metrics.getMeter('puente-gateway').createCounter('puente.webhooks', { description: 'webhook deliveries by provider and outcome (accepted, duplicate, unauthorized, invalid, too_large, unavailable, error)' });
  const outcomeOf = (error: unknown) => {
    if (!(error instanceof GatewayError)) return 'error';
    return error.status === 401 ? 'unauthorized' : error.status === 413 ? 'too_large' : error.status === 503 ? 'unavailable' : error.status < 500 ? 'invalid' : 'error';
  };
  const contextOf = (provider: AnyProvider): VerifyContext<unknown> => ({ secret: options.secret, settings: options.settings[provider.name] ?? provider.settings?.defaults, now: now() });

  const webhook = (provider: AnyProvider): Handler => async (req, res, requestId, params) => {
    try {
      // The trace of a delivery starts here (or continues the sender's `traceparent`): publish, consumer,
      // read-model writes, change notice and realtime push all carry it.
      const duplicate = await withSpan(`webhook ${provider.name}`, {
        kind: SpanKind.SERVER,
        parent: propagation.extract(context.active(), req.headers),
        attributes: { 'http.request.method': req.method ?? 'POST', 'url.path': (req.url ?? '').split('?')[0]!, 'puente.provider': provider.name, 'puente.request_id': requestId },
      }, () => deliver(provider, req, res, requestId, params));
      deliveries.add(1, { provider: provider.name, outcome: duplicate ? 'duplicate' : 'accepted' });
    } catch (error) {
      deliveries.add(1, { provider: provider.name, outcome: outcomeOf(error) });
      throw error;
    }
  };

  /** Verifies, keeps, normalizes, publishes and answers one delivery; true when every event was a duplicate. */
  const deliver = async (provider: AnyProvider, req: Parameters<Handler>[0], res: Parameters<Handler>[1], requestId: string, params: Record<string, string>): Promise<boolean> => {
    const body = await readBody(req, options.maxBodyBytes);
    const request: WebhookRequest = { provider: provider.name, params, headers: req.headers, body, receivedAt: now() };
    const verified = await provider.verify(request, contextOf(provider));
    // The raw copy and the events are independent: both must be acked before the 200, in any order,
    // so they go out together (one round trip, not two). A body that cannot be normalized is answered
    // only once its raw copy is stored.
    const raw = storeRaw(bus, request, safeHeaders(req), requestId);
    raw.catch(() => undefined);
    let normalized: Normalized;
    try {
      normalized = provider.normalize(request, verified);
    } catch (error) {
      await raw;
      // The body is verified and already kept in WEBHOOKS_RAW; what the normalizer cannot read is the
      // sender's input, answered 400 (a 5xx would make the provider retry it forever) and logged for a fix.
      if (error instanceof GatewayError) throw error;
      if (error instanceof z.ZodError) throw contractViolation(`${provider.name} delivery`, error);
      logger.error({ err: error, requestId, provider: provider.name }, 'a verified delivery could not be normalized; it is kept in WEBHOOKS_RAW');
      throw new ContractViolationError(`the ${provider.name} delivery could not be read: ${(error as Error).message}`, []);
    }
    const [, result] = await Promise.all([raw, publishNormalized(bus, normalized)]);
    lastDelivery.set(provider.name, request.receivedAt.toISOString());
    sendJson(res, 200, { ...result, requestId });
    return result.accepted.length > 0 && result.accepted.every((a) => a.duplicate);
  };

  const routes: RouteEntry[] = [];
  for (const provider of options.providers) {
    const byPath = new Map<string, RouteEntry>();
    for (const route of provider.routes) {
      let entry = byPath.get(route.path);
      if (!entry) byPath.set(route.path, (entry = { ...compilePath(route.path), methods: {} }));
      entry.methods[route.method] = route.method === 'POST'
        ? webhook(provider)
        : async (req, res) => {
          const answer = route.answer(req.url ?? '', contextOf(provider));
          res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
          res.end(answer);
        };
    }
    routes.push(...byPath.values());
  }

  return {
    routes,
    readyDetail: async () => {
      await seed();
      return {
        providers: Object.fromEntries(options.providers.map((provider) => [provider.name, {
          secret: options.secret(provider.secrets[0].variable).some((value) => options.devValues.has(value)) ? 'development value' : 'configured',
          lastDeliveryAt: lastDelivery.get(provider.name) ?? null,
        }])),
      };
    },
  };
}
