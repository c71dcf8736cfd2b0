import { context, type Context } from '@opentelemetry/api';
import type { Bus, PipelinedPublisher, PublishResult } from '@puente/bus';
import { Headers, subjectOf } from '@puente/contracts';
import type { ChangeMessage } from './changes.js';

/**
 * What a source confirms as a whole once JetStream stored it: a transaction (`logical`) or a batch. Counted
 * rather than awaited: no promise per unit on a path that runs tens of thousands of times a second.
 */
export interface RelayUnit {
  /** Changes published, and those JetStream has not acknowledged yet. */
  changes: number;
  unacked: number;
  /** Set once the source read all of it (its commit): before that it cannot be confirmed. */
  complete: boolean;
  /** The first publish of it that failed. */
  failure?: unknown;
  /** Read again after a failed publish, and maybe stored before it: its changes are stored again under this round (see `RelayPublisher`). */
  resend?: number;
  /** The trace context its publishes run in. */
  context?: Context;
}

/** What a streaming source does when units are confirmed, fail, or wait for a test's fault hook. */
export interface RelayPublisherHooks<U extends RelayUnit> {
  /** A unit, and every one before it, is stored: its position may be confirmed to the source. */
  confirmed(unit: U): void;
  /** A publish failed (`resend`: a unit's, whose later changes may be stored) or the fault hook threw: nothing after it may be confirmed. */
  failed(error: unknown, resend: boolean): void;
  /** Test hook standing in for a crash: runs after a unit is stored and before it is confirmed; throwing fails it. */
  beforeConfirm?: (unit: U) => Promise<void> | void;
}

export interface RelayPublisherOptions<U extends RelayUnit> {
  bus: Bus;
  /** Changes in flight to JetStream at once, across units (default 1,024). */
  window?: number;
  /** A unit's position in its source (a commit LSN as a number), for the range stored again after a failure. */
  positionOf?: (unit: U) => bigint;
}

/** The positions of one scope (a slot, a Kafka partition) whose changes are stored again, and the round that names their new message ids. */
interface ResendRange {
  from: bigint;
  upTo: bigint;
  round: number;
}

/** The change position a message id is made of: a change stored again gets `<position>~<round>`, a new id. */
export function resendPosition(position: string, round: number | undefined): string {
  return round ? `${position}~${round}` : position;
}

/**
 * Publishes a CDC source's changes to `EVENTS` and says when its position may be confirmed. Shared by the
 * relays that pipeline their publishes, so all of them keep one ordering rule:
 *
 * - **The window.** Up to `window` publishes are in flight at once, across units; `publish` starts one at
 *   once when there is room and otherwise hands back a promise the source waits on (backpressure).
 * - **The confirmation watermark.** Units are confirmed in source order, each once all of its changes and
 *   every earlier unit's are acknowledged. A failed publish stops confirmation when its unit comes up.
 * - **The resend after a failed publish.** Publishes are pipelined, so when one failed, changes read after
 *   it may already be stored: read again they would be duplicates (same message ids) and the failed one
 *   would land after them, older after newer. So the changes of every unit not confirmed when it failed are
 *   stored again when read again, under new message ids (`resendPosition`): in the stream, the last copy of
 *   each change is in source order. Failing again before a range was read through keeps that range too,
 *   since what it covers may be stored as well.
 *
 * A streaming source (`logical`) opens a unit per transaction (`open`, `publish`, `complete`) and restarts
 * the window with each stream (`restart`); a batch source (`debezium`) publishes whole batches
 * (`publishBatch`) and confirms once the batch is stored.
 */
export class RelayPublisher<U extends RelayUnit> {
  private readonly ranges = new Map<string, ResendRange>();
  private failures = 0;
  private pipeline: PipelinedPublisher | undefined;
  /** Counts restarts: acknowledgements of an abandoned stream's units confirm nothing. */
  private generation = 0;
  private live: () => boolean = () => false;
  private hooks: RelayPublisherHooks<U> | undefined;
  /** The unit being read. */
  private current: U | undefined;
  /** Complete units not yet confirmed, in source order. */
  private units: U[] = [];
  /** Set while the `beforeConfirm` fault hook runs (tests): confirmations wait for it. */
  private confirming: Promise<void> | undefined;

  constructor(private readonly options: RelayPublisherOptions<U>) {}

  /**
   * Starts a new stream: forgets what the previous one had in flight (it is read again from the last
   * confirmed position) and opens a new window. `live` says whether this stream still runs.
   */
  restart(live: () => boolean, hooks: RelayPublisherHooks<U>): U[] {
    const dropped = this.abandon(false);
    this.generation++;
    this.live = live;
    this.hooks = hooks;
    this.pipeline = this.options.bus.pipeline(this.options.window ?? 1_024);
    return dropped;
  }

  /** The unit being read, if any. */
  get open(): U | undefined {
    return this.current;
  }

  /** Complete units waiting for their acknowledgements or confirmation, in source order. */
  get unconfirmed(): readonly U[] {
    return this.units;
  }

  /** Nothing read and not yet confirmed. */
  get idle(): boolean {
    return this.current === undefined && this.units.length === 0;
  }

  /** Begins reading a unit; its round is set when it lies in a range to store again. */
  begin(unit: U, scope = ''): U {
    if (this.ranges.has(scope)) {
      // A unit past the range: the source is back to normal.
      const position = this.options.positionOf!(unit);
      this.readingFrom(scope, position);
      unit.resend = this.resendRound(scope, position);
    } else unit.resend = undefined;
    this.current = unit;
    return unit;
  }

  /**
   * Publishes one change of `unit`. Synchronous while the window has room (undefined); when it is full,
   * the returned promise holds the source until there is. The ack is counted, not awaited.
   */
  publish(unit: U, { event, msgId }: ChangeMessage): Promise<void> | undefined {
    const subject = subjectOf(event);
    const options = { msgId, headers: { [Headers.EventType]: event.type } };
    const pipeline = this.pipeline!;
    const started = unit.context
      ? context.with(unit.context, () => pipeline.tryPublish(subject, event, options))
      : pipeline.tryPublish(subject, event, options);
    if (started) {
      this.track(unit, started);
      return undefined;
    }
    const waiting = unit.context
      ? context.with(unit.context, () => pipeline.publish(subject, event, options))
      : pipeline.publish(subject, event, options);
    return waiting.then(({ ack }) => this.track(unit, ack));
  }

  /** The unit being read is complete (its commit read): it is confirmed once it and every earlier one are stored. */
  complete(): U | undefined {
    const unit = this.current;
    this.current = undefined;
    if (!unit) return undefined;
    unit.complete = true;
    this.units.push(unit);
    this.confirmReady();
    return unit;
  }

  /**
   * Forgets what the stream had in flight (it is read again from the last confirmed position) and hands
   * back the dropped units, the one being read first. With `resend` (a publish failed), every unit not
   * confirmed is stored again when read again.
   */
  abandon(resend: boolean, scope = ''): U[] {
    const first = this.units[0] ?? this.current;
    const last = this.current ?? this.units.at(-1);
    if (resend && first && last && this.options.positionOf)
      this.widen(scope, this.options.positionOf(first), this.options.positionOf(last));
    const dropped = [...(this.current ? [this.current] : []), ...this.units];
    this.current = undefined;
    this.units = [];
    this.confirming = undefined;
    return dropped;
  }

  /**
   * Publishes a whole batch of one scope (a Kafka partition), pipelined, and resolves once every change
   * is stored: then the batch may be confirmed. When a publish fails, the batch's positions up to `upTo`
   * are stored again when read again (`resendRound`).
   */
  async publishBatch(scope: string, messages: readonly ChangeMessage[], upTo: bigint): Promise<void> {
    await this.options.bus.publishEvents(messages).catch((error: unknown) => {
      // Nothing before a batch's first position is read again once it failed: the range starts at 0.
      this.widen(scope, 0n, upTo);
      throw error;
    });
    // The next position read is past the batch: a range it ends is read through.
    this.readingFrom(scope, upTo + 1n);
  }

  /**
   * The round a change or unit at `position` of `scope` (a number, or its decimal text) is stored again
   * under, when it lies in a range left by a failed publish; undefined otherwise.
   */
  resendRound(scope: string, position: bigint | string): number | undefined {
    const range = this.ranges.get(scope);
    if (!range) return undefined;
    // A position given as text (a Kafka offset) is converted only while a range exists: rarely.
    const at = typeof position === 'bigint' ? position : BigInt(position);
    return at >= range.from && at <= range.upTo ? range.round : undefined;
  }

  /** Forgets the scope's range once the source reads past its end. */
  private readingFrom(scope: string, position: bigint): void {
    const range = this.ranges.get(scope);
    if (range && position > range.upTo) this.ranges.delete(scope);
  }

  /** A failed publish's range, widened by the range of an earlier failure not yet read through. */
  private widen(scope: string, from: bigint, upTo: bigint): void {
    const before = this.ranges.get(scope);
    this.ranges.set(scope, {
      from: before && before.from < from ? before.from : from,
      upTo: before && before.upTo > upTo ? before.upTo : upTo,
      round: ++this.failures,
    });
  }

  private track(unit: U, ack: Promise<PublishResult>): void {
    unit.changes++;
    unit.unacked++;
    const generation = this.generation;
    ack.then(
      () => {
        unit.unacked--;
        if (unit.unacked === 0 && unit.complete && generation === this.generation) this.confirmReady();
      },
      (error: unknown) => {
        unit.unacked--;
        unit.failure ??= error;
        if (unit.complete && generation === this.generation) this.confirmReady();
      },
    );
  }

  /**
   * Confirms complete units in source order, each once all of its changes (and so every earlier one's)
   * are stored. A failed publish fails the stream when its unit comes up: nothing after it is confirmed.
   */
  private confirmReady(): void {
    const hooks = this.hooks!;
    while (this.confirming === undefined && this.live()) {
      const next = this.units[0];
      if (next === undefined || (next.unacked > 0 && next.failure === undefined)) return;
      if (next.failure !== undefined) {
        hooks.failed(next.failure, true);
        return;
      }
      const hook = hooks.beforeConfirm;
      if (hook) {
        const generation = this.generation;
        this.confirming = Promise.resolve()
          .then(() => hook(next))
          .then(
            () => {
              this.confirming = undefined;
              if (generation !== this.generation) return;
              if (this.live() && this.units[0] === next) this.confirm(next);
              this.confirmReady();
            },
            (error: unknown) => {
              this.confirming = undefined;
              hooks.failed(error, false);
            },
          );
        return;
      }
      this.confirm(next);
    }
  }

  private confirm(unit: U): void {
    this.units.shift();
    this.hooks!.confirmed(unit);
  }
}
