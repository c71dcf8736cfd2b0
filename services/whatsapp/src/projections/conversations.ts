import { Channels, Collections, jidKind, normalizeJid, phoneOf, type DomainEvent, type JidKind, type MessageContent, type WhatsAppProvider } from '@puente/contracts';
import { isNewer, sourceOrder, type AspectVersion, type ProjectedDoc, type Projection } from '@puente/projection';
import { chatKey, countOnce, isContentEvent, laterThan, messageKey, versionAt, type MessageFacts } from './common.js';

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
  return { session, chatId: jid, kind: jidKind(jid), ...(provider ? { provider } : {}), ...(phone ? { phone } : {}), unreadCount: 0, archived: false, _v: {} };
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
export function conversationsProjection(facts: MessageFacts): Projection<ConversationDoc> {
  return {
    name: 'whatsapp-conversations',
    collection: Collections.waConversations,
    keys(event: DomainEvent) {
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
          return [];
      }
    },
    evolve(doc, event, { position }) {
      if (isContentEvent(event)) {
        const d = event.data;
        let next = withAlt(doc ?? fresh(d.session, d.chatId, d.provider), d.chatAlt);
        const version = versionAt(d.timestamp, position);
        const sameMessage = next.lastMessage?.messageId === d.messageId && next.lastMessage.timestamp === d.timestamp;
        if (!sameMessage && isNewer(next._v.lastMessage, version)) {
          next = {
            ...next,
            lastMessage: { messageId: d.messageId, type: d.type, ...(d.text !== undefined ? { text: d.text } : {}), fromMe: d.fromMe, timestamp: d.timestamp },
            updatedAt: later(next.updatedAt, d.timestamp),
            _v: { ...next._v, lastMessage: version },
          };
        }
        const counts = event.type === 'whatsapp.message.received.v1' && !d.fromMe && facts.firstContentAt(messageKey(d.session, d.messageId)) === position;
        const counted = counts && (!next.lastReadAt || sourceOrder(d.timestamp) > sourceOrder(next.lastReadAt)) ? countOnce(next._counted, position) : undefined;
        if (counted) next = { ...next, unreadCount: next.unreadCount + 1, _counted: counted };
        return doc && next === doc ? doc : next;
      }
      switch (event.type) {
        case 'whatsapp.message.send_requested.v1': {
          const d = event.data;
          const base = doc ?? fresh(d.session, d.chatId, d.provider);
          const version = versionAt(d.requestedAt, position);
          if (base.lastMessage?.messageId === d.commandId || !isNewer(base._v.lastMessage, version)) return base;
          return {
            ...base,
            lastMessage: { messageId: d.commandId, type: d.type, ...(d.text !== undefined ? { text: d.text } : {}), fromMe: true, timestamp: d.requestedAt },
            updatedAt: later(base.updatedAt, d.requestedAt),
            _v: { ...base._v, lastMessage: version },
          };
        }
        case 'whatsapp.command.sent.v1': {
          const d = event.data;
          if (d.kind === 'send_message') {
            // The pending message got its provider id: the last message follows it.
            if (!doc || !d.providerMessageId || doc.lastMessage?.messageId !== d.commandId) return doc;
            return { ...doc, lastMessage: { ...doc.lastMessage, messageId: d.providerMessageId } };
          }
          const base = doc ?? fresh(d.session, d.chatId!, undefined);
          if (!laterThan(base._v.unread, d.at)) return base;
          return { ...base, unreadCount: 0, lastReadAt: later(base.lastReadAt, d.at), _v: { ...base._v, unread: versionAt(d.at, position) } };
        }
        case 'whatsapp.chat.archived.v1':
        case 'whatsapp.chat.unarchived.v1': {
          const d = event.data;
          const base = doc ?? fresh(d.session, d.chatId, d.provider);
          const version = versionAt(d.timestamp, position);
          if (!isNewer(base._v.archived, version) || (base._v.archived && base._v.archived[0] === version[0] && base.archived === (event.type === 'whatsapp.chat.archived.v1'))) return base;
          return { ...base, archived: event.type === 'whatsapp.chat.archived.v1', _v: { ...base._v, archived: version } };
        }
        case 'whatsapp.chat.imported.v1': {
          const d = event.data;
          let next = doc ?? fresh(d.session, d.chatId, d.provider);
          if (d.name !== undefined && d.name !== next.name && laterThan(next._v.name, d.timestamp)) next = { ...next, name: d.name, _v: { ...next._v, name: versionAt(d.timestamp, position) } };
          if (d.archived !== undefined && d.archived !== next.archived && laterThan(next._v.archived, d.timestamp)) next = { ...next, archived: d.archived, _v: { ...next._v, archived: versionAt(d.timestamp, position) } };
          if (d.unreadCount !== undefined && d.unreadCount !== next.unreadCount && laterThan(next._v.unread, d.timestamp)) next = { ...next, unreadCount: d.unreadCount, _v: { ...next._v, unread: versionAt(d.timestamp, position) } };
          if (d.lastMessageAt && next.updatedAt !== later(next.updatedAt, d.lastMessageAt)) next = { ...next, updatedAt: later(next.updatedAt, d.lastMessageAt) };
          return doc && next === doc ? doc : next;
        }
        default:
          return doc;
      }
    },
    channel: (doc) => Channels.whatsappConversations(doc.session),
    indexes: [{ key: { session: 1, updatedAt: -1 }, name: 'inbox' }],
  };
}
