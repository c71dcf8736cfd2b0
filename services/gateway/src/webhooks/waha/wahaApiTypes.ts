/**
 * WAHA's webhook envelope, in its own casing: only what Puente reads
 * (/work/shared/reference/baileys-webhooks.md §4).
 */
export interface WahaWebhook {
  /** `evt_…`: the delivery id. */
  id?: string;
  /** Milliseconds. */
  timestamp?: number;
  session?: string;
  /** `message`, `message.any`, `message.ack`, `message.reaction`, `session.status`, `chat.archive`, … */
  event?: string;
  payload?: WahaPayload;
}

/** The event's payload, by event. */
export interface WahaPayload {
  /** A serialized message id (`<fromMe>_<chat>_<id>[_<participant>]`), or the chat id for chat.archive. */
  id?: string;
  /** Unix seconds. */
  timestamp?: number;
  from?: string;
  to?: string;
  fromMe?: boolean;
  participant?: string;
  body?: string;
  hasMedia?: boolean;
  media?: { url?: string; mimetype?: string; filename?: string };
  replyTo?: { id?: string };
  _data?: { pushName?: string; notifyName?: string };
  /** message.ack: `-1..4`, and its name (`SERVER`, `DEVICE`, `READ`, …). */
  ack?: number;
  ackName?: string;
  reaction?: { text?: string; messageId?: string };
  /** session.status: `STOPPED`, `STARTING`, `SCAN_QR_CODE`, `WORKING`, `FAILED`. */
  status?: string;
  archived?: boolean;
}
