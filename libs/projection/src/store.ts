import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AnyBulkWriteOperation, Collection, Db } from 'mongodb';
import { changeSubject, Collections, StreamNames, type ChangeNotice, type DomainEvent } from '@puente/contracts';
import { eachConcurrently, Outcomes, SpanKind, withSpan, type Bus, type Outcome } from '@puente/bus';
import { evolveDoc, keysOf, type ProjectedDoc, type Projection, type StoredDoc } from './projection.js';
import { Semaphore } from './semaphore.js';

/**
 * How long a writer that lost a compare-and-swap waits before its `round`th retry: doubling from 5 ms to at
 * most 250 ms, each wait between half and all of that at random, so writers that lost together do not
 * retry together (ten retries wait between about 0.66 and 1.3 s in all).
 */
export function conflictBackoffMs(round: number, random: () => number = Math.random): number {
  return Math.min(250, 5 * 2 ** (round - 1)) * (0.5 + random() / 2);
}

/** A document as the driver sees it: string ids, any fields. */
export type RawDoc = { _id: string; [field: string]: unknown };

/** An event with its position in `EVENTS`. */
export interface PositionedEvent {
  event: DomainEvent;
  position: number;
}

export interface ApplyResult<D extends ProjectedDoc = ProjectedDoc> {
  outcomes: Outcome[];
  /** Every touched document as it stands after the batch (null: never created). */
  docs: Map<string, D | null>;
  /** Documents written (inserted or replaced). */
  written: number;
  /** Notices published again for documents already at an event's position. */
  republished: number;
  /** Compare-and-swap conflicts that were re-read and retried. */
  conflicts: number;
}

/** Seams for tests that need to interleave writers or fail between the write and the notice. */
export interface StoreHooks {
  afterRead?: (keys: readonly string[]) => Promise<void>;
  beforeNotify?: (notices: readonly ChangeNotice[]) => Promise<void>;
}

export interface ProjectionStoreOptions<D extends ProjectedDoc> {
  db: Db;
  bus: Bus;
  projection: Projection<D>;
  /**
   * `shared` (default): other writers may apply the same projection at the same time (replicas pulling
   * one consumer), so on a server whose filtered replace is not atomic (FerretDB) each replace first
   * claims its revision. `exclusive`: this store is the projection's only writer (one instance, or
   * sessions partitioned across instances), so the compare-and-swap alone suffices and no claims are
   * written. On MongoDB both behave the same: its filtered replace is atomic.
   */
  writers?: 'shared' | 'exclusive';
  /**
   * Documents an `exclusive` store keeps in memory after writing them (least recently used go first;
   * default 50,000): reads of hot documents (a chat, a session) then cost nothing. Ignored for `shared`.
   */
  cacheSize?: number;
  /**
   * Publish `CHANGES` notices (default true). A rebuild into staging collections turns them off: its
   * documents are not the live read model yet (realtime clients are told to `resync` when it swaps in).
   */
  notify?: boolean;
  /** Compare-and-swap rounds before the batch is handed back for redelivery (default 10). */
  maxConflictRetries?: number;
  /**
   * The checkpoint is written at most this often while batches keep coming (default 250 ms), after the
   * batch and without holding it up; `checkpoint()` and `close()` write the latest one first.
   */
  checkpointEveryMs?: number;
  hooks?: StoreHooks;
}

interface KeyState<D extends ProjectedDoc> {
  base: StoredDoc<D> | null;
  current: D | null;
  /** Position of the last event that changed `current` in this batch. */
  position: number | undefined;
  /** The stored document is already at an event's position: its notice may not have gone out. */
  republish: boolean;
}

const SYSTEM = ['_id', '_position', '_rev'] as const;

/** A batch's writes go as at most this many bulk writes at once, each of at least WRITE_CHUNK operations. */
const WRITE_PARALLELISM = 4;
const WRITE_CHUNK = 32;

/**
 * FerretDB v1 (PostgreSQL backend) holds one backend connection per update statement until the whole
 * command ends. Once its pool (400 in the local stack) is taken by statements in flight it deadlocks for
 * good: every statement waits for a connection that only finished statements would free (measured:
 * one unordered bulk of 512 replaces hangs the server; 390 pass). So on FerretDB a process keeps at most
 * FERRETDB_UPDATE_CHUNK x FERRETDB_UPDATE_CHUNKS replaces in flight, across all its stores, which leaves
 * room for several processes on one server. Inserts are not affected.
 */
const FERRETDB_UPDATE_CHUNK = 48;
const FERRETDB_UPDATE_CHUNKS = 2;
const ferretdbUpdates = new Semaphore(FERRETDB_UPDATE_CHUNKS);

/** A revision claim older than this belongs to a writer that died between claiming and releasing. */
const CLAIM_TTL_MS = 30_000;

/**
 * Applies events to a read model: reads the batch's documents by `_id`, evolves them in memory with the
 * projection's pure functions, writes with compare-and-swap on `{_id, _position}` (insert, or replace
 * where `_position` is still what was read; a lost race re-reads and retries), then publishes a
 * `CHANGES` notice per changed document. No upsert with a version filter anywhere: that is what works
 * on both MongoDB and FerretDB (whose `update` stops at the first error and is not atomic for
 * filtered upserts).
 */
export class ProjectionStore<D extends ProjectedDoc = ProjectedDoc> {
  /** The read model's collection (untyped: documents are shaped by the projection). */
  readonly collection: Collection<RawDoc>;
  private readonly checkpoints: Collection<{ _id: string; position: number; updatedAt: Date }>;
  private readonly claims: Collection<{ _id: string; owner: string; at: Date }>;
  private wantedCheckpoint = 0;
  private writtenCheckpoint = 0;
  private checkpointWrite: Promise<void> | undefined;
  private checkpointTimer: NodeJS.Timeout | undefined;
  private checkpointWrittenAt = 0;
  /** Whether replaces claim their revision first; settled by `init()` from the server's kind. */
  private claimsNeeded: boolean;
  /** Exclusive writer only: the stored version of recently written or read documents. */
  private readonly cache = new Map<string, StoredDoc<D>>();
  /**
   * Exclusive writer over a collection that was empty at `init()`: every key it holds was written here,
   * so a key outside this set needs no read at all (the case of every new document during a replay).
   */
  private written: Set<string> | undefined;
  /**
   * FerretDB (v1) answers `_id: {$in: [...]}` by scanning the collection but `{_id: x}` from its
   * index: there, a batch reads its documents one `_id` at a time, several at once.
   */
  private readOneByOne = false;

  constructor(private readonly options: ProjectionStoreOptions<D>) {
    this.collection = options.db.collection<RawDoc>(options.projection.collection);
    this.checkpoints = options.db.collection(Collections.checkpoints);
    this.claims = options.db.collection(Collections.claims);
    this.claimsNeeded = options.writers !== 'exclusive';
  }

  get projection(): Projection<D> {
    return this.options.projection;
  }

  /** Creates the projection's indexes (idempotent) and learns whether the server needs revision claims. */
  async init(): Promise<void> {
    if (
      this.options.writers === 'exclusive' &&
      (await this.collection.findOne({}, { projection: { _id: 1 } })) === null
    )
      this.written = new Set();
    const info = await this.options.db
      .admin()
      .command({ buildInfo: 1 })
      .catch(() => undefined);
    const ferretdb = info !== undefined && 'ferretdbVersion' in info;
    this.readOneByOne = ferretdb;
    if (this.claimsNeeded) this.claimsNeeded = info === undefined || ferretdb;
    // Only the missing ones: FerretDB drops the connection when asked to create an index that exists.
    const existing = new Set(
      (
        await this.collection
          .listIndexes()
          .toArray()
          .catch(() => [])
      ).map((index) => index.name as string),
    );
    const indexes = (this.projection.indexes ?? []).filter((index) => !existing.has(index.name));
    if (indexes.length > 0) {
      await this.collection.createIndexes(
        indexes.map((i) => ({ key: i.key, name: i.name, ...(i.unique ? { unique: true } : {}) })),
      );
    }
  }

  /** The last position this projection applied (its checkpoint), 0 when none. */
  async checkpoint(): Promise<number> {
    await this.flushCheckpoint();
    return (await this.checkpoints.findOne({ _id: this.projection.name }))?.position ?? 0;
  }

  /** Applies a batch in order; one outcome per event (an event `evolve` throws on is dead-lettered, the rest apply). */
  apply(events: readonly PositionedEvent[]): Promise<ApplyResult<D>> {
    // A span per batch and read model: its MongoDB reads and writes, and the change notices it publishes.
    return withSpan(
      `project ${this.projection.collection}`,
      {
        kind: SpanKind.INTERNAL,
        attributes: { 'db.collection.name': this.projection.collection, 'puente.events': events.length },
      },
      async (span) => {
        const result = await this.applySplitting(events);
        span.setAttribute('puente.written', result.written);
        return result;
      },
    );
  }

  /**
   * One bad event, one dead letter: a batch whose write fails because of a document (larger than the
   * server takes, a field name it refuses) is split in halves, each applied on its own (in order), down
   * to the event whose document cannot be written; that one is dead-lettered and the rest apply. A
   * failure of the server or the connection still fails the whole batch, to be retried.
   */
  private async applySplitting(events: readonly PositionedEvent[]): Promise<ApplyResult<D>> {
    try {
      return await this.applyBatch(events);
    } catch (error) {
      if (!isDocumentError(error)) throw error;
      if (events.length === 1)
        return { outcomes: [Outcomes.dead(error)], docs: new Map(), written: 0, republished: 0, conflicts: 0 };
      const middle = Math.ceil(events.length / 2);
      const first = await this.applySplitting(events.slice(0, middle));
      const second = await this.applySplitting(events.slice(middle));
      return {
        outcomes: [...first.outcomes, ...second.outcomes],
        docs: new Map([...first.docs, ...second.docs]),
        written: first.written + second.written,
        republished: first.republished + second.republished,
        conflicts: first.conflicts + second.conflicts,
      };
    }
  }

  private async applyBatch(events: readonly PositionedEvent[]): Promise<ApplyResult<D>> {
    const outcomes: Outcome[] = events.map(() => Outcomes.ack);
    const touched = events.map((e, i) => {
      try {
        return keysOf(this.projection, e.event);
      } catch (error) {
        outcomes[i] = Outcomes.dead(error);
        return [];
      }
    });
    const allKeys = [...new Set(touched.flat())];
    const result: ApplyResult<D> = { outcomes, docs: new Map(), written: 0, republished: 0, conflicts: 0 };
    if (allKeys.length === 0) return result;

    let pending = allKeys;
    const maxRounds = this.options.maxConflictRetries ?? 10;
    const notices: ChangeNotice[] = [];
    for (let round = 0; pending.length > 0; round++) {
      if (round > maxRounds)
        throw new Error(
          `${this.projection.name}: compare-and-swap still conflicting after ${maxRounds} retries on ${pending.length} documents`,
        );
      // A lost race waits before it reads again. The writer that won may still be between its claim and its
      // replace; read again at once, the loser finds the old version and loses to the same claim again, so a
      // winner slowed down by a busy machine could use up every retry of the others without any new write.
      if (round > 0) await sleep(conflictBackoffMs(round));
      const states = await this.load(pending);
      await this.options.hooks?.afterRead?.(pending);
      const pendingSet = new Set(pending);
      events.forEach((e, i) => {
        if (outcomes[i]!.kind !== 'ack') return;
        for (const key of touched[i]!) {
          if (!pendingSet.has(key)) continue;
          const state = states.get(key)!;
          if (state.base && state.base._position === e.position && state.current === (state.base as D))
            state.republish = true;
          let next: D | null;
          try {
            next = evolveDoc(this.projection, state.current, e.event, { key, position: e.position });
          } catch (error) {
            outcomes[i] = Outcomes.dead(error);
            continue;
          }
          if (next !== state.current) {
            if (next === null) {
              outcomes[i] = Outcomes.dead(
                new Error(
                  `${this.projection.name}: evolve returned null for existing document ${key}; deletes are tombstones`,
                ),
              );
              continue;
            }
            state.current = next;
            state.position = e.position;
          }
        }
      });
      const { written, lost } = await this.write(states, notices);
      result.written += written;
      result.conflicts += lost.length;
      const lostSet = new Set(lost);
      for (const [key, state] of states) if (!lostSet.has(key)) result.docs.set(key, state.current);
      for (const [key, state] of states) {
        if (state.position === undefined && state.republish && state.base) {
          notices.push(this.notice(key, state.base));
          result.republished++;
        }
      }
      pending = lost;
    }
    // The notices go out after the writes they announce. The checkpoint follows on its own schedule.
    if (notices.length > 0 && this.options.notify !== false) {
      await this.options.hooks?.beforeNotify?.(notices);
      await this.publish(notices);
    }
    const positions = events.filter((_, i) => outcomes[i]!.kind === 'ack').map((e) => e.position);
    if (positions.length > 0) this.advanceCheckpoint(Math.max(...positions));
    return result;
  }

  /** Writes the latest checkpoint now (and waits for a write in flight); for a clean stop. */
  async close(): Promise<void> {
    await this.flushCheckpoint();
  }

  /**
   * The checkpoint is advisory: every document carries the position it was written at, which is what
   * makes a redelivered event a no-op. So no batch waits for it. It is written at most every
   * `checkpointEveryMs` with the highest position applied meanwhile, one write at a time: per batch it
   * cost one more FerretDB update (a PostgreSQL transaction) and a round trip the next batch waited for.
   * A failed write is tried again at the next interval. After a crash it may lag what the documents hold
   * by that interval, no more.
   */
  private advanceCheckpoint(position: number): void {
    this.wantedCheckpoint = Math.max(this.wantedCheckpoint, position);
    this.scheduleCheckpoint();
  }

  private scheduleCheckpoint(): void {
    if (this.checkpointTimer || this.checkpointWrite || this.wantedCheckpoint <= this.writtenCheckpoint) return;
    const wait = Math.max(0, this.checkpointWrittenAt + (this.options.checkpointEveryMs ?? 250) - Date.now());
    this.checkpointTimer = setTimeout(() => {
      this.checkpointTimer = undefined;
      // A failure leaves `writtenCheckpoint` behind, so the next schedule tries again.
      this.writeCheckpoint()
        .catch(() => undefined)
        .finally(() => this.scheduleCheckpoint());
    }, wait);
    this.checkpointTimer.unref();
  }

  private async flushCheckpoint(): Promise<void> {
    clearTimeout(this.checkpointTimer);
    this.checkpointTimer = undefined;
    while (this.wantedCheckpoint > this.writtenCheckpoint) await this.writeCheckpoint();
  }

  /**
   * One checkpoint write at a time, carrying the highest position asked for, so writers never queue on
   * one hot row (FerretDB convoys there). `$max` keeps it monotonic across stores. Two first upserts can
   * race into a duplicate key (FerretDB's upsert is not atomic): the loser's document exists by then,
   * so it updates again.
   */
  private writeCheckpoint(): Promise<void> {
    this.checkpointWrite ??= (async () => {
      try {
        const target = this.wantedCheckpoint;
        const update = { $max: { position: target }, $set: { updatedAt: new Date() } };
        try {
          await this.checkpoints.updateOne({ _id: this.projection.name }, update, { upsert: true });
        } catch (error) {
          if ((error as { code?: number }).code !== 11000) throw error;
          await this.checkpoints.updateOne({ _id: this.projection.name }, update);
        }
        this.writtenCheckpoint = Math.max(this.writtenCheckpoint, target);
      } finally {
        this.checkpointWrite = undefined;
        this.checkpointWrittenAt = Date.now();
      }
    })();
    return this.checkpointWrite;
  }

  private async load(keys: readonly string[]): Promise<Map<string, KeyState<D>>> {
    const byId = new Map<string, StoredDoc<D>>();
    const missing: string[] = [];
    for (const key of keys) {
      const cached = this.cache.get(key);
      if (cached) byId.set(key, cached);
      else if (!this.written || this.written.has(key)) missing.push(key);
    }
    if (missing.length > 0) {
      const found = this.readOneByOne
        ? await this.readEach(missing)
        : await this.collection.find({ _id: { $in: missing } }).toArray();
      for (const doc of found) {
        byId.set(doc._id, doc as unknown as StoredDoc<D>);
        this.remember(doc._id, doc as unknown as StoredDoc<D>);
      }
    }
    return new Map(
      keys.map((key) => {
        const base = byId.get(key) ?? null;
        return [key, { base, current: base as D | null, position: undefined, republish: false }];
      }),
    );
  }

  private async readEach(keys: readonly string[]): Promise<RawDoc[]> {
    const found: RawDoc[] = [];
    await eachConcurrently(keys, 16, async (key) => {
      const doc = await this.collection.findOne({ _id: key });
      if (doc) found.push(doc);
    });
    return found;
  }

  /** Keeps a stored version in the exclusive writer's cache (most recent last; the oldest beyond the size goes). */
  private remember(key: string, doc: StoredDoc<D>): void {
    if (this.options.writers !== 'exclusive') return;
    this.cache.delete(key);
    this.cache.set(key, doc);
    const limit = this.options.cacheSize ?? 50_000;
    if (this.cache.size > limit) this.cache.delete(this.cache.keys().next().value!);
    if (this.written) {
      this.written.add(key);
      // Past a few million keys the set costs more than the reads it saves.
      if (this.written.size > 5_000_000) this.written = undefined;
    }
  }

  /**
   * Writes every changed document with compare-and-swap; returns the keys that lost a race. A new
   * document is an insert (the unique `_id` makes a racing insert fail). A changed one is a replace
   * filtered on `{_id, _position}`, but FerretDB checks that filter in a query and then updates by `_id`
   * alone, so two writers that read the same version can both "match": each replace first claims the
   * next revision with an insert into `projection_claims` (`<collection>:<key>#<rev>`), atomic on both
   * servers, so only one concurrent writer per revision proceeds. Claims are released after the write.
   */
  private async write(
    states: Map<string, KeyState<D>>,
    notices: ChangeNotice[],
  ): Promise<{ written: number; lost: string[] }> {
    const wanted = new Map<string, { doc: StoredDoc<D>; basePosition: number | undefined }>();
    for (const [key, state] of states) {
      if (state.position === undefined || state.current === null) continue;
      const doc = {
        ...withoutSystem(state.current),
        _id: key,
        _position: state.position,
        _rev: (state.base?._rev ?? 0) + 1,
      } as StoredDoc<D>;
      wanted.set(key, { doc, basePosition: state.base?._position });
    }
    if (wanted.size === 0) return { written: 0, lost: [] };
    const replacing = [...wanted].filter(([, w]) => w.basePosition !== undefined).map(([key]) => key);
    const claim = this.claimsNeeded
      ? await this.claimRevisions(replacing.map((key) => ({ key, rev: wanted.get(key)!.doc._rev })))
      : { won: new Set(replacing), release: async () => undefined };
    const lost = replacing.filter((key) => !claim.won.has(key));
    const ops: AnyBulkWriteOperation<RawDoc>[] = [];
    for (const [key, { doc, basePosition }] of wanted) {
      if (basePosition === undefined) ops.push({ insertOne: { document: doc as unknown as RawDoc } });
      else if (claim.won.has(key))
        ops.push({
          replaceOne: { filter: { _id: key, _position: basePosition }, replacement: doc as unknown as RawDoc },
        });
    }
    let clean = true;
    try {
      const send = async (part: AnyBulkWriteOperation<RawDoc>[]) => {
        try {
          const result = await this.collection.bulkWrite(part, { ordered: false });
          if (result.insertedCount + result.matchedCount !== part.length) clean = false;
        } catch (error) {
          clean = false;
          rethrowUnlessDuplicateKeys(error);
        }
      };
      // On FerretDB replaces go in small bulks under a process-wide budget (see FERRETDB_UPDATE_CHUNK).
      const budgeted = this.readOneByOne ? ops.filter((op) => 'replaceOne' in op) : [];
      const free = budgeted.length > 0 ? ops.filter((op) => !('replaceOne' in op)) : ops;
      // A large batch goes as a few bulk writes at once: the server works on them side by side.
      const chunk = Math.max(WRITE_CHUNK, Math.ceil(free.length / WRITE_PARALLELISM));
      await Promise.all([
        ...Array.from({ length: Math.ceil(free.length / chunk) }, (_, i) =>
          send(free.slice(i * chunk, (i + 1) * chunk)),
        ),
        ...Array.from({ length: Math.ceil(budgeted.length / FERRETDB_UPDATE_CHUNK) }, (_, i) =>
          ferretdbUpdates.run(() => send(budgeted.slice(i * FERRETDB_UPDATE_CHUNK, (i + 1) * FERRETDB_UPDATE_CHUNK))),
        ),
      ]);
    } catch (error) {
      // Some of these writes may have landed: what this writer remembers of them is no longer sure.
      for (const key of wanted.keys()) {
        this.cache.delete(key);
        this.written?.add(key);
      }
      throw error;
    } finally {
      await claim.release();
    }
    const attempted = [...wanted.keys()].filter((key) => !lost.includes(key));
    if (!clean && attempted.length > 0) {
      // Which writes won? Those whose stored `_rev` and `_position` are what this batch wrote.
      const stored = await this.collection
        .find({ _id: { $in: attempted } })
        .project({ _position: 1, _rev: 1 })
        .toArray();
      const byId = new Map(stored.map((d) => [d._id as string, d]));
      for (const key of attempted) {
        const s = byId.get(key);
        const w = wanted.get(key)!.doc;
        if (!s || s._rev !== w._rev || s._position !== w._position) lost.push(key);
      }
    }
    const lostSet = new Set(lost);
    for (const [key, { doc }] of wanted) {
      if (lostSet.has(key)) {
        // Someone else wrote it: read it again next round.
        this.cache.delete(key);
        this.written?.add(key);
      } else {
        notices.push(this.notice(key, doc));
        this.remember(key, doc);
      }
    }
    return { written: wanted.size - lost.length, lost };
  }

  /**
   * Claims revisions with one unordered insert; a claim that already exists belongs to a concurrent
   * writer, unless it is older than CLAIM_TTL_MS (its writer died), in which case it is removed so the
   * next round can take it. Which claims are ours is read back by owner, whatever the error format.
   */
  private async claimRevisions(
    wants: { key: string; rev: number }[],
  ): Promise<{ won: Set<string>; release: () => Promise<void> }> {
    if (wants.length === 0) return { won: new Set(), release: async () => undefined };
    const owner = randomUUID();
    const idOf = (w: { key: string; rev: number }) => `${this.projection.collection}:${w.key}#${w.rev}`;
    const ids = wants.map(idOf);
    try {
      await this.claims.insertMany(
        wants.map((w) => ({ _id: idOf(w), owner, at: new Date() })),
        { ordered: false },
      );
    } catch (error) {
      rethrowUnlessDuplicateKeys(error);
    }
    const claims = await this.claims.find({ _id: { $in: ids } }).toArray();
    const won = new Set<string>();
    const abandoned: { _id: string; owner: string }[] = [];
    for (const w of wants) {
      const c = claims.find((x) => x._id === idOf(w));
      if (c?.owner === owner) won.add(w.key);
      else if (c && Date.now() - c.at.getTime() > CLAIM_TTL_MS) abandoned.push({ _id: c._id, owner: c.owner });
    }
    for (const a of abandoned) await this.claims.deleteOne(a);
    const mine = ids.filter((_, i) => won.has(wants[i]!.key));
    return {
      won,
      release: async () => void (mine.length > 0 && (await this.claims.deleteMany({ _id: { $in: mine }, owner }))),
    };
  }

  private notice(key: string, doc: StoredDoc<D>): ChangeNotice {
    return {
      collection: this.projection.collection,
      key,
      rev: doc._rev,
      position: doc._position,
      deleted: doc._deleted === true,
      doc: doc as unknown as Record<string, unknown>,
    };
  }

  /** One notice per document version; the message id makes a republished notice a no-op inside the window. */
  private async publish(notices: readonly ChangeNotice[]): Promise<void> {
    await Promise.all(
      notices.map((n) =>
        this.options.bus.publish(changeSubject(this.projection.channel(n.doc as unknown as StoredDoc<D>), n.key), n, {
          msgId: `${n.collection}:${n.key}:${n.position}`,
          expectStream: StreamNames.CHANGES,
        }),
      ),
    );
  }
}

/**
 * Server error codes a document causes, whatever the server's state: retrying the same write fails the
 * same way. BadValue, TypeMismatch, DollarPrefixedFieldName, EmptyFieldName, DottedFieldName,
 * DocumentValidationFailure, BSONObjectTooLarge, KeyTooLong, and "object to insert too large".
 */
const DOCUMENT_ERROR_CODES = new Set([2, 14, 52, 56, 57, 121, 10334, 17280, 17419, 17420]);

/** An error of the documents written (the batch is split to find the event), not of the server or the connection. */
export function isDocumentError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  // The driver refuses to serialize a document over the server's maxBsonObjectSize, or a bad value.
  if (error.name === 'BSONError' || error.name === 'MongoInvalidArgumentError' || error instanceof RangeError)
    return true;
  const codes: number[] = [];
  const { code, writeErrors } = error as { code?: unknown; writeErrors?: { code?: number }[] | { code?: number } };
  if (typeof code === 'number') codes.push(code);
  for (const e of Array.isArray(writeErrors) ? writeErrors : writeErrors ? [writeErrors] : [])
    if (typeof e.code === 'number') codes.push(e.code);
  return codes.some((c) => DOCUMENT_ERROR_CODES.has(c));
}

/** Duplicate keys (a racing insert or claim) are expected outcomes; any other write error is a real failure. */
function rethrowUnlessDuplicateKeys(error: unknown): void {
  const writeErrors = (error as { writeErrors?: { code?: number }[] | { code?: number } }).writeErrors;
  const codes = Array.isArray(writeErrors) ? writeErrors.map((e) => e.code) : writeErrors ? [writeErrors.code] : [];
  if (codes.length === 0 || codes.some((code) => code !== 11000)) throw error;
}

function withoutSystem<D extends ProjectedDoc>(doc: D): D {
  const copy = { ...doc } as Record<string, unknown>;
  for (const field of SYSTEM) delete copy[field];
  return copy as D;
}
