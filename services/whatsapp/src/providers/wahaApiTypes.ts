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

/** `RemoteFile`: a file WAHA downloads from `url`. */
export interface WahaRemoteFile {
  mimetype: string;
  filename?: string;
  url: string;
}

/** `POST /api/sendImage`, `/api/sendVideo`, `/api/sendFile` (caption allowed), `/api/sendVoice` (none). */
export interface WahaSendFile extends WahaChatRequest {
  file: WahaRemoteFile;
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
