import { randomUUID } from 'node:crypto';
import type { Db } from 'mongodb';
import { DeliverPolicy } from 'nats';
import { canonicalJson, Collections, decodeEvent, RealtimeSubjects, type ConsumerDefinition } from '@puente/contracts';
import { eachConcurrently, type Bus, type Outcome } from '@puente/bus';
import type { PositionedEvent } from './store.js';

/** What a rebuild needs to know about one projection (or a group applied together). */
export interface RebuildTarget {
  /** The name `puente replay` takes (and the lock's key). */
  name: string;
  /** The live consumer: its stream and subjects are replayed; it is paused while the rebuild swaps in. */
  consumer: ConsumerDefinition;
  /**
   * Live collections, their checkpoint names, and the documents the consumer's subjects cover (`scope`,
   * a filter: a consumer narrowed to some datasets or sessions rebuilds only theirs; default all).
   */
  collections: { collection: string; checkpoint: string; scope?: Record<string, unknown> }[];
  /** Appliers writing to `<collection><suffix>` without change notices. */
  staging(suffix: string): { init(): Promise<void>; apply(events: PositionedEvent[]): Promise<Outcome[]> };
}

export interface RebuildProgress {
  phase: 'replaying' | 'catching up' | 'swapping' | 'done';
  position: number;
  end: number;
  events: number;
  eventsPerSecond: number;
  etaSeconds: number | undefined;
}

export interface RebuildResult {
  events: number;
  seconds: number;
  position: number;
  inserted: number;
  replaced: number;
  unchanged: number;
  removed: number;
  /** Live documents a replay `from` a later position did not produce, left as they were (never removed). */
  kept: number;
  /** Events the rebuild could not apply (they are in the live DLQ's hands, as before). */
  failed: number;
}

export class RebuildBusyError extends Error {
  readonly code = 'REBUILD_BUSY';
}

/** KV bucket of rebuild locks: one rebuild per projection at a time. */
export const REBUILD_BUCKET = 'puente_rebuilds';
const SUFFIX = '__rebuild';
const SYSTEM = new Set(['_rev']);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Rebuilds a projection from `EVENTS` while the live one keeps serving:
 * 1. takes the projection's lock (KV, with a heartbeat: a rebuild whose process died is taken over);
 * 2. replays the live consumer's subjects from `from` into empty staging collections at full speed
 *    (batches, one writer, no change notices), with progress;
 * 3. pauses the live consumer (JetStream consumer pause, bounded: it resumes by itself if this process
 *    dies), waits for its batch in flight, and catches the staging up to the end of the stream;
 * 4. brings each live collection to the staging state document by document: inserts what is new,
 *    replaces what differs (compare-and-swap on the live `_rev`, which keeps rising, so realtime
 *    clients never see a version go back), removes what the rebuild no longer has; readers never see
 *    an empty collection, and a document that exists before and after never disappears;
 * 5. advances the live checkpoints, tells realtime clients to `resync`, resumes the live consumer (it
 *    re-applies what the staging already had, which changes nothing: projections ignore events not
 *    newer than a document's version), drops the staging collections and releases the lock.
 */
export async function rebuild(options: {
  bus: Bus;
  db: Db;
  target: RebuildTarget;
  from?: number;
  batchSize?: number;
  onProgress?: (progress: RebuildProgress) => void;
  pauseMs?: number;
}): Promise<RebuildResult> {
  const { bus, db, target } = options;
  const kv = await bus.kv(REBUILD_BUCKET, { history: 1 });
  const key = target.name.replace(/[^-/_=.a-zA-Z0-9]/g, '_');
  const owner = randomUUID();
  const lock = () => new TextEncoder().encode(JSON.stringify({ owner, at: Date.now() }));
  let revision: number;
  const held = await kv.get(key);
  if (held && held.length > 0 && held.operation === 'PUT') {
    const { at } = JSON.parse(new TextDecoder().decode(held.value)) as { at: number };
    if (Date.now() - at < 30_000) throw new RebuildBusyError(`a rebuild of ${target.name} is running`);
    revision = await kv.update(key, lock(), held.revision);
  } else {
    try {
      revision = await kv.create(key, lock());
    } catch {
      throw new RebuildBusyError(`a rebuild of ${target.name} has just started elsewhere`);
    }
  }
  const heartbeat = setInterval(
    () =>
      void kv
        .update(key, lock(), revision)
        .then((r) => (revision = r))
        .catch(() => undefined),
    5_000,
  );
  const started = performance.now();
  let paused = false;
  const live = target.consumer;
  try {
    for (const { collection } of target.collections)
      await db
        .collection(`${collection}${SUFFIX}`)
        .drop()
        .catch(() => undefined);
    const staging = target.staging(SUFFIX);
    await staging.init();
    let position = (options.from ?? 1) - 1;
    let events = 0;
    let failed = 0;
    const report = (phase: RebuildProgress['phase'], end: number) => {
      const seconds = (performance.now() - started) / 1000;
      const rate = events / Math.max(0.001, seconds);
      options.onProgress?.({
        phase,
        position,
        end,
        events,
        eventsPerSecond: rate,
        etaSeconds: rate > 0 ? Math.max(0, (end - position) / rate) : undefined,
      });
    };
    /** Applies everything after `position` up to the stream's end for the consumer's subjects. */
    const replay = async (phase: RebuildProgress['phase']) => {
      const end = (await bus.jsm.streams.info(live.stream)).state.last_seq;
      if (position >= end) return;
      const consumer = await bus.js.consumers.get(live.stream, {
        filterSubjects: [...live.filterSubjects],
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: position + 1,
      });
      try {
        for (;;) {
          const batch: PositionedEvent[] = [];
          let last: { seq: number; pending: number } | undefined;
          for await (const msg of await consumer.fetch({ max_messages: options.batchSize ?? 1_024, expires: 1_000 })) {
            last = { seq: msg.seq, pending: msg.info.pending };
            try {
              batch.push({ event: decodeEvent(msg.data), position: msg.seq });
            } catch {
              failed++;
            }
          }
          if (batch.length > 0) {
            const outcomes = await staging.apply(batch);
            failed += outcomes.filter((o) => o.kind !== 'ack').length;
            events += batch.length;
          }
          if (last) position = last.seq;
          report(phase, end);
          if (!last || last.pending === 0 || position >= end) break;
        }
      } finally {
        await consumer.delete().catch(() => undefined);
      }
      position = Math.max(position, end);
    };
    await replay('replaying');

    // Swap: stop the live projector between batches (bounded pause), then finish the replay.
    const liveExists = await bus.jsm.consumers.info(live.stream, live.durable).then(
      () => true,
      () => false,
    );
    if (liveExists) {
      await bus.jsm.consumers.pause(live.stream, live.durable, new Date(Date.now() + (options.pauseMs ?? 10 * 60_000)));
      paused = true;
      for (let i = 0; i < 300; i++) {
        const info = await bus.jsm.consumers.info(live.stream, live.durable);
        if (info.num_ack_pending === 0) break;
        await sleep(100);
      }
    }
    await replay('catching up');
    report('swapping', position);
    const counts = { inserted: 0, replaced: 0, unchanged: 0, removed: 0, kept: 0 };
    for (const { collection, scope } of target.collections) {
      // A replay from a later position saw only part of the history: a live document it did not
      // produce may come from events before `from`, so it stays.
      const copied = await swapIn(db, `${collection}${SUFFIX}`, collection, scope ?? {}, (options.from ?? 1) <= 1);
      counts.inserted += copied.inserted;
      counts.replaced += copied.replaced;
      counts.unchanged += copied.unchanged;
      counts.removed += copied.removed;
      counts.kept += copied.kept;
    }
    const checkpoints = db.collection<{ _id: string; position: number; updatedAt: Date }>(Collections.checkpoints);
    for (const { checkpoint } of target.collections)
      await checkpoints.updateOne(
        { _id: checkpoint },
        { $max: { position }, $set: { updatedAt: new Date() } },
        { upsert: true },
      );
    bus.nc.publish(
      RealtimeSubjects.resync,
      JSON.stringify({ collections: target.collections.map((c) => c.collection) }),
    );
    await bus.nc.flush();
    for (const { collection } of target.collections)
      await db
        .collection(`${collection}${SUFFIX}`)
        .drop()
        .catch(() => undefined);
    report('done', position);
    return { events, seconds: (performance.now() - started) / 1000, position, failed, ...counts };
  } finally {
    clearInterval(heartbeat);
    if (paused) await bus.jsm.consumers.resume(live.stream, live.durable).catch(() => undefined);
    await kv.delete(key).catch(() => undefined);
  }
}

/**
 * Brings `live` to the state of `staging`, document by document (see `rebuild`); documents staging
 * does not have are removed only when `removeMissing` (a replay from the start), else counted as kept.
 */
async function swapIn(
  db: Db,
  stagingName: string,
  liveName: string,
  scope: Record<string, unknown>,
  removeMissing: boolean,
): Promise<{ inserted: number; replaced: number; unchanged: number; removed: number; kept: number }> {
  type Doc = { _id: string; _rev?: number; [field: string]: unknown };
  const staging = db.collection<Doc>(stagingName);
  const live = db.collection<Doc>(liveName);
  const counts = { inserted: 0, replaced: 0, unchanged: 0, removed: 0, kept: 0 };
  const seen = new Set<string>();
  const content = (doc: Doc) => canonicalJson(Object.fromEntries(Object.entries(doc).filter(([k]) => !SYSTEM.has(k))));
  let batch: Doc[] = [];
  const flush = async () => {
    const current = new Map<string, Doc>();
    // One `_id` at a time, a few at once: FerretDB answers `$in` with a scan.
    await eachConcurrently(batch, 16, async ({ _id }) => {
      const doc = await live.findOne({ _id });
      if (doc) current.set(doc._id, doc);
    });
    for (const doc of batch) {
      const before = current.get(doc._id);
      if (before && content(before) === content(doc)) {
        counts.unchanged++;
        continue;
      }
      const next = { ...doc, _rev: (before?._rev ?? 0) + 1 };
      if (!before) {
        await live.insertOne(next);
        counts.inserted++;
      } else {
        const result = await live.replaceOne({ _id: doc._id, _rev: before._rev } as never, next);
        if (result.matchedCount === 0) {
          // Someone wrote it since the read (a live writer that was not paused): take theirs into account once more.
          const again = await live.findOne({ _id: doc._id });
          await live.replaceOne({ _id: doc._id } as never, { ...doc, _rev: (again?._rev ?? 0) + 1 });
        }
        counts.replaced++;
      }
    }
    batch = [];
  };
  for await (const doc of staging.find({}).sort({ _id: 1 })) {
    seen.add(doc._id);
    batch.push(doc);
    if (batch.length >= 256) await flush();
  }
  if (batch.length > 0) await flush();
  const gone: string[] = [];
  for await (const doc of live.find(scope as never, { projection: { _id: 1 } }))
    if (!seen.has(doc._id)) gone.push(doc._id);
  if (!removeMissing) {
    counts.kept = gone.length;
    return counts;
  }
  for (let i = 0; i < gone.length; i += 500)
    counts.removed += (await live.deleteMany({ _id: { $in: gone.slice(i, i + 500) } })).deletedCount;
  return counts;
}
