import { createHmac, randomUUID } from 'node:crypto';
import { z } from 'zod';
import { secretBytes } from '../../http/signatures.js';
import { rawRequest } from '../delivery.js';
import type { ProviderDescriptor } from '../provider.js';
import { JSON_CONTENT, sampleFacts } from '../sampling.js';
import { DEFAULT_INBOXHUB_SCHEME, normalizeInboxHub, verifyInboxHub, type HmacScheme } from './inboxhub.js';

/** How Inbox Hub (or another Baileys gateway on that endpoint) signs: Baileys gateways differ. */
const variables = {
  INBOXHUB_SIGNATURE_HEADER: z
    .string()
    .regex(/^[A-Za-z0-9-]+$/, 'must be a header name')
    .default(DEFAULT_INBOXHUB_SCHEME.header),
  INBOXHUB_SIGNATURE_ALGORITHM: z.enum(['sha256', 'sha512']).default(DEFAULT_INBOXHUB_SCHEME.algorithm),
  INBOXHUB_SIGNATURE_ENCODING: z.enum(['hex', 'base64']).default(DEFAULT_INBOXHUB_SCHEME.encoding),
  /** Text before the signature; default `<algorithm>=`; set it empty (`INBOXHUB_SIGNATURE_PREFIX=none`) for a bare signature. */
  INBOXHUB_SIGNATURE_PREFIX: z.string().optional(),
};
const SchemeConfig = z.object(variables);

/** The Inbox Hub HMAC scheme from configuration. */
export function inboxHubScheme(config: Readonly<Record<string, unknown>>): HmacScheme {
  const scheme = SchemeConfig.parse(config);
  const prefix = scheme.INBOXHUB_SIGNATURE_PREFIX;
  return {
    header: scheme.INBOXHUB_SIGNATURE_HEADER.toLowerCase(),
    algorithm: scheme.INBOXHUB_SIGNATURE_ALGORITHM,
    encoding: scheme.INBOXHUB_SIGNATURE_ENCODING,
    prefix: prefix === undefined ? `${scheme.INBOXHUB_SIGNATURE_ALGORITHM}=` : prefix === 'none' ? '' : prefix,
  };
}

/**
 * Inbox Hub (a Baileys gateway): Standard Webhooks signatures when its secret is `whsec_…`, else an HMAC
 * header whose scheme is configurable (INBOXHUB_SIGNATURE_*).
 */
export const inboxHubProvider = {
  name: 'inboxhub',
  routes: [{ method: 'POST', path: '/webhooks/inboxhub' }],
  secrets: [
    {
      variable: 'INBOXHUB_WEBHOOK_SECRET',
      dev: 'dev-inboxhub-webhook-secret',
      test: ['test-inboxhub-secret', 'whsec_dGVzdC1zdGFuZGFyZC13ZWJob29rcy1rZXktMDAx'],
    },
  ],
  settings: { variables, read: inboxHubScheme, defaults: DEFAULT_INBOXHUB_SCHEME },
  verify: (request, context) =>
    verifyInboxHub(request, context.secret('INBOXHUB_WEBHOOK_SECRET'), context.settings, context.now),
  normalize: (request, verified) => normalizeInboxHub(request, verified.deliveryId),
  // The Standard Webhooks delivery id is kept with the headers; only a signed one was ever used.
  renormalize: (raw) =>
    normalizeInboxHub(
      rawRequest(raw),
      raw.headers['webhook-id'] && raw.headers['webhook-signature'] ? raw.headers['webhook-id'] : undefined,
    ),
  sample: {
    body: (n, now) => {
      const { jid, id, text, iso } = sampleFacts(n, now);
      return {
        event: 'message.received',
        sessionId: 'ventas',
        timestamp: iso,
        data: {
          messageId: id,
          chatId: jid,
          from: jid,
          fromMe: false,
          pushName: 'Juan Pérez',
          type: 'text',
          content: text,
          timestamp: iso,
        },
      };
    },
    sign: (raw, secret, { now }) => {
      if (secret.startsWith('whsec_')) {
        const id = `msg_${randomUUID()}`;
        const timestamp = String(Math.floor(now.getTime() / 1000));
        const signature = createHmac('sha256', secretBytes(secret))
          .update(`${id}.${timestamp}.`)
          .update(raw)
          .digest('base64');
        return {
          path: '/webhooks/inboxhub',
          headers: {
            ...JSON_CONTENT,
            'webhook-id': id,
            'webhook-timestamp': timestamp,
            'webhook-signature': `v1,${signature}`,
          },
        };
      }
      return {
        path: '/webhooks/inboxhub',
        headers: {
          ...JSON_CONTENT,
          'x-webhook-signature': `sha256=${createHmac('sha256', secretBytes(secret)).update(raw).digest('hex')}`,
        },
      };
    },
    signsBody: true,
  },
} as const satisfies ProviderDescriptor<HmacScheme, { deliveryId?: string }>;
