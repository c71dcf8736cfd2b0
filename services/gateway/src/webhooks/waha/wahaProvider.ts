import { createHmac, randomUUID } from 'node:crypto';
import { secretBytes } from '../../http/signatures.js';
import { rawRequest } from '../delivery.js';
import type { ProviderDescriptor } from '../provider.js';
import { JSON_CONTENT, sampleFacts } from '../sampling.js';
import { normalizeWaha, verifyWaha } from './waha.js';

/** WAHA: HMAC-SHA512 of the body in `X-Webhook-Hmac`. */
export const wahaProvider = {
  name: 'waha',
  routes: [{ method: 'POST', path: '/webhooks/waha' }],
  secrets: [{ variable: 'WAHA_WEBHOOK_SECRET', dev: 'dev-waha-webhook-secret', test: ['test-waha-secret'] }],
  verify: (request, context) => verifyWaha(request, context.secret('WAHA_WEBHOOK_SECRET')),
  normalize: (request) => normalizeWaha(request),
  renormalize: (raw) => normalizeWaha(rawRequest(raw)),
  sample: {
    body: (n, now) => {
      const { phone, id, text, unix } = sampleFacts(n, now);
      return {
        id: `evt_${randomUUID().replace(/-/g, '')}`,
        timestamp: now.getTime(),
        session: 'default',
        engine: 'NOWEB',
        event: 'message',
        payload: {
          id: `false_${phone}@c.us_${id}`,
          timestamp: unix,
          from: `${phone}@c.us`,
          fromMe: false,
          to: '22222222222@c.us',
          body: text,
          hasMedia: false,
          ack: 1,
          ackName: 'SERVER',
          _data: { pushName: 'Ana' },
        },
        me: { id: '22222222222@c.us' },
      };
    },
    sign: (raw, secret, { now }) => ({
      path: '/webhooks/waha',
      headers: {
        ...JSON_CONTENT,
        'x-webhook-hmac': createHmac('sha512', secretBytes(secret)).update(raw).digest('hex'),
        'x-webhook-hmac-algorithm': 'sha512',
        'x-webhook-timestamp': String(now.getTime()),
      },
    }),
    signsBody: true,
  },
} as const satisfies ProviderDescriptor<undefined, void>;
