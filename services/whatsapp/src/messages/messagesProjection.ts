import {
  Channels,
  Collections,
  normalizeJid,
  type DomainEventOf,
  type MediaFailureCode,
  type MessageContent,
  type MessageStatus,
  type WhatsAppProvider,
} from '@puente/contracts';
import {
  aspectVersion,
  isLaterSource,
  setAspect,
  unhandled,
  type AspectVersion,
  type ProjectedDoc,
  type Projection,
} from '@puente/projection';
import { ContentEventTypes, defined, messageKey, STATUS_RANK, type ContentEvent } from './facts.js';

/** The events the messages read model applies. */
export type MessageEvent =
  | ContentEvent
  | DomainEventOf<
      | 'whatsapp.message.status.v1'
      | 'whatsapp.message.send_requested.v1'
      | 'whatsapp.command.sent.v1'
      | 'whatsapp.command.failed.v1'
      | 'whatsapp.command.unknown.v1'
      | 'whatsapp.media.stored.v1'
      | 'whatsapp.media.failed.v1'
    >;

/** The outcome of keeping a message's media (the media worker's events). */
type MediaEvent = Extract<MessageEvent, { type: 'whatsapp.media.stored.v1' | 'whatsapp.media.failed.v1' }>;

/**
 * A message's media as the read model shows it: the content's descriptor and what became of the file.
 * `state` is absent while it is not downloaded yet; `stored` sets `hash`, `bytes`, `mimeType` (and
 * `fileName`) from the store; `unavailable` sets `error`.
 */
export type MessageMedia = NonNullable<MessageContent['media']> & {
  state?: 'stored' | 'unavailable';
  error?: { code: MediaFailureCode; message: string };
};

/** Media outcomes in order: `stored` is final, `unavailable` gives way to it (a later download that worked). */
const MEDIA_RANK = { unavailable: 1, stored: 2 } as const;

export interface MessageDoc extends ProjectedDoc {
  session: string;
  messageId: string;
  provider?: WhatsAppProvider;
  chatId?: string;
  chatAlt?: string;
  direction?: 'in' | 'out';
  from?: string;
  pushName?: string;
  type?: MessageContent['type'];
  text?: string;
  media?: MessageMedia;
  location?: MessageContent['location'];
  reaction?: MessageContent['reaction'];
  quotedMessageId?: string;
  timestamp?: string;
  status?: MessageStatus;
  /** When the provider reported the current status. */
  statusAt?: string;
  error?: { code?: string; message: string };
  /** The send command that produced this message. */
  commandId?: string;
  /** The agent who sent it through the command API (an access token's `sub`). */
  sentBy?: string;
  /** Content came from a full sync, not a live webhook. */
  imported?: boolean;
  /** A status arrived before the message: only the status is known so far. */
  placeholder?: boolean;
  /** On the tombstone of a pending send: the provider's message document it became. */
  aliasOf?: string;
  /** Stream position of the event that first gave this document content (counted facts hang on it). */
  firstContentAt?: number;
  _v: { content?: AspectVersion; status?: AspectVersion; media?: AspectVersion };
}

function withStatus(
  doc: MessageDoc,
  status: MessageStatus,
  at: string,
  position: number,
  error?: { code?: string; message: string },
): MessageDoc {
  const rank = STATUS_RANK[status];
  if (doc.status !== undefined && STATUS_RANK[doc.status] >= rank) return doc;
  const next = setAspect(doc, 'status', { status, statusAt: at }, [rank, position]);
  if (status === 'failed' && error) next.error = error;
  else delete next.error;
  return next;
}

/** The document of a fact that came before its message's content: only that fact is known so far. */
function placeholderFor(
  d: { session: string; messageId: string; provider: WhatsAppProvider; chatId?: string | undefined },
  extra: Partial<MessageDoc> = {},
): MessageDoc {
  return {
    session: d.session,
    messageId: d.messageId,
    provider: d.provider,
    ...(d.chatId ? { chatId: normalizeJid(d.chatId) } : {}),
    ...extra,
    placeholder: true,
    _v: {},
  };
}

/** The fields a media outcome sets on `media` (over the content's descriptor). */
const OUTCOME_FIELDS = ['state', 'hash', 'bytes', 'mimeType', 'fileName', 'error'] as const;

/**
 * The media a content event shows, with the outcome the document already has (a media event may come
 * first, or the content again later). A descriptor with a hash is media Puente holds: `stored` at once.
 */
function contentMedia(descriptor: MessageContent['media'], base: MessageDoc | undefined): MessageMedia | undefined {
  const outcome =
    base?._v.media && base.media
      ? Object.fromEntries(OUTCOME_FIELDS.flatMap((f) => (base.media![f] === undefined ? [] : [[f, base.media![f]]])))
      : undefined;
  if (!descriptor) return outcome ? base!.media : undefined;
  if (outcome) return { ...descriptor, ...outcome };
  return descriptor.hash ? { ...descriptor, state: 'stored' } : descriptor;
}

/** The media worker's outcome, versioned by rank then position: `stored` is never undone, a duplicate changes nothing. */
function withMediaOutcome(doc: MessageDoc, event: MediaEvent, position: number): MessageDoc {
  const stored = event.type === 'whatsapp.media.stored.v1';
  const rank = stored ? MEDIA_RANK.stored : MEDIA_RANK.unavailable;
  if (doc._v.media && doc._v.media[0] >= rank) return doc;
  const { state: _state, hash: _hash, error: _error, ...descriptor } = doc.media ?? {};
  const media: MessageMedia =
    event.type === 'whatsapp.media.stored.v1'
      ? {
          ...descriptor,
          state: 'stored',
          hash: event.data.hash,
          bytes: event.data.bytes,
          mimeType: event.data.mimeType,
          ...(event.data.fileName ? { fileName: event.data.fileName } : {}),
        }
      : { ...descriptor, state: 'unavailable', error: { code: event.data.code, message: event.data.message } };
  return setAspect(doc, 'media', { media }, [rank, position]);
}

function withContent(base: MessageDoc, event: ContentEvent, position: number): MessageDoc {
  const d = event.data;
  if (!base.placeholder && !isLaterSource(base._v.content, d.timestamp)) return base;
  const next = setAspect(
    base,
    'content',
    {
      ...defined({
        provider: d.provider,
        chatId: normalizeJid(d.chatId),
        chatAlt: d.chatAlt ? normalizeJid(d.chatAlt) : base.chatAlt,
        direction: d.fromMe ? ('out' as const) : ('in' as const),
        from: d.from ? normalizeJid(d.from) : undefined,
        pushName: d.pushName,
        type: d.type,
        text: d.text,
        media: contentMedia(d.media, base),
        location: d.location,
        reaction: d.reaction,
        quotedMessageId: d.quotedMessageId,
        timestamp: d.timestamp,
      }),
      firstContentAt: base.firstContentAt ?? position,
    },
    aspectVersion(d.timestamp, position),
  );
  delete next.placeholder;
  if (event.type === 'whatsapp.message.imported.v1' && base.firstContentAt === undefined) next.imported = true;
  // A message the provider reports as ours has left the phone or the gateway: at least `sent`.
  return d.fromMe && event.type !== 'whatsapp.message.imported.v1'
    ? withStatus(next, 'sent', d.timestamp, position)
    : next;
}

/**
 * `wa_messages`: one document per message, `<session>:<message id>`. Content and status are
 * versioned apart (`_v.content` by the message's time, `_v.status` by rank), so any order of the
 * same events ends in one state. A status before its message makes a placeholder. A send is
 * `<session>:<command id>` while `pending`; when the provider's id is known (`command.sent`) that
 * document becomes a tombstone with `aliasOf`, and the provider's document carries the content and the
 * highest status from the send's answer or the provider's webhooks, whichever came first.
 */
export function messagesProjection(): Projection<MessageDoc, MessageEvent> {
  return {
    name: 'whatsapp-messages',
    collection: Collections.waMessages,
    handles: [
      ...ContentEventTypes,
      'whatsapp.message.status.v1',
      'whatsapp.message.send_requested.v1',
      'whatsapp.command.sent.v1',
      'whatsapp.command.failed.v1',
      'whatsapp.command.unknown.v1',
      'whatsapp.media.stored.v1',
      'whatsapp.media.failed.v1',
    ],
    keys(event) {
      switch (event.type) {
        case 'whatsapp.message.received.v1':
        case 'whatsapp.message.sent.v1':
        case 'whatsapp.message.imported.v1':
        case 'whatsapp.message.status.v1':
        case 'whatsapp.media.stored.v1':
        case 'whatsapp.media.failed.v1':
          return [messageKey(event.data.session, event.data.messageId)];
        case 'whatsapp.message.send_requested.v1':
          return [messageKey(event.data.session, event.data.commandId)];
        case 'whatsapp.command.sent.v1': {
          if (event.data.kind !== 'send_message') return [];
          const keys = [messageKey(event.data.session, event.data.commandId)];
          if (event.data.providerMessageId) keys.push(messageKey(event.data.session, event.data.providerMessageId));
          return keys;
        }
        case 'whatsapp.command.failed.v1':
        case 'whatsapp.command.unknown.v1':
          return event.data.kind === 'send_message' ? [messageKey(event.data.session, event.data.commandId)] : [];
        default:
          return unhandled(event);
      }
    },
    initial(key, event) {
      switch (event.type) {
        case 'whatsapp.message.received.v1':
        case 'whatsapp.message.sent.v1':
        case 'whatsapp.message.imported.v1':
          return { session: event.data.session, messageId: event.data.messageId, _v: {} };
        case 'whatsapp.message.status.v1':
          // A status before its message (so an outgoing one).
          return placeholderFor(event.data, { direction: 'out' });
        case 'whatsapp.media.stored.v1':
        case 'whatsapp.media.failed.v1':
          // Media kept (or not) before its message's content arrived.
          return placeholderFor(event.data);
        case 'whatsapp.command.sent.v1': {
          const d = event.data;
          if (d.providerMessageId && key === messageKey(d.session, d.providerMessageId))
            return { session: d.session, messageId: d.providerMessageId, direction: 'out', _v: {} };
          return { session: d.session, messageId: d.commandId, commandId: d.commandId, _v: {} };
        }
        // A send request's document needs its position (below); outcomes of unknown sends create nothing.
        case 'whatsapp.message.send_requested.v1':
        case 'whatsapp.command.failed.v1':
        case 'whatsapp.command.unknown.v1':
          return null;
        default:
          return unhandled(event);
      }
    },
    evolve(doc, event, { key, position }) {
      if (doc?._deleted) return doc;
      switch (event.type) {
        case 'whatsapp.message.received.v1':
        case 'whatsapp.message.sent.v1':
        case 'whatsapp.message.imported.v1':
          return withContent(doc!, event, position);
        case 'whatsapp.message.status.v1': {
          const d = event.data;
          return withStatus(doc!, d.status, d.timestamp, position, d.error);
        }
        case 'whatsapp.media.stored.v1':
        case 'whatsapp.media.failed.v1':
          return withMediaOutcome(doc!, event, position);
        case 'whatsapp.message.send_requested.v1': {
          if (doc) return doc;
          const d = event.data;
          return {
            ...defined({
              session: d.session,
              messageId: d.commandId,
              provider: d.provider,
              commandId: d.commandId,
              chatId: normalizeJid(d.chatId),
              direction: 'out' as const,
              type: d.type,
              text: d.text,
              media: contentMedia(d.media, undefined),
              timestamp: d.requestedAt,
              sentBy: d.sentBy,
            }),
            status: 'pending',
            statusAt: d.requestedAt,
            firstContentAt: position,
            _v: { content: aspectVersion(d.requestedAt, position), status: [STATUS_RANK.pending, position] },
          };
        }
        case 'whatsapp.command.sent.v1': {
          const d = event.data;
          const base = doc!;
          const providerKey = d.providerMessageId ? messageKey(d.session, d.providerMessageId) : undefined;
          if (key !== providerKey) {
            // The pending document: it became the provider's message.
            return {
              ...base,
              _deleted: true,
              ...(providerKey ? { aliasOf: providerKey } : {}),
              status: 'sent',
              statusAt: d.at,
            };
          }
          let next: MessageDoc = base.commandId === d.commandId ? base : { ...base, commandId: d.commandId };
          if (d.message?.sentBy && next.sentBy === undefined) next = { ...next, sentBy: d.message.sentBy };
          if (d.message && (next.placeholder || next._v.content === undefined)) {
            next = setAspect(
              next,
              'content',
              {
                ...defined({
                  chatId: next.chatId ?? (d.chatId ? normalizeJid(d.chatId) : undefined),
                  direction: 'out' as const,
                  type: d.message.type,
                  text: d.message.text,
                  media: contentMedia(d.message.media, next),
                  timestamp: d.message.requestedAt,
                }),
                firstContentAt: next.firstContentAt ?? position,
              },
              aspectVersion(d.message.requestedAt, position),
            );
            delete next.placeholder;
          }
          return withStatus(next, 'sent', d.at, position);
        }
        case 'whatsapp.command.failed.v1':
          return doc ? withStatus(doc, 'failed', event.data.at, position, event.data.error) : doc;
        case 'whatsapp.command.unknown.v1':
          if (!doc || doc.status !== 'pending' || doc.error) return doc;
          return {
            ...doc,
            error: event.data.error ?? {
              code: 'RESULT_LOST',
              message: 'the provider may or may not have sent it; it is not sent again',
            },
          };
        default:
          return unhandled(event);
      }
    },
    channel: (doc) => Channels.whatsappMessages(doc.session, doc.chatId ?? 'unknown'),
    indexes: [
      { key: { session: 1, chatId: 1, timestamp: -1 }, name: 'chat_timeline' },
      { key: { commandId: 1 }, name: 'command' },
    ],
  };
}
