/**
 * A client-side copy of Bitrix24's request-rate leaky bucket (`../shared/reference/bitrix24-rest.md` §4):
 * every HTTP request adds 1, the level drains by `drainPerSecond`, and a request that would take it past
 * `burst` is refused by the portal with 503 `QUERY_LIMIT_EXCEEDED`.
 *
 * The limiter never lets a request start unless the bucket, as the portal sees it, has room. It can
 * only know an upper bound of the portal's level: a request is counted when it arrives, somewhere
 * between our send and our receipt of the answer, so the limiter counts it at the receipt (the latest
 * moment), which makes its level never lower than the portal's. One request is in flight at a time
 * (the reference: don't run parallel streams from one IP), in the order callers asked.
 */

/** Time source, injectable so the timing maths is tested without waiting. */
export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

export interface LeakyBucketOptions {
  /** Requests the bucket holds before the portal refuses (50; Enterprise 250). */
  burst: number;
  /** Requests drained per second (2; Enterprise 5). */
  drainPerSecond: number;
  /**
   * Places kept free below `burst` (default 1): room for clock skew and the portal counting in whole
   * seconds. Capped so that at least one request fits.
   */
  headroom?: number;
  clock?: Clock;
}

export class LeakyBucket {
  readonly burst: number;
  readonly drainPerSecond: number;
  private readonly capacity: number;
  private readonly clock: Clock;
  /** Level after the last counted request, at time `at`. */
  private level = 0;
  private at = 0;
  /** The tail of the queue of callers: each waits for the one before it. */
  private tail: Promise<void> = Promise.resolve();
  /** Requests started and the total time they waited for room (for progress and benchmarks). */
  readonly stats = { requests: 0, waitedMs: 0, markedFull: 0 };

  constructor(options: LeakyBucketOptions) {
    if (!(options.burst >= 1) || !(options.drainPerSecond > 0))
      throw new RangeError('a leaky bucket needs burst >= 1 and drainPerSecond > 0');
    this.burst = options.burst;
    this.drainPerSecond = options.drainPerSecond;
    this.capacity = Math.max(1, options.burst - Math.max(0, options.headroom ?? 1));
    this.clock = options.clock ?? systemClock;
    this.at = this.clock.now();
  }

  /** The level the portal has at most at time `now`. */
  levelAt(now = this.clock.now()): number {
    return Math.max(0, this.level - ((now - this.at) / 1000) * this.drainPerSecond);
  }

  /** How long a request starting at `now` must wait so the bucket has room for it. */
  delayAt(now = this.clock.now()): number {
    const excess = this.levelAt(now) + 1 - this.capacity;
    return excess <= 0 ? 0 : Math.ceil((excess / this.drainPerSecond) * 1000);
  }

  /**
   * Runs `request` when the bucket has room and no other request of this bucket is in flight; counts
   * it when it ends (successfully or not: the portal counted it either way, unless it never got there,
   * which only makes the copy more careful).
   */
  async schedule<T>(request: () => Promise<T>): Promise<T> {
    const previous = this.tail;
    let done!: () => void;
    this.tail = new Promise<void>((resolve) => (done = resolve));
    await previous;
    try {
      for (;;) {
        const wait = this.delayAt();
        if (wait <= 0) break;
        this.stats.waitedMs += wait;
        await this.clock.sleep(wait);
      }
      this.stats.requests++;
      try {
        return await request();
      } finally {
        this.count();
      }
    } finally {
      done();
    }
  }

  /** The portal said the bucket is full (503 `QUERY_LIMIT_EXCEEDED`): someone else shares it, or we were wrong. */
  markFull(): void {
    this.stats.markedFull++;
    this.level = this.burst;
    this.at = this.clock.now();
  }

  private count(): void {
    const now = this.clock.now();
    this.level = this.levelAt(now) + 1;
    this.at = now;
  }
}
