import { Channels, Collections, type DomainEvent } from '@puente/contracts';
import type { ProjectedDoc, Projection } from '@puente/projection';

export type CommandStatus = 'queued' | 'sent' | 'failed' | 'unknown';

export interface CommandDoc extends ProjectedDoc {
  session: string;
  kind: 'send_message' | 'mark_read';
  status: CommandStatus;
  chatId?: string;
  providerMessageId?: string;
  error?: { code: string; message: string };
  requestedAt?: string;
  updatedAt: string;
}

/** `unknown` can still become `sent` (a webhook matched it); `sent` and `failed` are final. */
const RANK: Record<CommandStatus, number> = { queued: 0, unknown: 1, failed: 2, sent: 3 };

/** `commands`: what became of each command, by command id. */
export function commandsProjection(): Projection<CommandDoc> {
  return {
    name: 'whatsapp-commands',
    collection: Collections.commands,
    keys(event: DomainEvent) {
      switch (event.type) {
        case 'whatsapp.message.send_requested.v1':
        case 'whatsapp.command.sent.v1':
        case 'whatsapp.command.failed.v1':
        case 'whatsapp.command.unknown.v1':
          return [event.data.commandId];
        default:
          return [];
      }
    },
    evolve(doc, event) {
      if (event.type === 'whatsapp.message.send_requested.v1') {
        const d = event.data;
        if (doc) return doc.requestedAt ? doc : { ...doc, requestedAt: d.requestedAt, chatId: doc.chatId ?? d.chatId };
        return { session: d.session, kind: 'send_message', status: 'queued', chatId: d.chatId, requestedAt: d.requestedAt, updatedAt: d.requestedAt, _v: {} };
      }
      if (event.type !== 'whatsapp.command.sent.v1' && event.type !== 'whatsapp.command.failed.v1' && event.type !== 'whatsapp.command.unknown.v1') return doc;
      const d = event.data;
      const status: CommandStatus = event.type === 'whatsapp.command.sent.v1' ? 'sent' : event.type === 'whatsapp.command.failed.v1' ? 'failed' : 'unknown';
      if (doc && RANK[doc.status] >= RANK[status]) return doc;
      const base: CommandDoc = doc ?? { session: d.session, kind: d.kind, status, updatedAt: d.at, _v: {} };
      const next: CommandDoc = { ...base, kind: d.kind, status, updatedAt: d.at };
      if (d.chatId && !next.chatId) next.chatId = d.chatId;
      if (d.providerMessageId) next.providerMessageId = d.providerMessageId;
      if (d.error) next.error = d.error;
      else if (status === 'sent') delete next.error;
      return next;
    },
    channel: (doc) => Channels.commands(doc.session),
    indexes: [{ key: { session: 1, status: 1, chatId: 1 }, name: 'by_status' }],
  };
}
