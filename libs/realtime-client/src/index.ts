import type { ClientMessage, PageOrder, ResumePoint, ServerMessage } from '@puente/contracts';

/**
 * The client of Puente's realtime protocol (DESIGN.md "Realtime"), for browsers and Node (≥ 22, whose
 * global WebSocket it uses). It authenticates, subscribes, hands each channel's snapshot pages,
 * updates and removes to a callback, never lets a document step back to an older version, and after
 * a lost connection reconnects with backoff and resumes every channel from its last position (a new
 * snapshot when the server answers `position_expired`, or sends `resync` after a rebuild).
 * It imports nothing at run time: the file is served to browsers as is.
 */

export interface Doc {
  _id: string;
  _rev?: number;
  [field: string]: unknown;
}

export type ChannelEvent =
  /** A page of the channel's documents; `reset` on the first page of a (new) snapshot: drop what you hold. */
  | { kind: 'snapshot'; items: Doc[]; reset: boolean; complete: boolean }
  | { kind: 'update'; doc: Doc }
  | { kind: 'remove'; key: string }
  | { kind: 'error'; code: string; message: string };

export type ConnectionState = 'connecting' | 'open' | 'closed';

export interface RealtimeClientOptions {
  /** `ws://host:8090/ws` (or `wss://`). */
  url: string;
  /** A read token, or a function that returns a fresh one (called on every connect). */
  token: string | (() => string | Promise<string>);
  /** A WebSocket constructor (default: the global one). */
  WebSocket?: new (url: string) => WebSocket;
  /** First reconnect delay (default 250 ms), doubling up to `maxBackoffMs` (default 10 s), with jitter. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Ask for every snapshot page automatically (default true). */
  allPages?: boolean;
  /** Sends a ping this often and reconnects when no frame arrived for two (default 20 s). */
  heartbeatMs?: number;
  onState?: (state: ConnectionState, detail?: string) => void;
}

/** How one subscription reads its channel. */
export interface SubscribeOptions {
  /**
   * `newest`: snapshot pages newest first (by the channel's time, then `_id`, both descending), each
   * `more()` bringing the next older page; only channels with a time order serve it (WhatsApp
   * messages). Default `id`: by `_id`, ascending.
   */
  order?: PageOrder;
  /**
   * Ask for every snapshot page automatically. Default: the client's `allPages` for order `id`, false
   * for order `newest` (a thread loads older pages when its reader scrolls back, with `more()`).
   */
  allPages?: boolean;
}

interface ChannelState {
  channel: string;
  order: PageOrder | undefined;
  allPages: boolean;
  callback: (event: ChannelEvent) => void;
  resume: ResumePoint | undefined;
  revs: Map<string, number>;
  /** True until the first snapshot page of the current subscription arrived. */
  awaitingSnapshot: boolean;
  next: string | undefined;
}

export interface Subscription {
  readonly channel: string;
  /**
   * Asks for the next snapshot page (with order `newest`: the next older one), when `allPages` is off;
   * false when there is none to ask for (the last page arrived, or the first has not yet).
   */
  more(): boolean;
  unsubscribe(): void;
}

export class RealtimeClient {
  private socket: WebSocket | undefined;
  private readonly channels = new Map<string, ChannelState>();
  private state: ConnectionState = 'closed';
  private attempts = 0;
  private closedByUser = false;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private lastFrameAt = 0;
  private authenticated = false;

  constructor(private readonly options: RealtimeClientOptions) {}

  /** Opens the connection (also done by the first `subscribe`). */
  connect(): void {
    this.closedByUser = false;
    if (this.socket || this.reconnectTimer) return;
    void this.open();
  }

  /** Subscribes to a channel; the callback receives its snapshot pages, then every change. */
  subscribe(channel: string, callback: (event: ChannelEvent) => void, options: SubscribeOptions = {}): Subscription {
    const state: ChannelState = {
      channel,
      order: options.order,
      allPages: options.allPages ?? (options.order === 'newest' ? false : (this.options.allPages ?? true)),
      callback,
      resume: undefined,
      revs: new Map(),
      awaitingSnapshot: true,
      next: undefined,
    };
    this.channels.set(channel, state);
    if (this.authenticated) this.sendSubscribe(state);
    else this.connect();
    return {
      channel,
      more: () => {
        const cursor = state.next;
        if (cursor === undefined || this.channels.get(channel) !== state) return false;
        // Asked once: a second call before the page arrives would fetch it twice.
        state.next = undefined;
        this.send({ op: 'more', channel, cursor });
        return true;
      },
      unsubscribe: () => {
        if (this.channels.get(channel) !== state) return;
        this.channels.delete(channel);
        if (this.authenticated) this.send({ op: 'unsubscribe', channel });
      },
    };
  }

  /** Closes for good (no reconnect). */
  close(): void {
    this.closedByUser = true;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.stopHeartbeat();
    this.socket?.close(1000, 'client closed');
    this.socket = undefined;
    this.setState('closed');
  }

  /** The resume point of a channel (epoch and position of the last frame applied). */
  position(channel: string): ResumePoint | undefined {
    return this.channels.get(channel)?.resume;
  }

  private async open(): Promise<void> {
    this.setState('connecting');
    let token: string;
    try {
      token = typeof this.options.token === 'function' ? await this.options.token() : this.options.token;
    } catch (error) {
      this.scheduleReconnect(`no token: ${(error as Error).message}`);
      return;
    }
    const Ctor = this.options.WebSocket ?? globalThis.WebSocket;
    const socket = new Ctor(this.options.url);
    this.socket = socket;
    this.authenticated = false;
    socket.onopen = () => {
      this.lastFrameAt = Date.now();
      socket.send(JSON.stringify({ op: 'auth', token } satisfies ClientMessage));
      this.startHeartbeat();
    };
    socket.onmessage = (event: MessageEvent) => {
      this.lastFrameAt = Date.now();
      let frame: ServerMessage;
      try {
        frame = JSON.parse(String(event.data)) as ServerMessage;
      } catch {
        return;
      }
      this.onFrame(frame);
    };
    socket.onclose = (event: CloseEvent) => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      this.authenticated = false;
      this.stopHeartbeat();
      if (this.closedByUser) return this.setState('closed');
      this.scheduleReconnect(`closed ${event.code}${event.reason ? ` ${event.reason}` : ''}`);
    };
    socket.onerror = () => undefined;
  }

  private onFrame(frame: ServerMessage): void {
    switch (frame.op) {
      case 'ready':
        this.authenticated = true;
        this.attempts = 0;
        this.setState('open');
        for (const state of this.channels.values()) this.sendSubscribe(state);
        return;
      case 'snapshot': {
        const state = this.channels.get(frame.channel);
        if (!state) return;
        const reset = state.awaitingSnapshot;
        if (reset) {
          state.revs.clear();
          state.awaitingSnapshot = false;
          this.advance(state, frame.epoch, frame.position, true);
        }
        for (const doc of frame.items as Doc[]) this.remember(state, doc);
        state.next = frame.next;
        state.callback({ kind: 'snapshot', items: frame.items as Doc[], reset, complete: !frame.next });
        if (frame.next && state.allPages) this.send({ op: 'more', channel: frame.channel, cursor: frame.next });
        return;
      }
      case 'update': {
        const state = this.channels.get(frame.channel);
        if (!state) return;
        state.awaitingSnapshot = false;
        this.advance(state, frame.epoch, frame.position);
        const doc = frame.doc as Doc;
        if (!this.remember(state, doc)) return;
        state.callback({ kind: 'update', doc });
        return;
      }
      case 'remove': {
        const state = this.channels.get(frame.channel);
        if (!state) return;
        state.awaitingSnapshot = false;
        if (frame.epoch) this.advance(state, frame.epoch, frame.position);
        state.revs.delete(frame.key);
        state.callback({ kind: 'remove', key: frame.key });
        return;
      }
      case 'resync': {
        const state = this.channels.get(frame.channel);
        if (state) this.resnapshot(state);
        return;
      }
      case 'error': {
        const state = frame.channel ? this.channels.get(frame.channel) : undefined;
        if (state && frame.code === 'position_expired') return this.resnapshot(state);
        if (state) state.callback({ kind: 'error', code: frame.code, message: frame.message ?? frame.code });
        else this.options.onState?.(this.state, `${frame.code}: ${frame.message ?? ''}`);
        return;
      }
      case 'pong':
        return;
    }
  }

  /** Keeps the newest version of each document; false for one not newer than what the channel holds. */
  private remember(state: ChannelState, doc: Doc): boolean {
    const rev = typeof doc._rev === 'number' ? doc._rev : undefined;
    if (rev === undefined) return true;
    const held = state.revs.get(doc._id);
    if (held !== undefined && rev <= held) return false;
    state.revs.set(doc._id, rev);
    return true;
  }

  private advance(state: ChannelState, epoch: string, position: number, force = false): void {
    if (force || !state.resume || state.resume.epoch !== epoch || position > state.resume.position)
      state.resume = { epoch, position };
  }

  private resnapshot(state: ChannelState): void {
    state.resume = undefined;
    state.awaitingSnapshot = true;
    this.sendSubscribe(state);
  }

  private sendSubscribe(state: ChannelState): void {
    if (state.resume) state.awaitingSnapshot = false;
    this.send({
      op: 'subscribe',
      channel: state.channel,
      ...(state.resume ? { since: state.resume } : {}),
      ...(state.order ? { order: state.order } : {}),
    });
  }

  private send(message: ClientMessage): void {
    if (this.socket?.readyState === 1) this.socket.send(JSON.stringify(message));
  }

  private scheduleReconnect(reason: string): void {
    this.setState('closed', reason);
    if (this.closedByUser) return;
    const base = this.options.backoffMs ?? 250;
    const delay = Math.min(this.options.maxBackoffMs ?? 10_000, base * 2 ** this.attempts) * (0.5 + Math.random() / 2);
    this.attempts++;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.open();
    }, delay);
  }

  private startHeartbeat(): void {
    const every = this.options.heartbeatMs ?? 20_000;
    this.stopHeartbeat();
    this.heartbeat = setInterval(() => {
      if (Date.now() - this.lastFrameAt > 2 * every) {
        this.socket?.close(4000, 'no frames');
        return;
      }
      this.send({ op: 'ping' });
    }, every);
  }

  private stopHeartbeat(): void {
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }

  private setState(state: ConnectionState, detail?: string): void {
    this.state = state;
    this.options.onState?.(state, detail);
  }
}

/** An id as one subject token (the encoding of `@puente/contracts`, without Node's Buffer). */
export function encodeToken(id: string): string {
  let out = '';
  for (const char of id) {
    if (/^[A-Za-z0-9_\-@:+=]$/.test(char)) out += char;
    else
      for (const byte of new TextEncoder().encode(char)) out += `~${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Channel names (DESIGN.md "Realtime"). */
export const channels = {
  kissflow: (dataset: string) => `kissflow.${encodeToken(dataset)}`,
  whatsappSessions: () => 'whatsapp.sessions',
  whatsappContacts: (session: string) => `whatsapp.contacts.${encodeToken(session)}`,
  whatsappConversations: (session: string) => `whatsapp.conversations.${encodeToken(session)}`,
  whatsappMessages: (session: string, chat: string) => `whatsapp.messages.${encodeToken(session)}.${encodeToken(chat)}`,
  bitrixLinks: () => 'bitrix.links',
} as const;
