import { z } from 'zod';

/*
 * WAHA's wire shapes for sending and marking read, in its own casing. Source: github.com/devlikeapro/waha
 * (src/api/chatting.controller.ts, src/structures/chatting.dto.ts, src/structures/files.dto.ts; see
 * docs/providers/waha.md).
 */

/** `ChatRequest`: the session name and the chat, `<digits>@c.us` or `<id>@g.us`. */
export interface WahaChatRequest {
  session: string;
  chatId: string;
}

/** `POST /api/sendText` (`MessageTextRequest`). */
export interface WahaSendText extends WahaChatRequest {
  text: string;
}

/** `BinaryFile` (`src/structures/files.dto.ts`): a file sent inline, `data` its bytes in base64. */
export interface WahaBinaryFile {
  mimetype: string;
  filename?: string;
  data: string;
}

/** `POST /api/sendImage`, `/api/sendVideo`, `/api/sendFile` (caption allowed), `/api/sendVoice` (none). */
export interface WahaSendFile extends WahaChatRequest {
  file: WahaBinaryFile;
  caption?: string;
}

/** `POST /api/sendSeen` (`SendSeenRequest`): `messageId` (serialized, `false_<chat>_<id>`) is what NOWEB marks. */
export interface WahaSendSeen extends WahaChatRequest {
  messageId?: string;
}

/**
 * A send's answer is the engine's own message: NOWEB answers Baileys' `WAMessage` (`key.id`), WEBJS
 * whatsapp-web.js's `Message` (`id: {id, _serialized}`, also under `_data.id`); some answer the
 * serialized id as a string (`true_<chat>_<id>`).
 */
const MessageIdObject = z.object({ id: z.string().min(1) }).loose();
export const WahaSent = z
  .object({
    key: MessageIdObject.optional(),
    id: z.union([z.string().min(1), MessageIdObject]).optional(),
    _data: z.object({ id: MessageIdObject.optional() }).loose().optional(),
  })
  .loose();

/** NestJS's error answer: `{statusCode, message, error}` (`message` a string, an array, or WAHA's own object). */
export const WahaError = z.object({ statusCode: z.number().optional(), message: z.unknown() }).loose();

/*
 * Full sync: `GET /api/contacts/all?session=` (src/api/contacts.controller.ts, every contact at once),
 * `GET /api/{session}/chats?limit=&offset=` (src/api/chats.controller.ts, `GetChatsQuery`) and
 * `GET /api/{session}/chats/{chatId}/messages?limit=&downloadMedia=` (`GetChatMessagesQuery`: `limit` only,
 * the newest `limit` messages). The items are the engine's: NOWEB's Baileys store objects (a chat's `id` a
 * JID string, `conversationTimestamp`), WEBJS's whatsapp-web.js objects (`id: {_serialized}`, `timestamp`).
 */

/** An id as NOWEB writes it (a string) or WEBJS (`{_serialized}`). */
const WahaId = z.union([z.string().min(1), z.object({ _serialized: z.string().min(1) }).loose()]);

/** A contact of `/api/contacts/all` (`toWAContact`: `id` in `@c.us`, `pushname` for Baileys' `notify`). */
export const WahaContact = z
  .object({
    id: WahaId,
    name: z.string().nullish(),
    pushname: z.string().nullish(),
    verifiedName: z.string().nullish(),
    number: z.string().nullish(),
  })
  .loose();
export type WahaContact = z.infer<typeof WahaContact>;

/** A chat of `/api/{session}/chats`. */
export const WahaChat = z
  .object({
    id: WahaId,
    name: z.string().nullish(),
    archived: z.boolean().nullish(),
    unreadCount: z.number().int().nonnegative().nullish(),
    conversationTimestamp: z.union([z.number(), z.string()]).nullish(),
    timestamp: z.union([z.number(), z.string()]).nullish(),
  })
  .loose();
export type WahaChat = z.infer<typeof WahaChat>;

/**
 * A message of `/api/{session}/chats/{chatId}/messages` (`WAMessage`, the shape of the `message` webhook's
 * payload): `id` serialized `<fromMe>_<chat>_<id>[_<participant>]`, `timestamp` in seconds.
 */
export const WahaMessage = z
  .object({
    id: z.string().min(1),
    timestamp: z.union([z.number(), z.string()]),
    from: z.string().nullish(),
    to: z.string().nullish(),
    fromMe: z.boolean().optional(),
    participant: z.string().nullish(),
    body: z.string().nullish(),
    hasMedia: z.boolean().nullish(),
    media: z
      .object({ url: z.string().nullish(), mimetype: z.string().nullish(), filename: z.string().nullish() })
      .loose()
      .nullish(),
    replyTo: z.object({ id: z.string().nullish() }).loose().nullish(),
    _data: z.object({ pushName: z.string().nullish(), notifyName: z.string().nullish() }).loose().nullish(),
  })
  .loose();
export type WahaMessage = z.infer<typeof WahaMessage>;
