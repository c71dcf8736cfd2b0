import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { KV } from 'nats';
import type { Logger } from 'pino';

interface LeaseRecord {
  owner: string;
  /** Epoch ms after which another process may take the lease. */
  until: number;
}

/** The lease is no longer this process's: the write it guarded must not happen. */
export class LeaseLostError extends Error {
  constructor(key: string, options?: ErrorOptions) {
    super(`lease ${key} is no longer held by this process`, options);
    this.name = 'LeaseLostError';
  }
}

export interface LeaseOptions {
  kv: KV;
  key: string;
  logger: Logger;
  /** How long the lease lasts without a renewal (default 15 s); renewed every third of it. */
  ttlMs?: number;
  owner?: string;
}

/**
 * A lease in the NATS key-value store, taken and renewed with compare-and-swap on the entry's revision:
 * at most one process holds it while its renewals succeed. The holder that misses renewals for a
 * whole TTL (a partition, a stall) learns it lost the lease on its next renewal and must stop.
 */
export class Lease {
  readonly owner: string;
  private revision = 0;
  private timer: NodeJS.Timeout | undefined;
  private held = false;
  private lostHandlers: (() => void)[] = [];
  private readonly ttlMs: number;

  constructor(private readonly options: LeaseOptions) {
    this.owner = options.owner ?? randomUUID();
    this.ttlMs = options.ttlMs ?? 15_000;
  }

  get holding(): boolean {
    return this.held;
  }

  /** Called once when a held lease is lost. */
  onLost(handler: () => void): void {
    this.lostHandlers.push(handler);
  }

  /** One attempt: true when this process now holds the lease. */
  async tryAcquire(): Promise<boolean> {
    const { kv, key } = this.options;
    const record: LeaseRecord = { owner: this.owner, until: Date.now() + this.ttlMs };
    try {
      const entry = await kv.get(key);
      if (!entry || entry.operation !== 'PUT' || entry.value.length === 0) {
        this.revision = entry
          ? await kv.update(key, JSON.stringify(record), entry.revision)
          : await kv.create(key, JSON.stringify(record));
      } else {
        const current = entry.json<LeaseRecord>();
        if (current.owner !== this.owner && current.until > Date.now()) return false;
        this.revision = await kv.update(key, JSON.stringify(record), entry.revision);
      }
    } catch {
      // Someone else wrote first (wrong last sequence), or the bus is away: not ours this time.
      return false;
    }
    this.held = true;
    this.timer ??= setInterval(() => void this.renew(), Math.max(100, Math.floor(this.ttlMs / 3)));
    this.timer.unref();
    return true;
  }

  /**
   * The fencing check before a write outside the bus (a Bitrix24 call): throws `LeaseLostError` unless
   * the store's current entry (read at its latest revision) still names this process, with time left. A
   * holder that stalled (a long GC pause, a frozen VM) past its TTL, while another replica took over,
   * learns it here before it writes, not on its next renewal. Marks the lease lost when it is.
   */
  async assertHeld(): Promise<void> {
    if (!this.held) throw new LeaseLostError(this.options.key);
    let entry: Awaited<ReturnType<KV['get']>>;
    try {
      entry = await this.options.kv.get(this.options.key);
    } catch (error) {
      throw new LeaseLostError(this.options.key, { cause: error });
    }
    const record = entry && entry.operation === 'PUT' && entry.value.length > 0 ? entry.json<LeaseRecord>() : null;
    // Any write by another replica (a takeover) changes the owner; a renewal of ours in flight keeps it.
    if (!record || record.owner !== this.owner || record.until <= Date.now()) {
      if (this.held) {
        this.options.logger.warn({ lease: this.options.key }, 'lease lost (fencing check): stopping the active work');
        this.lose();
      }
      throw new LeaseLostError(this.options.key);
    }
  }

  /** Waits until this process holds the lease (or `signal` aborts: false). */
  async acquire(signal?: AbortSignal): Promise<boolean> {
    let logged = false;
    while (!signal?.aborted) {
      if (await this.tryAcquire()) {
        this.options.logger.info(
          { lease: this.options.key, owner: this.owner },
          'lease acquired: this replica is active',
        );
        return true;
      }
      if (!logged) {
        this.options.logger.info({ lease: this.options.key }, 'another replica holds the lease: standing by');
        logged = true;
      }
      await sleep(Math.max(100, Math.floor(this.ttlMs / 3)), undefined, {
        ref: false,
        ...(signal ? { signal } : {}),
      }).catch(() => undefined);
    }
    return false;
  }

  private async renew(): Promise<void> {
    if (!this.held) return;
    const record: LeaseRecord = { owner: this.owner, until: Date.now() + this.ttlMs };
    try {
      this.revision = await this.options.kv.update(this.options.key, JSON.stringify(record), this.revision);
    } catch (error) {
      this.options.logger.warn(
        { lease: this.options.key, err: (error as Error).message },
        'lease lost: stopping the active work',
      );
      this.lose();
    }
  }

  private lose(): void {
    this.held = false;
    clearInterval(this.timer);
    this.timer = undefined;
    for (const handler of this.lostHandlers.splice(0)) handler();
  }

  /** Gives the lease up so a standby takes over at once. */
  async release(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    if (!this.held) return;
    this.held = false;
    await this.options.kv
      .update(this.options.key, JSON.stringify({ owner: '', until: 0 } satisfies LeaseRecord), this.revision)
      .catch(() => undefined);
  }
}
