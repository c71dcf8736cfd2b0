import { createEvent, MessageType } from '@puente/contracts';
import { ContractViolationError, UnauthorizedError } from '../../http/errors.js';
import { hmacMatchesAny, strictHex } from '../../http/signatures.js';
import { hasStandardWebhookHeaders, verifyStandardWebhook } from '../../http/standardWebhooks.js';
import { parseJson, sha256, single as one, type Normalized, type WebhookRequest } from '../delivery.js';
import { isPlainObject, nonEmptyString, nonEmptyStringOrNumber, type Unchecked } from '../readers.js';
import type { InboxHubEventData, InboxHubWebhook } from './inboxhubApiTypes.js';
import { baileysContent, normalizeJid, toIsoTime, type BaileysMessage } from '@puente/contracts';

/** How a Baileys gateway signs its bodies; Inbox Hub's defaults, configurable since gateways differ. */
export interface HmacScheme {
  header: string;
  algorithm: 'sha256' | 'sha512';
  encoding: 'hex' | 'base64';
  /** Text before the signature in the header, e.g. `sha256=`; may be empty. */
  prefix: string;
}

export const DEFAULT_INBOXHUB_SCHEME: HmacScheme = {
  header: 'x-webhook-signature',
  algorithm: 'sha256',
  encoding: 'hex',
  prefix: 'sha256=',
};

/**
 * Standard Webhooks headers, when present, decide (rotation, ±5 min); otherwise the configured HMAC
 * header. Returns the provider's delivery id when it has one (`webhook-id`).
 */
export function verifyInboxHub(
  request: WebhookRequest,
  secrets: readonly string[],
  scheme: HmacScheme,
  now: Date,
): { deliveryId?: string } {
  if (hasStandardWebhookHeaders(request.headers)) {
    const id = verifyStandardWebhook(request.headers, request.body, secrets, now);
    if (!id) throw new UnauthorizedError('invalid Standard Webhooks signature, or a timestamp outside ±5 minutes');
    return { deliveryId: id };
  }
  const header = request.headers[scheme.header.toLowerCase()];
  const value = Array.isArray(header) ? header[0] : header;
  if (!value || !value.startsWith(scheme.prefix)) throw new UnauthorizedError(`missing or invalid ${scheme.header}`);
  const encoded = value.slice(scheme.prefix.length).trim();
  const given =
    scheme.encoding === 'hex'
      ? strictHex(encoded)
      : /^[A-Za-z0-9+/]+={0,2}$/.test(encoded)
        ? Buffer.from(encoded, 'base64')
        : undefined;
  if (!given || !hmacMatchesAny(scheme.algorithm, secrets, request.body, given))
    throw new UnauthorizedError(`missing or invalid ${scheme.header}`);
  return {};
}

const SOURCE = 'urn:puente:gateway:inboxhub';
const STATUS_EVENTS: Record<string, 'sent' | 'delivered' | 'read' | 'failed'> = {
  'message.sent': 'sent',
  'message.delivered': 'delivered',
  'message.read': 'read',
  'message.failed': 'failed',
};
const MESSAGE_EVENTS = new Set([
  'message.received',
  'message',
  'message.any',
  'messages.upsert',
  'message.upsert',
  'message.new',
]);
const SESSION_STATES: Record<string, 'connecting' | 'connected' | 'disconnected' | 'logged_out' | 'failed'> = {
  connected: 'connected',
  open: 'connected',
  working: 'connected',
  ready: 'connected',
  online: 'connected',
  connecting: 'connecting',
  starting: 'connecting',
  scan_qr_code: 'connecting',
  qr: 'connecting',
  disconnected: 'disconnected',
  close: 'disconnected',
  closed: 'disconnected',
  stopped: 'disconnected',
  offline: 'disconnected',
  logged_out: 'logged_out',
  logout: 'logged_out',
  failed: 'failed',
  error: 'failed',
};

/** The chat of a payload that names only the contact's number (`phone_number`): its JID. */
function phoneNumberChat(data: Unchecked<InboxHubEventData>): string | undefined {
  const phone = nonEmptyStringOrNumber(data.phone_number);
  return phone ? normalizeJid(phone) : undefined;
}

/**
 * What a message payload says the message is: Baileys' shape (`key`, `message`) when it is one, else the
 * flat fields (`type`, the text under any of its names, `media`). `present` says whether the payload
 * carries any content at all, which is what tells a `message.sent` message from a bare status.
 */
function messageContent(data: Unchecked<InboxHubEventData>): {
  content: ReturnType<typeof baileysContent>;
  present: boolean;
} {
  // A Baileys key without a message is Baileys' shape too: its content is unsupported, as Baileys has it.
  if (isPlainObject(data.message) || isPlainObject(data.key))
    return {
      content: baileysContent(isPlainObject(data.message) ? data.message : undefined),
      present: isPlainObject(data.message),
    };
  const type = MessageType.safeParse(nonEmptyStringOrNumber(data.type) ?? 'text');
  const text =
    nonEmptyStringOrNumber(data.content) ??
    nonEmptyStringOrNumber(data.text) ??
    nonEmptyStringOrNumber(data.body) ??
    nonEmptyStringOrNumber(data.caption) ??
    // The send call's name for the text (`{to, message, type}`).
    nonEmptyString(data.message);
  // Media as `media: {url, mimetype, fileName}` (the form Puente reads first), or the flat fields Baileys
  // gateways also use (`mediaUrl`, `mimetype`, `fileName`, in camel or snake case), or `media` as a URL.
  const nested = isPlainObject(data.media) ? data.media : {};
  const flat = data as Record<string, unknown>;
  const url =
    nonEmptyString(nested.url) ??
    nonEmptyString(typeof data.media === 'string' ? data.media : undefined) ??
    nonEmptyString(flat.mediaUrl) ??
    nonEmptyString(flat.media_url);
  const mimeType =
    nonEmptyString(nested.mimetype ?? nested.mimeType ?? nested.mime_type) ??
    nonEmptyString(flat.mimetype ?? flat.mimeType ?? flat.mime_type);
  const fileName =
    nonEmptyString(nested.fileName ?? nested.filename ?? nested.file_name) ??
    nonEmptyString(flat.fileName ?? flat.filename ?? flat.file_name);
  const media = isPlainObject(data.media) || url !== undefined ? true : undefined;
  return {
    content: {
      type: type.success ? type.data : 'unsupported',
      ...(text ? { text } : {}),
      ...(media
        ? { media: { ...(url ? { url } : {}), ...(mimeType ? { mimeType } : {}), ...(fileName ? { fileName } : {}) } }
        : {}),
    },
    present: text !== undefined || media !== undefined,
  };
}

/**
 * Inbox Hub's canonical body (`{event, sessionId, timestamp, data}`), its snake_case aliases, and data
 * in Baileys' native message shape, to WhatsApp domain events. A `message.sent` with content is the
 * message (`whatsapp.message.sent.v1`), without it a status; a chat named only by `phone_number` is
 * that number's JID. Message ids: the message id plus the event; without one, the provider's delivery id, else a hash of event, session and body. An unknown
 * event is answered 200 with `ignored` (it is kept in WEBHOOKS_RAW).
 */
export function normalizeInboxHub(request: WebhookRequest, deliveryId: string | undefined): Normalized {
  const parsed = parseJson(request.body);
  if (!isPlainObject(parsed))
    throw new ContractViolationError('the body must be a JSON object', [
      { path: '(body)', message: 'expected an object' },
    ]);
  const body: Unchecked<InboxHubWebhook> = parsed;
  const headerEvent = request.headers['x-webhook-event'];
  const eventName = (
    nonEmptyStringOrNumber(Array.isArray(headerEvent) ? headerEvent[0] : headerEvent) ??
    nonEmptyStringOrNumber(body.event) ??
    nonEmptyStringOrNumber(body.type)
  )?.toLowerCase();
  if (!eventName)
    throw new ContractViolationError("the event name is missing (X-Webhook-Event or the body's event)", [
      { path: 'event', message: 'required' },
    ]);
  const session =
    nonEmptyStringOrNumber(body.sessionId) ??
    nonEmptyStringOrNumber(body.session_id) ??
    nonEmptyStringOrNumber(body.session) ??
    nonEmptyStringOrNumber(body.instance);
  if (!session)
    throw new ContractViolationError('the session is missing', [
      { path: 'sessionId', message: 'required (sessionId, session_id or session)' },
    ]);
  const data: Unchecked<InboxHubEventData> = isPlainObject(body.data)
    ? body.data
    : isPlainObject(body.payload)
      ? body.payload
      : {};
  const at = toIsoTime(data.timestamp) ?? toIsoTime(body.timestamp) ?? request.receivedAt.toISOString();
  const time = request.receivedAt.toISOString();
  const fallbackId = () =>
    deliveryId
      ? `inboxhub:delivery:${deliveryId}`
      : `inboxhub:${sha256(`${eventName}\n${session}\n`).slice(0, 16)}:${sha256(request.body).slice(0, 32)}`;
  const base = { session, provider: 'inboxhub' as const };

  const content = messageContent(data);
  // `message.sent` is how a message sent from the session arrives (typed on the phone, or sent by a
  // command): with content it is the message itself, without it only a status.
  const sentMessage = eventName === 'message.sent' && content.present;
  if (MESSAGE_EVENTS.has(eventName) || sentMessage) {
    const native = isPlainObject(data.key) ? (data as BaileysMessage) : undefined;
    const messageId =
      nonEmptyStringOrNumber(data.messageId) ?? nonEmptyStringOrNumber(data.message_id) ?? native?.key?.id;
    const chatId =
      nonEmptyStringOrNumber(data.chatId) ??
      nonEmptyStringOrNumber(data.chat_id) ??
      native?.key?.remoteJid ??
      phoneNumberChat(data);
    const missing = [!messageId && 'data.messageId', !chatId && 'data.chatId'].filter(Boolean) as string[];
    if (missing.length > 0)
      throw new ContractViolationError(
        `a message needs ${missing.join(' and ')}`,
        missing.map((path) => ({
          path,
          message: path === 'data.chatId' ? 'required (chatId, chat_id or phone_number)' : 'required',
        })),
      );
    const fromMe =
      sentMessage ||
      (typeof data.fromMe === 'boolean' ? data.fromMe : data.from_me === true || native?.key?.fromMe === true);
    const from = nonEmptyStringOrNumber(data.from) ?? native?.key?.participant ?? (fromMe ? undefined : chatId);
    const pushName =
      nonEmptyStringOrNumber(data.pushName) ?? nonEmptyStringOrNumber(data.push_name) ?? native?.pushName;
    const chatAlt =
      nonEmptyStringOrNumber(data.chatAlt) ?? nonEmptyStringOrNumber(data.chat_alt) ?? native?.key?.remoteJidAlt;
    const timestamp = toIsoTime(native?.messageTimestamp) ?? at;
    const type = fromMe ? 'whatsapp.message.sent.v1' : 'whatsapp.message.received.v1';
    return one(
      createEvent(
        type,
        {
          ...base,
          messageId: messageId!,
          chatId: chatId!,
          ...(chatAlt ? { chatAlt } : {}),
          ...(from ? { from } : {}),
          fromMe,
          ...(pushName ? { pushName } : {}),
          ...content.content,
          timestamp,
        },
        { source: SOURCE, time },
      ),
      `inboxhub:${session}:${chatId}:${messageId}:${fromMe ? 'out' : 'in'}`,
    );
  }

  const status =
    STATUS_EVENTS[eventName] ??
    (eventName === 'message.status' || eventName === 'message.ack'
      ? STATUS_EVENTS[`message.${String(data.status).toLowerCase()}`]
      : undefined);
  if (status) {
    const messageId =
      nonEmptyStringOrNumber(data.messageId) ??
      nonEmptyStringOrNumber(data.message_id) ??
      (isPlainObject(data.key) ? nonEmptyStringOrNumber(data.key.id) : undefined);
    if (!messageId)
      throw new ContractViolationError('a status needs data.messageId', [
        { path: 'data.messageId', message: 'required' },
      ]);
    const chatId =
      nonEmptyStringOrNumber(data.chatId) ??
      nonEmptyStringOrNumber(data.chat_id) ??
      (isPlainObject(data.key) ? nonEmptyStringOrNumber(data.key.remoteJid) : undefined) ??
      phoneNumberChat(data);
    const error = isPlainObject(data.error)
      ? {
          ...(nonEmptyStringOrNumber(data.error.code) ? { code: nonEmptyStringOrNumber(data.error.code) } : {}),
          message: nonEmptyStringOrNumber(data.error.message) ?? 'failed',
        }
      : nonEmptyStringOrNumber(data.error)
        ? { message: nonEmptyStringOrNumber(data.error)! }
        : undefined;
    return one(
      createEvent(
        'whatsapp.message.status.v1',
        { ...base, messageId, ...(chatId ? { chatId } : {}), status, timestamp: at, ...(error ? { error } : {}) },
        { source: SOURCE, time },
      ),
      `inboxhub:${session}:${messageId}:${status}`,
    );
  }

  if (eventName.startsWith('session.') || eventName === 'connection.update' || eventName === 'qrcode.updated') {
    const qr =
      nonEmptyStringOrNumber(data.qr) ??
      (isPlainObject(data.qrcode) ? nonEmptyStringOrNumber(data.qrcode.code) : undefined);
    if (qr && (eventName.endsWith('qr') || eventName === 'qrcode.updated' || !nonEmptyStringOrNumber(data.status))) {
      return one(
        createEvent('whatsapp.session.qr.v1', { ...base, qr, timestamp: at }, { source: SOURCE, time }),
        `inboxhub:${session}:qr:${sha256(qr).slice(0, 32)}`,
      );
    }
    const named = eventName.split('.')[1] ?? '';
    const raw = (
      nonEmptyStringOrNumber(data.status) ??
      nonEmptyStringOrNumber(data.state) ??
      nonEmptyStringOrNumber(data.connection) ??
      named
    ).toLowerCase();
    const state = SESSION_STATES[raw] ?? SESSION_STATES[named];
    if (!state) return { events: [], ignored: [{ reason: `session state ${raw} not handled`, type: eventName }] };
    const phone = nonEmptyStringOrNumber(data.phone) ?? nonEmptyStringOrNumber(data.phone_number);
    const reason = nonEmptyStringOrNumber(data.reason);
    return one(
      createEvent(
        'whatsapp.session.status.v1',
        { ...base, status: state, ...(phone ? { phone } : {}), ...(reason ? { reason } : {}), timestamp: at },
        { source: SOURCE, time },
      ),
      fallbackId(),
    );
  }

  if (eventName === 'contact.updated' || eventName === 'contacts.update' || eventName === 'contacts.upsert') {
    const jid =
      nonEmptyStringOrNumber(data.jid) ?? nonEmptyStringOrNumber(data.id) ?? nonEmptyStringOrNumber(data.phone_number);
    if (!jid) throw new ContractViolationError('a contact needs data.jid', [{ path: 'data.jid', message: 'required' }]);
    const name =
      nonEmptyStringOrNumber(data.name) ?? nonEmptyStringOrNumber(data.notify) ?? nonEmptyStringOrNumber(data.pushName);
    const phone =
      nonEmptyStringOrNumber(data.phone) ??
      nonEmptyStringOrNumber(data.phone_number) ??
      nonEmptyStringOrNumber(data.phoneNumber);
    const lid = nonEmptyStringOrNumber(data.lid);
    return one(
      createEvent(
        'whatsapp.contact.updated.v1',
        {
          ...base,
          jid,
          ...(name ? { name } : {}),
          ...(phone ? { phone } : {}),
          ...(lid ? { lid } : {}),
          timestamp: at,
        },
        { source: SOURCE, time },
      ),
      fallbackId(),
    );
  }

  if (eventName === 'chat.archived' || eventName === 'chat.unarchived') {
    const chatId =
      nonEmptyStringOrNumber(data.chatId) ?? nonEmptyStringOrNumber(data.chat_id) ?? nonEmptyStringOrNumber(data.id);
    if (!chatId)
      throw new ContractViolationError('a chat event needs data.chatId', [
        { path: 'data.chatId', message: 'required' },
      ]);
    const type = eventName === 'chat.archived' ? 'whatsapp.chat.archived.v1' : 'whatsapp.chat.unarchived.v1';
    return one(
      createEvent(type, { ...base, chatId, timestamp: at }, { source: SOURCE, time }),
      `inboxhub:${session}:${chatId}:${eventName}:${at}`,
    );
  }

  return { events: [], ignored: [{ reason: 'event type not handled (kept in WEBHOOKS_RAW)', type: eventName }] };
}
