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

/**
 * `POST /message/sendMedia/{instance}` (`mediaMessageSchema`: `number` and `mediatype` required; `media` is
 * a URL or plain base64, no `data:` prefix; a base64 document needs `fileName`, `sendMedia` in
 * `src/api/controllers/sendMessage.controller.ts`). Puente sends base64 with its `mimetype`.
 */
export interface EvolutionSendMedia {
  number: string;
  mediatype: 'image' | 'document' | 'video';
  mimetype: string;
  media: string;
  caption?: string;
  fileName?: string;
}

/** `POST /message/sendWhatsAppAudio/{instance}` (`audioMessageSchema`: `number` required; `audio` a URL or base64): a voice note. */
export interface EvolutionSendAudio {
  number: string;
  audio: string;
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

/*
 * Full sync (src/api/routes/chat.router.ts, src/api/services/channel.service.ts,
 * src/api/integrations/channel/whatsapp/whatsapp.baileys.service.ts; docs/providers/evolution.md):
 * `POST /chat/findContacts/{instance}` `{offset, page}` (`offset` is the page size: Prisma `take`, and
 * `skip = offset * (page - 1)`), `POST /chat/findChats/{instance}` `{take, skip}` (the raw query's LIMIT and
 * OFFSET, most recent first), `POST /chat/findMessages/{instance}` `{where: {key: {remoteJid}}, offset, page}`
 * (newest first) answering `{messages: {total, pages, currentPage, records}}`.
 */

/** `findContacts`/`findMessages`' paging: `offset` items per page, `page` from 1. */
export interface EvolutionPaged {
  offset: number;
  page: number;
}

/** `POST /chat/findMessages/{instance}`: one chat's messages. */
export interface EvolutionFindMessages extends EvolutionPaged {
  where: { key: { remoteJid: string } };
}

/** `POST /chat/findChats/{instance}`: `take`/`skip` go straight into the query's LIMIT/OFFSET. */
export interface EvolutionFindChats {
  take: number;
  skip: number;
}

/** A row of `findContacts` (Prisma's `Contact`, plus `isGroup`). */
export const EvolutionContact = z
  .object({
    remoteJid: z.string().min(1),
    pushName: z.string().nullish(),
    isGroup: z.boolean().optional(),
  })
  .loose();
export type EvolutionContact = z.infer<typeof EvolutionContact>;

/** A row of `findChats`: the chat's JID, name, unread count and last message (`updatedAt` its time). */
export const EvolutionChat = z
  .object({
    remoteJid: z.string().min(1),
    pushName: z.string().nullish(),
    updatedAt: z.union([z.string(), z.number()]).nullish(),
    unreadCount: z.number().int().nonnegative().nullish(),
  })
  .loose();
export type EvolutionChat = z.infer<typeof EvolutionChat>;

/** `findMessages`' answer; each record a Baileys `WAMessage` row (`key`, `message`, `messageTimestamp`, `pushName`). */
export const EvolutionMessages = z
  .object({
    messages: z
      .object({ total: z.number().int().nonnegative(), records: z.array(z.record(z.string(), z.unknown())) })
      .loose(),
  })
  .loose();

/**
 * `POST /chat/getBase64FromMediaMessage/{instance}` (`getBase64FromMediaMessageDto` in
 * src/api/dto/chat.dto.ts): the message, or only its key for one Evolution stored, and whether audio is
 * converted to MP4 (never here: the bytes are kept as they came).
 */
export interface EvolutionGetBase64 {
  message: { key: { id: string; remoteJid?: string; fromMe?: boolean } };
  convertToMp4: boolean;
}

/** Its answer (`getBase64FromMediaMessage` in whatsapp.baileys.service.ts): the decrypted file in base64. */
export const EvolutionBase64Media = z
  .object({
    mediaType: z.string().optional(),
    fileName: z.string().nullish(),
    mimetype: z.string().nullish(),
    size: z
      .object({ fileLength: z.union([z.string(), z.number()]).nullish() })
      .loose()
      .nullish(),
    base64: z.string(),
  })
  .loose();
