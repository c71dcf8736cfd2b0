import { Channels, Collections, type CommandKind, type DomainEventOf } from '@puente/contracts';
import { unhandled, type ProjectedDoc, type Projection } from '@puente/projection';

/** The events the commands read model applies. */
export type CommandEvent = DomainEventOf<
  | 'whatsapp.message.send_requested.v1'
  | 'whatsapp.command.sent.v1'
  | 'whatsapp.command.failed.v1'
  | 'whatsapp.command.unknown.v1'
>;

export type CommandStatus = 'queued' | 'sent' | 'failed' | 'unknown';

export interface CommandDoc extends ProjectedDoc {
  session: string;
  kind: CommandKind;
  status: CommandStatus;
  chatId?: string;
  /** The agent who sent it (an access token's `sub`); absent for API tokens. */
  sentBy?: string;
  providerMessageId?: string;
  error?: { code: string; message: string };
  requestedAt?: string;
  updatedAt: string;
}

/** `unknown` can still become `sent` (a webhook matched it); `sent` and `failed` are final. */
const RANK: Record<CommandStatus, number> = { queued: 0, unknown: 1, failed: 2, sent: 3 };

/** `commands`: what became of each command, by command id. */
export function commandsProjection(): Projection<CommandDoc, CommandEvent> {
  return {
    name: 'whatsapp-commands',
    collection: Collections.commands,
    handles: [
      'whatsapp.message.send_requested.v1',
      'whatsapp.command.sent.v1',
      'whatsapp.command.failed.v1',
      'whatsapp.command.unknown.v1',
    ],
    keys: (event) => [event.data.commandId],
    initial(_key, event) {
      switch (event.type) {
        case 'whatsapp.message.send_requested.v1':
          return {
            session: event.data.session,
            kind: 'send_message',
            status: 'queued',
            chatId: event.data.chatId,
            ...(event.data.sentBy ? { sentBy: event.data.sentBy } : {}),
            requestedAt: event.data.requestedAt,
            updatedAt: event.data.requestedAt,
            _v: {},
          };
        case 'whatsapp.command.sent.v1':
        case 'whatsapp.command.failed.v1':
        case 'whatsapp.command.unknown.v1':
          // An outcome of a command whose request this read model has not seen: queued until the outcome applies.
          return {
            session: event.data.session,
            kind: event.data.kind,
            status: 'queued',
            updatedAt: event.data.at,
            _v: {},
          };
        default:
          return unhandled(event);
      }
    },
    evolve(doc, event) {
      const base = doc!;
      let status: CommandStatus;
      switch (event.type) {
        case 'whatsapp.message.send_requested.v1': {
          const d = event.data;
          if (base.requestedAt) return base;
          return {
            ...base,
            requestedAt: d.requestedAt,
            chatId: base.chatId ?? d.chatId,
            ...(d.sentBy ? { sentBy: d.sentBy } : {}),
          };
        }
        case 'whatsapp.command.sent.v1':
          status = 'sent';
          break;
        case 'whatsapp.command.failed.v1':
          status = 'failed';
          break;
        case 'whatsapp.command.unknown.v1':
          status = 'unknown';
          break;
        default:
          return unhandled(event);
      }
      const d = event.data;
      if (RANK[base.status] >= RANK[status]) return base;
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
