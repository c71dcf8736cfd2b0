import { normalizeJid, type DomainEvent, type DomainEventOf, type MessageStatus } from '@puente/contracts';
import type { Upstream } from '@puente/projection';
import type { MessageDoc } from './messagesProjection.js';

/** Events that carry a message's content. */
export type ContentEvent = DomainEventOf<
  'whatsapp.message.received.v1' | 'whatsapp.message.sent.v1' | 'whatsapp.message.imported.v1'
>;

/** The types of `ContentEvent`. */
export const ContentEventTypes = [
  'whatsapp.message.received.v1',
  'whatsapp.message.sent.v1',
  'whatsapp.message.imported.v1',
] as const satisfies readonly ContentEvent['type'][];

export function isContentEvent(event: DomainEvent): event is ContentEvent {
  return (
    event.type === 'whatsapp.message.received.v1' ||
    event.type === 'whatsapp.message.sent.v1' ||
    event.type === 'whatsapp.message.imported.v1'
  );
}

/** `_id` of a message document: the session and the provider's message id (or the command id while pending). */
export const messageKey = (session: string, messageId: string): string => `${session}:${messageId}`;
/** `_id` of a conversation or contact document. */
export const chatKey = (session: string, jid: string): string => `${session}:${normalizeJid(jid)}`;

/**
 * Facts one projection learns from another in the same batch. A message raises its chat's unread
 * count (and the session's counters) only in the event that first gave its document content: the
 * messages projection records that position (`firstContentAt`), the others ask here.
 */
export interface MessageFacts {
  firstContentAt(messageKey: string): number | undefined;
  /**
   * What the messages read model holds about a message the current batch touched, as it stands after
   * the batch (the store) or after the current event (in memory): its chat and its delivery status,
   * ranked there (`STATUS_RANK`), with that status's version (`_v.status`: rank, then the position of
   * the event that set it). Undefined for a message the batch did not touch.
   */
  message(messageKey: string): Pick<MessageDoc, 'chatId' | 'status' | '_v'> | undefined;
}

/** The message facts of a group whose lead is the messages projection (`whatsappGroup`). */
export function messageFacts(upstream: Upstream, messages: { name: string }): MessageFacts {
  const doc = (key: string) => upstream.doc<MessageDoc>(messages as never, key);
  return { firstContentAt: (key) => doc(key)?.firstContentAt, message: doc };
}

/**
 * Positions a document has already counted a message at (unread count, session counters), newest
 * last. `firstContentAt === position` is true again when a batch that was applied is delivered again
 * (its acknowledgement was lost: NATS restarted, the process died after writing), so a count keeps the
 * positions it counted. A redelivery is among the consumer's unacknowledged messages (at most
 * `max_ack_pending`, 1,024), so the newest COUNTED_KEEP positions are enough.
 */
export const COUNTED_KEEP = 2_048;

/** The positions with `position` added, or undefined when it was counted already. */
export function countOnce(counted: readonly number[] | undefined, position: number): number[] | undefined {
  if (counted?.includes(position)) return undefined;
  const next = [...(counted ?? []), position];
  return next.length > COUNTED_KEEP ? next.slice(next.length - COUNTED_KEEP) : next;
}

/**
 * Delivery status order. `failed` outranks `pending`/`sent` (terminal for them) but a later
 * `delivered`/`read` proves success and outranks it; Meta may skip `delivered`.
 */
export const STATUS_RANK: Record<MessageStatus, number> = { pending: 0, sent: 1, failed: 2, delivered: 3, read: 4 };

/** Drops undefined values (MongoDB stores them as null otherwise). */
export function defined<T extends Record<string, unknown>>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}
