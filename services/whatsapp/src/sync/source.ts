import { toIsoTime, type WhatsAppProvider } from '@puente/contracts';
import type { InboxHubClient, InboxHubMessage } from '../providers/inboxhub.js';

/** One page of a list, with what the answer says about the whole list. */
export interface SyncPage<T> {
  items: T[];
  /** How many items the answer held, those skipped as unreadable included (what tells a short, last page). */
  received: number;
  total?: number | undefined;
}

/** A contact as the `whatsapp.contact.imported.v1` event carries it. */
export interface SyncContact {
  jid: string;
  name?: string | undefined;
  /** Digits only. */
  phone?: string | undefined;
  lid?: string | undefined;
}

/** A chat as the `whatsapp.chat.imported.v1` event carries it. */
export interface SyncChat {
  chatId: string;
  name?: string | undefined;
  archived?: boolean | undefined;
  unreadCount?: number | undefined;
  lastMessageAt?: string | undefined;
}

/** A message as the `whatsapp.message.imported.v1` event carries it (the session and provider aside). */
export type SyncMessage = InboxHubMessage;

/**
 * Where a full sync reads a session's history: contacts, chats (most recent first) and a chat's
 * messages (newest first), each by 1-based page of `limit` items. Inbox Hub, Evolution API and WAHA
 * each implement it over their own listing endpoints (docs/whatsapp.md, "Full sync").
 */
export interface SyncSource {
  readonly provider: WhatsAppProvider;
  contacts(session: string, page: number, limit: number): Promise<SyncPage<SyncContact>>;
  chats(session: string, page: number, limit: number): Promise<SyncPage<SyncChat>>;
  messages(session: string, chatId: string, page: number, limit: number): Promise<SyncPage<SyncMessage>>;
}

/** Inbox Hub's lists (`/api/sessions/{id}/contacts|chats|messages`) as a sync source. */
export function inboxHubSource(client: InboxHubClient): SyncSource {
  return {
    provider: 'inboxhub',
    async contacts(session, page, limit) {
      const answer = await client.contacts(session, page, limit);
      return {
        ...answer,
        items: answer.items.map((c) => {
          const phone = c.phone ?? c.phoneNumber;
          return {
            jid: c.id,
            name: c.name ?? c.notify ?? c.verifiedName,
            phone: phone?.replace(/@.*$/, ''),
            lid: c.lid,
          };
        }),
      };
    },
    async chats(session, page, limit) {
      const answer = await client.chats(session, page, limit);
      return {
        ...answer,
        items: answer.items.map((chat) => ({
          chatId: chat.chatId,
          name: chat.name,
          archived: chat.archived,
          unreadCount: chat.unreadCount,
          lastMessageAt: toIsoTime(chat.lastMessage?.timestamp ?? undefined),
        })),
      };
    },
    messages: (session, chatId, page, limit) => client.messages(session, chatId, page, limit),
  };
}
