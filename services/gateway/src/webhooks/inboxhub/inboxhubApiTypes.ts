import type { BaileysMessage } from '@puente/contracts';

/**
 * Inbox Hub's webhook delivery, in its own casing: only what Puente reads. Inbox Hub documents the
 * `X-Webhook-Event` header, the eleven event names and a `message_id`/`phone_number` per payload
 * (/work/shared/reference/inboxhub-api.md); the camelCase fields are its canonical body, the snake_case
 * ones the aliases its deployments send, and `data` may be a Baileys message as Baileys emits it.
 */
export interface InboxHubWebhook {
  /** The event name when the `X-Webhook-Event` header is absent (`message.received`, `session.qr`, …). */
  event?: string;
  type?: string;
  sessionId?: string;
  session_id?: string;
  session?: string;
  instance?: string;
  /** ISO-8601 time or Unix seconds/milliseconds. */
  timestamp?: string | number;
  data?: InboxHubEventData;
  /** Some deployments name `data` `payload`. */
  payload?: InboxHubEventData;
}

/** The event's data: a message, a status, a session change, a contact or a chat, by event. */
export interface InboxHubEventData extends Omit<Partial<BaileysMessage>, 'message'> {
  /** Baileys' message content, or the text under the send call's name for it (`{to, message, type}`). */
  message?: BaileysMessage['message'] | string;
  timestamp?: string | number;
  messageId?: string;
  message_id?: string;
  chatId?: string;
  chat_id?: string;
  chatAlt?: string;
  chat_alt?: string;
  from?: string;
  fromMe?: boolean;
  from_me?: boolean;
  pushName?: string;
  push_name?: string;
  /** The message type (`text`, `image`, …). */
  type?: string;
  content?: string;
  text?: string;
  body?: string;
  caption?: string;
  /** Media as Puente reads it first; Baileys gateways also send it flat (below) or as a URL string. */
  media?:
    | string
    | { url?: string; mimetype?: string; mimeType?: string; mime_type?: string; fileName?: string; filename?: string };
  mediaUrl?: string;
  media_url?: string;
  mimetype?: string;
  mimeType?: string;
  mime_type?: string;
  fileName?: string;
  filename?: string;
  file_name?: string;
  /** A delivery status (`message.status`/`message.ack`), or a session state. */
  status?: string;
  error?: string | { code?: string | number; message?: string };
  qr?: string;
  qrcode?: { code?: string };
  state?: string;
  connection?: string;
  phone?: string;
  /** The contact's number (digits): a contact's id, or a message's chat when no chat id is given. */
  phone_number?: string;
  phoneNumber?: string;
  reason?: string;
  jid?: string;
  id?: string;
  name?: string;
  notify?: string;
  lid?: string;
}
