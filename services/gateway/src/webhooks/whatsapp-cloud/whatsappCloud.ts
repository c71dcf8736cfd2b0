import { URL } from 'node:url';
import { createEvent, type DomainEvent, type MessageContent, type MessageType } from '@puente/contracts';
import { HttpError } from '@puente/runtime';
import { ContractViolationError, UnauthorizedError } from '../../http/errors.js';
import { toIsoTime } from '@puente/contracts';
import { matchesAny } from '../../http/auth.js';
import { hmacMatchesAny, strictHex } from '../../http/signatures.js';
import {
  contractViolation,
  parseJson,
  type Normalized,
  type NormalizedEvent,
  type WebhookRequest,
} from '../delivery.js';
import { MetaChangeValue, MetaWebhook, type MetaMessage, type MetaStatus } from './metaApiTypes.js';

const SOURCE = 'urn:puente:gateway:whatsapp-cloud';

/**
 * The GET handshake: `hub.mode=subscribe` and a `hub.verify_token` equal to a configured token answer
 * `hub.challenge` as plain text; anything else is refused.
 */
export function verifySubscription(url: string, tokens: readonly string[]): string {
  const query = new URL(url, 'http://gateway').searchParams;
  const challenge = query.get('hub.challenge');
  const token = query.get('hub.verify_token');
  if (query.get('hub.mode') !== 'subscribe' || !token || !matchesAny(token, tokens))
    throw new UnauthorizedError('hub.mode must be subscribe and hub.verify_token must match');
  if (!challenge || challenge.length > 512) throw new HttpError('bad_request', 'hub.challenge is missing');
  return challenge;
}

/** `X-Hub-Signature-256: sha256=<hex>`: HMAC-SHA256 of the raw bytes (Meta escapes non-ASCII before signing). */
export function verifyMetaSignature(request: WebhookRequest, secrets: readonly string[]): void {
  const header = request.headers['x-hub-signature-256'];
  const value = Array.isArray(header) ? header[0] : header;
  const given = value?.startsWith('sha256=') ? strictHex(value.slice('sha256='.length)) : undefined;
  if (!given || !hmacMatchesAny('sha256', secrets, request.body, given))
    throw new UnauthorizedError('missing or invalid X-Hub-Signature-256');
}

function unixToIso(seconds: string): string {
  const iso = toIsoTime(seconds);
  if (!iso)
    throw new ContractViolationError('timestamp must be Unix seconds between 1970 and 9999', [
      { path: 'timestamp', message: 'out of range' },
    ]);
  return iso;
}

/** A Cloud API user: their phone number as a JID when Meta gives it, else their business-scoped user id. */
function userJid(phone: string | undefined, userId: string | undefined): string {
  return phone ? `${phone}@s.whatsapp.net` : userId!;
}

const MEDIA_TYPES = new Set(['image', 'video', 'audio', 'document', 'sticker']);

function messageContent(
  message: MetaMessage,
): Pick<MessageContent, 'type' | 'text' | 'media' | 'location' | 'reaction'> {
  const t = message.type;
  if (t === 'text') return { type: 'text', text: message.text?.body ?? '' };
  if (MEDIA_TYPES.has(t)) {
    const media = (message as Record<string, unknown>)[t] as
      | {
          id?: string;
          mime_type?: string;
          sha256?: string;
          caption?: string;
          filename?: string;
          voice?: boolean;
          link?: string;
        }
      | undefined;
    const type: MessageType = t === 'audio' && media?.voice ? 'voice' : (t as MessageType);
    return {
      type,
      ...(media?.caption ? { text: media.caption } : {}),
      media: {
        ...(media?.id ? { id: media.id } : {}),
        ...(media?.link ? { url: media.link } : {}),
        ...(media?.mime_type ? { mimeType: media.mime_type } : {}),
        ...(media?.sha256 ? { sha256: media.sha256 } : {}),
        ...(media?.filename ? { fileName: media.filename } : {}),
        ...(media?.caption ? { caption: media.caption } : {}),
      },
    };
  }
  if (t === 'location' && message.location) {
    const l = message.location;
    return {
      type: 'location',
      location: {
        latitude: l.latitude,
        longitude: l.longitude,
        ...(l.name ? { name: l.name } : {}),
        ...(l.address ? { address: l.address } : {}),
      },
    };
  }
  // A removed reaction arrives without an emoji: an empty one says "removed".
  if (t === 'reaction' && message.reaction)
    return {
      type: 'reaction',
      reaction: { messageId: message.reaction.message_id, emoji: message.reaction.emoji ?? '' },
    };
  if (t === 'interactive') {
    const i = message.interactive;
    const text = i?.button_reply?.title ?? i?.list_reply?.title ?? i?.nfm_reply?.body;
    return { type: 'interactive', ...(text ? { text } : {}) };
  }
  if (t === 'button') return { type: 'button', ...(message.button?.text ? { text: message.button.text } : {}) };
  if (t === 'contacts') return { type: 'contacts' };
  if (t === 'order') return { type: 'order' };
  if (t === 'system') return { type: 'system' };
  return { type: 'unsupported' };
}

const STATUS: Record<string, 'sent' | 'delivered' | 'read' | 'failed'> = {
  sent: 'sent',
  delivered: 'delivered',
  read: 'read',
  played: 'read',
  failed: 'failed',
};

/**
 * Every message, status and contact profile of every entry and change becomes its own event, with the
 * `phone_number_id` as the session. Message ids: the `wamid` for a message, `wamid` plus status for a
 * status, so Meta's retries (for up to seven days) deduplicate.
 */
export function normalizeWhatsAppCloud(request: WebhookRequest): Normalized {
  const parsed = MetaWebhook.safeParse(parseJson(request.body));
  if (!parsed.success) throw contractViolation('not a whatsapp_business_account delivery', parsed.error);
  const events: NormalizedEvent[] = [];
  const ignored: { reason: string; type?: string }[] = [];
  const add = (event: DomainEvent, msgId: string) => events.push({ event, msgId });
  const time = request.receivedAt.toISOString();

  parsed.data.entry.forEach((entry, e) => {
    entry.changes.forEach((change, c) => {
      if (change.field !== 'messages') {
        ignored.push({ reason: 'field not handled', type: change.field });
        return;
      }
      const value = MetaChangeValue.safeParse(change.value);
      if (!value.success) {
        const error = contractViolation('invalid messages change', value.error);
        error.details.forEach((d) => (d.path = `entry.${e}.changes.${c}.value.${d.path}`));
        throw new HttpError('contract_violation', `entry ${e}, change ${c}: ${error.message}`, {
          details: error.details,
        });
      }
      const v = value.data;
      const session = v.metadata.phone_number_id;
      const names = new Map<string, string>();
      for (const contact of v.contacts ?? []) {
        const key = contact.wa_id ?? contact.user_id;
        if (!key) continue;
        if (contact.profile?.name) names.set(key, contact.profile.name);
        if (contact.wa_id && contact.user_id && contact.profile?.name) names.set(contact.user_id, contact.profile.name);
        const jid = userJid(contact.wa_id, contact.user_id);
        add(
          createEvent(
            'whatsapp.contact.updated.v1',
            {
              session,
              provider: 'cloud-api',
              jid,
              ...(contact.profile?.name ? { name: contact.profile.name } : {}),
              ...(contact.wa_id ? { phone: contact.wa_id } : {}),
              timestamp: time,
            },
            { source: SOURCE, time },
          ),
          `meta:contact:${session}:${jid}:${contact.profile?.name ?? ''}:${contact.user_id ?? ''}`,
        );
      }
      for (const message of v.messages ?? []) {
        const chatId = userJid(message.from, message.user_id);
        const pushName = names.get(message.from ?? '') ?? names.get(message.user_id ?? '');
        add(
          createEvent(
            'whatsapp.message.received.v1',
            {
              session,
              provider: 'cloud-api',
              messageId: message.id,
              chatId,
              from: chatId,
              fromMe: false,
              ...(pushName ? { pushName } : {}),
              ...messageContent(message),
              ...(message.context?.id ? { quotedMessageId: message.context.id } : {}),
              timestamp: unixToIso(message.timestamp),
            },
            { source: SOURCE, time },
          ),
          `meta:message:${message.id}`,
        );
      }
      for (const status of v.statuses ?? []) addStatus(status);
      function addStatus(status: MetaStatus): void {
        const mapped = STATUS[status.status];
        if (!mapped) {
          ignored.push({ reason: 'status not handled', type: status.status });
          return;
        }
        const recipient = status.recipient_id ?? status.recipient_user_id ?? status.user_id;
        const error = status.errors?.[0];
        add(
          createEvent(
            'whatsapp.message.status.v1',
            {
              session,
              provider: 'cloud-api',
              messageId: status.id,
              ...(recipient
                ? { chatId: status.recipient_id ? userJid(status.recipient_id, undefined) : recipient }
                : {}),
              status: mapped,
              timestamp: unixToIso(status.timestamp),
              ...(error
                ? {
                    error: {
                      ...(error.code !== undefined ? { code: String(error.code) } : {}),
                      message: error.message ?? error.title ?? 'failed',
                    },
                  }
                : {}),
            },
            { source: SOURCE, time },
          ),
          `meta:status:${status.id}:${status.status}`,
        );
      }
      if ((v.errors ?? []).length > 0)
        ignored.push({ reason: 'out-of-band errors (kept in WEBHOOKS_RAW)', type: 'errors' });
    });
  });
  return { events, ignored };
}
