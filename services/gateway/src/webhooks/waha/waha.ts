import { createEvent, messageTypeOfMime, type MessageType } from '@puente/contracts';
import { ContractViolationError, UnauthorizedError } from '../../http/errors.js';
import { hmacMatchesAny, strictHex } from '../../http/signatures.js';
import { parseJson, sha256, single as one, type Normalized, type WebhookRequest } from '../delivery.js';
import { isPlainObject, nonEmptyString, type Unchecked } from '../readers.js';
import type { WahaPayload, WahaWebhook } from './wahaApiTypes.js';
import { toIsoTime } from '@puente/contracts';

/** WAHA signs with `X-Webhook-Hmac`: hex HMAC-SHA512 of the raw body (its timestamp header is not signed). */
export function verifyWaha(request: WebhookRequest, secrets: readonly string[]): void {
  const header = request.headers['x-webhook-hmac'];
  const given = strictHex((Array.isArray(header) ? header[0] : header) ?? '');
  if (!given || !hmacMatchesAny('sha512', secrets, request.body, given))
    throw new UnauthorizedError('missing or invalid X-Webhook-Hmac');
}

const SOURCE = 'urn:puente:gateway:waha';
/** WAHA's legacy `@c.us` user JIDs are Baileys' `@s.whatsapp.net`. */
const jid = (value: string) => value.replace(/@c\.us$/, '@s.whatsapp.net');
/** WAHA message ids are serialized as `<fromMe>_<chat>_<id>[_<participant>]`; the WhatsApp id is the third part. */
function messageKey(serialized: string): { id: string; chat?: string } {
  const parts = serialized.split('_');
  return parts.length >= 3 && (parts[0] === 'true' || parts[0] === 'false')
    ? { id: parts[2]!, chat: jid(parts[1]!) }
    : { id: serialized };
}
const ACK: Record<string, 'sent' | 'delivered' | 'read' | 'failed'> = {
  SERVER: 'sent',
  DEVICE: 'delivered',
  READ: 'read',
  PLAYED: 'read',
  ERROR: 'failed',
  '1': 'sent',
  '2': 'delivered',
  '3': 'read',
  '4': 'read',
  '-1': 'failed',
};
const STATE: Record<string, 'connecting' | 'connected' | 'disconnected' | 'failed'> = {
  WORKING: 'connected',
  STARTING: 'connecting',
  SCAN_QR_CODE: 'connecting',
  STOPPED: 'disconnected',
  FAILED: 'failed',
};

/** WAHA envelopes (`{id, timestamp, session, event, payload}`) to the same WhatsApp domain events. */
export function normalizeWaha(request: WebhookRequest): Normalized {
  const parsed = parseJson(request.body);
  if (!isPlainObject(parsed))
    throw new ContractViolationError('the body must be a JSON object', [
      { path: '(body)', message: 'expected an object' },
    ]);
  const body: Unchecked<WahaWebhook> = parsed;
  const missing = (['event', 'session'] as const).filter((f) => !nonEmptyString(body[f]));
  if (missing.length > 0)
    throw new ContractViolationError(
      `the envelope needs ${missing.join(' and ')}`,
      missing.map((path) => ({ path, message: 'required' })),
    );
  const eventName = nonEmptyString(body.event)!;
  const session = nonEmptyString(body.session)!;
  const payload: Unchecked<WahaPayload> = isPlainObject(body.payload) ? body.payload : {};
  const at = toIsoTime(payload.timestamp) ?? toIsoTime(body.timestamp) ?? request.receivedAt.toISOString();
  const time = request.receivedAt.toISOString();
  const base = { session, provider: 'waha' as const };
  const deliveryId = nonEmptyString(body.id)
    ? `waha:delivery:${nonEmptyString(body.id)}`
    : `waha:${sha256(`${eventName}\n${session}\n`).slice(0, 16)}:${sha256(request.body).slice(0, 32)}`;

  switch (eventName) {
    case 'message':
    case 'message.any': {
      const serialized = nonEmptyString(payload.id);
      if (!serialized)
        throw new ContractViolationError('a message needs payload.id', [{ path: 'payload.id', message: 'required' }]);
      const key = messageKey(serialized);
      const fromMe = payload.fromMe === true;
      const chatId = jid(nonEmptyString(fromMe ? payload.to : payload.from) ?? key.chat ?? '');
      if (!chatId)
        throw new ContractViolationError('a message needs payload.from', [
          { path: 'payload.from', message: 'required' },
        ]);
      const media = isPlainObject(payload.media) ? payload.media : undefined;
      const mime = nonEmptyString(media?.mimetype);
      const type: MessageType = payload.hasMedia === true && mime ? messageTypeOfMime(mime) : 'text';
      const text = nonEmptyString(payload.body);
      const participant = nonEmptyString(payload.participant);
      const replyTo = isPlainObject(payload.replyTo) ? nonEmptyString(payload.replyTo.id) : undefined;
      const pushName = isPlainObject(payload._data)
        ? (nonEmptyString(payload._data.pushName) ?? nonEmptyString(payload._data.notifyName))
        : undefined;
      return one(
        createEvent(
          fromMe ? 'whatsapp.message.sent.v1' : 'whatsapp.message.received.v1',
          {
            ...base,
            messageId: key.id,
            chatId,
            from: participant ? jid(participant) : fromMe ? jid(nonEmptyString(payload.from) ?? chatId) : chatId,
            fromMe,
            type,
            ...(pushName ? { pushName } : {}),
            ...(text ? { text } : {}),
            ...(media
              ? {
                  media: {
                    ...(nonEmptyString(media.url) ? { url: nonEmptyString(media.url) } : {}),
                    ...(mime ? { mimeType: mime } : {}),
                    ...(nonEmptyString(media.filename) ? { fileName: nonEmptyString(media.filename) } : {}),
                  },
                }
              : {}),
            ...(replyTo ? { quotedMessageId: messageKey(replyTo).id } : {}),
            timestamp: at,
          },
          { source: SOURCE, time },
        ),
        `waha:${session}:${chatId}:${key.id}:${fromMe ? 'out' : 'in'}`,
      );
    }
    case 'message.ack': {
      const serialized = nonEmptyString(payload.id);
      const status = ACK[String(payload.ackName ?? payload.ack)];
      if (!serialized || !status)
        return {
          events: [],
          ignored: [{ reason: `ack ${String(payload.ackName ?? payload.ack)} not handled`, type: eventName }],
        };
      const key = messageKey(serialized);
      const chat = nonEmptyString(payload.to) ?? key.chat;
      return one(
        createEvent(
          'whatsapp.message.status.v1',
          { ...base, messageId: key.id, ...(chat ? { chatId: jid(chat) } : {}), status, timestamp: at },
          { source: SOURCE, time },
        ),
        `waha:${session}:${key.id}:${status}`,
      );
    }
    case 'message.reaction': {
      const reaction = isPlainObject(payload.reaction) ? payload.reaction : undefined;
      const serialized = nonEmptyString(payload.id);
      if (!serialized || !reaction)
        return { events: [], ignored: [{ reason: 'reaction without id', type: eventName }] };
      const key = messageKey(serialized);
      const fromMe = payload.fromMe === true;
      const chatId = jid(nonEmptyString(fromMe ? payload.to : payload.from) ?? key.chat ?? '');
      return one(
        createEvent(
          fromMe ? 'whatsapp.message.sent.v1' : 'whatsapp.message.received.v1',
          {
            ...base,
            messageId: key.id,
            chatId,
            fromMe,
            type: 'reaction',
            reaction: {
              messageId: messageKey(nonEmptyString(reaction.messageId) ?? '').id,
              emoji: nonEmptyString(reaction.text) ?? '',
            },
            timestamp: at,
          },
          { source: SOURCE, time },
        ),
        `waha:${session}:${chatId}:${key.id}:reaction`,
      );
    }
    case 'session.status': {
      const state = STATE[String(payload.status)];
      if (!state)
        return {
          events: [],
          ignored: [{ reason: `session status ${String(payload.status)} not handled`, type: eventName }],
        };
      return one(
        createEvent(
          'whatsapp.session.status.v1',
          { ...base, status: state, reason: String(payload.status), timestamp: at },
          { source: SOURCE, time },
        ),
        deliveryId,
      );
    }
    case 'chat.archive': {
      const chatId = nonEmptyString(payload.id);
      if (!chatId || typeof payload.archived !== 'boolean')
        throw new ContractViolationError('chat.archive needs payload.id and payload.archived', [
          { path: 'payload', message: 'id and archived required' },
        ]);
      return one(
        createEvent(
          payload.archived ? 'whatsapp.chat.archived.v1' : 'whatsapp.chat.unarchived.v1',
          { ...base, chatId: jid(chatId), timestamp: at },
          { source: SOURCE, time },
        ),
        deliveryId,
      );
    }
    default:
      return { events: [], ignored: [{ reason: 'event type not handled (kept in WEBHOOKS_RAW)', type: eventName }] };
  }
}
