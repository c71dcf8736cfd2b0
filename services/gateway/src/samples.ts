import { createHmac, randomUUID } from 'node:crypto';
import { signHs256Jwt } from './http/jwt.js';
import { secretBytes } from './http/signatures.js';
import type { SecretName } from '@puente/runtime';

/** The providers `send-sample` and the property tests know. */
export const SampleProviders = ['kissflow', 'inboxhub', 'evolution', 'waha', 'whatsapp-cloud'] as const;
export type SampleProvider = (typeof SampleProviders)[number];

/** A signed HTTP request, ready to send. */
export interface SignedSample {
  path: string;
  headers: Record<string, string>;
  body: string;
}

export interface SampleSecrets {
  kissflow: string;
  inboxhub: string;
  evolution: string;
  waha: string;
  whatsappAppSecret: string;
}

/** Each provider's signing secret, by the name of the variable that holds it (`secret` looks one up). */
export function sampleSecrets(secret: (name: SecretName) => string): SampleSecrets {
  return {
    kissflow: secret('KISSFLOW_WEBHOOK_SECRET'),
    inboxhub: secret('INBOXHUB_WEBHOOK_SECRET'),
    evolution: secret('EVOLUTION_WEBHOOK_SECRET'),
    waha: secret('WAHA_WEBHOOK_SECRET'),
    whatsappAppSecret: secret('WHATSAPP_APP_SECRET'),
  };
}

const TEXTS = ['Hola, ¿cómo estás? 👋', 'Su pedido #8812 está listo ✅', 'Olá! Tudo bem? 😀', '¿Me envías la factura? 🧾', 'Gracias 🙏 nos vemos mañana', 'Confirmo la cita del jueves 🗓️'];
const pick = <T>(items: readonly T[], n: number): T => items[n % items.length]!;

/** A realistic delivery body for a provider (n varies ids and text). */
export function sampleBody(provider: SampleProvider, n: number, now = new Date()): unknown {
  const phone = `3461234${String(5678 + (n % 1000)).padStart(4, '0')}`;
  const jid = `${phone}@s.whatsapp.net`;
  const id = `3EB0${randomUUID().replace(/-/g, '').slice(0, 16).toUpperCase()}`;
  const text = pick(TEXTS, n);
  const iso = now.toISOString();
  const unix = Math.floor(now.getTime() / 1000);
  switch (provider) {
    case 'kissflow':
      return { _id: `Pk${randomUUID().slice(0, 8)}`, Name: `Documento ${n}`, Cliente: { _id: 'C001', Name: 'Comercial Andina S.A.C.' }, Monto: 100 + n, Estado: 'Aprobado ✅', _modified_at: iso };
    case 'inboxhub':
      return { event: 'message.received', sessionId: 'ventas', timestamp: iso, data: { messageId: id, chatId: jid, from: jid, fromMe: false, pushName: 'Juan Pérez', type: 'text', content: text, timestamp: iso } };
    case 'evolution':
      return { event: 'messages.upsert', instance: 'ventas', data: { key: { remoteJid: jid, fromMe: false, id }, pushName: 'João', message: { conversation: text }, messageType: 'conversation', messageTimestamp: unix }, date_time: iso, sender: '5511888888888@s.whatsapp.net', server_url: 'http://localhost:8080' };
    case 'waha':
      return { id: `evt_${randomUUID().replace(/-/g, '')}`, timestamp: now.getTime(), session: 'default', engine: 'NOWEB', event: 'message', payload: { id: `false_${phone}@c.us_${id}`, timestamp: unix, from: `${phone}@c.us`, fromMe: false, to: '22222222222@c.us', body: text, hasMedia: false, ack: 1, ackName: 'SERVER', _data: { pushName: 'Ana' } }, me: { id: '22222222222@c.us' } };
    case 'whatsapp-cloud':
      return {
        object: 'whatsapp_business_account',
        entry: [{ id: '102290129340398', changes: [{ field: 'messages', value: { messaging_product: 'whatsapp', metadata: { display_phone_number: '15550001111', phone_number_id: '106540352242922' }, contacts: [{ profile: { name: 'Juan Pérez' }, wa_id: phone }], messages: [{ from: phone, id: `wamid.${id}`, timestamp: String(unix), type: 'text', text: { body: text } }] } }] }],
      };
  }
}

/** Meta's serialization: non-ASCII escaped as \uXXXX, which is what Meta signs. */
export function metaSerialize(value: unknown): string {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Serializes and signs a body the way the provider does. */
export function signSample(provider: SampleProvider, body: unknown, secrets: SampleSecrets, options: { dataset?: string; now?: Date } = {}): SignedSample {
  const now = options.now ?? new Date();
  const json = { 'content-type': 'application/json' };
  switch (provider) {
    case 'kissflow': {
      const raw = JSON.stringify(body);
      return { path: `/webhooks/kissflow/${encodeURIComponent(options.dataset ?? 'DS_Documentos_Cliente')}`, headers: { ...json, authorization: `Bearer ${secrets.kissflow}` }, body: raw };
    }
    case 'inboxhub': {
      const raw = JSON.stringify(body);
      if (secrets.inboxhub.startsWith('whsec_')) {
        const id = `msg_${randomUUID()}`;
        const timestamp = String(Math.floor(now.getTime() / 1000));
        const signature = createHmac('sha256', secretBytes(secrets.inboxhub)).update(`${id}.${timestamp}.${raw}`).digest('base64');
        return { path: '/webhooks/inboxhub', headers: { ...json, 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': `v1,${signature}` }, body: raw };
      }
      return { path: '/webhooks/inboxhub', headers: { ...json, 'x-webhook-signature': `sha256=${createHmac('sha256', secretBytes(secrets.inboxhub)).update(raw).digest('hex')}` }, body: raw };
    }
    case 'evolution': {
      const raw = JSON.stringify(body);
      const seconds = Math.floor(now.getTime() / 1000);
      return { path: '/webhooks/evolution', headers: { ...json, authorization: `Bearer ${signHs256Jwt({ iat: seconds, exp: seconds + 600, app: 'evolution' }, secrets.evolution)}` }, body: raw };
    }
    case 'waha': {
      const raw = JSON.stringify(body);
      return { path: '/webhooks/waha', headers: { ...json, 'x-webhook-hmac': createHmac('sha512', secretBytes(secrets.waha)).update(raw).digest('hex'), 'x-webhook-hmac-algorithm': 'sha512', 'x-webhook-timestamp': String(now.getTime()) }, body: raw };
    }
    case 'whatsapp-cloud': {
      const raw = metaSerialize(body);
      return { path: '/webhooks/whatsapp-cloud', headers: { ...json, 'x-hub-signature-256': `sha256=${createHmac('sha256', secretBytes(secrets.whatsappAppSecret)).update(raw).digest('hex')}` }, body: raw };
    }
  }
}
