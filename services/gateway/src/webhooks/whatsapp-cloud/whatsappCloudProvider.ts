import { createHmac } from 'node:crypto';
import { secretBytes } from '../../http/signatures.js';
import { rawRequest } from '../delivery.js';
import type { ProviderDescriptor } from '../provider.js';
import { JSON_CONTENT, sampleFacts } from '../sampling.js';
import { normalizeWhatsAppCloud, verifyMetaSignature, verifySubscription } from './whatsappCloud.js';

/** Meta's serialization: non-ASCII escaped as \uXXXX, which is what Meta signs. */
export function metaSerialize(value: unknown): string {
  return JSON.stringify(value).replace(
    /[\u007f-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** WhatsApp Cloud API (Meta): a GET subscription handshake with the verify token, then deliveries signed with the app secret. */
export const whatsappCloudProvider = {
  name: 'whatsapp-cloud',
  routes: [
    {
      method: 'GET',
      path: '/webhooks/whatsapp-cloud',
      answer: (url, context) => verifySubscription(url, context.secret('WHATSAPP_VERIFY_TOKEN')),
    },
    { method: 'POST', path: '/webhooks/whatsapp-cloud' },
  ],
  secrets: [
    { variable: 'WHATSAPP_APP_SECRET', dev: 'dev-whatsapp-app-secret', test: ['test-whatsapp-app-secret'] },
    { variable: 'WHATSAPP_VERIFY_TOKEN', dev: 'dev-whatsapp-verify-token', test: ['test-verify-token'] },
  ],
  verify: (request, context) => verifyMetaSignature(request, context.secret('WHATSAPP_APP_SECRET')),
  normalize: (request) => normalizeWhatsAppCloud(request),
  renormalize: (raw) => normalizeWhatsAppCloud(rawRequest(raw)),
  sample: {
    body: (n, now) => {
      const { phone, id, text, unix } = sampleFacts(n, now);
      return {
        object: 'whatsapp_business_account',
        entry: [
          {
            id: '102290129340398',
            changes: [
              {
                field: 'messages',
                value: {
                  messaging_product: 'whatsapp',
                  metadata: { display_phone_number: '15550001111', phone_number_id: '106540352242922' },
                  contacts: [{ profile: { name: 'Juan Pérez' }, wa_id: phone }],
                  messages: [
                    { from: phone, id: `wamid.${id}`, timestamp: String(unix), type: 'text', text: { body: text } },
                  ],
                },
              },
            ],
          },
        ],
      };
    },
    serialize: metaSerialize,
    sign: (raw, secret) => ({
      path: '/webhooks/whatsapp-cloud',
      headers: {
        ...JSON_CONTENT,
        'x-hub-signature-256': `sha256=${createHmac('sha256', secretBytes(secret)).update(raw).digest('hex')}`,
      },
    }),
    signsBody: true,
  },
} as const satisfies ProviderDescriptor<undefined, void>;
