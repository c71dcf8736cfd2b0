import { signHs256Jwt } from '../../http/jwt.js';
import { rawRequest } from '../delivery.js';
import type { ProviderDescriptor } from '../provider.js';
import { JSON_CONTENT, sampleFacts } from '../sampling.js';
import { normalizeEvolution, verifyEvolution } from './evolution.js';

/** A top-level string field of a JSON body, when the body is a JSON object that has one. */
function bodyField(body: Buffer, field: string): string | undefined {
  // Only bodies that carry the name are parsed (a cheap check first: most deliveries pay nothing).
  if (!body.includes(field)) return undefined;
  try {
    const parsed: unknown = JSON.parse(body.toString('utf8'));
    const value =
      typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>)[field] : undefined;
    return typeof value === 'string' && value.length > 0 ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Evolution API: an `apikey` or an HS256 Bearer JWT; `webhook_by_events` appends the event to the URL. */
export const evolutionProvider = {
  name: 'evolution',
  routes: [{ method: 'POST', path: '/webhooks/evolution/:event([a-z0-9-]+)?' }],
  secrets: [
    { variable: 'EVOLUTION_WEBHOOK_SECRET', dev: 'dev-evolution-webhook-secret', test: ['test-evolution-secret'] },
  ],
  verify: (request, context) => verifyEvolution(request, context.secret('EVOLUTION_WEBHOOK_SECRET'), context.now),
  normalize: (request) => normalizeEvolution(request),
  renormalize: (raw) => normalizeEvolution(rawRequest(raw)),
  // Evolution posts the instance's API key in every body (`apikey`): a credential for its API.
  credentialsIn: (body) => {
    const key = bodyField(body, 'apikey');
    return key ? [key] : [];
  },
  sample: {
    body: (n, now) => {
      const { jid, id, text, iso, unix } = sampleFacts(n, now);
      return {
        event: 'messages.upsert',
        instance: 'ventas',
        data: {
          key: { remoteJid: jid, fromMe: false, id },
          pushName: 'João',
          message: { conversation: text },
          messageType: 'conversation',
          messageTimestamp: unix,
        },
        date_time: iso,
        sender: '5511888888888@s.whatsapp.net',
        server_url: 'http://localhost:8080',
      };
    },
    // The JWT (or apikey) authenticates the sender, not the body.
    sign: (_raw, secret, { now }) => {
      const seconds = Math.floor(now.getTime() / 1000);
      return {
        path: '/webhooks/evolution',
        headers: {
          ...JSON_CONTENT,
          authorization: `Bearer ${signHs256Jwt({ iat: seconds, exp: seconds + 600, app: 'evolution' }, secret)}`,
        },
      };
    },
    signsBody: false,
  },
} as const satisfies ProviderDescriptor<undefined, void>;
