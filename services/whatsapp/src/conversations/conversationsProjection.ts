import {
  Channels,
  Collections,
  jidKind,
  normalizeJid,
  phoneOf,
  type DomainEventOf,
  type JidKind,
  type MessageContent,
  type MessageStatus,
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
      | 'whatsapp.message.status.v1'
      | 'whatsapp.command.failed.v1'
      | 'whatsapp.command.unknown.v1'
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
  lastMessage?: LastMessage;
  /** Time of the newest incoming message (the Cloud API customer-service window runs 24 h from it). */
  lastInboundAt?: string;
  unreadCount: number;
  archived: boolean;
  /** Time of the last mark-read: older messages do not count as unread. */
  lastReadAt?: string;
  updatedAt?: string;
  _v: { lastMessage?: AspectVersion; archived?: AspectVersion; unread?: AspectVersion; name?: AspectVersion };
  /** Bookkeeping: positions whose message raised `unreadCount` (a redelivered batch does not count again). */
  _counted?: number[];
}

/** The newest message of a chat, as the conversation list shows it. */
export interface LastMessage {
  messageId: string;
  type: MessageContent['type'];
  text?: string;
  fromMe: boolean;
  timestamp: string;
  /** Outgoing: the message's delivery status, as `wa_messages` ranks it (so it never goes back). */
  status?: MessageStatus;
  /** Outgoing, sent from Puente: the agent who sent it (an access token's `sub`). */
  sentBy?: string;
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
 * `lastMessage` with its delivery status as `wa_messages` holds it (outgoing only): the messages
 * projection leads the group, so its document has already applied the event and the status rules live
 * there only. The store hands over that document as it stands after the whole batch; a status set by a
 * later event of the batch is left to that event (which touches this conversation too), so that every
 * batching of the same events writes the same documents at the same positions, as a replay must.
 * Returns `doc` itself when nothing changes.
 */
function withLastMessageStatus(doc: ConversationDoc, facts: MessageFacts, position: number): ConversationDoc {
  const last = doc.lastMessage;
  if (!last?.fromMe) return doc;
  const message = facts.message(messageKey(doc.session, last.messageId));
  const version = message?._v.status;
  if (!message?.status || !version || version[1] > position || message.status === last.status) return doc;
  return { ...doc, lastMessage: { ...last, status: message.status } };
}

/**
 * `wa_conversations`: one document per chat, `<session>:<chat jid>`. `lastMessage` follows the newest
 * message (time, then position); `archived` the newest archive fact; `unreadCount` rises by one for an
 * inbound live message in the event that first gave its message document content (so duplicates and
 * imports never count) and newer than the last mark-read, which resets it. An outgoing `lastMessage`
 * carries its status from `wa_messages` (`withLastMessageStatus`) and the agent from the send; `lastInboundAt` is the time
 * of the newest incoming message, live or imported.
 */
export function conversationsProjection(facts: MessageFacts): Projection<ConversationDoc, ConversationEvent> {
  return {
    name: 'whatsapp-conversations',
    collection: Collections.waConversations,
    handles: [
      ...ContentEventTypes,
      'whatsapp.message.send_requested.v1',
      'whatsapp.message.status.v1',
      'whatsapp.command.failed.v1',
      'whatsapp.command.unknown.v1',
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
        case 'whatsapp.message.status.v1':
        case 'whatsapp.command.failed.v1':
        case 'whatsapp.command.unknown.v1': {
          // A status may come without its chat: the message's document knows it.
          const d = event.data;
          if (event.type !== 'whatsapp.message.status.v1' && event.data.kind !== 'send_message') return [];
          const id = event.type === 'whatsapp.message.status.v1' ? event.data.messageId : event.data.commandId;
          const chatId = d.chatId ?? facts.message(messageKey(d.session, id))?.chatId;
          return chatId ? [chatKey(d.session, chatId)] : [];
        }
        default:
          return unhandled(event);
      }
    },
    initial(_key, event) {
      // A message's status or a send's failure changes a conversation that exists, never opens one.
      if (
        event.type === 'whatsapp.message.status.v1' ||
        event.type === 'whatsapp.command.failed.v1' ||
        event.type === 'whatsapp.command.unknown.v1'
      )
        return null;
      // A mark-read opens the chat; a send's provider id only renames the last message of a known one.
      if (event.type === 'whatsapp.command.sent.v1')
        return event.data.kind === 'send_message' ? null : fresh(event.data.session, event.data.chatId!, undefined);
      return fresh(event.data.session, event.data.chatId, event.data.provider);
    },
    evolve(doc, event, context) {
      const next = evolveConversation(doc, event, context.position, facts);
      return next && withLastMessageStatus(next, facts, context.position);
    },
    channel: (doc) => Channels.whatsappConversations(doc.session),
    indexes: [{ key: { session: 1, updatedAt: -1 }, name: 'inbox' }],
  };
}

/** One conversation's next state, before `withLastMessageStatus`. */
function evolveConversation(
  doc: ConversationDoc | null,
  event: ConversationEvent,
  position: number,
  facts: MessageFacts,
): ConversationDoc | null {
  switch (event.type) {
    case 'whatsapp.message.received.v1':
    case 'whatsapp.message.sent.v1':
    case 'whatsapp.message.imported.v1': {
      const d = event.data;
      let next = withAlt(doc!, d.chatAlt);
      const version = aspectVersion(d.timestamp, position);
      const sameMessage = next.lastMessage?.messageId === d.messageId && next.lastMessage.timestamp === d.timestamp;
      if (!sameMessage && isNewer(next._v.lastMessage, version)) {
        // The same message again (the provider's time after the send's): what is known of it stays.
        const known = next.lastMessage?.messageId === d.messageId ? next.lastMessage : undefined;
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
              ...(known?.status !== undefined ? { status: known.status } : {}),
              ...(known?.sentBy !== undefined ? { sentBy: known.sentBy } : {}),
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
      if (
        !d.fromMe &&
        event.type !== 'whatsapp.message.sent.v1' &&
        later(next.lastInboundAt, d.timestamp) !== next.lastInboundAt
      )
        next = { ...next, lastInboundAt: later(next.lastInboundAt, d.timestamp) };
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
            ...(d.sentBy !== undefined ? { sentBy: d.sentBy } : {}),
          },
          updatedAt: later(base.updatedAt, d.requestedAt),
        },
        version,
      );
    }
    case 'whatsapp.command.sent.v1': {
      const d = event.data;
      if (d.kind === 'send_message') {
        const last = doc?.lastMessage;
        if (!doc || !last || !d.providerMessageId) return doc;
        const sentBy = last.sentBy ?? d.message?.sentBy;
        // The pending message got its provider id: the last message follows it.
        if (last.messageId === d.commandId)
          return {
            ...doc,
            lastMessage: { ...last, messageId: d.providerMessageId, ...(sentBy !== undefined ? { sentBy } : {}) },
          };
        // The provider reported the message first (a message.sent webhook): the send names its agent.
        if (last.messageId === d.providerMessageId && sentBy !== last.sentBy)
          return { ...doc, lastMessage: { ...last, ...(sentBy !== undefined ? { sentBy } : {}) } };
        return doc;
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
    case 'whatsapp.message.status.v1':
    case 'whatsapp.command.failed.v1':
    case 'whatsapp.command.unknown.v1':
      // Only the last message's status can change: `withLastMessageStatus` reads it.
      return doc;
    default:
      return unhandled(event);
  }
}
