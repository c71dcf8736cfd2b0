import type { MessageContent, MessageType } from './events/whatsapp.js';

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Baileys' `WAMessage` (as gateways forward it), only what Puente reads. */
export interface BaileysMessage {
  key?: { remoteJid?: string; fromMe?: boolean; id?: string; participant?: string; remoteJidAlt?: string };
  message?: Record<string, unknown> | null;
  messageTimestamp?: number | string | { low: number; high: number };
  pushName?: string;
}

/** Unix seconds, milliseconds, a numeric string, an ISO time, or a protobuf Long: an ISO time. */
export function toIsoTime(value: unknown): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (isPlainObject(value) && typeof value.low === 'number')
    return toIsoTime((value.high as number) * 2 ** 32 + (value.low >>> 0));
  const n =
    typeof value === 'number'
      ? value
      : typeof value === 'string' && /^\d+(\.\d+)?$/.test(value)
        ? Number(value)
        : Number.NaN;
  const ms = !Number.isNaN(n) ? (n > 1e12 ? n : n * 1000) : typeof value === 'string' ? Date.parse(value) : Number.NaN;
  // Years 1970 to 9999 only: what RFC 3339 (and the event schemas) can carry.
  return Number.isFinite(ms) && ms >= 0 && ms < 253402300800000 ? new Date(ms).toISOString() : undefined;
}

const MEDIA: Record<string, MessageType> = {
  imageMessage: 'image',
  videoMessage: 'video',
  audioMessage: 'audio',
  documentMessage: 'document',
  documentWithCaptionMessage: 'document',
  stickerMessage: 'sticker',
};
const WRAPPERS = [
  'ephemeralMessage',
  'viewOnceMessage',
  'viewOnceMessageV2',
  'viewOnceMessageV2Extension',
  'documentWithCaptionMessage',
  'editedMessage',
];

/** Unwraps ephemeral/view-once wrappers to the real content. */
function unwrap(message: Record<string, unknown>): Record<string, unknown> {
  for (let depth = 0; depth < 5; depth++) {
    const wrapper = WRAPPERS.find(
      (w) => isPlainObject(message[w]) && isPlainObject((message[w] as Record<string, unknown>).message),
    );
    if (!wrapper) return message;
    message = (message[wrapper] as { message: Record<string, unknown> }).message;
  }
  return message;
}

/** The content of a Baileys `message` union, in Puente's terms. */
export function baileysContent(
  raw: Record<string, unknown> | null | undefined,
): Pick<MessageContent, 'type' | 'text' | 'media' | 'location' | 'reaction' | 'quotedMessageId'> {
  if (!raw) return { type: 'unsupported' };
  const message = unwrap(raw);
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const quoted = (m: unknown) =>
    str(isPlainObject(m) && isPlainObject(m.contextInfo) ? m.contextInfo.stanzaId : undefined);
  if (typeof message.conversation === 'string') return { type: 'text', text: message.conversation };
  if (isPlainObject(message.extendedTextMessage)) {
    const q = quoted(message.extendedTextMessage);
    return { type: 'text', text: str(message.extendedTextMessage.text) ?? '', ...(q ? { quotedMessageId: q } : {}) };
  }
  for (const [field, type] of Object.entries(MEDIA)) {
    const m = message[field];
    if (!isPlainObject(m)) continue;
    const caption = str(m.caption);
    const q = quoted(m);
    return {
      type: type === 'audio' && m.ptt === true ? 'voice' : type,
      ...(caption ? { text: caption } : {}),
      media: {
        ...(str(m.url) ? { url: str(m.url) } : {}),
        ...(str(m.mimetype) ? { mimeType: str(m.mimetype) } : {}),
        ...(str(m.fileName) ? { fileName: str(m.fileName) } : {}),
        ...(caption ? { caption } : {}),
      },
      ...(q ? { quotedMessageId: q } : {}),
    };
  }
  if (isPlainObject(message.locationMessage)) {
    const l = message.locationMessage;
    return {
      type: 'location',
      location: {
        latitude: Number(l.degreesLatitude),
        longitude: Number(l.degreesLongitude),
        ...(str(l.name) ? { name: str(l.name) } : {}),
        ...(str(l.address) ? { address: str(l.address) } : {}),
      },
    };
  }
  if (isPlainObject(message.reactionMessage)) {
    const r = message.reactionMessage;
    const target = isPlainObject(r.key) ? str(r.key.id) : undefined;
    return { type: 'reaction', reaction: { messageId: target ?? '', emoji: str(r.text) ?? '' } };
  }
  if (isPlainObject(message.contactMessage) || isPlainObject(message.contactsArrayMessage)) return { type: 'contacts' };
  if (isPlainObject(message.buttonsResponseMessage))
    return {
      type: 'button',
      ...(str(message.buttonsResponseMessage.selectedDisplayText)
        ? { text: str(message.buttonsResponseMessage.selectedDisplayText) }
        : {}),
    };
  if (isPlainObject(message.listResponseMessage))
    return {
      type: 'interactive',
      ...(str(message.listResponseMessage.title) ? { text: str(message.listResponseMessage.title) } : {}),
    };
  if (isPlainObject(message.protocolMessage)) return { type: 'system' };
  return { type: 'unsupported' };
}
