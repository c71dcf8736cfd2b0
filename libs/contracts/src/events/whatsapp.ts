import { z } from 'zod';

const Timestamp = z.iso.datetime({ offset: true });

/** Where a WhatsApp session lives. */
export const WhatsAppProvider = z.enum(['inboxhub', 'evolution', 'waha', 'cloud-api']);
export type WhatsAppProvider = z.infer<typeof WhatsAppProvider>;

const SessionScoped = z.object({
  session: z.string().min(1),
  provider: WhatsAppProvider,
});

export const MessageType = z.enum([
  'text',
  'image',
  'video',
  'audio',
  'voice',
  'document',
  'sticker',
  'location',
  'contacts',
  'reaction',
  'interactive',
  'button',
  'template',
  'order',
  'system',
  'unsupported',
]);
export type MessageType = z.infer<typeof MessageType>;

/** The SHA-256 (hex) of a media item's bytes: its key in Puente's media store. */
export const MediaHash = z.string().regex(/^[0-9a-f]{64}$/, 'a SHA-256 in hex');

export const MediaDescriptor = z.object({
  /** The provider's media id (Cloud API), for downloading it again while the provider keeps it. */
  id: z.string().optional(),
  url: z.string().optional(),
  mimeType: z.string().optional(),
  sha256: z.string().optional(),
  fileName: z.string().optional(),
  caption: z.string().optional(),
  bytes: z.number().int().nonnegative().optional(),
  /** Set on media Puente already holds (a send of a stored file): its key in the media store. */
  hash: MediaHash.optional(),
});

/** Content of one message, as every provider's payload normalizes to it. */
export const MessageContent = SessionScoped.extend({
  messageId: z.string().min(1),
  chatId: z.string().min(1),
  /** The chat's other address when the provider tells it: the phone JID of an `@lid` chat, or the reverse. */
  chatAlt: z.string().optional(),
  /** Sender JID (the participant in a group). */
  from: z.string().optional(),
  fromMe: z.boolean(),
  pushName: z.string().optional(),
  type: MessageType,
  text: z.string().optional(),
  media: MediaDescriptor.optional(),
  location: z
    .object({
      latitude: z.number(),
      longitude: z.number(),
      name: z.string().optional(),
      address: z.string().optional(),
    })
    .optional(),
  reaction: z.object({ messageId: z.string(), emoji: z.string() }).optional(),
  quotedMessageId: z.string().optional(),
  timestamp: Timestamp,
});
export type MessageContent = z.infer<typeof MessageContent>;

/** An inbound message (not from this account). */
export const MessageReceivedV1 = MessageContent;
/** An outbound message seen by the provider (sent from this account, here or from a phone). */
export const MessageSentV1 = MessageContent;
/** A message read by a full sync. */
export const MessageImportedV1 = MessageContent;

export const MessageStatus = z.enum(['pending', 'sent', 'delivered', 'read', 'failed']);
export type MessageStatus = z.infer<typeof MessageStatus>;

/** A delivery status of an outbound message changed. */
export const MessageStatusV1 = SessionScoped.extend({
  messageId: z.string().min(1),
  chatId: z.string().optional(),
  status: MessageStatus.exclude(['pending']),
  timestamp: Timestamp,
  error: z.object({ code: z.string().optional(), message: z.string() }).optional(),
});
export type MessageStatusV1 = z.infer<typeof MessageStatusV1>;

/** The whatsapp service accepted a send command: the message exists, `pending`, in the log. */
export const MessageSendRequestedV1 = SessionScoped.extend({
  commandId: z.string().min(1),
  chatId: z.string().min(1),
  type: MessageType,
  text: z.string().optional(),
  media: MediaDescriptor.optional(),
  template: z
    .object({ name: z.string(), language: z.string(), components: z.array(z.unknown()).optional() })
    .optional(),
  /** The agent who sent it (the command's `sentBy`: the `sub` of the access token the command API accepted). */
  sentBy: z.string().min(1).optional(),
  requestedAt: Timestamp,
});
export type MessageSendRequestedV1 = z.infer<typeof MessageSendRequestedV1>;

/** The whatsapp service downloaded a message's media and keeps it in the media store. */
export const MediaStoredV1 = SessionScoped.extend({
  messageId: z.string().min(1),
  chatId: z.string().min(1),
  hash: MediaHash,
  bytes: z.number().int().positive(),
  mimeType: z.string().min(1),
  fileName: z.string().optional(),
  timestamp: Timestamp,
});
export type MediaStoredV1 = z.infer<typeof MediaStoredV1>;

/**
 * Why a message's media could not be kept: `EXPIRED` (the provider no longer has it), `NOT_FOUND`,
 * `TOO_LARGE` (over the item cap), `BUDGET` (the store is full), `EMPTY`, `REFUSED` (the provider
 * refused the download), `UNREACHABLE` (retries ran out), `NO_SOURCE` (nothing to download it from).
 */
export const MediaFailureCode = z.enum([
  'EXPIRED',
  'NOT_FOUND',
  'TOO_LARGE',
  'BUDGET',
  'EMPTY',
  'REFUSED',
  'UNREACHABLE',
  'NO_SOURCE',
]);
export type MediaFailureCode = z.infer<typeof MediaFailureCode>;

/** A message's media could not be kept: the message says so, nothing else is lost. */
export const MediaFailedV1 = SessionScoped.extend({
  messageId: z.string().min(1),
  chatId: z.string().min(1),
  code: MediaFailureCode,
  message: z.string().min(1),
  timestamp: Timestamp,
});
export type MediaFailedV1 = z.infer<typeof MediaFailedV1>;

export const SessionState = z.enum(['connecting', 'connected', 'disconnected', 'logged_out', 'failed']);

export const SessionStatusV1 = SessionScoped.extend({
  status: SessionState,
  phone: z.string().optional(),
  reason: z.string().optional(),
  timestamp: Timestamp,
});
export type SessionStatusV1 = z.infer<typeof SessionStatusV1>;

export const SessionQrV1 = SessionScoped.extend({
  qr: z.string().min(1),
  timestamp: Timestamp,
});
export type SessionQrV1 = z.infer<typeof SessionQrV1>;

export const ContactV1 = SessionScoped.extend({
  jid: z.string().min(1),
  name: z.string().optional(),
  phone: z.string().optional(),
  /** The contact's `@lid` identity, when the provider tells it. */
  lid: z.string().optional(),
  timestamp: Timestamp,
});
export const ContactUpdatedV1 = ContactV1;
export const ContactImportedV1 = ContactV1;
export type ContactV1 = z.infer<typeof ContactV1>;

export const ChatArchiveV1 = SessionScoped.extend({
  chatId: z.string().min(1),
  timestamp: Timestamp,
});
export type ChatArchiveV1 = z.infer<typeof ChatArchiveV1>;

export const ChatImportedV1 = SessionScoped.extend({
  chatId: z.string().min(1),
  name: z.string().optional(),
  archived: z.boolean().optional(),
  unreadCount: z.number().int().nonnegative().optional(),
  lastMessageAt: Timestamp.optional(),
  timestamp: Timestamp,
});
export type ChatImportedV1 = z.infer<typeof ChatImportedV1>;

/** Progress of a full sync of a session from its gateway's API (started, after each page, completed or failed). */
export const SessionSyncV1 = SessionScoped.extend({
  syncId: z.string().min(1),
  phase: z.enum(['started', 'progress', 'completed', 'failed']),
  counts: z.object({
    contacts: z.number().int().nonnegative(),
    chats: z.number().int().nonnegative(),
    messages: z.number().int().nonnegative(),
  }),
  error: z.string().optional(),
  timestamp: Timestamp,
});
export type SessionSyncV1 = z.infer<typeof SessionSyncV1>;

/**
 * One of a WhatsApp Business Account's message templates, as Meta's Graph API lists it
 * (`GET /{waba-id}/message_templates`): `status` is Meta's (`APPROVED`, `PENDING`, `REJECTED`, `PAUSED`,
 * `DISABLED`, ...; only `APPROVED` ones can be sent), `components` its header, body, footer and buttons
 * as Meta describes them.
 */
export const MessageTemplate = z.object({
  /** Meta's template id. */
  id: z.string().min(1),
  name: z.string().min(1),
  /** Language and locale code (`es`, `en_US`). */
  language: z.string().min(1),
  status: z.string().min(1),
  category: z.string().min(1),
  components: z.array(z.record(z.string(), z.unknown())),
});
export type MessageTemplate = z.infer<typeof MessageTemplate>;

/**
 * A Cloud API session's message templates were read from its WhatsApp Business Account: `templates` is
 * the whole list as Meta has it now; `removed` names the templates the read model held that are gone.
 */
export const TemplatesSyncedV1 = SessionScoped.extend({
  /** The WhatsApp Business Account the templates belong to. */
  wabaId: z.string().min(1),
  templates: z.array(MessageTemplate),
  removed: z.array(z.object({ name: z.string().min(1), language: z.string().min(1) })),
  timestamp: Timestamp,
});
export type TemplatesSyncedV1 = z.infer<typeof TemplatesSyncedV1>;

/** What a command asks: send a message, mark a chat read, or run a session's full sync. */
export const CommandKind = z.enum(['send_message', 'mark_read', 'sync_session']);
export type CommandKind = z.infer<typeof CommandKind>;

/** What became of a command: `sent` (provider accepted), `failed`, or `unknown` (result lost; never retried). */
export const CommandOutcomeV1 = z.object({
  session: z.string().min(1),
  commandId: z.string().min(1),
  kind: CommandKind,
  providerMessageId: z.string().optional(),
  /** The chat the command was about (the recipient of a send, the chat marked read). */
  chatId: z.string().optional(),
  /** What a send put on the wire, so the provider's message document has its content whichever event comes first. */
  message: z
    .object({
      type: MessageType,
      text: z.string().optional(),
      media: MediaDescriptor.optional(),
      /** The agent who sent it (the command's `sentBy`), so the provider's message document names them too. */
      sentBy: z.string().min(1).optional(),
      requestedAt: Timestamp,
    })
    .optional(),
  /** Set when the outcome was learned later (the provider's webhook matched a send whose result was lost). */
  reconciled: z.boolean().optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
  at: Timestamp,
});
export type CommandOutcomeV1 = z.infer<typeof CommandOutcomeV1>;

/** Command (stream COMMANDS): send a message. */
export const SendMessageV1 = z
  .object({
    commandId: z.string().min(1),
    session: z.string().min(1),
    to: z.string().min(1),
    /** The text, or a media item's caption. */
    text: z.string().min(1).max(4096).optional(),
    /**
     * Media by URL, or a file already in the media store by its hash (`puente whatsapp send --file`).
     * Either way the whatsapp service has the bytes first and uploads them to the provider before
     * sending, so a file nobody can fetch fails the send instead of passing for sent.
     */
    media: z
      .object({
        type: z.enum(['image', 'video', 'audio', 'document', 'sticker']),
        url: z.url().optional(),
        hash: MediaHash.optional(),
        mimeType: z.string().min(1).optional(),
        fileName: z.string().optional(),
      })
      .refine((m) => (m.url === undefined) !== (m.hash === undefined), {
        message: 'media needs a url or a stored hash, not both',
      })
      .optional(),
    /** A Cloud API message template (outside the 24-hour window only templates may be sent). */
    template: z
      .object({ name: z.string().min(1), language: z.string().min(1), components: z.array(z.unknown()).optional() })
      .optional(),
    idempotencyKey: z.string().min(1).max(200).optional(),
    /** Who asked: the `sub` of the agent token the command API accepted; absent for `API_TOKENS` and older commands. */
    sentBy: z.string().min(1).max(200).optional(),
    requestedAt: Timestamp,
  })
  .refine((c) => c.text !== undefined || c.media !== undefined || c.template !== undefined, {
    message: 'a message needs text, media or a template',
    path: ['text'],
  });
export type SendMessageV1 = z.infer<typeof SendMessageV1>;

/** Command (stream COMMANDS): mark a chat as read. */
export const MarkReadV1 = z.object({
  commandId: z.string().min(1),
  session: z.string().min(1),
  chatId: z.string().min(1),
  requestedAt: Timestamp,
});
export type MarkReadV1 = z.infer<typeof MarkReadV1>;

/**
 * Command (stream COMMANDS): run the full sync of a session now ("sync now" in the inbox), through the
 * provider its read model names. Its outcome is `command.sent` once the sync runs (or was already
 * running), `command.failed` when the session's provider cannot sync; the sync itself reports on
 * `whatsapp.session.sync.v1` as every full sync does.
 */
export const SyncSessionV1 = z.object({
  commandId: z.string().min(1),
  session: z.string().min(1),
  /** Who asked: the `sub` of the agent token the command API accepted; absent for `API_TOKENS`. */
  sentBy: z.string().min(1).max(200).optional(),
  requestedAt: Timestamp,
});
export type SyncSessionV1 = z.infer<typeof SyncSessionV1>;
