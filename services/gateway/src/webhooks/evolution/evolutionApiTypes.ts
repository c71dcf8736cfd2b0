import type { BaileysMessage } from '@puente/contracts';

/**
 * Evolution API v2's webhook body, in its own casing: only what Puente reads
 * (/work/shared/reference/baileys-webhooks.md §4). `event` is the dotted Baileys name; without it the
 * `webhook_by_events` path suffix names it.
 */
export interface EvolutionWebhook {
  event?: string;
  /** The instance: Puente's session. */
  instance?: string;
  /** One item or a list of them. */
  data?: EvolutionEventData | EvolutionEventData[];
  date_time?: string;
  /** The instance key, when no header credential is sent. */
  apikey?: string;
}

/** One item of `data`: a Baileys message (messages.upsert, send.message) or an update, by event. */
export interface EvolutionEventData extends Partial<BaileysMessage> {
  instance?: string;
  /** messages.update */
  keyId?: string;
  messageId?: string;
  remoteJid?: string;
  /** Baileys' status name (`DELIVERY_ACK`) or its number. */
  status?: string | number;
  update?: { status?: string | number };
  dateTime?: string | number;
  /** connection.update: `open`, `connecting`, `close`. */
  state?: string;
  statusReason?: number | string;
  wuid?: string;
  /** qrcode.updated */
  qrcode?: { code?: string; base64?: string };
  /** contacts.*, chats.* */
  id?: string;
  name?: string;
  archived?: boolean;
}
