import { createEvent, type DomainEvent } from '@puente/contracts';
import { ContractViolationError, UnauthorizedError } from '../../http/errors.js';
import { bearerToken, matchesAny } from '../../http/auth.js';
import { verifyHs256Jwt } from '../../http/jwt.js';
import { parseJson, sha256, type Normalized, type NormalizedEvent, type WebhookRequest } from '../delivery.js';
import { isPlainObject, nonEmptyString, type Unchecked } from '../readers.js';
import type { EvolutionEventData, EvolutionWebhook } from './evolutionApiTypes.js';
import { baileysContent, toIsoTime, type BaileysMessage } from '@puente/contracts';

/**
 * Evolution API has no body signature. It authenticates with the instance `apikey` (in a header, or in
 * the body it posts), or, configured with `jwt_key`, an HS256 `Authorization: Bearer` JWT. The body is
 * read only to find an `apikey` when no header credential is present; a body that is not JSON is then
 * unauthenticated (401), not malformed.
 */
export async function verifyEvolution(request: WebhookRequest, secrets: readonly string[], now: Date): Promise<void> {
  const header = request.headers.apikey ?? request.headers['x-api-key'];
  const headerKey = Array.isArray(header) ? header[0] : header;
  if (headerKey && matchesAny(headerKey, secrets)) return;
  const bearer = bearerToken(request.headers.authorization);
  if (bearer && (await verifyHs256Jwt(bearer, secrets, now))) return;
  if (!headerKey && !bearer) {
    let body: unknown;
    try {
      body = JSON.parse(request.body.toString('utf8'));
    } catch {
      throw new UnauthorizedError('missing or invalid apikey');
    }
    const key = isPlainObject(body) ? body.apikey : undefined;
    if (typeof key === 'string' && matchesAny(key, secrets)) return;
  }
  throw new UnauthorizedError('missing or invalid apikey or Bearer JWT');
}

const SOURCE = 'urn:puente:gateway:evolution';
/** Evolution forwards Baileys' status names (and sometimes the numeric enum). */
const STATUS: Record<string, 'sent' | 'delivered' | 'read' | 'failed'> = {
  SERVER_ACK: 'sent',
  DELIVERY_ACK: 'delivered',
  READ: 'read',
  PLAYED: 'read',
  ERROR: 'failed',
  '2': 'sent',
  '3': 'delivered',
  '4': 'read',
  '5': 'read',
  '0': 'failed',
};
const STATE: Record<string, 'connecting' | 'connected' | 'disconnected'> = {
  open: 'connected',
  connecting: 'connecting',
  close: 'disconnected',
};

/**
 * Evolution API v2 bodies (`{event, instance, data, date_time, ...}`, `data` in Baileys' shape) to the
 * same WhatsApp domain events as every gateway. The instance is the session. The event name comes from
 * the body, or from the path suffix Evolution adds with `webhook_by_events` (`/messages-upsert`).
 */
export function normalizeEvolution(request: WebhookRequest): Normalized {
  const parsed = parseJson(request.body);
  if (!isPlainObject(parsed))
    throw new ContractViolationError('the body must be a JSON object', [
      { path: '(body)', message: 'expected an object' },
    ]);
  const body: Unchecked<EvolutionWebhook> = parsed;
  const suffix = request.params.event?.replace(/-/g, '.');
  const eventName = (nonEmptyString(body.event) ?? suffix)?.toLowerCase().replace(/_/g, '.');
  if (!eventName) throw new ContractViolationError('the event is missing', [{ path: 'event', message: 'required' }]);
  const session =
    nonEmptyString(body.instance) ?? (isPlainObject(body.data) ? nonEmptyString(body.data.instance) : undefined);
  if (!session)
    throw new ContractViolationError('the instance is missing', [{ path: 'instance', message: 'required' }]);
  const at = toIsoTime(body.date_time) ?? request.receivedAt.toISOString();
  const time = request.receivedAt.toISOString();
  const base = { session, provider: 'evolution' as const };
  const events: NormalizedEvent[] = [];
  const add = (event: DomainEvent, msgId: string) => events.push({ event, msgId });
  const items = Array.isArray(body.data) ? body.data : [body.data];
  const fallback = (i: number) =>
    `evolution:${sha256(`${eventName}\n${session}\n`).slice(0, 16)}:${sha256(request.body).slice(0, 32)}:${i}`;

  items.forEach((raw, i) => {
    if (!isPlainObject(raw))
      throw new ContractViolationError('data must be an object or a list of objects', [
        { path: Array.isArray(body.data) ? `data.${i}` : 'data', message: 'expected an object' },
      ]);
    const data: Unchecked<EvolutionEventData> = raw;
    switch (eventName) {
      case 'messages.upsert':
      case 'send.message': {
        const message = data as BaileysMessage;
        const id = message.key?.id;
        const chatId = message.key?.remoteJid;
        if (!id || !chatId)
          throw new ContractViolationError('a message needs data.key.id and data.key.remoteJid', [
            { path: 'data.key', message: 'required: id and remoteJid' },
          ]);
        const fromMe = message.key?.fromMe === true || eventName === 'send.message';
        const from = message.key?.participant ?? (fromMe ? undefined : chatId);
        const type = fromMe ? 'whatsapp.message.sent.v1' : 'whatsapp.message.received.v1';
        add(
          createEvent(
            type,
            {
              ...base,
              messageId: id,
              chatId,
              ...(message.key?.remoteJidAlt ? { chatAlt: message.key.remoteJidAlt } : {}),
              ...(from ? { from } : {}),
              fromMe,
              ...(message.pushName ? { pushName: message.pushName } : {}),
              ...withStoredMediaUrl(baileysContent(message.message), message.message),
              timestamp: toIsoTime(message.messageTimestamp) ?? at,
            },
            { source: SOURCE, time },
          ),
          `evolution:${session}:${chatId}:${id}:${fromMe ? 'out' : 'in'}`,
        );
        return;
      }
      case 'messages.update': {
        const id =
          nonEmptyString(data.keyId) ??
          nonEmptyString(data.messageId) ??
          (isPlainObject(data.key) ? nonEmptyString(data.key.id) : undefined);
        const status = STATUS[String(data.status ?? (isPlainObject(data.update) ? data.update.status : ''))];
        if (!id || !status) return;
        const chatId =
          nonEmptyString(data.remoteJid) ?? (isPlainObject(data.key) ? nonEmptyString(data.key.remoteJid) : undefined);
        add(
          createEvent(
            'whatsapp.message.status.v1',
            {
              ...base,
              messageId: id,
              ...(chatId ? { chatId } : {}),
              status,
              timestamp: toIsoTime(data.dateTime) ?? at,
            },
            { source: SOURCE, time },
          ),
          `evolution:${session}:${id}:${status}`,
        );
        return;
      }
      case 'connection.update': {
        const state = STATE[String(data.state)];
        if (!state) return;
        add(
          createEvent(
            'whatsapp.session.status.v1',
            {
              ...base,
              status: state,
              ...(data.statusReason !== undefined ? { reason: String(data.statusReason) } : {}),
              ...(nonEmptyString(data.wuid) ? { phone: nonEmptyString(data.wuid)!.split('@')[0]! } : {}),
              timestamp: at,
            },
            { source: SOURCE, time },
          ),
          fallback(i),
        );
        return;
      }
      case 'qrcode.updated': {
        const qr = isPlainObject(data.qrcode)
          ? (nonEmptyString(data.qrcode.code) ?? nonEmptyString(data.qrcode.base64))
          : undefined;
        if (qr)
          add(
            createEvent('whatsapp.session.qr.v1', { ...base, qr, timestamp: at }, { source: SOURCE, time }),
            `evolution:${session}:qr:${sha256(qr).slice(0, 32)}`,
          );
        return;
      }
      case 'contacts.upsert':
      case 'contacts.update': {
        const jid = nonEmptyString(data.remoteJid) ?? nonEmptyString(data.id);
        if (!jid) return;
        const name = nonEmptyString(data.pushName) ?? nonEmptyString(data.name);
        add(
          createEvent(
            'whatsapp.contact.updated.v1',
            { ...base, jid, ...(name ? { name } : {}), timestamp: at },
            { source: SOURCE, time },
          ),
          fallback(i),
        );
        return;
      }
      case 'chats.update':
      case 'chats.upsert': {
        const chatId = nonEmptyString(data.remoteJid) ?? nonEmptyString(data.id);
        if (!chatId || typeof data.archived !== 'boolean') return;
        add(
          createEvent(
            data.archived ? 'whatsapp.chat.archived.v1' : 'whatsapp.chat.unarchived.v1',
            { ...base, chatId, timestamp: at },
            { source: SOURCE, time },
          ),
          fallback(i),
        );
        return;
      }
      default:
        return;
    }
  });
  return {
    events,
    ignored: events.length === 0 ? [{ reason: 'event type not handled (kept in WEBHOOKS_RAW)', type: eventName }] : [],
  };
}

/**
 * With S3 storage on, Evolution uploads a message's media and puts the object's URL at
 * `data.message.mediaUrl` (whatsapp.baileys.service.ts at 3454bec): a plain file, unlike the Baileys
 * `url` (WhatsApp's encrypted CDN file), so it is the media's URL.
 */
function withStoredMediaUrl<C extends ReturnType<typeof baileysContent>>(
  content: C,
  message: Record<string, unknown> | null | undefined,
): C {
  const stored = isPlainObject(message) ? nonEmptyString(message.mediaUrl) : undefined;
  return content.media && stored ? { ...content, media: { ...content.media, url: stored } } : content;
}
