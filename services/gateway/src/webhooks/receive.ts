import type { IncomingMessage, ServerResponse } from 'node:http';
import { context, metrics, propagation } from '@opentelemetry/api';
import { z } from 'zod';
import { SpanKind, withSpan, type Bus } from '@puente/bus';
import { StreamNames } from '@puente/contracts';
import { HttpError, problemOutcome, sendJson, type Logger, type RouteHandler, type RouteSpec } from '@puente/runtime';
import { ContractViolationError } from '../http/errors.js';
import { readBody, safeHeaders } from '../http/body.js';
import { contractViolation, type Normalized, type WebhookRequest } from './delivery.js';
import type { AnyProvider, VerifyContext } from './provider.js';
import { publishNormalized, storeRaw } from './publish.js';
import { redactValues } from './redact.js';

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

/** Receiving webhooks: the providers' routes (for the gateway's route table), and the `/readyz` provider detail. */
export interface WebhookReceiver {
  routes: RouteSpec[];
  readyDetail: () => Promise<Record<string, unknown>>;
}

/** Every provider's routes (verify, keep, normalize, publish, answer), the delivery metric and `/readyz`'s provider detail. */
export function createWebhookReceiver(options: ReceiverOptions): WebhookReceiver {
  const { bus, logger, now } = options;
  /** When this gateway last stored a delivery from each provider (`/readyz` detail; seeded from WEBHOOKS_RAW once). */
  const lastDelivery = new Map<string, string>();
  let seeded: Promise<void> | undefined;
  const seed = () =>
    (seeded ??= (async () => {
      for (const { name } of options.providers) {
        const message = await bus.jsm.streams
          .getMessage(StreamNames.WEBHOOKS_RAW, { last_by_subj: `raw.${name}` })
          .catch(() => undefined);
        if (message && !lastDelivery.has(name)) lastDelivery.set(name, message.time.toISOString());
      }
    })().catch(() => (seeded = undefined)));

  const deliveries = metrics.getMeter('puente-gateway').createCounter('puente.webhooks', {
    description:
      'webhook deliveries by provider and outcome (accepted, duplicate, unauthorized, invalid, too_large, unavailable, error)',
  });
  /** Every configured secret value of every provider (read once; a secret the gateway was not given has none). */
  let secretValues: string[] | undefined;
  const configuredSecrets = () =>
    (secretValues ??= options.providers.flatMap((provider) =>
      provider.secrets.flatMap(({ variable }) => {
        try {
          return [...options.secret(variable)];
        } catch {
          return [];
        }
      }),
    ));
  const contextOf = (provider: AnyProvider): VerifyContext<unknown> => ({
    secret: options.secret,
    settings: options.settings[provider.name] ?? provider.settings?.defaults,
    now: now(),
  });

  const webhook =
    (provider: AnyProvider): RouteHandler =>
    async (req, res, { requestId, params, path }) => {
      try {
        // The trace of a delivery starts here (or continues the sender's `traceparent`): publish, consumer,
        // read-model writes, change notice and realtime push all carry it.
        const duplicate = await withSpan(
          `webhook ${provider.name}`,
          {
            kind: SpanKind.SERVER,
            parent: propagation.extract(context.active(), req.headers),
            attributes: {
              'http.request.method': req.method ?? 'POST',
              'url.path': path,
              'puente.provider': provider.name,
              'puente.request_id': requestId,
            },
          },
          () => deliver(provider, req, res, requestId, params),
        );
        deliveries.add(1, { provider: provider.name, outcome: duplicate ? 'duplicate' : 'accepted' });
      } catch (error) {
        deliveries.add(1, { provider: provider.name, outcome: problemOutcome(error) });
        throw error;
      }
    };

  /** Verifies, keeps, normalizes, publishes and answers one delivery; true when every event was a duplicate. */
  const deliver = async (
    provider: AnyProvider,
    req: IncomingMessage,
    res: ServerResponse,
    requestId: string,
    params: Record<string, string>,
  ): Promise<boolean> => {
    const body = await readBody(req, options.maxBodyBytes);
    const request: WebhookRequest = { provider: provider.name, params, headers: req.headers, body, receivedAt: now() };
    const verified = await provider.verify(request, contextOf(provider));
    // The raw copy and the events are independent: both must be acked before the 200, in any order,
    // so they go out together (one round trip, not two). A body that cannot be normalized is answered
    // only once its raw copy is stored.
    // The kept copy never holds a credential: configured secrets and what the provider puts in its body.
    const kept = redactValues(body, [...configuredSecrets(), ...(provider.credentialsIn?.(body) ?? [])]);
    const raw = storeRaw(bus, kept === body ? request : { ...request, body: kept }, safeHeaders(req), requestId);
    raw.catch(() => undefined);
    let normalized: Normalized;
    try {
      normalized = provider.normalize(request, verified);
    } catch (error) {
      await raw;
      // The body is verified and already kept in WEBHOOKS_RAW; what the normalizer cannot read is the
      // sender's input, answered 400 (a 5xx would make the provider retry it forever) and logged for a fix.
      if (error instanceof HttpError) throw error;
      if (error instanceof z.ZodError) throw contractViolation(`${provider.name} delivery`, error);
      logger.error(
        { err: error, requestId, provider: provider.name },
        'a verified delivery could not be normalized; it is kept in WEBHOOKS_RAW',
      );
      throw new ContractViolationError(
        `the ${provider.name} delivery could not be read: ${(error as Error).message}`,
        [],
      );
    }
    const [, result] = await Promise.all([raw, publishNormalized(bus, normalized)]);
    lastDelivery.set(provider.name, request.receivedAt.toISOString());
    sendJson(res, 200, { ...result, requestId });
    return result.accepted.length > 0 && result.accepted.every((a) => a.duplicate);
  };

  // One route per provider route; the route table groups a path's methods (Meta's GET handshake and POST).
  const routes: RouteSpec[] = options.providers.flatMap((provider) =>
    provider.routes.map((route): RouteSpec => ({
      method: route.method,
      path: route.path,
      handler:
        route.method === 'POST'
          ? webhook(provider)
          : (req, res) => {
              const answer = route.answer(req.url ?? '', contextOf(provider));
              res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
              res.end(answer);
            },
    })),
  );

  return {
    routes,
    readyDetail: async () => {
      await seed();
      return {
        providers: Object.fromEntries(
          options.providers.map((provider) => [
            provider.name,
            {
              secret: options.secret(provider.secrets[0].variable).some((value) => options.devValues.has(value))
                ? 'development value'
                : 'configured',
              lastDeliveryAt: lastDelivery.get(provider.name) ?? null,
            },
          ]),
        ),
      };
    },
  };
}
