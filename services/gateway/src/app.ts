import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { context, metrics, propagation } from '@opentelemetry/api';
import { z } from 'zod';
import { SpanKind, withSpan, type Bus } from '@puente/bus';
import { Headers, StreamNames, subjectOf } from '@puente/contracts';
import { bytes, createHttpServer, DevSecrets, listen, port, sendJson, type Check, type Logger, type ServiceDefinition } from '@puente/runtime';
import { ContractViolationError, GatewayError, MethodNotAllowedError, problemBody } from './http/errors.js';
import { readBody, safeHeaders } from './http/body.js';
import { contractViolation, type Normalized, type WebhookRequest } from './webhooks/delivery.js';
import { acked, publishNormalized, storeRaw } from './webhooks/publish.js';
import { normalizeKissflow, verifyKissflow } from './webhooks/kissflow/kissflow.js';
import { normalizeWhatsAppCloud, verifyMetaSignature, verifySubscription } from './webhooks/whatsapp-cloud/whatsappCloud.js';
import { markReadCommand, sendMessageCommand, verifyApiToken } from './commands/commands.js';
import { normalizeEvolution, verifyEvolution } from './webhooks/evolution/evolution.js';
import { normalizeWaha, verifyWaha } from './webhooks/waha/waha.js';
import { DEFAULT_INBOXHUB_SCHEME, normalizeInboxHub, verifyInboxHub, type HmacScheme } from './webhooks/inboxhub/inboxhub.js';

export const Config = z.object({
  GATEWAY_PORT: port().default(8080),
  WEBHOOK_MAX_BYTES: bytes().default(4 * 1024 * 1024),
  /** How Inbox Hub (or another Baileys gateway on that endpoint) signs: Baileys gateways differ. */
  INBOXHUB_SIGNATURE_HEADER: z.string().regex(/^[A-Za-z0-9-]+$/, 'must be a header name').default(DEFAULT_INBOXHUB_SCHEME.header),
  INBOXHUB_SIGNATURE_ALGORITHM: z.enum(['sha256', 'sha512']).default(DEFAULT_INBOXHUB_SCHEME.algorithm),
  INBOXHUB_SIGNATURE_ENCODING: z.enum(['hex', 'base64']).default(DEFAULT_INBOXHUB_SCHEME.encoding),
  /** Text before the signature; default `<algorithm>=`; set it empty (`INBOXHUB_SIGNATURE_PREFIX=none`) for a bare signature. */
  INBOXHUB_SIGNATURE_PREFIX: z.string().optional(),
});

/** The Inbox Hub HMAC scheme from configuration. */
export function inboxHubScheme(config: GatewayConfig): HmacScheme {
  const prefix = config.INBOXHUB_SIGNATURE_PREFIX;
  return {
    header: config.INBOXHUB_SIGNATURE_HEADER.toLowerCase(),
    algorithm: config.INBOXHUB_SIGNATURE_ALGORITHM,
    encoding: config.INBOXHUB_SIGNATURE_ENCODING,
    prefix: prefix === undefined ? `${config.INBOXHUB_SIGNATURE_ALGORITHM}=` : prefix === 'none' ? '' : prefix,
  };
}
export type GatewayConfig = z.infer<typeof Config>;

/** The providers whose webhooks the gateway receives (`raw.<provider>` in WEBHOOKS_RAW). */
const PROVIDERS = ['kissflow', 'inboxhub', 'evolution', 'waha', 'whatsapp-cloud'] as const;

/** Every secret the gateway verifies with; several values each during a rotation. */
export const GatewaySecrets = ['KISSFLOW_WEBHOOK_SECRET', 'INBOXHUB_WEBHOOK_SECRET', 'WHATSAPP_APP_SECRET', 'WHATSAPP_VERIFY_TOKEN', 'EVOLUTION_WEBHOOK_SECRET', 'WAHA_WEBHOOK_SECRET', 'API_TOKENS'] as const;
export type GatewaySecretName = (typeof GatewaySecrets)[number];

export interface GatewayOptions {
  bus: Bus;
  logger: Logger;
  checks: Record<string, Check>;
  secrets: Record<GatewaySecretName, string[]>;
  maxBodyBytes: number;
  inboxHubScheme?: HmacScheme;
  /** The clock (tests pin it). */
  now?: () => Date;
}

/** A webhook endpoint: verify the raw bytes (before any parsing), then normalize them. */
interface WebhookEndpoint<V> {
  provider: string;
  /** Checks the credentials on the raw bytes; what it returns (a delivery id, say) goes to `normalize`. */
  verify: (request: WebhookRequest) => V | Promise<V>;
  normalize: (request: WebhookRequest, verified: V) => Normalized;
}

type Handler = (req: IncomingMessage, res: ServerResponse, requestId: string, params: Record<string, string>) => Promise<void>;
interface RouteEntry {
  path: RegExp;
  params: string[];
  methods: Record<string, Handler>;
}

/** Builds the gateway's HTTP server (not listening); tests call this, `main.ts` listens. */
export function build(options: GatewayOptions): Server {
  const now = options.now ?? (() => new Date());
  /** When this gateway last stored a delivery from each provider (`/readyz` detail; seeded from WEBHOOKS_RAW once). */
  const lastDelivery = new Map<string, string>();
  let seeded: Promise<void> | undefined;
  const seed = () => (seeded ??= (async () => {
    for (const provider of PROVIDERS) {
      const message = await options.bus.jsm.streams.getMessage(StreamNames.WEBHOOKS_RAW, { last_by_subj: `raw.${provider}` }).catch(() => undefined);
      if (message && !lastDelivery.has(provider)) lastDelivery.set(provider, message.time.toISOString());
    }
  })().catch(() => (seeded = undefined)));

  const deliveries = metrics.getMeter('puente-gateway').createCounter('puente.webhooks', { description: 'webhook deliveries by provider and outcome (accepted, duplicate, unauthorized, invalid, too_large, unavailable, error)' });
  const outcomeOf = (error: unknown) => {
    if (!(error instanceof GatewayError)) return 'error';
    return error.status === 401 ? 'unauthorized' : error.status === 413 ? 'too_large' : error.status === 503 ? 'unavailable' : error.status < 500 ? 'invalid' : 'error';
  };
  const webhook = <V>(endpoint: WebhookEndpoint<V>): Handler => async (req, res, requestId, params) => {
    try {
      // The trace of a delivery starts here (or continues the sender's `traceparent`): publish, consumer,
      // read-model writes, change notice and realtime push all carry it.
      const duplicate = await withSpan(`webhook ${endpoint.provider}`, {
        kind: SpanKind.SERVER,
        parent: propagation.extract(context.active(), req.headers),
        attributes: { 'http.request.method': req.method ?? 'POST', 'url.path': (req.url ?? '').split('?')[0]!, 'puente.provider': endpoint.provider, 'puente.request_id': requestId },
      }, () => deliver(endpoint, req, res, requestId, params));
      deliveries.add(1, { provider: endpoint.provider, outcome: duplicate ? 'duplicate' : 'accepted' });
    } catch (error) {
      deliveries.add(1, { provider: endpoint.provider, outcome: outcomeOf(error) });
      throw error;
    }
  };

  /** Verifies, keeps, normalizes, publishes and answers one delivery; true when every event was a duplicate. */
  const deliver = async <V>(endpoint: WebhookEndpoint<V>, req: Parameters<Handler>[0], res: Parameters<Handler>[1], requestId: string, params: Record<string, string>): Promise<boolean> => {
    const body = await readBody(req, options.maxBodyBytes);
    const request: WebhookRequest = { provider: endpoint.provider, params, headers: req.headers, body, receivedAt: now() };
    const verified = await endpoint.verify(request);
    // The raw copy and the events are independent: both must be acked before the 200, in any order,
    // so they go out together (one round trip, not two). A body that cannot be normalized is answered
    // only once its raw copy is stored.
    const raw = storeRaw(options.bus, request, safeHeaders(req), requestId);
    raw.catch(() => undefined);
    let normalized: Normalized;
    try {
      normalized = endpoint.normalize(request, verified);
    } catch (error) {
      await raw;
      // The body is verified and already kept in WEBHOOKS_RAW; what the normalizer cannot read is the
      // sender's input, answered 400 (a 5xx would make the provider retry it forever) and logged for a fix.
      if (error instanceof GatewayError) throw error;
      if (error instanceof z.ZodError) throw contractViolation(`${endpoint.provider} delivery`, error);
      options.logger.error({ err: error, requestId, provider: endpoint.provider }, 'a verified delivery could not be normalized; it is kept in WEBHOOKS_RAW');
      throw new ContractViolationError(`the ${endpoint.provider} delivery could not be read: ${(error as Error).message}`, []);
    }
    const [, result] = await Promise.all([raw, publishNormalized(options.bus, normalized)]);
    lastDelivery.set(endpoint.provider, request.receivedAt.toISOString());
    sendJson(res, 200, { ...result, requestId });
    return result.accepted.length > 0 && result.accepted.every((a) => a.duplicate);
  };

  const command = (make: (params: Record<string, string>, body: Buffer, at: Date) => { event: Parameters<typeof subjectOf>[0]; msgId: string; commandId: string }): Handler => async (req, res, requestId, params) => {
    verifyApiToken(req.headers.authorization, options.secrets.API_TOKENS);
    const body = await readBody(req, 64 * 1024);
    const { event, msgId, commandId } = make(params, body, now());
    const ack = await acked(options.bus.publish(subjectOf(event), event, { msgId, headers: { [Headers.EventType]: event.type } }));
    sendJson(res, 202, { commandId, duplicate: ack.duplicate, requestId });
  };

  const routes: RouteEntry[] = [
    {
      path: /^\/webhooks\/kissflow\/([^/]+)$/,
      params: ['dataset'],
      methods: {
        POST: webhook({
          provider: 'kissflow',
          verify: (r) => verifyKissflow(r, options.secrets.KISSFLOW_WEBHOOK_SECRET),
          normalize: normalizeKissflow,
        }),
      },
    },
    {
      path: /^\/webhooks\/inboxhub$/,
      params: [],
      methods: {
        POST: webhook({
          provider: 'inboxhub',
          verify: (r) => verifyInboxHub(r, options.secrets.INBOXHUB_WEBHOOK_SECRET, options.inboxHubScheme ?? DEFAULT_INBOXHUB_SCHEME, now()),
          normalize: (r, verified) => normalizeInboxHub(r, verified.deliveryId),
        }),
      },
    },
    {
      // Evolution's `webhook_by_events` appends the event to the URL (`/messages-upsert`).
      path: /^\/webhooks\/evolution(?:\/([a-z0-9-]+))?$/,
      params: ['event'],
      methods: {
        POST: webhook({
          provider: 'evolution',
          verify: (r) => verifyEvolution(r, options.secrets.EVOLUTION_WEBHOOK_SECRET, now()),
          normalize: normalizeEvolution,
        }),
      },
    },
    {
      path: /^\/webhooks\/waha$/,
      params: [],
      methods: {
        POST: webhook({ provider: 'waha', verify: (r) => verifyWaha(r, options.secrets.WAHA_WEBHOOK_SECRET), normalize: normalizeWaha }),
      },
    },
    {
      path: /^\/webhooks\/whatsapp-cloud$/,
      params: [],
      methods: {
        GET: async (req, res) => {
          const challenge = verifySubscription(req.url ?? '', options.secrets.WHATSAPP_VERIFY_TOKEN);
          res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
          res.end(challenge);
        },
        POST: webhook({
          provider: 'whatsapp-cloud',
          verify: (r) => verifyMetaSignature(r, options.secrets.WHATSAPP_APP_SECRET),
          normalize: normalizeWhatsAppCloud,
        }),
      },
    },
    {
      path: /^\/api\/whatsapp\/([^/]+)\/messages$/,
      params: ['session'],
      methods: { POST: command((p, body, at) => sendMessageCommand(p.session, body, at)) },
    },
    {
      path: /^\/api\/whatsapp\/([^/]+)\/chats\/([^/]+)\/read$/,
      params: ['session', 'chat'],
      methods: { POST: command((p, body, at) => markReadCommand(p.session, p.chat, body, at)) },
    },
  ];

  const secretFor: Record<(typeof PROVIDERS)[number], GatewaySecretName> = { kissflow: 'KISSFLOW_WEBHOOK_SECRET', inboxhub: 'INBOXHUB_WEBHOOK_SECRET', evolution: 'EVOLUTION_WEBHOOK_SECRET', waha: 'WAHA_WEBHOOK_SECRET', 'whatsapp-cloud': 'WHATSAPP_APP_SECRET' };
  return createHttpServer({
    checks: options.checks,
    readyDetail: async () => {
      await seed();
      return {
        providers: Object.fromEntries(PROVIDERS.map((provider) => [provider, {
          secret: options.secrets[secretFor[provider]].some((value) => Object.values(DevSecrets).includes(value as never)) ? 'development value' : 'configured',
          lastDeliveryAt: lastDelivery.get(provider) ?? null,
        }])),
      };
    },
    route: async (req, res, requestId) => {
      const path = (req.url ?? '/').split('?')[0]!;
      const entry = routes.find((r) => r.path.test(path));
      if (!entry) return false;
      try {
        const handler = entry.methods[req.method ?? ''];
        if (!handler) throw new MethodNotAllowedError(Object.keys(entry.methods));
        const match = entry.path.exec(path)!;
        const params: Record<string, string> = {};
        entry.params.forEach((name, i) => {
          const value = match[i + 1];
          if (value === undefined) return;
          try {
            params[name] = decodeURIComponent(value);
          } catch {
            params[name] = value;
          }
        });
        await handler(req, res, requestId, params);
      } catch (error) {
        if (!(error instanceof GatewayError)) throw error;
        if (error.status >= 500) options.logger.warn({ requestId, code: error.code, err: error.cause }, error.message);
        else options.logger.info({ requestId, code: error.code, path }, error.message);
        sendJson(res, error.status, problemBody(error, requestId), { 'content-type': 'application/problem+json', ...error.headers });
      }
      return true;
    },
    onError: (error, requestId) => options.logger.error({ err: error, requestId }, 'request failed'),
  });
}

export const service: ServiceDefinition<typeof Config, GatewaySecretName> = {
  name: 'gateway',
  config: Config,
  secrets: GatewaySecrets,
  mongo: false,
  async start({ config, logger, checks, bus, secrets }) {
    const http = await listen(build({ bus, logger, checks, secrets, maxBodyBytes: config.WEBHOOK_MAX_BYTES, inboxHubScheme: inboxHubScheme(config) }), config.GATEWAY_PORT);
    return { urls: { webhooks: `http://127.0.0.1:${http.port}/webhooks/` }, stop: http.close };
  },
};
