import type { Db } from 'mongodb';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import {
  channelAllowed,
  ClientMessage,
  ErrorCodes,
  type PageOrder,
  type ResumePoint,
  type TokenClaims,
} from '@puente/contracts';
import { parseNotice, type ChangeFeed, type ChannelHub, type Offer, type Subscriber } from './feed.js';
import { TOKEN_REVOKED, verifyAccessToken, type TokenRevocations } from '@puente/runtime';
import { BadPageError, readPage } from './pages.js';
import type { ChannelRoute } from './routes.js';
import { maySendFrom, viewFor } from './sendersOnly.js';

export interface ConnectionLimits {
  /** Subscriptions one connection may hold. */
  maxSubscriptions: number;
  /** Bytes waiting in a connection's send buffer before it is closed as a slow consumer (1013). */
  maxBufferedBytes: number;
  /** Documents per snapshot page. */
  pageSize: number;
  /** Notices one subscription may queue while its snapshot is read before it gives up. */
  maxPending: number;
}

export interface ServerContext {
  db: Db;
  feed: ChangeFeed;
  logger: Logger;
  secrets: readonly string[];
  /** Revoked tokens are refused on connect and on `auth`. */
  revocations: TokenRevocations;
  limits: ConnectionLimits;
  stats: { connections: number; subscriptions: number; slowClosed: number };
  /** The read model behind a channel (the routes `build()` was given). */
  routeOf: (channel: string) => ChannelRoute | undefined;
}

/** WebSocket close codes Puente uses besides the standard ones. */
export const CloseCodes = { unauthorized: 4001, slowConsumer: 1013, tooBig: 1009 } as const;

const OPEN = 1;

/**
 * One subscription of one connection to one channel. While its snapshot (or its `since` history) is
 * read it queues the hub's notices; then it sends them, dropping those its snapshot already covers
 * (`floors`: the version the snapshot held of each document it sent). Exported for its tests.
 */
export class Subscription implements Subscriber {
  pending: Offer[] | undefined = [];
  readonly floors = new Map<string, number>();
  overflowed = false;

  constructor(
    readonly channel: string,
    readonly hub: ChannelHub,
    private readonly connection: Connection,
  ) {}

  offer(offer: Offer): void {
    if (this.pending) {
      if (this.pending.length >= this.connection.context.limits.maxPending) this.overflowed = true;
      else this.pending.push(offer);
      return;
    }
    this.deliver(offer);
  }

  deliver(offer: Offer): void {
    const floor = this.floors.get(offer.key);
    if (floor !== undefined) {
      if (offer.rev < floor) return;
      this.floors.delete(offer.key);
      if (offer.rev === floor) return;
    }
    const { guarded } = offer;
    this.connection.sendRaw(
      guarded === undefined || maySendFrom(this.connection.claims!, guarded.session) ? offer.bytes : guarded.redacted(),
    );
  }

  /**
   * A document sent from a read (snapshot page or history) at version `rev`: no older version may follow
   * it. While the read is not live yet every such document gets a floor, even one whose version the hub
   * already forwarded: the queue may hold that version and older ones before it (two projectors can
   * write a document's versions 7 and 8 and the hub forward both while the snapshot, which read 8, was
   * in flight; without the floor 7 would follow 8). Once live, the hub only forwards versions above
   * what it forwarded, so a document it has forwarded as far needs no floor.
   */
  hold(key: string, rev: number): void {
    const forwarded = this.hub.revs.get(key);
    if (this.pending || forwarded === undefined || rev > forwarded)
      this.floors.set(key, Math.max(rev, this.floors.get(key) ?? 0));
  }

  /** Sends what queued up while reading, then goes live, keeping only the floors the hub has not passed. */
  goLive(): void {
    const pending = this.pending ?? [];
    this.pending = undefined;
    for (const offer of pending) this.deliver(offer);
    for (const [key, floor] of this.floors) if ((this.hub.revs.get(key) ?? -1) >= floor) this.floors.delete(key);
  }
}

/**
 * One WebSocket connection: authentication (a `?token=` or a first `auth` frame, HS256, expiry enforced
 * while open), subscriptions with snapshot or resume, paging, heartbeats, and a send-buffer cap.
 */
export class Connection {
  claims: TokenClaims | undefined;
  /** A token being verified: frames that arrive meanwhile wait for it, so `auth` then `subscribe` keeps its order. */
  private authenticating: Promise<boolean> | undefined;
  readonly subscriptions = new Map<string, Subscription>();
  closed = false;
  /** Last time anything arrived (frames or pongs): a silent connection is dropped. */
  alive = true;

  constructor(
    readonly socket: WebSocket,
    readonly context: ServerContext,
    readonly openedAt = Date.now(),
  ) {
    context.stats.connections++;
    socket.on('message', (data, isBinary) => void this.onFrame(data as Buffer, isBinary));
    socket.on('pong', () => (this.alive = true));
    socket.on('close', () => this.cleanup());
    socket.on('error', () => this.cleanup());
  }

  /** Sends a frame object. */
  send(frame: Record<string, unknown>): void {
    this.sendRaw(JSON.stringify(frame));
  }

  /** Sends bytes serialized once for many subscribers; a client that does not read is closed, not buffered for. */
  sendRaw(bytes: string): void {
    if (this.closed || this.socket.readyState !== OPEN) return;
    if (this.socket.bufferedAmount > this.context.limits.maxBufferedBytes) {
      this.context.stats.slowClosed++;
      this.close(CloseCodes.slowConsumer, 'slow consumer: send buffer full');
      return;
    }
    this.socket.send(bytes);
  }

  error(code: string, message: string, channel?: string): void {
    this.send({ op: 'error', code, message, ...(channel ? { channel } : {}) });
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.cleanup();
    try {
      this.socket.close(code, reason);
    } catch {
      this.socket.terminate();
    }
    // A client that does not read does not read the close frame either.
    setTimeout(() => this.socket.terminate(), 1_000).unref();
  }

  /** Authenticates with a token (from the URL or an `auth` frame); resolves false when refused (the connection is closing). */
  authenticate(token: string): Promise<boolean> {
    const verifying = verifyAccessToken(token, this.context.secrets, this.context.revocations).then((verified) => {
      if (this.closed) return false;
      if (!verified.ok) {
        this.error(ErrorCodes.unauthorized, verified.reason);
        this.close(
          CloseCodes.unauthorized,
          verified.reason === 'token expired' || verified.reason === TOKEN_REVOKED ? verified.reason : 'unauthorized',
        );
        return false;
      }
      this.claims = verified.claims;
      this.send({ op: 'ready', sub: verified.claims.sub });
      return true;
    });
    this.authenticating = verifying.finally(() => (this.authenticating = undefined));
    return this.authenticating;
  }

  /** Closes the connection when a revocation covers its token (the server watches the revocation list). */
  revokeIf(covers: (claims: TokenClaims) => boolean): void {
    if (this.closed || !this.claims || !covers(this.claims)) return;
    this.error(ErrorCodes.unauthorized, TOKEN_REVOKED);
    this.close(CloseCodes.unauthorized, TOKEN_REVOKED);
  }

  /** Called every second by the server: closes connections whose token expired or that never authenticated. */
  tick(now: number, authTimeoutMs: number): void {
    if (this.closed) return;
    if (!this.claims && now - this.openedAt > authTimeoutMs) {
      this.error(ErrorCodes.unauthorized, 'no auth frame in time');
      this.close(CloseCodes.unauthorized, 'unauthorized');
    } else if (this.claims && this.claims.exp * 1000 <= now) {
      this.error(ErrorCodes.unauthorized, 'token expired');
      this.close(CloseCodes.unauthorized, 'token expired');
    }
  }

  private async onFrame(data: Buffer, isBinary: boolean): Promise<void> {
    this.alive = true;
    if (this.authenticating) await this.authenticating;
    if (this.closed) return;
    let parsed: unknown;
    try {
      if (isBinary) throw new Error('binary');
      parsed = JSON.parse(data.toString('utf8'));
    } catch {
      this.error(ErrorCodes.badRequest, 'frames are JSON text');
      return;
    }
    const message = ClientMessage.safeParse(parsed);
    if (!message.success) {
      const issue = message.error.issues[0]!;
      this.error(ErrorCodes.badRequest, `${issue.path.join('.') || 'frame'}: ${issue.message}`);
      return;
    }
    const frame = message.data;
    if (frame.op === 'ping') return this.send({ op: 'pong' });
    if (frame.op === 'auth') {
      if (this.claims) return this.error(ErrorCodes.badRequest, 'already authenticated');
      await this.authenticate(frame.token);
      return;
    }
    if (!this.claims) {
      this.error(ErrorCodes.unauthorized, 'authenticate first: {"op":"auth","token":"..."}');
      this.close(CloseCodes.unauthorized, 'unauthorized');
      return;
    }
    try {
      if (frame.op === 'subscribe') await this.subscribe(frame.channel, frame.since, frame.order);
      else if (frame.op === 'unsubscribe') this.unsubscribe(frame.channel, true);
      else if (frame.op === 'more') await this.more(frame.channel, frame.cursor);
    } catch (error) {
      if (error instanceof BadPageError)
        return this.error(ErrorCodes.badRequest, error.message, 'channel' in frame ? frame.channel : undefined);
      this.context.logger.error({ err: (error as Error).message, op: frame.op }, 'realtime request failed');
      this.error(ErrorCodes.internal, 'the request failed; try again', 'channel' in frame ? frame.channel : undefined);
    }
  }

  private allowed(channel: string): boolean {
    return this.claims!.channels.some((pattern) => channelAllowed(pattern, channel));
  }

  private async subscribe(channel: string, since: ResumePoint | undefined, order?: PageOrder): Promise<void> {
    if (!this.allowed(channel))
      return this.error(ErrorCodes.forbidden, 'the token does not allow this channel', channel);
    const route = this.context.routeOf(channel);
    if (!route) return this.error(ErrorCodes.unknownChannel, 'no such channel', channel);
    if (order === 'newest' && route.timeField === undefined)
      return this.error(ErrorCodes.badRequest, 'this channel has no time order: leave out order', channel);
    if (!this.subscriptions.has(channel) && this.subscriptions.size >= this.context.limits.maxSubscriptions) {
      return this.error(
        ErrorCodes.tooManySubscriptions,
        `at most ${this.context.limits.maxSubscriptions} subscriptions per connection`,
        channel,
      );
    }
    this.unsubscribe(channel, false);
    const { feed } = this.context;
    const hub = feed.hub(channel, route.sendersOnly);
    const view = viewFor(route.sendersOnly, this.claims!);
    const subscription = new Subscription(channel, hub, this);
    // Listen first, read second: nothing written after the read point can be missed.
    hub.subscribers.add(subscription);
    this.subscriptions.set(channel, subscription);
    this.context.stats.subscriptions++;
    const position = feed.lastSeq;
    const epoch = feed.epoch;
    if (since) {
      const bounds = await feed.bounds();
      if (
        since.epoch !== bounds.epoch ||
        since.epoch !== epoch ||
        since.position < bounds.firstSeq - 1 ||
        since.position > bounds.lastSeq
      ) {
        this.unsubscribe(channel, false);
        return this.error(
          ErrorCodes.positionExpired,
          since.epoch !== bounds.epoch
            ? 'another epoch: take a new snapshot'
            : 'that position is no longer retained: take a new snapshot',
          channel,
        );
      }
      const sent = new Map<string, number>();
      await feed.history(channel, since.position, position, (seq, data) => {
        const notice = parseNotice(data);
        if (!notice || (sent.get(notice.key) ?? 0) >= notice.rev) return;
        sent.set(notice.key, notice.rev);
        this.send(
          notice.deleted
            ? { op: 'remove', channel, key: notice.key, epoch, position: seq }
            : { op: 'update', channel, doc: view(notice.doc), epoch, position: seq },
        );
      });
      if (this.subscriptions.get(channel) !== subscription) return;
      for (const [key, rev] of sent) subscription.hold(key, rev);
    } else {
      const page = await readPage(this.context.db, route, undefined, this.context.limits.pageSize, order);
      if (this.subscriptions.get(channel) !== subscription) return;
      for (const doc of page.items) subscription.hold(doc._id, doc._rev);
      this.send({
        op: 'snapshot',
        channel,
        items: page.items.map(view),
        epoch,
        position,
        ...(page.next ? { next: page.next } : {}),
      });
    }
    if (subscription.overflowed) {
      this.unsubscribe(channel, false);
      return this.error(
        ErrorCodes.slowConsumer,
        'too many changes arrived while the snapshot was read; subscribe again',
        channel,
      );
    }
    subscription.goLive();
  }

  private async more(channel: string, cursor: string): Promise<void> {
    const subscription = this.subscriptions.get(channel);
    if (!subscription) return this.error(ErrorCodes.notSubscribed, 'subscribe before asking for more', channel);
    const route = this.context.routeOf(channel)!;
    const page = await readPage(this.context.db, route, cursor, this.context.limits.pageSize);
    for (const doc of page.items) subscription.hold(doc._id, doc._rev);
    const view = viewFor(route.sendersOnly, this.claims!);
    this.send({
      op: 'snapshot',
      channel,
      items: page.items.map(view),
      epoch: this.context.feed.epoch,
      position: this.context.feed.lastSeq,
      ...(page.next ? { next: page.next } : {}),
    });
  }

  unsubscribe(channel: string, explicit: boolean): void {
    const subscription = this.subscriptions.get(channel);
    if (!subscription) {
      if (explicit) this.error(ErrorCodes.notSubscribed, 'not subscribed', channel);
      return;
    }
    this.subscriptions.delete(channel);
    subscription.hub.subscribers.delete(subscription);
    this.context.feed.release(subscription.hub);
    this.context.stats.subscriptions--;
  }

  /** Tells the channel's subscriber to take a new snapshot (after a read-model rebuild). */
  resync(channel: string): void {
    if (!this.subscriptions.has(channel)) return;
    this.send({ op: 'resync', channel });
  }

  private cleanup(): void {
    if (this.closed) return;
    this.closed = true;
    for (const channel of [...this.subscriptions.keys()]) this.unsubscribe(channel, false);
    this.context.stats.connections--;
  }
}
