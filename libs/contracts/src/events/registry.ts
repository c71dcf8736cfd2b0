import { type z } from 'zod';
import { CloudEventSchema, type CloudEvent } from '../envelope.js';
import { encodeToken as t } from '../tokens.js';
import { KissflowRecordDeletedV1, KissflowRecordUpsertedV1 } from './kissflow.js';
import {
  ChatArchiveV1,
  ChatImportedV1,
  CommandOutcomeV1,
  ContactImportedV1,
  ContactUpdatedV1,
  MarkReadV1,
  SyncSessionV1,
  MediaFailedV1,
  MediaStoredV1,
  MessageImportedV1,
  MessageReceivedV1,
  MessageSendRequestedV1,
  MessageSentV1,
  MessageStatusV1,
  SendMessageV1,
  SessionQrV1,
  SessionStatusV1,
  SessionSyncV1,
  TemplatesSyncedV1,
} from './whatsapp.js';
import { GlymsRowChangedV1, type GlymsRowChangedV1 as GlymsRowChanged } from './glyms.js';
import { BitrixFailedV1, BitrixSyncedV1 } from './bitrix.js';

interface Definition<S extends z.ZodType> {
  readonly data: S;
  readonly stream: 'EVENTS' | 'COMMANDS';
  /** The NATS subject the event is published on. */
  readonly subject: (data: z.infer<S>) => string;
  /** The CloudEvents `subject`: the key of what the event is about. */
  readonly key: (data: z.infer<S>) => string;
  readonly description: string;
}

function define<S extends z.ZodType>(definition: Definition<S>): Definition<S> {
  return definition;
}

const glymsSubject = (data: GlymsRowChanged) =>
  `evt.glyms.${t(data.schema === 'public' ? data.table : `${data.schema}.${data.table}`)}.${data.op}`;
/** The subjects of one Glyms table's changes (`evt.glyms.<table>.>`; a table outside `public` is `<schema>.<table>`, encoded as one token). */
export function glymsTableSubjects(schema: string, table: string): string {
  return `evt.glyms.${t(schema === 'public' ? table : `${schema}.${table}`)}.>`;
}
const glymsKey = (data: GlymsRowChanged) => `${data.schema}.${data.table}:${JSON.stringify(data.key)}`;

/** Every event and command type Puente knows, with its data schema and subject. */
export const EventDefinitions = {
  'kissflow.record.upserted.v1': define({
    data: KissflowRecordUpsertedV1,
    stream: 'EVENTS',
    description: 'A Kissflow dataset row was created or changed.',
    subject: (d) => `evt.kissflow.record.upserted.${t(d.dataset)}`,
    key: (d) => `${d.dataset}:${d.rowId}`,
  }),
  'kissflow.record.deleted.v1': define({
    data: KissflowRecordDeletedV1,
    stream: 'EVENTS',
    description: 'Reconciliation found that a Kissflow row no longer exists.',
    subject: (d) => `evt.kissflow.record.deleted.${t(d.dataset)}`,
    key: (d) => `${d.dataset}:${d.rowId}`,
  }),
  'whatsapp.message.received.v1': define({
    data: MessageReceivedV1,
    stream: 'EVENTS',
    description: 'An inbound WhatsApp message.',
    subject: (d) => `evt.whatsapp.message.received.${t(d.session)}`,
    key: (d) => `${d.session}:${d.messageId}`,
  }),
  'whatsapp.message.sent.v1': define({
    data: MessageSentV1,
    stream: 'EVENTS',
    description: 'An outbound WhatsApp message, as the provider reported it.',
    subject: (d) => `evt.whatsapp.message.sent.${t(d.session)}`,
    key: (d) => `${d.session}:${d.messageId}`,
  }),
  'whatsapp.message.imported.v1': define({
    data: MessageImportedV1,
    stream: 'EVENTS',
    description: 'A WhatsApp message read by a full sync.',
    subject: (d) => `evt.whatsapp.message.imported.${t(d.session)}`,
    key: (d) => `${d.session}:${d.messageId}`,
  }),
  'whatsapp.message.status.v1': define({
    data: MessageStatusV1,
    stream: 'EVENTS',
    description: 'The delivery status of an outbound message changed.',
    subject: (d) => `evt.whatsapp.message.status.${t(d.session)}`,
    key: (d) => `${d.session}:${d.messageId}`,
  }),
  'whatsapp.message.send_requested.v1': define({
    data: MessageSendRequestedV1,
    stream: 'EVENTS',
    description: 'A send command was accepted: the message exists as pending.',
    subject: (d) => `evt.whatsapp.message.send_requested.${t(d.session)}`,
    key: (d) => `${d.session}:${d.commandId}`,
  }),
  'whatsapp.media.stored.v1': define({
    data: MediaStoredV1,
    stream: 'EVENTS',
    description: "A message's media was downloaded and is kept in the media store.",
    subject: (d) => `evt.whatsapp.media.stored.${t(d.session)}`,
    key: (d) => `${d.session}:${d.messageId}`,
  }),
  'whatsapp.media.failed.v1': define({
    data: MediaFailedV1,
    stream: 'EVENTS',
    description: "A message's media could not be kept (expired, too large, store full...).",
    subject: (d) => `evt.whatsapp.media.failed.${t(d.session)}`,
    key: (d) => `${d.session}:${d.messageId}`,
  }),
  'whatsapp.session.status.v1': define({
    data: SessionStatusV1,
    stream: 'EVENTS',
    description: 'A WhatsApp session connected, disconnected or failed.',
    subject: (d) => `evt.whatsapp.session.status.${t(d.session)}`,
    key: (d) => d.session,
  }),
  'whatsapp.session.qr.v1': define({
    data: SessionQrV1,
    stream: 'EVENTS',
    description: 'A WhatsApp session shows a new pairing QR code.',
    subject: (d) => `evt.whatsapp.session.qr.${t(d.session)}`,
    key: (d) => d.session,
  }),
  'whatsapp.session.sync.v1': define({
    data: SessionSyncV1,
    stream: 'EVENTS',
    description: "A full sync of a session from its gateway's API started, progressed, completed or failed.",
    subject: (d) => `evt.whatsapp.session.sync.${t(d.session)}`,
    key: (d) => d.session,
  }),
  'whatsapp.templates.synced.v1': define({
    data: TemplatesSyncedV1,
    stream: 'EVENTS',
    description: "A Cloud API session's message templates were read from its WhatsApp Business Account.",
    subject: (d) => `evt.whatsapp.templates.synced.${t(d.session)}`,
    key: (d) => d.session,
  }),
  'whatsapp.contact.updated.v1': define({
    data: ContactUpdatedV1,
    stream: 'EVENTS',
    description: 'A WhatsApp contact changed.',
    subject: (d) => `evt.whatsapp.contact.updated.${t(d.session)}`,
    key: (d) => `${d.session}:${d.jid}`,
  }),
  'whatsapp.contact.imported.v1': define({
    data: ContactImportedV1,
    stream: 'EVENTS',
    description: 'A WhatsApp contact read by a full sync.',
    subject: (d) => `evt.whatsapp.contact.imported.${t(d.session)}`,
    key: (d) => `${d.session}:${d.jid}`,
  }),
  'whatsapp.chat.archived.v1': define({
    data: ChatArchiveV1,
    stream: 'EVENTS',
    description: 'A WhatsApp chat was archived.',
    subject: (d) => `evt.whatsapp.chat.archived.${t(d.session)}`,
    key: (d) => `${d.session}:${d.chatId}`,
  }),
  'whatsapp.chat.unarchived.v1': define({
    data: ChatArchiveV1,
    stream: 'EVENTS',
    description: 'A WhatsApp chat was unarchived.',
    subject: (d) => `evt.whatsapp.chat.unarchived.${t(d.session)}`,
    key: (d) => `${d.session}:${d.chatId}`,
  }),
  'whatsapp.chat.imported.v1': define({
    data: ChatImportedV1,
    stream: 'EVENTS',
    description: 'A WhatsApp chat read by a full sync.',
    subject: (d) => `evt.whatsapp.chat.imported.${t(d.session)}`,
    key: (d) => `${d.session}:${d.chatId}`,
  }),
  'whatsapp.command.sent.v1': define({
    data: CommandOutcomeV1,
    stream: 'EVENTS',
    description: 'The provider accepted a command.',
    subject: (d) => `evt.whatsapp.command.sent.${t(d.session)}`,
    key: (d) => d.commandId,
  }),
  'whatsapp.command.failed.v1': define({
    data: CommandOutcomeV1,
    stream: 'EVENTS',
    description: 'The provider refused a command, or it could not be sent.',
    subject: (d) => `evt.whatsapp.command.failed.${t(d.session)}`,
    key: (d) => d.commandId,
  }),
  'whatsapp.command.unknown.v1': define({
    data: CommandOutcomeV1,
    stream: 'EVENTS',
    description: "A command's result was lost; it is never sent again.",
    subject: (d) => `evt.whatsapp.command.unknown.${t(d.session)}`,
    key: (d) => d.commandId,
  }),
  'whatsapp.send_message.v1': define({
    data: SendMessageV1,
    stream: 'COMMANDS',
    description: 'Command: send a WhatsApp message.',
    subject: (d) => `cmd.whatsapp.send_message.${t(d.session)}`,
    key: (d) => d.commandId,
  }),
  'whatsapp.mark_read.v1': define({
    data: MarkReadV1,
    stream: 'COMMANDS',
    description: 'Command: mark a WhatsApp chat as read.',
    subject: (d) => `cmd.whatsapp.mark_read.${t(d.session)}`,
    key: (d) => d.commandId,
  }),
  'whatsapp.sync_session.v1': define({
    data: SyncSessionV1,
    stream: 'COMMANDS',
    description: 'Command: run the full sync of a WhatsApp session now.',
    subject: (d) => `cmd.whatsapp.sync_session.${t(d.session)}`,
    key: (d) => d.commandId,
  }),
  'glyms.row.created.v1': define({
    data: GlymsRowChangedV1,
    stream: 'EVENTS',
    description: 'A Glyms ERP row was inserted.',
    subject: glymsSubject,
    key: glymsKey,
  }),
  'glyms.row.updated.v1': define({
    data: GlymsRowChangedV1,
    stream: 'EVENTS',
    description: 'A Glyms ERP row was updated.',
    subject: glymsSubject,
    key: glymsKey,
  }),
  'glyms.row.deleted.v1': define({
    data: GlymsRowChangedV1,
    stream: 'EVENTS',
    description: 'A Glyms ERP row was deleted.',
    subject: glymsSubject,
    key: glymsKey,
  }),
  'bitrix.entity.synced.v1': define({
    data: BitrixSyncedV1,
    stream: 'EVENTS',
    description: 'bitrix-sync wrote an entity to Bitrix24.',
    subject: (d) => `evt.bitrix.${d.entity}.synced`,
    key: (d) => `${d.entity}:${d.sourceKey}`,
  }),
  'bitrix.entity.failed.v1': define({
    data: BitrixFailedV1,
    stream: 'EVENTS',
    description: 'bitrix-sync could not write an entity to Bitrix24.',
    subject: (d) => `evt.bitrix.${d.entity}.failed`,
    key: (d) => `${d.entity}:${d.sourceKey}`,
  }),
} as const;

export type EventType = keyof typeof EventDefinitions;
export const EventTypes = Object.keys(EventDefinitions) as EventType[];

/** The data of an event type. */
export type EventData<T extends EventType> = z.infer<(typeof EventDefinitions)[T]['data']>;

/** Every known event as a discriminated union on `type`. */
export type DomainEvent = { [T in EventType]: CloudEvent<EventData<T>> & { type: T } }[EventType];
export type DomainEventOf<T extends EventType> = Extract<DomainEvent, { type: T }>;

export function isEventType(type: string): type is EventType {
  return Object.hasOwn(EventDefinitions, type);
}

/** Builds a validated event of a known type; throws a `ZodError` when `data` does not fit. */
export function createEvent<T extends EventType>(
  type: T,
  data: EventData<T>,
  fields: { source: string; id?: string; time?: string },
): DomainEventOf<T> {
  const definition = EventDefinitions[type] as unknown as Definition<z.ZodType>;
  const parsed = definition.data.parse(data);
  return {
    specversion: '1.0',
    id: fields.id ?? crypto.randomUUID(),
    source: fields.source,
    type,
    subject: definition.key(parsed),
    time: fields.time ?? new Date().toISOString(),
    datacontenttype: 'application/json',
    data: parsed,
  } as unknown as DomainEventOf<T>;
}

/** The NATS subject an event is published on. */
export function subjectOf(event: DomainEvent): string {
  return (EventDefinitions[event.type] as unknown as Definition<z.ZodType>).subject(event.data);
}

export { CloudEventSchema };

/** A value no real id takes: every subject token it lands in is one that varies with the event's data. */
const ANY = '__puente_any__';

/**
 * The subject pattern of an event type: its subject with every token that depends on the event's data
 * (a session, a dataset, a table) as `*`.
 */
export function subjectPatternOf(type: EventType): string {
  const definition = EventDefinitions[type] as unknown as Definition<z.ZodType>;
  const data = new Proxy({}, { get: () => ANY });
  return definition
    .subject(data)
    .split('.')
    .map((token) => (token.includes(ANY) ? '*' : token))
    .join('.');
}

/**
 * The subject filters that select exactly the given event types, as few as possible: where the types
 * cover every type published under a subject prefix, that prefix with `>` (`evt.whatsapp.>`), otherwise
 * each type's pattern. A consumer's filter derived from what its projections handle.
 */
export function subjectFiltersFor(types: readonly EventType[]): string[] {
  const wanted = new Set(types);
  const patterns = EventTypes.map((type) => ({ type, tokens: subjectPatternOf(type).split('.') }));
  const filters = new Set<string>();
  const cover = (prefix: readonly string[]) => {
    // Every type that can publish under the prefix (a `*` token matches any literal).
    const under = patterns.filter(
      (p) =>
        p.tokens.length > prefix.length && prefix.every((token, i) => p.tokens[i] === token || p.tokens[i] === '*'),
    );
    const mine = under.filter((p) => wanted.has(p.type));
    if (mine.length === 0) return;
    // One type left: its own pattern says it more exactly than a `>`.
    if (prefix.length >= 2 && mine.length === under.length && under.length > 1) {
      filters.add([...prefix, '>'].join('.'));
      return;
    }
    const literal = mine.filter((p) => p.tokens.length > prefix.length + 1 && p.tokens[prefix.length] !== '*');
    for (const p of mine) if (!literal.includes(p)) filters.add(p.tokens.join('.'));
    for (const token of new Set(literal.map((p) => p.tokens[prefix.length]!))) cover([...prefix, token]);
  };
  cover([]);
  return [...filters];
}
