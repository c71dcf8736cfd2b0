import { z } from 'zod';

/*
 * Evolution API v2's wire shapes for sending and marking read, in its own casing. Source:
 * github.com/EvolutionAPI/evolution-api (src/validate/message.schema.ts, src/validate/chat.schema.ts,
 * src/api/dto/sendMessage.dto.ts, src/api/dto/chat.dto.ts; see docs/providers/evolution.md).
 */

/** `POST /message/sendText/{instance}` (`textMessageSchema`: `number` and `text` required). */
export interface EvolutionSendText {
  number: string;
  text: string;
}

/** `POST /message/sendMedia/{instance}` (`mediaMessageSchema`: `number` and `mediatype` required; `media` is a URL or base64). */
export interface EvolutionSendMedia {
  number: string;
  mediatype: 'image' | 'document' | 'video' | 'audio';
  media: string;
  caption?: string;
  fileName?: string;
}

/** `POST /chat/markMessageAsRead/{instance}` (`readMessageSchema`: each key's `id`, `fromMe`, `remoteJid` required). */
export interface EvolutionReadMessages {
  readMessages: { id: string; fromMe: boolean; remoteJid: string }[];
}

/** A send's 201 answer: the Baileys `WAMessage` that went out (`sendMessageWithTyping` returns it); its `key.id` is the message id. */
export const EvolutionSent = z
  .object({ key: z.object({ id: z.string().min(1), remoteJid: z.string().optional() }).loose() })
  .loose();

/** An error answer (src/main.ts's error handler): `{status, error, response: {message}}`. */
export const EvolutionError = z
  .object({
    status: z.number().optional(),
    error: z.string().optional(),
    response: z.object({ message: z.unknown() }).loose(),
  })
  .loose();
