import { DeliverPolicy, type ConsumerMessages } from 'nats';
import type { Logger } from 'pino';
import { channelFilter, StreamNames } from '@puente/contracts';
import { trace } from '@opentelemetry/api';
import { extractTrace, SpanKind, type Bus } from '@puente/bus';
import { guardedSession, withoutSendersOnly, type SendersOnly } from './sendersOnly.js';

const pushTracer = trace.getTracer('@puente/realtime');

/** What a subscriber is handed for every notice of its channel: the frame's bytes, serialized once. */
export interface Offer {
  key: string;
  rev: number;
  position: number;
  bytes: string;
  /**
   * For a document with fields only its session's senders see: the session, and the frame without
   * those fields, serialized on first use and then shared by every subscriber that may not see them.
   */
  guarded?: { session: string; redacted: () => string };
}

/** A subscriber of a channel hub (one connection's subscription). */
export interface Subscriber {
  offer(offer: Offer): void;
}

/** The most document versions a hub remembers per channel (oldest forgotten first). */
const REVS_PER_CHANNEL = 100_000;

/**
 * A channel with subscribers on this replica: the highest document version the feed forwarded per
 * key (a notice not newer is dropped for every subscriber: several projector replicas can publish out
 * of order), and each notice's frame serialized once for all of them.
 */
export class ChannelHub {
  readonly revs = new Map<string, number>();
  readonly subscribers = new Set<Subscriber>();

  constructor(
    readonly channel: string,
    private readonly feed: ChangeFeed,
    /** The fields of this channel's documents that only their session's senders see. */
    readonly sendersOnly?: SendersOnly,
  ) {}

  handle(position: number, data: Uint8Array): void {
    const notice = parseNotice(data);
    if (!notice) return;
    const { key, rev } = notice;
    const last = this.revs.get(key);
    if (last !== undefined && rev <= last) return;
    this.revs.delete(key);
    this.revs.set(key, rev);
    if (this.revs.size > REVS_PER_CHANNEL) this.revs.delete(this.revs.keys().next().value!);
    const epoch = this.feed.epoch;
    const frame = notice.deleted
      ? { op: 'remove', channel: this.channel, key, epoch, position }
      : { op: 'update', channel: this.channel, doc: notice.doc, epoch, position };
    const offer: Offer = { key, rev, position, bytes: JSON.stringify(frame) };
    const session = this.sendersOnly && !notice.deleted ? guardedSession(this.sendersOnly, notice.doc) : undefined;
    if (session !== undefined) {
      const spec = this.sendersOnly!;
      let redacted: string | undefined;
      offer.guarded = {
        session,
        redacted: () => (redacted ??= JSON.stringify({ ...frame, doc: withoutSendersOnly(spec, notice.doc) })),
      };
    }
    this.feed.stats.notices++;
    for (const subscriber of this.subscribers) subscriber.offer(offer);
  }
}

/**
 * This replica's reader of `CHANGES`: one ordered consumer over `chg.>` from the stream's end at start,
 * routing each notice by subject (`chg.<channel>.<key>`) to the hub of its channel, if any client here
 * subscribed; other notices are not even parsed. No state is shared with other replicas.
 */
export class ChangeFeed {
  /** The `CHANGES` stream's incarnation (its creation time): positions from another are meaningless. */
  epoch = '';
  /** The last stream sequence routed: everything up to it reached the hubs. */
  lastSeq = 0;
  readonly stats = { notices: 0, routed: 0 };
  private readonly hubs = new Map<string, ChannelHub>();
  private messages: ConsumerMessages | undefined;
  private loop: Promise<void> | undefined;
  private watcher: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Whether the reader is consuming `CHANGES` now (`/readyz` reports it). */
  private reading = false;
  /** Set while the reader is stopped on purpose (an epoch switch): its end is not a failure. */
  private switching = false;
  private restartTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly bus: Bus,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    const info = await this.bus.jsm.streams.info(StreamNames.CHANGES);
    this.epoch = info.created;
    this.lastSeq = info.state.last_seq;
    this.checkedAt = Date.now();
    await this.consume(this.lastSeq + 1);
    // A recreated stream (another epoch) is followed from its start.
    this.watcher = setInterval(() => void this.checkEpoch(), 2_000).unref();
  }

  /** When the stream last answered the reader's check (every 2 s). */
  private checkedAt = 0;

  /**
   * Whether this replica reads `CHANGES`: its reader runs and the stream answered within the last few
   * checks. False while a failed reader waits to restart, and while the stream is gone or unreachable
   * (the reader's ordered consumer then retries by itself, delivering nothing).
   */
  get healthy(): boolean {
    return this.reading && Date.now() - this.checkedAt < 7_000;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.watcher);
    clearTimeout(this.restartTimer);
    this.messages?.stop();
    await this.loop;
  }

  /** The hub of a channel, created on first use (with the fields its route keeps for senders). */
  hub(channel: string, sendersOnly?: SendersOnly): ChannelHub {
    let hub = this.hubs.get(channel);
    if (!hub) {
      hub = new ChannelHub(channel, this, sendersOnly);
      this.hubs.set(channel, hub);
    }
    return hub;
  }

  /** Forgets a channel's hub once no subscriber is left. */
  release(hub: ChannelHub): void {
    if (hub.subscribers.size === 0 && this.hubs.get(hub.channel) === hub) this.hubs.delete(hub.channel);
  }

  get channels(): IterableIterator<ChannelHub> {
    return this.hubs.values();
  }

  /** The stream's first retained sequence and its epoch, now. */
  async bounds(): Promise<{ epoch: string; firstSeq: number; lastSeq: number }> {
    const info = await this.bus.jsm.streams.info(StreamNames.CHANGES);
    return { epoch: info.created, firstSeq: info.state.first_seq, lastSeq: info.state.last_seq };
  }

  /**
   * The notices of one channel after `from` up to `to` (inclusive), read from the stream with an ordered
   * consumer of its own: what a client that resumes with `since` missed.
   */
  async history(
    channel: string,
    from: number,
    to: number,
    each: (position: number, data: Uint8Array) => void,
  ): Promise<void> {
    if (to <= from) return;
    const consumer = await this.bus.js.consumers.get(StreamNames.CHANGES, {
      filterSubjects: [channelFilter(channel)],
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: from + 1,
    });
    try {
      for (;;) {
        const batch = await consumer.fetch({ max_messages: 512, expires: 2_000 });
        let last: { seq: number; pending: number } | undefined;
        for await (const msg of batch) {
          if (msg.seq > to) return;
          each(msg.seq, msg.data);
          last = { seq: msg.seq, pending: msg.info.pending };
          if (msg.seq >= to || msg.info.pending === 0) return;
        }
        if (!last) return;
      }
    } finally {
      await consumer.delete().catch(() => undefined);
    }
  }

  private async consume(fromSeq: number): Promise<void> {
    const consumer = await this.bus.js.consumers.get(StreamNames.CHANGES, {
      filterSubjects: ['chg.>'],
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: Math.max(1, fromSeq),
    });
    const messages = await consumer.consume({ max_messages: 1_024 });
    this.messages = messages;
    this.reading = true;
    this.loop = (async () => {
      try {
        for await (const msg of messages) {
          this.lastSeq = msg.seq;
          const subject = msg.subject;
          const channel = subject.slice(4, subject.lastIndexOf('.'));
          const hub = this.hubs.get(channel);
          if (hub) {
            this.stats.routed++;
            // The push continues the trace of the write the notice announces (the webhook's, end to end).
            const span = pushTracer.startSpan(
              'realtime push',
              {
                kind: SpanKind.PRODUCER,
                attributes: {
                  'puente.channel': channel,
                  'puente.subscribers': hub.subscribers.size,
                  'messaging.message.id': String(msg.seq),
                },
              },
              extractTrace(msg.headers),
            );
            hub.handle(msg.seq, msg.data);
            span.end();
          }
        }
      } catch (error) {
        if (!this.stopped) this.logger.error({ err: (error as Error).message }, 'reading CHANGES stopped');
      } finally {
        this.reading = false;
        // A reader that ended on its own (an error, its consumer gone) starts again where it was.
        if (!this.stopped && !this.switching) this.restart(250);
      }
    })();
  }

  /** Starts reading again after the last routed notice, backing off up to 5 s while it cannot. */
  private restart(delayMs: number): void {
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => {
      if (this.stopped || this.reading) return;
      this.consume(this.lastSeq + 1)
        .then(() => this.logger.info({ from: this.lastSeq + 1 }, 'reading CHANGES again'))
        .catch((error: unknown) => {
          this.logger.warn({ err: (error as Error).message }, 'cannot read CHANGES yet; trying again');
          this.restart(Math.min(delayMs * 2, 5_000));
        });
    }, delayMs);
    this.restartTimer.unref();
  }

  private async checkEpoch(): Promise<void> {
    try {
      const info = await this.bus.jsm.streams.info(StreamNames.CHANGES);
      this.checkedAt = Date.now();
      if (info.created === this.epoch || this.stopped) return;
      this.logger.warn(
        { from: this.epoch, to: info.created },
        'the CHANGES stream was recreated: following the new one from its start',
      );
      this.switching = true;
      try {
        this.messages?.stop();
        await this.loop;
        clearTimeout(this.restartTimer);
        this.epoch = info.created;
        this.lastSeq = 0;
        for (const hub of this.hubs.values()) hub.revs.clear();
        await this.consume(1);
      } finally {
        this.switching = false;
        if (!this.reading && !this.stopped) this.restart(500);
      }
    } catch (error) {
      this.logger.warn({ err: (error as Error).message }, 'could not check the CHANGES stream');
    }
  }
}

/** A `CHANGES` notice's fields the realtime server uses, or undefined for a body that is not one. */
export function parseNotice(
  data: Uint8Array,
): { key: string; rev: number; deleted: boolean; doc: Record<string, unknown> } | undefined {
  try {
    const notice = JSON.parse(new TextDecoder().decode(data)) as {
      key?: unknown;
      rev?: unknown;
      deleted?: unknown;
      doc?: unknown;
    };
    if (
      typeof notice.key !== 'string' ||
      typeof notice.rev !== 'number' ||
      typeof notice.doc !== 'object' ||
      notice.doc === null
    )
      return undefined;
    return {
      key: notice.key,
      rev: notice.rev,
      deleted: notice.deleted === true,
      doc: notice.doc as Record<string, unknown>,
    };
  } catch {
    return undefined;
  }
}
