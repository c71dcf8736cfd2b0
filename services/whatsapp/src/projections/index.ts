import type { Db } from 'mongodb';
import { decodeEvent, type DomainEvent } from '@puente/contracts';
import { Outcomes, type BatchHandler, type Bus, type Outcome } from '@puente/bus';
import { ProjectionStore, renamed, type PositionedEvent, type ProjectedDoc, type Projection, type StoredDoc } from '@puente/projection';
import { commandsProjection, type CommandDoc } from './commands.js';
import type { MessageFacts } from './common.js';
import { contactsProjection, type ContactDoc } from './contacts.js';
import { conversationsProjection, type ConversationDoc } from './conversations.js';
import { messagesProjection, type MessageDoc } from './messages.js';
import { sessionsProjection, type SessionDoc } from './sessions.js';

export type { CommandDoc, ContactDoc, ConversationDoc, MessageDoc, SessionDoc };
export { commandsProjection, contactsProjection, conversationsProjection, messagesProjection, sessionsProjection };

/**
 * The WhatsApp read models, applied together: `wa_messages` first, then the projections that count
 * facts about messages (`wa_conversations`, `wa_sessions`) read when each message first got content,
 * from the messages documents of the same batch (every message event touches its own document).
 */
export class WhatsAppProjections {
  readonly messages: ProjectionStore<MessageDoc>;
  readonly others: ProjectionStore<ProjectedDoc>[];
  private firstContent = new Map<string, number | undefined>();

  /**
   * `staging` (a rebuild): every read model under `<collection><suffix>` and checkpoint `<name><suffix>`,
   * without change notices.
   */
  constructor(db: Db, bus: Bus, options: { writers?: 'shared' | 'exclusive'; staging?: string; cacheSize?: number } = {}) {
    const facts: MessageFacts = { firstContentAt: (key) => this.firstContent.get(key) };
    const writers = options.writers ?? 'shared';
    const named = <D extends ProjectedDoc>(projection: Projection<D>) => (options.staging ? renamed(projection, options.staging) : projection);
    const notify = options.staging === undefined;
    const cacheSize = options.cacheSize;
    this.messages = new ProjectionStore({ db, bus, writers, notify, ...(cacheSize === undefined ? {} : { cacheSize }), projection: named(messagesProjection()) });
    const others: Projection<never>[] = [conversationsProjection(facts), sessionsProjection(facts), contactsProjection(), commandsProjection()] as never;
    this.others = others.map((projection) => new ProjectionStore({ db, bus, writers, notify, ...(cacheSize === undefined ? {} : { cacheSize }), projection: named(projection) }) as unknown as ProjectionStore<ProjectedDoc>);
  }

  /** The read models' collections and checkpoint names (a rebuild swaps these). */
  get stores(): ProjectionStore<ProjectedDoc>[] {
    return [this.messages as unknown as ProjectionStore<ProjectedDoc>, ...this.others];
  }

  async init(): Promise<void> {
    await Promise.all([this.messages, ...this.others].map((store) => store.init()));
  }

  /** Writes every read model's latest checkpoint (after the consumer has stopped). */
  async close(): Promise<void> {
    await Promise.all(this.stores.map((store) => store.close()));
  }

  /** Applies a batch to every read model; an event any of them could not apply is dead-lettered. */
  async apply(events: readonly PositionedEvent[]): Promise<Outcome[]> {
    const applied = await this.messages.apply(events);
    this.firstContent = new Map([...applied.docs].map(([key, doc]) => [key, doc?.firstContentAt]));
    const results = await Promise.all(this.others.map((store) => store.apply(events)));
    return events.map((_, i) => [applied, ...results].map((r) => r.outcomes[i]!).find((o) => o.kind !== 'ack') ?? Outcomes.ack);
  }

  /** A consumer-runner handler: decodes each delivery (an undecodable one is dead-lettered) and applies the rest. */
  handler(): BatchHandler {
    return async (deliveries) => {
      const outcomes: Outcome[] = new Array<Outcome>(deliveries.length);
      const events: PositionedEvent[] = [];
      const indexOf: number[] = [];
      deliveries.forEach((delivery, i) => {
        try {
          events.push({ event: decodeEvent(delivery.data), position: delivery.position });
          indexOf.push(i);
        } catch (error) {
          outcomes[i] = Outcomes.dead(error);
        }
      });
      const applied = await this.apply(events);
      applied.forEach((outcome, j) => (outcomes[indexOf[j]!] = outcome));
      return outcomes;
    };
  }
}

export interface InMemoryState {
  messages: Map<string, MessageDoc>;
  conversations: Map<string, ConversationDoc>;
  sessions: Map<string, SessionDoc>;
  contacts: Map<string, ContactDoc>;
  commands: Map<string, CommandDoc>;
}

/**
 * The same projections without a database, event by event in order (positions 1, 2, ...): what the
 * store computes, for given/when/then tests and for checking that every order ends in one state.
 */
export function evolveAll(events: readonly DomainEvent[], state?: InMemoryState, firstPosition = 1): InMemoryState {
  const s: InMemoryState = state ?? { messages: new Map(), conversations: new Map(), sessions: new Map(), contacts: new Map(), commands: new Map() };
  const facts: MessageFacts = { firstContentAt: (key) => s.messages.get(key)?.firstContentAt };
  const pairs: [Projection<never>, Map<string, unknown>][] = [
    [messagesProjection() as never, s.messages],
    [conversationsProjection(facts) as never, s.conversations],
    [sessionsProjection(facts) as never, s.sessions],
    [contactsProjection() as never, s.contacts],
    [commandsProjection() as never, s.commands],
  ];
  events.forEach((event, i) => {
    const position = firstPosition + i;
    for (const [projection, docs] of pairs) {
      const p = projection as unknown as Projection<ProjectedDoc>;
      for (const key of new Set(p.keys(event))) {
        const next = p.evolve((docs.get(key) as StoredDoc | undefined) ?? null, event, { key, position });
        if (next) docs.set(key, next);
      }
    }
  });
  return s;
}
