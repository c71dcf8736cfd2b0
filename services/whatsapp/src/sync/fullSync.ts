import { randomUUID } from 'node:crypto';
import type { KV } from 'nats';
import type { Logger } from 'pino';
import { createEvent, type DomainEvent, type EventData, type EventType, type SessionSyncV1 } from '@puente/contracts';
import { eventIdFor, readJobState, ResumableJob, type Bus, type JobState } from '@puente/bus';
import type { SyncMessage, SyncPage, SyncSource } from './source.js';

export interface SyncLimits {
  /** Most recent chats whose messages are read (default 20). */
  chats: number;
  /** Most recent messages per chat (default 50). */
  messagesPerChat: number;
  /** Items per API page (default 50). */
  pageSize: number;
}

type Counts = SessionSyncV1['counts'];

/** Where a sync is, kept in KV after every page: enough to resume after a crash. */
export interface SyncState extends JobState {
  syncId: string;
  session: string;
  /** Whose session (absent: Inbox Hub, as states written before other providers were synced). */
  provider?: 'evolution' | 'waha';
  startedAt: string;
  stage: 'contacts' | 'chats' | 'messages' | 'done';
  /** Next page of contacts, chats or the current chat's messages (1-based). */
  page: number;
  /** The chats whose messages are read, in order, fixed once the chat stage ends. */
  chatIds: string[];
  chatIndex: number;
  /** Messages of the current chat read so far. */
  chatMessages: number;
  counts: Counts;
}

/** Another worker is syncing this session right now. */
export class SyncBusyError extends Error {
  readonly code = 'SYNC_BUSY';
}

/** A sync whose owner has not written for this long is taken over (its worker died). */
export const SYNC_STALE_MS = 60_000;

const SOURCE = 'urn:puente:whatsapp:sync';

/**
 * A full sync of one session from its provider (a {@link SyncSource}: Inbox Hub, Evolution API or WAHA): contacts (every page), the most recent chats, and the
 * most recent messages of each, published as `imported` events that the read models apply like any
 * other. One sync per session at a time (a KV key taken with compare-and-set), resumable: the cursor
 * is written after each page's events are acked, and a sync whose worker died is resumed from it.
 * Event ids derive from the sync id and the item, so a page published twice is stored once.
 */
export class FullSync {
  private readonly owner = randomUUID();

  constructor(
    private readonly deps: {
      bus: Bus;
      kv: KV;
      source: SyncSource;
      logger: Logger;
      limits: SyncLimits;
      staleAfterMs?: number;
    },
  ) {}

  /** A running sync whose owner has not written for this long is taken over. */
  get staleAfterMs(): number {
    return this.deps.staleAfterMs ?? SYNC_STALE_MS;
  }

  /** Runs (or resumes) the session's sync to the end; `onProgress` after every page. */
  async run(session: string, onProgress?: (state: SyncState) => void): Promise<SyncState> {
    const job = await this.acquire(session, onProgress);
    let state = job.state;
    const save = async (next: SyncState) => {
      await job.save(next);
      state = next;
    };
    if (state.page === 1 && state.stage === 'contacts' && state.counts.contacts === 0)
      await this.progress(state, 'started');
    onProgress?.(state);
    const { source, limits } = this.deps;
    const provider = source.provider;
    try {
      while (state.stage === 'contacts') {
        const page = await source.contacts(session, state.page, limits.pageSize);
        await this.publishAll(
          page.items.map((c) =>
            this.item('whatsapp.contact.imported.v1', `${state.syncId}:contact:${c.jid}`, {
              session,
              provider,
              jid: c.jid,
              ...(c.name ? { name: c.name } : {}),
              ...(c.phone ? { phone: c.phone } : {}),
              ...(c.lid ? { lid: c.lid } : {}),
              timestamp: state.startedAt,
            }),
          ),
        );
        const done = lastPage(page, state.page, limits.pageSize);
        await save({
          ...state,
          page: done ? 1 : state.page + 1,
          stage: done ? 'chats' : 'contacts',
          counts: { ...state.counts, contacts: state.counts.contacts + page.items.length },
        });
        await this.progress(state, 'progress');
      }
      while (state.stage === 'chats') {
        const want = limits.chats - state.chatIds.length;
        const page = await source.chats(session, state.page, limits.pageSize);
        const chats = page.items.slice(0, Math.max(0, want));
        await this.publishAll(
          chats.map((chat) =>
            this.item('whatsapp.chat.imported.v1', `${state.syncId}:chat:${chat.chatId}`, {
              session,
              provider,
              chatId: chat.chatId,
              ...(chat.name ? { name: chat.name } : {}),
              ...(chat.archived !== undefined ? { archived: chat.archived } : {}),
              ...(chat.unreadCount !== undefined ? { unreadCount: chat.unreadCount } : {}),
              ...(chat.lastMessageAt ? { lastMessageAt: chat.lastMessageAt } : {}),
              timestamp: state.startedAt,
            }),
          ),
        );
        const chatIds = [...state.chatIds, ...chats.map((c) => c.chatId)];
        const done = chatIds.length >= limits.chats || lastPage(page, state.page, limits.pageSize);
        await save({
          ...state,
          chatIds,
          page: done ? 1 : state.page + 1,
          stage: done ? 'messages' : 'chats',
          counts: { ...state.counts, chats: state.counts.chats + chats.length },
        });
        await this.progress(state, 'progress');
      }
      while (state.stage === 'messages') {
        const chatId = state.chatIds[state.chatIndex];
        if (chatId === undefined) {
          await save({ ...state, stage: 'done' });
          break;
        }
        // Pages keep one size (page/limit address by offset); the last one is cut to the chat's quota.
        const want = limits.messagesPerChat - state.chatMessages;
        const page =
          want > 0
            ? await source.messages(session, chatId, state.page, limits.pageSize)
            : { items: [], received: 0, total: 0 };
        const messages = page.items.slice(0, Math.max(0, want));
        await this.publishAll(messages.map((m) => this.message(session, state.syncId, m)));
        const chatMessages = state.chatMessages + messages.length;
        const chatDone = chatMessages >= limits.messagesPerChat || lastPage(page, state.page, limits.pageSize);
        await save({
          ...state,
          chatIndex: chatDone ? state.chatIndex + 1 : state.chatIndex,
          chatMessages: chatDone ? 0 : chatMessages,
          page: chatDone ? 1 : state.page + 1,
          counts: { ...state.counts, messages: state.counts.messages + messages.length },
        });
        await this.progress(state, 'progress');
      }
      await save({ ...state, phase: 'completed' });
      await this.progress(state, 'completed');
      return state;
    } catch (error) {
      const message = (error as Error).message;
      this.deps.logger.error({ session, syncId: state.syncId, err: message }, 'full sync failed');
      await save({ ...state, phase: 'failed', error: message }).catch(() => undefined);
      await this.progress({ ...state, error: message }, 'failed').catch(() => undefined);
      throw error;
    }
  }

  /** The session's sync state, if any. */
  status(session: string): Promise<SyncState | undefined> {
    return readJobState<SyncState>(this.deps.kv, this.key(session));
  }

  /** Takes the session's sync: a new one, the resumption of one whose worker died, or SyncBusyError. */
  private acquire(session: string, onProgress?: (state: SyncState) => void): Promise<ResumableJob<SyncState>> {
    return ResumableJob.claim<SyncState>({
      kv: this.deps.kv,
      key: this.key(session),
      owner: this.owner,
      staleAfterMs: this.staleAfterMs,
      ...(onProgress ? { onProgress } : {}),
      fresh: () => ({
        syncId: randomUUID(),
        session,
        ...(this.deps.source.provider === 'evolution' || this.deps.source.provider === 'waha'
          ? { provider: this.deps.source.provider }
          : {}),
        owner: this.owner,
        heartbeatAt: Date.now(),
        startedAt: new Date().toISOString(),
        phase: 'running',
        stage: 'contacts',
        page: 1,
        chatIds: [],
        chatIndex: 0,
        chatMessages: 0,
        counts: { contacts: 0, chats: 0, messages: 0 },
      }),
      // A failed sync starts again; one whose worker died resumes from its last page.
      resume: (current) => {
        if (current.phase !== 'running') return undefined;
        this.deps.logger.info(
          { session, syncId: current.syncId, stage: current.stage },
          'resuming a full sync whose worker stopped',
        );
        return current;
      },
      busy: (reason) =>
        new SyncBusyError(
          reason.kind === 'started-elsewhere'
            ? `a full sync of ${session} has just started elsewhere`
            : reason.kind === 'running'
              ? `a full sync of ${session} is running (${reason.current.stage}, ${reason.current.counts.messages} messages so far)`
              : `another worker took the full sync of ${session}`,
        ),
    });
  }

  private message(session: string, syncId: string, m: SyncMessage): { event: DomainEvent; msgId: string } {
    return this.item('whatsapp.message.imported.v1', `${syncId}:message:${m.chatId}:${m.messageId}`, {
      session,
      provider: this.deps.source.provider,
      ...m,
    });
  }

  /** Inbox Hub's key is the one it always had (a running sync resumes across the upgrade); a gateway's names it. */
  private key(session: string): string {
    const { provider } = this.deps.source;
    return provider === 'inboxhub' ? keyOf(session) : `sync.${provider}.${Buffer.from(session).toString('base64url')}`;
  }

  private item<T extends EventType>(type: T, key: string, data: EventData<T>): { event: DomainEvent; msgId: string } {
    const msgId = `sync:${key}`;
    return { event: createEvent(type, data, { source: SOURCE, id: eventIdFor(msgId) }) as DomainEvent, msgId };
  }

  private async publishAll(items: { event: DomainEvent; msgId: string }[]): Promise<void> {
    await this.deps.bus.publishEvents(items, 64);
  }

  private async progress(state: SyncState, phase: SessionSyncV1['phase']): Promise<void> {
    const msgId = `sync:${state.syncId}:${phase}:${state.counts.contacts}:${state.counts.chats}:${state.counts.messages}`;
    const event = createEvent(
      'whatsapp.session.sync.v1',
      {
        session: state.session,
        provider: this.deps.source.provider,
        syncId: state.syncId,
        phase,
        counts: state.counts,
        ...(state.error ? { error: state.error } : {}),
        timestamp: new Date().toISOString(),
      },
      { source: SOURCE, id: eventIdFor(msgId) },
    );
    await this.deps.bus.publishEvent(event, { msgId });
  }
}

/** Whether `page` (number `n`, asked with `limit`) is the last: short, or as far as the total the answer gave. */
const lastPage = (page: SyncPage<unknown>, n: number, limit: number) =>
  page.received < limit || (page.total !== undefined && n * limit >= page.total);

/** KV keys allow `[-/_=.a-zA-Z0-9]`: the session id goes in base64url. */
const keyOf = (session: string) => `sync.${Buffer.from(session).toString('base64url')}`;
