import { z } from 'zod';
import { encodeToken as t } from './tokens.js';

/** Read-model collections (MongoDB database `puente`). */
export const Collections = {
  kissflowRecords: 'kissflow_records',
  waSessions: 'wa_sessions',
  waContacts: 'wa_contacts',
  waConversations: 'wa_conversations',
  waMessages: 'wa_messages',
  bitrixLinks: 'bitrix_links',
  commands: 'commands',
  /** Per-projection checkpoints (the last stream position each projection has applied). */
  checkpoints: 'projection_checkpoints',
  /** Short-lived revision claims that make the projection store's compare-and-swap atomic on FerretDB. */
  claims: 'projection_claims',
} as const;
export type CollectionName = (typeof Collections)[keyof typeof Collections];

/** WebSocket / HTTP channels; ids inside are encoded as subject tokens. */
export const Channels = {
  kissflow: (dataset: string) => `kissflow.${t(dataset)}`,
  whatsappSessions: () => 'whatsapp.sessions',
  whatsappContacts: (session: string) => `whatsapp.contacts.${t(session)}`,
  whatsappConversations: (session: string) => `whatsapp.conversations.${t(session)}`,
  whatsappMessages: (session: string, chat: string) => `whatsapp.messages.${t(session)}.${t(chat)}`,
  bitrixLinks: () => 'bitrix.links',
  commands: (session: string) => `commands.${t(session)}`,
} as const;

/** `chg.<channel tokens>.<document key>`: the subject of a change notice. */
export function changeSubject(channel: string, documentKey: string): string {
  return `chg.${channel}.${t(documentKey)}`;
}

/** The filter that selects every change notice of a channel. */
export function channelFilter(channel: string): string {
  return `chg.${channel}.>`;
}

/**
 * Whether a channel pattern (from a token's `channels` claim) allows a channel: `*` matches one
 * dot-separated token and a trailing `>` matches one or more, as in NATS.
 */
export function channelAllowed(pattern: string, channel: string): boolean {
  const want = pattern.split('.');
  const have = channel.split('.');
  if (want.includes('') || have.includes('')) return false;
  for (let i = 0; i < want.length; i++) {
    const token = want[i];
    if (token === '>' && i === want.length - 1) return have.length > i;
    if (i >= have.length) return false;
    if (token !== '*' && token !== have[i]) return false;
  }
  return want.length === have.length;
}

/** The body of a `CHANGES` message: the document after a write, or its tombstone. */
export const ChangeNotice = z.object({
  collection: z.string(),
  key: z.string(),
  /** The document's version: strictly increasing with every write of that document. */
  rev: z.number().int().positive(),
  /** `EVENTS` sequence of the event whose application produced this version. */
  position: z.number().int().nonnegative(),
  deleted: z.boolean(),
  doc: z.record(z.string(), z.unknown()),
});
export type ChangeNotice = z.infer<typeof ChangeNotice>;
