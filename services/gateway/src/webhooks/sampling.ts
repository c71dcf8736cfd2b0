import { randomUUID } from 'node:crypto';

const TEXTS = [
  'Hola, ¿cómo estás? 👋',
  'Su pedido #8812 está listo ✅',
  'Olá! Tudo bem? 😀',
  '¿Me envías la factura? 🧾',
  'Gracias 🙏 nos vemos mañana',
  'Confirmo la cita del jueves 🗓️',
];

/** The varying parts of a sample WhatsApp delivery: a phone, its JID, a message id and a text with non-ASCII and emoji. */
export interface SampleFacts {
  phone: string;
  jid: string;
  /** A Baileys-style message id (`3EB0…`). */
  id: string;
  text: string;
  iso: string;
  /** Unix seconds. */
  unix: number;
}

/** The facts of sample `n` at `now` (n varies the phone and the text; the id is random). */
export function sampleFacts(n: number, now: Date): SampleFacts {
  const phone = `3461234${String(5678 + (n % 1000)).padStart(4, '0')}`;
  return {
    phone,
    jid: `${phone}@s.whatsapp.net`,
    id: `3EB0${randomUUID().replace(/-/g, '').slice(0, 16).toUpperCase()}`,
    text: TEXTS[n % TEXTS.length]!,
    iso: now.toISOString(),
    unix: Math.floor(now.getTime() / 1000),
  };
}

export const JSON_CONTENT = { 'content-type': 'application/json' } as const;
