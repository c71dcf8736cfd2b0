import type { Db } from 'mongodb';
import { Collections, createEvent, normalizeJid, type DomainEvent } from '@puente/contracts';
import { eventIdFor, type Bus } from '@puente/bus';
import type { CommandDoc, MessageDoc } from '../projections/index.js';

/** How long after a lost send the provider's report of it is still matched to it. */
export const RECONCILE_WINDOW_MS = 15 * 60_000;

/**
 * A send whose result was lost ends `unknown`. When the provider then reports an outgoing message
 * (`message.sent` from its webhook) in the same chat with the same text, within the window after the
 * request, and not already claimed by another command, it is that send: `command.sent` is recorded
 * (`reconciled: true`), so the command reads `sent` and the message document follows the provider's id.
 */
export async function reconcileSent(event: DomainEvent, db: Db, bus: Bus): Promise<boolean> {
  if (event.type !== 'whatsapp.message.sent.v1' || !event.data.fromMe) return false;
  const d = event.data;
  const chatId = normalizeJid(d.chatId);
  const messages = db.collection<MessageDoc & { _id: string }>(Collections.waMessages);
  const claimed = await messages.findOne({ _id: `${d.session}:${d.messageId}`, commandId: { $exists: true } }, { projection: { commandId: 1 } });
  if (claimed) return false;
  const sentAt = Date.parse(d.timestamp);
  const candidates = await db.collection<CommandDoc & { _id: string }>(Collections.commands).find({ session: d.session, status: 'unknown', kind: 'send_message', chatId }).toArray();
  for (const command of candidates.sort((a, b) => (a.requestedAt ?? '').localeCompare(b.requestedAt ?? ''))) {
    const requested = Date.parse(command.requestedAt ?? command.updatedAt);
    if (!(sentAt >= requested - 60_000 && sentAt <= requested + RECONCILE_WINDOW_MS)) continue;
    const pending = await messages.findOne({ _id: `${d.session}:${command._id}` });
    if (!pending || (pending.text ?? '') !== (d.text ?? '')) continue;
    const msgId = `sent:${command._id}`;
    const outcome = createEvent('whatsapp.command.sent.v1', {
      session: d.session, commandId: command._id, kind: 'send_message', providerMessageId: d.messageId, chatId, reconciled: true, at: new Date().toISOString(),
    }, { source: 'urn:puente:whatsapp', id: eventIdFor(msgId) });
    await bus.publishEvent(outcome, { msgId });
    return true;
  }
  return false;
}
