import { z } from 'zod';
import { encodeToken as t } from './tokens.js';

/** Read-model collections (MongoDB database `puente`). */
export const Collections = {
  kissflowRecords: 'kissflow_records',
  waSessions: 'wa_sessions',
  waContacts: 'wa_contacts',
  waConversations: 'wa_conversations',
  waMessages: 'wa_messages',
  waTemplates: 'wa_templates',
  bitrixLinks: 'bitrix_links',
  commands: 'commands',
  /** Per-projection checkpoints (the last stream position each projection has applied). */
  checkpoints: 'projection_checkpoints',
  /** Short-lived revision claims that make the projection store's compare-and-swap atomic on FerretDB. */
  claims: 'projection_claims',
} as const;
export type CollectionName = (typeof Collections)[keyof typeof Collections];

/**
 * A read model's channel route: a channel pattern whose `<field>` tokens are document fields (encoded
 * as subject tokens in the channel) and the collection that holds the documents. Realtime serves a
 * channel from the collection, filtered on those fields; a projection publishes a document's change
 * notices on the channel its fields fill in. Adding a read model adds one entry to `ChannelRoutes`.
 */
export interface ChannelRouteDescriptor {
  /** Dot-separated tokens: literals, and `<field>` for a document field (e.g. `whatsapp.messages.<session>.<chatId>`). */
  readonly channel: string;
  readonly collection: string;
  /**
   * A document field holding the time the document is about (an ISO-8601 string), for channels whose
   * clients read newest first: such a channel also serves `order: 'newest'` pages, sorted by this field
   * then `_id` (both descending), and needs an index that starts with the channel's fields then this one.
   */
  readonly timeField?: string;
  /**
   * Document fields only tokens that may send from the document's session see (its `send` claim names
   * that session or `*`), and the field that names the session. Realtime leaves them out of every
   * snapshot, page, update and resume frame for any other token.
   */
  readonly sendersOnly?: { readonly fields: readonly string[]; readonly sessionField: string };
}

/** The channels Puente serves (DESIGN.md "Realtime"), one per read model. */
export const ChannelRoutes = {
  kissflowRecords: { channel: 'kissflow.<dataset>', collection: Collections.kissflowRecords },
  // The pairing QR links a phone to the session: whoever scans it reads and sends as that number.
  waSessions: {
    channel: 'whatsapp.sessions',
    collection: Collections.waSessions,
    sendersOnly: { fields: ['qr'], sessionField: '_id' },
  },
  waContacts: { channel: 'whatsapp.contacts.<session>', collection: Collections.waContacts },
  waConversations: { channel: 'whatsapp.conversations.<session>', collection: Collections.waConversations },
  waMessages: {
    channel: 'whatsapp.messages.<session>.<chatId>',
    collection: Collections.waMessages,
    timeField: 'timestamp',
  },
  waTemplates: { channel: 'whatsapp.templates.<session>', collection: Collections.waTemplates },
  bitrixLinks: { channel: 'bitrix.links', collection: Collections.bitrixLinks },
  commands: { channel: 'commands.<session>', collection: Collections.commands },
} as const satisfies Record<string, ChannelRouteDescriptor>;

/** Every read model's route: what realtime serves unless it is given another list. */
export const ReadModelRoutes: readonly ChannelRouteDescriptor[] = Object.values(ChannelRoutes);

/** A `<field>` token of a channel pattern. */
export const ChannelField = /^<([A-Za-z_][A-Za-z0-9_]*)>$/;

/** The channel of a route for these field values (each encoded as a subject token). */
export function channelOf(route: ChannelRouteDescriptor, fields: Readonly<Record<string, string>>): string {
  return route.channel
    .split('.')
    .map((token) => {
      const field = ChannelField.exec(token)?.[1];
      if (field === undefined) return token;
      const value = fields[field];
      if (value === undefined) throw new Error(`channel ${route.channel}: no value for <${field}>`);
      return t(value);
    })
    .join('.');
}

/** WebSocket / HTTP channels; ids inside are encoded as subject tokens. */
export const Channels = {
  kissflow: (dataset: string) => channelOf(ChannelRoutes.kissflowRecords, { dataset }),
  whatsappSessions: () => channelOf(ChannelRoutes.waSessions, {}),
  whatsappContacts: (session: string) => channelOf(ChannelRoutes.waContacts, { session }),
  whatsappConversations: (session: string) => channelOf(ChannelRoutes.waConversations, { session }),
  whatsappMessages: (session: string, chat: string) => channelOf(ChannelRoutes.waMessages, { session, chatId: chat }),
  whatsappTemplates: (session: string) => channelOf(ChannelRoutes.waTemplates, { session }),
  bitrixLinks: () => channelOf(ChannelRoutes.bitrixLinks, {}),
  commands: (session: string) => channelOf(ChannelRoutes.commands, { session }),
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
