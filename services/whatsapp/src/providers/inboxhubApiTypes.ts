import { z } from 'zod';

/**
 * Inbox Hub's REST answers as its users documented them (../shared/reference/inboxhub-api.md), in
 * Inbox Hub's casing. Every schema is loose (extra fields pass) and every answer may come bare or in
 * the `{"success": true, "data": ...}` envelope the printed answers use: {@link unwrap} takes it off.
 */

/** The eleven webhook events Inbox Hub delivers (printed). */
export const INBOXHUB_EVENTS = [
  'message.received',
  'message.sent',
  'message.delivered',
  'message.read',
  'message.failed',
  'session.connected',
  'session.disconnected',
  'session.qr',
  'contact.updated',
  'chat.archived',
  'chat.unarchived',
] as const;

/** A contact of `data.contacts` (printed: `id`, `name`, `phone`, `isUser`, `isGroup`). */
export const InboxHubContact = z
  .object({
    id: z.string().min(1),
    name: z.string().optional(),
    phone: z.string().optional(),
    isUser: z.boolean().optional(),
    isGroup: z.boolean().optional(),
    // Baileys' own contact fields, which some deployments pass through.
    notify: z.string().optional(),
    verifiedName: z.string().optional(),
    phoneNumber: z.string().optional(),
    lid: z.string().optional(),
  })
  .loose();
export type InboxHubContact = z.infer<typeof InboxHubContact>;

/** A chat of `data.chats` (printed: `chatId`, `name`, `lastMessage {content, timestamp, fromMe}`, `unreadCount`, `isGroup`). */
export const InboxHubChat = z
  .object({
    chatId: z.string().min(1),
    name: z.string().optional(),
    lastMessage: z
      .object({
        content: z.string().nullish(),
        timestamp: z.union([z.string(), z.number()]).nullish(),
        fromMe: z.boolean().optional(),
      })
      .loose()
      .nullish(),
    unreadCount: z.number().int().nonnegative().optional(),
    isGroup: z.boolean().optional(),
    archived: z.boolean().optional(),
  })
  .loose();
export type InboxHubChat = z.infer<typeof InboxHubChat>;

/** A message in Baileys' native `WAMessage` shape. */
export const BaileysWAMessage = z
  .object({
    key: z
      .object({
        id: z.string().min(1),
        remoteJid: z.string().min(1),
        fromMe: z.boolean().optional(),
        participant: z.string().optional(),
        remoteJidAlt: z.string().optional(),
      })
      .loose(),
    message: z.record(z.string(), z.unknown()).nullish(),
    messageTimestamp: z.union([z.number(), z.string(), z.object({ low: z.number() }).loose()]),
    pushName: z.string().optional(),
  })
  .loose();
export type BaileysWAMessage = z.infer<typeof BaileysWAMessage>;

/** A message in the shape of a webhook's `data` (Puente's canonical form, with its snake_case aliases). */
export const InboxHubWebhookMessage = z
  .object({
    messageId: z.string().min(1).optional(),
    message_id: z.string().min(1).optional(),
    chatId: z.string().min(1).optional(),
    chat_id: z.string().min(1).optional(),
    chatAlt: z.string().optional(),
    from: z.string().optional(),
    fromMe: z.boolean().optional(),
    from_me: z.boolean().optional(),
    pushName: z.string().optional(),
    push_name: z.string().optional(),
    type: z.string().optional(),
    content: z.string().nullish(),
    text: z.string().nullish(),
    body: z.string().nullish(),
    caption: z.string().nullish(),
    mediaUrl: z.string().optional(),
    media: z
      .object({
        url: z.string().optional(),
        mimetype: z.string().optional(),
        mimeType: z.string().optional(),
        fileName: z.string().optional(),
        filename: z.string().optional(),
      })
      .loose()
      .optional(),
    timestamp: z.union([z.string(), z.number()]),
  })
  .loose();
export type InboxHubWebhookMessage = z.infer<typeof InboxHubWebhookMessage>;

/** The send answer's `data` (printed: `messageId`, `to`, `status`, `timestamp`). */
export const InboxHubSent = z
  .object({
    messageId: z.string().min(1).optional(),
    id: z.string().min(1).optional(),
    key: z
      .object({ id: z.string().min(1) })
      .loose()
      .optional(),
  })
  .loose();

/** The login answer (not printed): the JWT under one of the names JWT logins use. */
export const InboxHubLogin = z
  .object({
    token: z.string().min(1).optional(),
    accessToken: z.string().min(1).optional(),
    access_token: z.string().min(1).optional(),
    jwt: z.string().min(1).optional(),
    expiresIn: z.number().positive().optional(),
    expires_in: z.number().positive().optional(),
  })
  .loose();

/** A session of the list-sessions answer (not printed): the string id and the DB id under the names seen. */
export const InboxHubSession = z
  .object({
    id: z.union([z.number(), z.string()]).optional(),
    dbId: z.union([z.number(), z.string()]).optional(),
    sessionId: z.string().optional(),
    session_id: z.string().optional(),
    name: z.string().optional(),
    webhookUrl: z.string().nullish(),
  })
  .loose();
export type InboxHubSession = z.infer<typeof InboxHubSession>;

/** An account webhook (the `POST /api/webhooks` body, printed; listing them is not printed). */
export const InboxHubAccountWebhook = z
  .object({
    id: z.union([z.number(), z.string()]).optional(),
    name: z.string().optional(),
    url: z.string(),
    method: z.string().optional(),
    events: z.array(z.string()).optional(),
  })
  .loose();
export type InboxHubAccountWebhook = z.infer<typeof InboxHubAccountWebhook>;

/** The answer without its `{success, data}` envelope, when it has one. */
export function unwrap(body: unknown): unknown {
  if (typeof body === 'object' && body !== null && !Array.isArray(body) && 'data' in body) {
    const data = (body as { data: unknown }).data;
    if (data !== null && typeof data === 'object') return data;
  }
  return body;
}

/** The list under `key` in an answer (`{data: {<key>: [...]}}`, `{<key>: [...]}`, `{data: [...]}` or a bare array). */
export function listIn(body: unknown, key: string): unknown[] | undefined {
  const inner = unwrap(body);
  if (Array.isArray(inner)) return inner;
  if (typeof inner === 'object' && inner !== null) {
    const list = (inner as Record<string, unknown>)[key];
    if (Array.isArray(list)) return list;
  }
  return undefined;
}

/** A number field of the unwrapped answer (`total`, `page`), if it has one. */
export function numberIn(body: unknown, key: string): number | undefined {
  const inner = unwrap(body);
  const value = typeof inner === 'object' && inner !== null ? (inner as Record<string, unknown>)[key] : undefined;
  return typeof value === 'number' ? value : undefined;
}
