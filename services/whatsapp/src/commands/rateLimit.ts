/** Too many sends are already waiting for this session: the command goes back to the stream for later. */
export class SendQueueFullError extends Error {
  readonly code = 'SEND_QUEUE_FULL';
}

/**
 * Spaces each session's sends to at most `ratePerSecond` (the Cloud API's per-number throughput; a
 * Baileys gateway's pace that keeps a number from being flagged), with at most `maxQueued` waiting per
 * session. A slot is given even when the send then fails, which keeps retries inside the rate too.
 */
export class SessionRateLimiter {
  private readonly sessions = new Map<string, { next: number; waiting: number }>();

  constructor(
    private readonly ratePerSecond: number,
    private readonly maxQueued: number,
  ) {}

  async acquire(session: string): Promise<void> {
    let state = this.sessions.get(session);
    if (!state) {
      state = { next: 0, waiting: 0 };
      this.sessions.set(session, state);
    }
    if (state.waiting >= this.maxQueued)
      throw new SendQueueFullError(
        `${state.waiting} sends of session ${session} are already waiting for the rate limit`,
      );
    const now = Date.now();
    const slot = Math.max(now, state.next);
    state.next = slot + 1000 / this.ratePerSecond;
    if (slot <= now) return;
    state.waiting++;
    try {
      await new Promise((resolve) => setTimeout(resolve, slot - now));
    } finally {
      state.waiting--;
    }
  }
}
