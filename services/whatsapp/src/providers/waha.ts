import { messageTypeOfMime, phoneOf, toIsoTime, type MessageType } from '@puente/contracts';
import { ProviderError, type JsonResponse } from '@puente/runtime';
import type { SyncChat, SyncContact, SyncMessage, SyncPage, SyncSource } from '../sync/source.js';
import {
  getFromGateway,
  parsedList,
  postToGateway,
  sendableMedia,
  type GatewayClient,
  type GatewaySendInput,
} from './gateway.js';
import {
  WahaChat,
  WahaContact,
  WahaError,
  WahaMessage,
  WahaSent,
  type WahaSendFile,
  type WahaSendSeen,
  type WahaSendText,
} from './wahaApiTypes.js';

/** Where WAHA listens and its key (`WAHA_API_KEY` on the WAHA side). */
export interface WahaConfig {
  apiUrl: string;
  apiKey: string;
  timeoutMs: number;
}

/** The endpoint per media type: a voice note for audio, a file for documents. */
const MEDIA_PATHS = { image: 'sendImage', video: 'sendVideo', audio: 'sendVoice', document: 'sendFile' } as const;

/** A JID as WAHA writes chats: users on `c.us`, groups and others as they are. */
export function wahaChatId(jid: string): string {
  return jid.endsWith('@s.whatsapp.net') ? `${jid.slice(0, -'@s.whatsapp.net'.length)}@c.us` : jid;
}

/** A WAHA chat or contact id as the events write JIDs: users on `s.whatsapp.net`. */
const jidOf = (id: string) => id.replace(/@c\.us$/, '@s.whatsapp.net');
const idOf = (id: string | { _serialized: string }) => jidOf(typeof id === 'string' ? id : id._serialized);

/** The bare message id of a serialized one (`true_<chat>_<id>[_<participant>]`), as WAHA's webhooks are read. */
function bareId(serialized: string): string {
  const parts = serialized.split('_');
  return parts.length >= 3 && (parts[0] === 'true' || parts[0] === 'false') ? parts[2]! : serialized;
}

/**
 * Sending and marking read through WAHA (docs/providers/waha.md): the session is WAHA's session name,
 * every call carries the key in `X-Api-Key`.
 */
export class WahaClient implements GatewayClient, SyncSource {
  readonly provider = 'waha';

  constructor(private readonly config: WahaConfig) {}

  /** Every contact at once (`GET /api/contacts/all` has no paging): page 1 holds them all. */
  async contacts(session: string, page: number): Promise<SyncPage<SyncContact>> {
    if (page > 1) return { items: [], received: 0, total: 0 };
    const answer = await this.get(`/api/contacts/all?session=${encodeURIComponent(session)}`);
    const raw = parsedList('WAHA', answer, WahaContact, 'contacts');
    const items = raw.map((c) => {
      const jid = idOf(c.id);
      const name = c.name ?? c.pushname ?? c.verifiedName ?? undefined;
      const phone = c.number ?? phoneOf(jid);
      return { jid, ...(name ? { name } : {}), ...(phone ? { phone } : {}) };
    });
    return { items, received: raw.length, total: raw.length };
  }

  /** A page of chats by `limit`/`offset`. */
  async chats(session: string, page: number, limit: number): Promise<SyncPage<SyncChat>> {
    const path = `/api/${encodeURIComponent(session)}/chats?limit=${limit}&offset=${(page - 1) * limit}`;
    const raw = parsedList('WAHA', await this.get(path), WahaChat, 'chats');
    const items = raw.map((chat) => {
      const lastMessageAt = toIsoTime(chat.conversationTimestamp ?? chat.timestamp ?? undefined);
      return {
        chatId: idOf(chat.id),
        ...(chat.name ? { name: chat.name } : {}),
        ...(typeof chat.archived === 'boolean' ? { archived: chat.archived } : {}),
        ...(typeof chat.unreadCount === 'number' ? { unreadCount: chat.unreadCount } : {}),
        ...(lastMessageAt ? { lastMessageAt } : {}),
      };
    });
    return { items, received: raw.length };
  }

  /**
   * A page of a chat's newest messages. The endpoint takes `limit` only (the newest `limit`), so page `n`
   * asks for `n * limit` and keeps the last `limit` of them; media is not downloaded.
   */
  async messages(session: string, chatId: string, page: number, limit: number): Promise<SyncPage<SyncMessage>> {
    const chat = encodeURIComponent(wahaChatId(chatId));
    const path = `/api/${encodeURIComponent(session)}/chats/${chat}/messages?limit=${page * limit}&downloadMedia=false`;
    const raw = parsedList('WAHA', await this.get(path), WahaMessage, 'messages').slice((page - 1) * limit);
    const items = raw.map((m) => toSyncMessage(m, jidOf(chatId)));
    return { items, received: raw.length };
  }

  /** Text through `sendText`, media inline (`file.data`, base64) through `sendImage`/`sendVideo`/`sendVoice`/`sendFile`; returns the message id. */
  async send(session: string, input: GatewaySendInput): Promise<string> {
    const chatId = wahaChatId(input.to);
    let response: JsonResponse;
    if (input.media) {
      const type = sendableMedia('WAHA', input.media.type);
      response = await this.post(`/api/${MEDIA_PATHS[type]}`, {
        session,
        chatId,
        file: {
          mimetype: input.media.mimeType,
          ...(input.media.fileName ? { filename: input.media.fileName } : {}),
          data: input.media.data.toString('base64'),
        },
        ...(input.text !== undefined && type !== 'audio' ? { caption: input.text } : {}),
      } satisfies WahaSendFile);
    } else
      response = await this.post('/api/sendText', { session, chatId, text: input.text ?? '' } satisfies WahaSendText);
    const sent = WahaSent.safeParse(response.body);
    const id = !sent.success
      ? undefined
      : (sent.data.key?.id ??
        (typeof sent.data.id === 'string' ? bareId(sent.data.id) : sent.data.id?.id) ??
        sent.data._data?.id?.id);
    if (!id)
      throw new ProviderError(
        'unknown',
        'BAD_RESPONSE',
        `WAHA answered ${response.status} without a message id`,
        response.status,
      );
    return id;
  }

  /** `sendSeen` on the chat (what WEBJS marks), with its newest incoming message (what NOWEB marks). */
  async markRead(session: string, chatId: string, inbound: readonly string[]): Promise<void> {
    const chat = wahaChatId(chatId);
    await this.post('/api/sendSeen', {
      session,
      chatId: chat,
      ...(inbound[0] ? { messageId: `false_${chat}_${inbound[0]}` } : {}),
    } satisfies WahaSendSeen);
  }

  private get(path: string): Promise<unknown> {
    return getFromGateway(
      'WAHA',
      {
        url: `${this.config.apiUrl.replace(/\/$/, '')}${path}`,
        headers: { 'x-api-key': this.config.apiKey },
        timeoutMs: this.config.timeoutMs,
      },
      (answer) => {
        const error = WahaError.safeParse(answer);
        return error.success ? error.data.message : undefined;
      },
    );
  }

  private post(path: string, body: unknown): Promise<JsonResponse> {
    return postToGateway(
      'WAHA',
      {
        url: `${this.config.apiUrl.replace(/\/$/, '')}${path}`,
        headers: { 'x-api-key': this.config.apiKey },
        body,
        timeoutMs: this.config.timeoutMs,
      },
      (answer) => {
        const error = WahaError.safeParse(answer);
        return error.success ? error.data.message : undefined;
      },
    );
  }
}

/** A listed message as an `imported` one: the id is the serialized id's WhatsApp part, as the webhooks read it. */
function toSyncMessage(m: WahaMessage, chatId: string): SyncMessage {
  const fromMe = m.fromMe === true;
  const mime = m.media?.mimetype ?? undefined;
  const type: MessageType = m.hasMedia === true && mime ? messageTypeOfMime(mime) : 'text';
  const pushName = m._data?.pushName ?? m._data?.notifyName ?? undefined;
  const from = m.participant ? jidOf(m.participant) : fromMe && m.from ? jidOf(m.from) : chatId;
  const url = m.media?.url ?? undefined;
  const fileName = m.media?.filename ?? undefined;
  return {
    messageId: bareId(m.id),
    chatId,
    from,
    fromMe,
    type,
    ...(pushName ? { pushName } : {}),
    ...(m.body ? { text: m.body } : {}),
    ...(m.media
      ? { media: { ...(url ? { url } : {}), ...(mime ? { mimeType: mime } : {}), ...(fileName ? { fileName } : {}) } }
      : {}),
    ...(m.replyTo?.id ? { quotedMessageId: bareId(m.replyTo.id) } : {}),
    timestamp: toIsoTime(m.timestamp) ?? new Date(0).toISOString(),
  };
}

/** The client when both variables are set; otherwise why sending through WAHA is off. */
export function wahaFrom(config: {
  WAHA_API_URL?: string | undefined;
  WAHA_API_KEY?: string | undefined;
  WHATSAPP_TIMEOUT_MS: number;
}): WahaClient | string {
  if (!config.WAHA_API_URL || !config.WAHA_API_KEY)
    return 'WAHA sending not configured: set WAHA_API_URL and WAHA_API_KEY';
  return new WahaClient({
    apiUrl: config.WAHA_API_URL,
    apiKey: config.WAHA_API_KEY,
    timeoutMs: config.WHATSAPP_TIMEOUT_MS,
  });
}
