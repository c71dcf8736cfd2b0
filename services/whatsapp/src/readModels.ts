import type { Db } from 'mongodb';
import { ChannelRoutes, type DomainEvent } from '@puente/contracts';
import type { Bus } from '@puente/bus';
import {
  evolveGroup,
  ProjectionGroupStore,
  type GroupState,
  type ProjectionGroup,
  type ProjectionGroupStoreOptions,
} from '@puente/projection';
import { commandsProjection, type CommandDoc } from './commands/commandsProjection.js';
import { contactsProjection, type ContactDoc } from './contacts/contactsProjection.js';
import { conversationsProjection, type ConversationDoc } from './conversations/conversationsProjection.js';
import { messageFacts } from './messages/facts.js';
import { messagesProjection, type MessageDoc, type MessageMedia } from './messages/messagesProjection.js';
import { sessionsProjection, type SessionDoc } from './sessions/sessionsProjection.js';
import { templatesProjection, type TemplateDoc } from './templates/templatesProjection.js';

export type { CommandDoc, ContactDoc, ConversationDoc, MessageDoc, MessageMedia, SessionDoc, TemplateDoc };
export {
  commandsProjection,
  contactsProjection,
  conversationsProjection,
  messagesProjection,
  sessionsProjection,
  templatesProjection,
};

const messages = messagesProjection();

/**
 * The WhatsApp read models, applied together from one consumer: `wa_messages` leads, and the
 * projections that count facts about messages (`wa_conversations`, `wa_sessions`) read when each
 * message first got content from the messages documents the same batch left.
 */
export const whatsappGroup: ProjectionGroup = {
  lead: [messages],
  follow: (upstream) => {
    const facts = messageFacts(upstream, messages);
    return [
      conversationsProjection(facts),
      sessionsProjection(facts),
      contactsProjection(),
      commandsProjection(),
      templatesProjection(),
    ];
  },
};

/** The channels the WhatsApp read models are served on. */
export const whatsappRoutes = [
  ChannelRoutes.waMessages,
  ChannelRoutes.waConversations,
  ChannelRoutes.waSessions,
  ChannelRoutes.waContacts,
  ChannelRoutes.commands,
  ChannelRoutes.waTemplates,
];

/** The WhatsApp read models on their stores (see `ProjectionGroupStore`). */
export class WhatsAppProjections extends ProjectionGroupStore {
  /**
   * `staging` (a rebuild): every read model under `<collection><suffix>` and checkpoint `<name><suffix>`,
   * without change notices.
   */
  constructor(db: Db, bus: Bus, options: ProjectionGroupStoreOptions = {}) {
    super(db, bus, whatsappGroup, options);
  }
}

export interface InMemoryState {
  messages: Map<string, MessageDoc>;
  conversations: Map<string, ConversationDoc>;
  sessions: Map<string, SessionDoc>;
  contacts: Map<string, ContactDoc>;
  commands: Map<string, CommandDoc>;
  templates: Map<string, TemplateDoc>;
}

const NAMES = {
  messages: 'whatsapp-messages',
  conversations: 'whatsapp-conversations',
  sessions: 'whatsapp-sessions',
  contacts: 'whatsapp-contacts',
  commands: 'whatsapp-commands',
  templates: 'whatsapp-templates',
} as const;

/**
 * The same projections without a database, event by event in order (positions 1, 2, ...): what the
 * store computes, for given/when/then tests and for checking that every order ends in one state.
 */
export function evolveAll(events: readonly DomainEvent[], state?: InMemoryState, firstPosition = 1): InMemoryState {
  const s: InMemoryState = state ?? {
    messages: new Map(),
    conversations: new Map(),
    sessions: new Map(),
    contacts: new Map(),
    commands: new Map(),
    templates: new Map(),
  };
  const group: GroupState = new Map(
    Object.entries(NAMES).map(([field, name]) => [
      name,
      s[field as keyof InMemoryState] as GroupState extends Map<string, infer M> ? M : never,
    ]),
  );
  evolveGroup(whatsappGroup, events, group, firstPosition);
  return s;
}
