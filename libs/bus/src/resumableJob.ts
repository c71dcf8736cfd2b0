import type { KV, KvEntry } from 'nats';

/** What every resumable job keeps in its key-value state, besides its own progress. */
export interface JobState {
  /** The worker that holds the job (a random id per process). */
  owner: string;
  /** When the holder last saved: a running job not saved for `staleAfterMs` is taken over. */
  heartbeatAt: number;
  phase: 'running' | 'completed' | 'failed';
  error?: string;
}

/** Why a job could not be taken, for the job's own busy error. */
export type JobBusyReason<S> = { kind: 'started-elsewhere' } | { kind: 'running'; current: S } | { kind: 'taken' };

export interface ResumableJobOptions<S extends JobState> {
  kv: KV;
  key: string;
  owner: string;
  staleAfterMs: number;
  /** The state of a new run. */
  fresh: () => S;
  /**
   * The state a stopped run (failed, or running with a dead worker) resumes with, or undefined to start a
   * fresh run instead (then `discard` is called with the old one first).
   */
  resume: (current: S) => S | undefined;
  discard?: (current: S) => Promise<void>;
  /** The job's own error when another worker has it (each job keeps its class and code). */
  busy: (reason: JobBusyReason<S>) => Error;
  onProgress?: (state: S) => void;
  /** The clock (tests pin it). */
  now?: () => number;
}

/**
 * One run of a job that resumes after a crash (a Kissflow backfill, a WhatsApp full sync): its state lives
 * under one key-value key, taken with compare-and-set, so one worker runs it at a time, and saved after each
 * step with the revision it last wrote, so a worker that lost it finds out on its next save. A running job
 * whose holder has not saved for `staleAfterMs` is taken over and resumed from its last saved state.
 */
export class ResumableJob<S extends JobState> {
  private constructor(
    private readonly options: ResumableJobOptions<S>,
    private current: S,
    private revision: number,
  ) {}

  /** Takes the job: a new run, the resumption of a stopped one, or the job's busy error. */
  static async claim<S extends JobState>(options: ResumableJobOptions<S>): Promise<ResumableJob<S>> {
    const now = options.now ?? Date.now;
    const entry = await options.kv.get(options.key);
    if (!entry || entry.length === 0 || entry.operation !== 'PUT') {
      const state = options.fresh();
      try {
        return new ResumableJob(options, state, await options.kv.create(options.key, encodeState(state)));
      } catch {
        throw options.busy({ kind: 'started-elsewhere' });
      }
    }
    const current = decodeState<S>(entry);
    if (current.phase === 'running' && now() - current.heartbeatAt < options.staleAfterMs)
      throw options.busy({ kind: 'running', current });
    const resumed = options.resume(current);
    let state: S;
    if (resumed) {
      state = { ...resumed, owner: options.owner, heartbeatAt: now(), phase: 'running' };
      delete state.error;
    } else {
      await options.discard?.(current);
      state = options.fresh();
    }
    try {
      return new ResumableJob(options, state, await options.kv.update(options.key, encodeState(state), entry.revision));
    } catch {
      throw options.busy({ kind: 'taken' });
    }
  }

  /** The job's state as last saved (or claimed). */
  get state(): S {
    return this.current;
  }

  /** Saves the next state (with a fresh heartbeat); fails when another worker has taken the job since. */
  async save(next: S): Promise<void> {
    next.heartbeatAt = (this.options.now ?? Date.now)();
    this.revision = await this.options.kv.update(this.options.key, encodeState(next), this.revision);
    this.current = next;
    this.options.onProgress?.(next);
  }
}

/** A job's saved state, if any. */
export async function readJobState<S extends JobState>(kv: KV, key: string): Promise<S | undefined> {
  const entry = await kv.get(key);
  return entry && entry.length > 0 ? decodeState<S>(entry) : undefined;
}

const encodeState = (state: JobState) => new TextEncoder().encode(JSON.stringify(state));
const decodeState = <S>(entry: KvEntry) => JSON.parse(new TextDecoder().decode(entry.value)) as S;
