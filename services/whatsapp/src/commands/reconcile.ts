import type { Db } from 'mongodb';
import { Collections, createEvent, normalizeJid, type DomainEvent } from '@puente/contracts';
import { eventIdFor, type Bus } from '@puente/bus';
import type { MessageDoc } from '../messages/messagesProjection.js';
import type { CommandDoc } from './commandsProjection.js';

/** How long after a lost send the provider's report of it is still matched to it. */
export const RECONCILE_WINDOW_MS = 15 * 60_000;

/** An outgoing message the provider reported: its id, chat, time, and text when the report carries content. */
interface Report {
  session: string;
  messageId: string;
  chatId: string;
  at: string;
  /** Undefined for a bare status report (Inbox Hub's `message.sent`, a Cloud API status). */
  text: string | undefined;
}

/** What the pending document says was sent, for the provider's document (it may have only a bare status). */
function sentContent(pending: MessageDoc | null | undefined, requestedAt: string) {
  if (!pending?.type) return {};
  return {
    message: {
      type: pending.type,
      ...(pending.text !== undefined ? { text: pending.text } : {}),
      ...(pending.media ? { media: pending.media } : {}),
      requestedAt,
    },
  };
}

const inWindow = (requestedAt: string, at: string) => {
  const requested = Date.parse(requestedAt);
  const reported = Date.parse(at);
  return reported >= requested - 60_000 && reported <= requested + RECONCILE_WINDOW_MS;
};

/**
 * Which send a report proves: the one with the same text, or, for a report without content, the only
 * candidate (never a guess between two). `sends` are the candidates, oldest first.
 */
function match<S extends { text: string | undefined; requestedAt: string }>(
  report: Report,
  sends: readonly S[],
): S | undefined {
  const timely = sends.filter((s) => inWindow(s.requestedAt, report.at));
  if (report.text !== undefined) return timely.find((s) => (s.text ?? '') === report.text);
  return timely.length === 1 ? timely[0] : undefined;
}

/**
 * For a send whose answer was lost (the handler, before it would record `unknown`): the provider's
 * report of it already in the read model, if one matches and no command claimed it yet.
 */
export async function findReportedSend(
  db: Db,
  send: { session: string; chatId: string; text: string | undefined; requestedAt: string },
): Promise<MessageDoc | undefined> {
  const reports = await db
    .collection<MessageDoc & { _id: string }>(Collections.waMessages)
    .find({
      session: send.session,
      chatId: send.chatId,
      direction: 'out',
      commandId: { $exists: false },
      _deleted: { $ne: true },
    })
    .sort({ timestamp: -1 })
    .limit(50)
    .toArray();
  const byText = reports.find(
    (m) => m.text !== undefined && m.text === (send.text ?? '') && inWindow(send.requestedAt, m.timestamp ?? ''),
  );
  if (byText) return byText;
  const bare = reports.filter((m) => m.placeholder && inWindow(send.requestedAt, m.statusAt ?? ''));
  return bare.length === 1 ? bare[0] : undefined;
}

/**
 * A send whose result was lost ends `unknown`. When the provider then reports an outgoing message
 * (a `message.sent` with content, or a bare status) in the same chat, within the window after the
 * request, not claimed by another command, and matching exactly one unknown send (by text when the
 * report has it), that report is the send: `command.sent` is recorded (`reconciled: true`), so the
 * command reads `sent` and the message document follows the provider's id.
 */
export async function reconcileSent(event: DomainEvent, db: Db, bus: Bus): Promise<boolean> {
  let report: Report;
  if (event.type === 'whatsapp.message.sent.v1' && event.data.fromMe) {
    report = {
      session: event.data.session,
      messageId: event.data.messageId,
      chatId: normalizeJid(event.data.chatId),
      at: event.data.timestamp,
      text: event.data.text ?? '',
    };
  } else if (event.type === 'whatsapp.message.status.v1' && event.data.status !== 'failed' && event.data.chatId) {
    report = {
      session: event.data.session,
      messageId: event.data.messageId,
      chatId: normalizeJid(event.data.chatId),
      at: event.data.timestamp,
      text: undefined,
    };
  } else return false;
  const claimed = await db
    .collection<MessageDoc & { _id: string }>(Collections.waMessages)
    .findOne(
      { _id: `${report.session}:${report.messageId}`, commandId: { $exists: true } },
      { projection: { _id: 1 } },
    );
  if (claimed) return false;
  const commands = db.collection<CommandDoc & { _id: string }>(Collections.commands);
  if (
    await commands.findOne({ session: report.session, providerMessageId: report.messageId }, { projection: { _id: 1 } })
  )
    return false;
  const unknown = (
    await commands
      .find({ session: report.session, status: 'unknown', kind: 'send_message', chatId: report.chatId })
      .toArray()
  ).sort((a, b) => (a.requestedAt ?? '').localeCompare(b.requestedAt ?? ''));
  if (unknown.length === 0) return false;
  const pending = await db
    .collection<MessageDoc & { _id: string }>(Collections.waMessages)
    .find({ _id: { $in: unknown.map((c) => `${report.session}:${c._id}`) } })
    .toArray();
  const byCommand = new Map(pending.map((m) => [m.commandId, m]));
  const found = match(
    report,
    unknown.map((c) => ({
      commandId: c._id,
      text: byCommand.get(c._id)?.text,
      requestedAt: c.requestedAt ?? c.updatedAt,
    })),
  );
  if (!found) return false;
  const msgId = `sent:${found.commandId}`;
  const outcome = createEvent(
    'whatsapp.command.sent.v1',
    {
      session: report.session,
      commandId: found.commandId,
      kind: 'send_message',
      providerMessageId: report.messageId,
      chatId: report.chatId,
      ...sentContent(byCommand.get(found.commandId), found.requestedAt),
      reconciled: true,
      at: new Date().toISOString(),
    },
    { source: 'urn:puente:whatsapp', id: eventIdFor(msgId) },
  );
  await bus.publishEvent(outcome, { msgId });
  return true;
}

/**
 * Sweeps the sends still `unknown` inside the window and proves those whose report is now in the read
 * model. The event-driven path above misses a report that came while the send was still in flight
 * (before it was `unknown`) and a report the projections had not applied yet when the handler looked;
 * a periodic sweep closes both gaps. Returns how many were proven sent.
 */
export async function sweepUnknownSends(db: Db, bus: Bus, sessions?: readonly string[]): Promise<number> {
  const since = new Date(Date.now() - RECONCILE_WINDOW_MS - 60_000).toISOString();
  const unknown = await db
    .collection<CommandDoc & { _id: string }>(Collections.commands)
    .find({
      status: 'unknown',
      kind: 'send_message',
      updatedAt: { $gte: since },
      ...(sessions && sessions.length > 0 ? { session: { $in: [...sessions] } } : {}),
    })
    .toArray();
  let proven = 0;
  for (const command of unknown) {
    if (!command.chatId) continue;
    const pending = await db
      .collection<MessageDoc & { _id: string }>(Collections.waMessages)
      .findOne({ _id: `${command.session}:${command._id}` });
    const report = await findReportedSend(db, {
      session: command.session,
      chatId: command.chatId,
      text: pending?.text,
      requestedAt: command.requestedAt ?? command.updatedAt,
    });
    if (!report) continue;
    const msgId = `sent:${command._id}`;
    const outcome = createEvent(
      'whatsapp.command.sent.v1',
      {
        session: command.session,
        commandId: command._id,
        kind: 'send_message',
        providerMessageId: report.messageId,
        chatId: command.chatId,
        ...sentContent(pending, command.requestedAt ?? command.updatedAt),
        reconciled: true,
        at: new Date().toISOString(),
      },
      { source: 'urn:puente:whatsapp', id: eventIdFor(msgId) },
    );
    await bus.publishEvent(outcome, { msgId });
    proven++;
  }
  return proven;
}
