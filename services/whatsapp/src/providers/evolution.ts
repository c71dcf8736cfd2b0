import { phoneOf, toIsoTime } from '@puente/contracts';
import { ProviderError, type JsonResponse } from '@puente/runtime';
import { baileysMessage } from '../sync/baileysMessage.js';
import type { SyncChat, SyncContact, SyncMessage, SyncPage, SyncSource } from '../sync/source.js';
import {
  EvolutionChat,
  EvolutionContact,
  EvolutionError,
  EvolutionMessages,
  EvolutionSent,
  type EvolutionFindChats,
  type EvolutionFindMessages,
  type EvolutionPaged,
  type EvolutionReadMessages,
  type EvolutionSendAudio,
  type EvolutionSendMedia,
  type EvolutionSendText,
} from './evolutionApiTypes.js';
import { parsedList, postToGateway, sendableMedia, type GatewayClient, type GatewaySendInput } from './gateway.js';
import { BaileysWAMessage } from './inboxhubApiTypes.js';

/** Where Evolution API v2 listens and its key (the global `AUTHENTICATION_API_KEY` or the instance's token). */
export interface EvolutionConfig {
  apiUrl: string;
  apiKey: string;
  timeoutMs: number;
}

/**
 * Sending and marking read through Evolution API v2 (docs/providers/evolution.md): the session is the
 * instance name, every call carries the key in the `apikey` header.
 */
export class EvolutionClient implements GatewayClient, SyncSource {
  readonly provider = 'evolution';

  constructor(private readonly config: EvolutionConfig) {}

  /** A page of the instance's contacts (`findContacts`, `offset` per page). */
  async contacts(instance: string, page: number, limit: number): Promise<SyncPage<SyncContact>> {
    const response = await this.post(`/chat/findContacts/${encodeURIComponent(instance)}`, {
      offset: limit,
      page,
    } satisfies EvolutionPaged);
    const rows = parsedList('Evolution API', response.body, EvolutionContact, 'contacts');
    const items = rows.map((c) => {
      const phone = phoneOf(c.remoteJid);
      return { jid: c.remoteJid, ...(c.pushName ? { name: c.pushName } : {}), ...(phone ? { phone } : {}) };
    });
    return { items, received: rows.length };
  }

  /** A page of the instance's chats, most recent first (`findChats` with `take`/`skip`). */
  async chats(instance: string, page: number, limit: number): Promise<SyncPage<SyncChat>> {
    const response = await this.post(`/chat/findChats/${encodeURIComponent(instance)}`, {
      take: limit,
      skip: (page - 1) * limit,
    } satisfies EvolutionFindChats);
    const rows = parsedList('Evolution API', response.body, EvolutionChat, 'chats');
    const items = rows.map((chat) => {
      const lastMessageAt = toIsoTime(chat.updatedAt ?? undefined);
      return {
        chatId: chat.remoteJid,
        ...(chat.pushName ? { name: chat.pushName } : {}),
        ...(typeof chat.unreadCount === 'number' ? { unreadCount: chat.unreadCount } : {}),
        ...(lastMessageAt ? { lastMessageAt } : {}),
      };
    });
    return { items, received: rows.length };
  }

  /** A page of a chat's messages, newest first (`findMessages` by `key.remoteJid`); Baileys rows, ids `key.id`. */
  async messages(instance: string, chatId: string, page: number, limit: number): Promise<SyncPage<SyncMessage>> {
    const response = await this.post(`/chat/findMessages/${encodeURIComponent(instance)}`, {
      where: { key: { remoteJid: chatId } },
      offset: limit,
      page,
    } satisfies EvolutionFindMessages);
    const answer = EvolutionMessages.safeParse(response.body);
    if (!answer.success)
      throw new ProviderError('unknown', 'BAD_RESPONSE', 'Evolution API answered messages without messages.records');
    const { records, total } = answer.data.messages;
    const items = records.flatMap((record) => {
      // Evolution writes a null pushName where Baileys had none.
      const parsed = BaileysWAMessage.safeParse({ ...record, pushName: record.pushName ?? undefined });
      return (parsed.success && baileysMessage(parsed.data)) || [];
    });
    return { items, received: records.length, total };
  }

  /**
   * Text through `sendText`; media inline (base64) through `sendMedia`, audio as a voice note through
   * `sendWhatsAppAudio`; returns the sent message's `key.id`.
   */
  async send(instance: string, input: GatewaySendInput): Promise<string> {
    // Evolution's createJid takes a JID as it is (`@s.whatsapp.net`, `@g.us`, `@lid`).
    const name = encodeURIComponent(instance);
    const media = input.media;
    const type = media && sendableMedia('Evolution API', media.type);
    let response: JsonResponse;
    if (!media || !type)
      response = await this.post(`/message/sendText/${name}`, {
        number: input.to,
        text: input.text ?? '',
      } satisfies EvolutionSendText);
    else if (type === 'audio')
      response = await this.post(`/message/sendWhatsAppAudio/${name}`, {
        number: input.to,
        audio: media.data.toString('base64'),
      } satisfies EvolutionSendAudio);
    else
      response = await this.post(`/message/sendMedia/${name}`, {
        number: input.to,
        mediatype: type,
        mimetype: media.mimeType,
        media: media.data.toString('base64'),
        ...(input.text !== undefined ? { caption: input.text } : {}),
        // Evolution refuses a base64 document without a file name.
        ...(media.fileName || type === 'document'
          ? { fileName: media.fileName ?? `document-${media.hash.slice(0, 12)}` }
          : {}),
      } satisfies EvolutionSendMedia);
    const sent = EvolutionSent.safeParse(response.body);
    if (!sent.success)
      throw new ProviderError(
        'unknown',
        'BAD_RESPONSE',
        `Evolution API answered ${response.status} without a message key`,
        response.status,
      );
    return sent.data.key.id;
  }

  /** Sends read receipts for the chat's newest incoming messages (Evolution marks messages, not chats). */
  async markRead(instance: string, chatId: string, inbound: readonly string[]): Promise<void> {
    if (inbound.length === 0) return;
    await this.post(`/chat/markMessageAsRead/${encodeURIComponent(instance)}`, {
      readMessages: inbound.map((id) => ({ id, fromMe: false, remoteJid: chatId })),
    } satisfies EvolutionReadMessages);
  }

  private post(path: string, body: unknown): Promise<JsonResponse> {
    return postToGateway(
      'Evolution API',
      {
        url: `${this.config.apiUrl.replace(/\/$/, '')}${path}`,
        headers: { apikey: this.config.apiKey },
        body,
        timeoutMs: this.config.timeoutMs,
      },
      (answer) => {
        const error = EvolutionError.safeParse(answer);
        return error.success ? error.data.response.message : undefined;
      },
    );
  }
}

/** The client when both variables are set; otherwise why sending through Evolution API is off. */
export function evolutionFrom(config: {
  EVOLUTION_API_URL?: string | undefined;
  EVOLUTION_API_KEY?: string | undefined;
  WHATSAPP_TIMEOUT_MS: number;
}): EvolutionClient | string {
  if (!config.EVOLUTION_API_URL || !config.EVOLUTION_API_KEY)
    return 'Evolution API sending not configured: set EVOLUTION_API_URL and EVOLUTION_API_KEY';
  return new EvolutionClient({
    apiUrl: config.EVOLUTION_API_URL,
    apiKey: config.EVOLUTION_API_KEY,
    timeoutMs: config.WHATSAPP_TIMEOUT_MS,
  });
}
