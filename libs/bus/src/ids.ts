import { createHash } from 'node:crypto';

/**
 * The event id for a delivery identity (`Nats-Msg-Id`): derived from it, so a retry (even days later,
 * outside the duplicate window) carries the same event id. UUID-shaped (version nibble 8: custom).
 */
export function eventIdFor(msgId: string): string {
  const h = createHash('sha256').update(msgId).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
