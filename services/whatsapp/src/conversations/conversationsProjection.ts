import {
  Channels,
  Collections,
  jidKind,
  normalizeJid,
  phoneOf,
  type DomainEventOf,
  type JidKind,
  type MessageContent,
  type WhatsAppProvider,
} from '@puente/contracts';
import {
  aspectVersion,
  isLaterSource,
  isNewer,
  setAspect,
  sourceOrder,
  unhandled,
  type AspectVersion,
  type ProjectedDoc,
  type Projection,
} from '@puente/projection';
import {
  chatKey,
  ContentEventTypes,
  countOnce,
  messageKey,
  type ContentEvent,
  type MessageFacts,
} from '../messages/facts.js';

/** The events the conversations read model applies. */
export type ConversationEvent =
  | ContentEvent
  | DomainEventOf<
      | 'whatsapp.message.send_requested.v1'
      | 'whatsapp.chat.archived.v1'
      | 'whatsapp.chat.unarchived.v1'
      | 'whatsapp.chat.imported.v1'
      | 'whatsapp.command.sent.v1'
    >;

export interface ConversationDoc extends ProjectedDoc {
  session: string;
  chatId: string;
  kind: JidKind;
  provider?: WhatsAppProvider;
  /** The phone number behind the chat, when known (for an `@lid` chat: from the provider's alternate address). */
  phone?: string;
  /** The chat's other address (`@lid` ↔ phone JID), when the provider told it. */
  alt?: string;
  name?: string;
  lastMessage?: { messageId: string; type: MessageContent['type']; text?: string; fromMe: boolean; timestamp: string };
  unreadCount: number;
  archived: boolean;
  /** Time of the last mark-read: older messages do not count as unread. */
  lastReadAt?: string;
  updatedAt?: string;
  _v: { lastMessage?: AspectVersion; archived?: AspectVersion; unread?: AspectVersion; name?: AspectVersion };
  /** Bookkeeping: positions whose message raised `unreadCount` (a redelivered batch does not count again). */
  _counted?: number[];
}

const later = (a: string | undefined, b: string): string => (a && sourceOrder(a) >= sourceOrder(b) ? a : b);

function fresh(session: string, chatId: string, provider: WhatsAppProvider | undefined): ConversationDoc {
  const jid = normalizeJid(chatId);
  const phone = phoneOf(jid);
  return {
    session,
    chatId: jid,
    kind: jidKind(jid),
    ...(provider ? { provider } : {}),
    ...(phone ? { phone } : {}),
    unreadCount: 0,
    archived: false,
    _v: {},
  };
}

/** Sets `alt` (and `phone` from it) when the event tells a new alternate address. */
function withAlt(doc: ConversationDoc, alt: string | undefined): ConversationDoc {
  if (!alt) return doc;
  const jid = normalizeJid(alt);
  if (doc.alt === jid) return doc;
  const phone = doc.phone ?? phoneOf(jid);
  return { ...doc, alt: jid, ...(phone ? { phone } : {}) };
}

/**
 * `wa_conversations`: one document per chat, `<session>:<chat jid>`. `lastMessage` follows the newest
 * message (time, then position); `archived` the newest archive fact; `unreadCount` rises by one for an
 * inbound live message in the event that first gave its message document content (so duplicates and
 * imports never count) and newer than the last mark-read, which resets it.
 */
export function conversationsProjection(facts: MessageFacts): Projection<ConversationDoc, ConversationEvent> {
  return {
    name: 'whatsapp-conversations',
    collection: Collections.waConversations,
    handles: [
      ...ContentEventTypes,
      'whatsapp.message.send_requested.v1',
      'whatsapp.chat.archived.v1',
      'whatsapp.chat.unarchived.v1',
      'whatsapp.chat.imported.v1',
      'whatsapp.command.sent.v1',
    ],
    keys(event) {
      switch (event.type) {
        case 'whatsapp.message.received.v1':
        case 'whatsapp.message.sent.v1':
        case 'whatsapp.message.imported.v1':
        case 'whatsapp.message.send_requested.v1':
        case 'whatsapp.chat.archived.v1':
        case 'whatsapp.chat.unarchived.v1':
        case 'whatsapp.chat.imported.v1':
          return [chatKey(event.data.session, event.data.chatId)];
        case 'whatsapp.command.sent.v1':
          return event.data.chatId ? [chatKey(event.data.session, event.data.chatId)] : [];
        default:
          return unhandled(event);
      }
    },
    initial(_key, event) {
      // A mark-read opens the chat; a send's provider id only renames the last message of a known one.
      if (event.type === 'whatsapp.command.sent.v1')
        return event.data.kind === 'send_message' ? null : fresh(event.data.session, event.data.chatId!, undefined);
      return fresh(event.data.session, event.data.chatId, event.data.provider);
    },
    evolve(doc, event, { position }) {
      switch (event.type) {
        case 'whatsapp.message.received.v1':
        case 'whatsapp.message.sent.v1':
        case 'whatsapp.message.imported.v1': {
          const d = event.data;
          let next = withAlt(doc!, d.chatAlt);
          const version = aspectVersion(d.timestamp, position);
          const sameMessage = next.lastMessage?.messageId === d.messageId && next.lastMessage.timestamp === d.timestamp;
          if (!sameMessage && isNewer(next._v.lastMessage, version)) {
            next = setAspect(
              next,
              'lastMessage',
              {
                lastMessage: {
                  messageId: d.messageId,
                  type: d.type,
                  ...(d.text !== undefined ? { text: d.text } : {}),
                  fromMe: d.fromMe,
                  timestamp: d.timestamp,
                },
                updatedAt: later(next.updatedAt, d.timestamp),
              },
              version,
            );
          }
          const counts =
            event.type === 'whatsapp.message.received.v1' &&
            !d.fromMe &&
            facts.firstContentAt(messageKey(d.session, d.messageId)) === position;
          const counted =
            counts && (!next.lastReadAt || sourceOrder(d.timestamp) > sourceOrder(next.lastReadAt))
              ? countOnce(next._counted, position)
              : undefined;
          if (counted) next = { ...next, unreadCount: next.unreadCount + 1, _counted: counted };
          return next;
        }
        case 'whatsapp.message.send_requested.v1': {
          const d = event.data;
          const base = doc!;
          const version = aspectVersion(d.requestedAt, position);
          if (base.lastMessage?.messageId === d.commandId || !isNewer(base._v.lastMessage, version)) return base;
          return setAspect(
            base,
            'lastMessage',
            {
              lastMessage: {
                messageId: d.commandId,
                type: d.type,
                ...(d.text !== undefined ? { text: d.text } : {}),
                fromMe: true,
                timestamp: d.requestedAt,
              },
              updatedAt: later(base.updatedAt, d.requestedAt),
            },
            version,
          );
        }
        case 'whatsapp.command.sent.v1': {
          const d = event.data;
          if (d.kind === 'send_message') {
            // The pending message got its provider id: the last message follows it.
            if (!doc || !d.providerMessageId || doc.lastMessage?.messageId !== d.commandId) return doc;
            return { ...doc, lastMessage: { ...doc.lastMessage, messageId: d.providerMessageId } };
          }
          const base = doc!;
          if (!isLaterSource(base._v.unread, d.at)) return base;
          return setAspect(
            base,
            'unread',
            { unreadCount: 0, lastReadAt: later(base.lastReadAt, d.at) },
            aspectVersion(d.at, position),
          );
        }
        case 'whatsapp.chat.archived.v1':
        case 'whatsapp.chat.unarchived.v1': {
          const d = event.data;
          const base = doc!;
          const version = aspectVersion(d.timestamp, position);
          if (
            !isNewer(base._v.archived, version) ||
            (base._v.archived &&
              base._v.archived[0] === version[0] &&
              base.archived === (event.type === 'whatsapp.chat.archived.v1'))
          )
            return base;
          return setAspect(base, 'archived', { archived: event.type === 'whatsapp.chat.archived.v1' }, version);
        }
        case 'whatsapp.chat.imported.v1': {
          const d = event.data;
          let next = doc!;
          const version = aspectVersion(d.timestamp, position);
          if (d.name !== undefined && d.name !== next.name && isLaterSource(next._v.name, d.timestamp))
            next = setAspect(next, 'name', { name: d.name }, version);
          if (d.archived !== undefined && d.archived !== next.archived && isLaterSource(next._v.archived, d.timestamp))
            next = setAspect(next, 'archived', { archived: d.archived }, version);
          if (
            d.unreadCount !== undefined &&
            d.unreadCount !== next.unreadCount &&
            isLaterSource(next._v.unread, d.timestamp)
          )
            next = setAspect(next, 'unread', { unreadCount: d.unreadCount }, version);
          if (d.lastMessageAt && next.updatedAt !== later(next.updatedAt, d.lastMessageAt))
            next = { ...next, updatedAt: later(next.updatedAt, d.lastMessageAt) };
          return next;
        }
        default:
          return unhandled(event);
      }
    },
    channel: (doc) => Channels.whatsappConversations(doc.session),
    indexes: [{ key: { session: 1, updatedAt: -1 }, name: 'inbox' }],
  };
}
