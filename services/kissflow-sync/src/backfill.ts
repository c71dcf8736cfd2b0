import { createHash, randomUUID } from 'node:crypto';
import type { Db } from 'mongodb';
import type { KV } from 'nats';
import type { Logger } from 'pino';
import { canonicalJson, Collections, createEvent, type DomainEvent } from '@puente/contracts';
import { eachConcurrently, eventIdFor, readJobState, ResumableJob, type Bus, type JobState } from '@puente/bus';
import { kissflowFrom, type KissflowClient, type KissflowRow, type ListPage } from './client.js';
import type { KissflowConfig } from './config.js';

/** KV bucket of backfill runs (one key per dataset and view) and, while reconciling, the row ids each page returned. */
export const BACKFILL_BUCKET = 'kissflow_backfill';

/** Opens (or creates) the backfill runs' bucket. */
export function openBackfillBucket(bus: Bus): Promise<KV> {
  return bus.kv(BACKFILL_BUCKET, { history: 1 });
}

/** A backfill runner from configuration (the CLI and the scheduled reconciliation). */
export function backfillFrom(deps: { bus: Bus; kv: KV; db?: Db; logger: Logger; config: KissflowConfig }): Backfill {
  const client = kissflowFrom(deps.config);
  if (typeof client === 'string') throw new Error(client);
  return new Backfill({
    bus: deps.bus,
    kv: deps.kv,
    client,
    logger: deps.logger,
    ...(deps.db ? { db: deps.db } : {}),
    pageSize: deps.config.KISSFLOW_PAGE_SIZE,
    concurrency: deps.config.KISSFLOW_CONCURRENCY,
    staleAfterMs: deps.config.KISSFLOW_BACKFILL_STALE_MS,
  });
}

export interface BackfillOptions {
  dataset: string;
  view?: string;
  /** Also find rows that no longer exist (the whole dataset only) and publish their deletes. */
  reconcile?: boolean;
}

export interface BackfillCounts {
  pages: number;
  /** Rows published as upserted. */
  rows: number;
  /** Rows whose modification time had to be read from the row endpoint. */
  details: number;
  /** List items without an `_id` (skipped). */
  invalid: number;
  /** Rows in the read model that the listing did not return, checked one by one. */
  candidates: number;
  /** Of those, confirmed gone and published as deleted. */
  deleted: number;
  /** Of those, still there (the listing missed them: pages shift while rows change). */
  missed: number;
}

/** Where a backfill is, kept in KV after every page: enough to resume after a crash. */
export interface BackfillState extends JobState {
  runId: string;
  dataset: string;
  view?: string;
  reconcile: boolean;
  startedAt: string;
  finishedAt?: string;
  stage: 'list' | 'confirm' | 'done';
  /** Next page to read (1-based). */
  page: number;
  pageSize: number;
  /** Rows the dataset (or view) has, when the list says it. */
  total?: number;
  counts: BackfillCounts;
}

/** Another worker is running this backfill right now. */
export class BackfillBusyError extends Error {
  readonly code = 'BACKFILL_BUSY';
}

const SOURCE = 'urn:puente:kissflow-sync:backfill';

/**
 * The message id of a row's upsert: dataset, row id, modification time and a digest of the row's
 * canonical JSON, exactly as the gateway computes it for a webhook, so the same row from either is
 * one delivery inside the stream's duplicate window.
 */
export function rowMessageId(
  dataset: string,
  rowId: string,
  modifiedAt: string | null,
  row: Record<string, unknown>,
): string {
  return `kissflow:${createHash('sha256')
    .update(`${dataset}\n${rowId}\n${modifiedAt ?? ''}\n${canonicalJson(row)}`)
    .digest('hex')
    .slice(0, 40)}`;
}

/** `_modified_at` as an ISO time, or null when absent or unreadable. */
export function modifiedAtOf(row: KissflowRow): string | null {
  const ms = typeof row._modified_at === 'string' ? Date.parse(row._modified_at) : Number.NaN;
  return Number.isNaN(ms) ? null : new Date(ms).toISOString();
}

/**
 * A backfill of one Kissflow dataset (or view): pages through the list endpoint and publishes each row
 * as `kissflow.record.upserted.v1` (reading a row's detail when the list lacks its modification time),
 * the same event a webhook produces, so one projection applies both. One run per dataset and view at a
 * time (a KV key taken with compare-and-set); the next page is saved after each page's events are acked,
 * so a run that crashed or failed resumes from there. With `reconcile`, the ids each page returned are
 * kept too, and at the end every row the read model has but the listing did not return is checked
 * against the row endpoint: a 404 publishes `kissflow.record.deleted.v1`, a row that is there after all
 * is published again.
 */
export class Backfill {
  private readonly owner = randomUUID();

  constructor(
    private readonly deps: {
      bus: Bus;
      kv: KV;
      client: KissflowClient;
      logger: Logger;
      db?: Db;
      pageSize: number;
      concurrency?: number;
      staleAfterMs?: number;
    },
  ) {}

  get staleAfterMs(): number {
    return this.deps.staleAfterMs ?? 60_000;
  }

  status(options: BackfillOptions): Promise<BackfillState | undefined> {
    return readJobState<BackfillState>(this.deps.kv, runKey(options));
  }

  /** Runs (or resumes) a backfill to the end; `onProgress` after every page. */
  async run(options: BackfillOptions, onProgress?: (state: BackfillState) => void): Promise<BackfillState> {
    if (options.reconcile && options.view)
      throw new Error('reconciliation lists the whole dataset: run it without --view');
    if (options.reconcile && !this.deps.db)
      throw new Error('reconciliation needs the read model: no MongoDB configured');
    const job = await this.acquire(options, onProgress);
    let state = job.state;
    const save = async (next: BackfillState) => {
      await job.save(next);
      state = next;
    };
    onProgress?.(state);
    let saving: Promise<void> | undefined;
    try {
      // The next page is fetched while the current one is published.
      let prefetched: { page: number; list: Promise<ListPage> } | undefined;
      const fetchPage = (n: number) => {
        const list = this.deps.client.list(state.dataset, n, state.pageSize, state.view);
        list.catch(() => undefined);
        return { page: n, list };
      };
      // A page's save runs while the next page is published: a save is issued only after the previous
      // one landed and the page's events are stored, so a crash re-reads at most the two pages after the last save.
      const base = state;
      let pageNo = state.page;
      let { counts, total } = state;
      while (base.stage === 'list') {
        const page = await (prefetched?.page === pageNo ? prefetched : fetchPage(pageNo)).list;
        const more =
          page.received === base.pageSize && (page.total === undefined || pageNo * base.pageSize < page.total);
        prefetched = more ? fetchPage(pageNo + 1) : undefined;
        const { rows, details } = await this.complete(base.dataset, page.rows);
        await Promise.all([
          this.publish(rows.map((row) => this.upsert(base.dataset, row, 'backfill'))),
          base.reconcile
            ? this.deps.kv.put(seenKey(base.runId, pageNo), encodeJson(page.rows.map((row) => String(row._id))))
            : undefined,
        ]);
        counts = {
          ...counts,
          pages: counts.pages + 1,
          rows: counts.rows + rows.length,
          details: counts.details + details,
          invalid: counts.invalid + page.invalid,
        };
        total = page.total ?? total;
        const next: BackfillState = {
          ...base,
          ...(total !== undefined ? { total } : {}),
          page: more ? pageNo + 1 : pageNo,
          stage: more ? 'list' : base.reconcile ? 'confirm' : 'done',
          counts,
        };
        await saving;
        saving = save(next);
        if (!more) break;
        pageNo++;
      }
      await saving;
      if (state.stage === 'confirm')
        await save({ ...state, stage: 'done', counts: { ...state.counts, ...(await this.confirmDeletes(state)) } });
      if (state.reconcile) await this.forgetSeen(state);
      await save({ ...state, phase: 'completed', finishedAt: new Date().toISOString() });
      return state;
    } catch (error) {
      const message = (error as Error).message;
      await saving?.catch(() => undefined);
      this.deps.logger.error(
        { dataset: state.dataset, view: state.view, runId: state.runId, page: state.page, err: message },
        'kissflow backfill failed',
      );
      await save({ ...state, phase: 'failed', error: message }).catch(() => undefined);
      throw error;
    }
  }

  /** Rows with their modification time: those the list sent without it are read one by one (a few at once). */
  private async complete(dataset: string, rows: KissflowRow[]): Promise<{ rows: KissflowRow[]; details: number }> {
    const out: (KissflowRow | null)[] = [...rows];
    const missing = rows.map((row, i) => (modifiedAtOf(row) === null ? i : -1)).filter((i) => i >= 0);
    await this.each(missing, async (i) => {
      out[i] = await this.deps.client.row(dataset, String(rows[i]!._id));
    });
    // A row deleted between the list and its detail is left out: reconciliation will find it gone.
    return { rows: out.filter((row): row is KissflowRow => row !== null), details: missing.length };
  }

  /** Every row the read model has that the listing did not return: gone (404) or missed. */
  private async confirmDeletes(
    state: BackfillState,
  ): Promise<Pick<BackfillCounts, 'candidates' | 'deleted' | 'missed'>> {
    const seen = new Set<string>();
    for (let page = 1; page <= state.page; page++) {
      const entry = await this.deps.kv.get(seenKey(state.runId, page));
      if (entry && entry.length > 0)
        for (const id of JSON.parse(new TextDecoder().decode(entry.value)) as string[]) seen.add(id);
    }
    const stored = await this.deps
      .db!.collection<{ _id: string; rowId: string }>(Collections.kissflowRecords)
      .find({ dataset: state.dataset, _deleted: { $ne: true } }, { projection: { rowId: 1 } })
      .toArray();
    const candidates = stored.map((doc) => doc.rowId).filter((id) => !seen.has(id));
    if (candidates.length === 0) return { candidates: 0, deleted: 0, missed: 0 };
    if (seen.size === 0)
      throw new Error(
        `reconciliation of ${state.dataset}: the listing returned no rows but the read model has ${stored.length}; refusing to delete them all (check the dataset id and the key's permissions)`,
      );
    // The row endpoint must find a row the listing just returned, or its 404s prove nothing.
    const probe = [...seen][0]!;
    if ((await this.deps.client.row(state.dataset, probe)) === null) {
      throw new Error(
        `reconciliation of ${state.dataset}: the row endpoint answers 404 for row ${probe}, which the listing returned; cannot confirm deletions`,
      );
    }
    let deleted = 0;
    let missed = 0;
    const items: { event: DomainEvent; msgId: string }[] = [];
    await this.each(candidates, async (rowId) => {
      const row = await this.deps.client.row(state.dataset, rowId);
      if (row) {
        missed++;
        items.push(this.upsert(state.dataset, row, 'reconcile'));
        return;
      }
      deleted++;
      const msgId = `kissflow:deleted:${createHash('sha256').update(`${state.dataset}\n${rowId}`).digest('hex').slice(0, 40)}`;
      items.push({
        event: createEvent(
          'kissflow.record.deleted.v1',
          { dataset: state.dataset, rowId, detectedAt: new Date().toISOString() },
          { source: SOURCE, id: eventIdFor(msgId) },
        ) as DomainEvent,
        msgId,
      });
    });
    await this.publish(items);
    if (deleted > 0) this.deps.logger.info({ dataset: state.dataset, deleted, missed }, 'kissflow rows found deleted');
    return { candidates: candidates.length, deleted, missed };
  }

  private upsert(
    dataset: string,
    row: KissflowRow,
    origin: 'backfill' | 'reconcile',
  ): { event: DomainEvent; msgId: string } {
    const rowId = String(row._id);
    const modifiedAt = modifiedAtOf(row);
    const msgId = rowMessageId(dataset, rowId, modifiedAt, row);
    return {
      event: createEvent(
        'kissflow.record.upserted.v1',
        { dataset, rowId, fields: row, modifiedAt, origin },
        { source: SOURCE, id: eventIdFor(msgId) },
      ) as DomainEvent,
      msgId,
    };
  }

  private async publish(items: { event: DomainEvent; msgId: string }[]): Promise<void> {
    await this.deps.bus.publishEvents(items);
  }

  private async each<T>(items: readonly T[], work: (item: T) => Promise<void>): Promise<void> {
    await eachConcurrently(items, this.deps.concurrency ?? 8, work);
  }

  private async forgetSeen(state: BackfillState): Promise<void> {
    for (let page = 1; page <= state.page; page++)
      await this.deps.kv.purge(seenKey(state.runId, page)).catch(() => undefined);
  }

  /** Takes the run: a new one, the resumption of one that crashed or failed (same options), or BackfillBusyError. */
  private acquire(
    options: BackfillOptions,
    onProgress?: (state: BackfillState) => void,
  ): Promise<ResumableJob<BackfillState>> {
    const what = `${options.dataset}${options.view ? ` (view ${options.view})` : ''}`;
    return ResumableJob.claim<BackfillState>({
      kv: this.deps.kv,
      key: runKey(options),
      owner: this.owner,
      staleAfterMs: this.staleAfterMs,
      ...(onProgress ? { onProgress } : {}),
      fresh: () => ({
        runId: randomUUID(),
        dataset: options.dataset,
        ...(options.view ? { view: options.view } : {}),
        reconcile: options.reconcile === true,
        owner: this.owner,
        heartbeatAt: Date.now(),
        startedAt: new Date().toISOString(),
        phase: 'running',
        stage: 'list',
        page: 1,
        pageSize: this.deps.pageSize,
        counts: { pages: 0, rows: 0, details: 0, invalid: 0, candidates: 0, deleted: 0, missed: 0 },
      }),
      resume: (current) => {
        if (current.phase === 'completed' || current.reconcile !== (options.reconcile === true)) return undefined;
        this.deps.logger.info(
          { dataset: current.dataset, view: current.view, runId: current.runId, page: current.page },
          'resuming a kissflow backfill that stopped',
        );
        return current;
      },
      discard: async (current) => {
        if (current.reconcile && current.phase !== 'completed') await this.forgetSeen(current);
      },
      busy: (reason) =>
        new BackfillBusyError(
          reason.kind === 'started-elsewhere'
            ? `a backfill of ${what} has just started elsewhere`
            : reason.kind === 'running'
              ? `a backfill of ${what} is running (page ${reason.current.page}, ${reason.current.counts.rows} rows so far)`
              : `another worker took the backfill of ${what}`,
        ),
    });
  }
}

/** KV keys allow `[-/_=.a-zA-Z0-9]`: dataset and view go in base64url. */
const runKey = (options: BackfillOptions) =>
  `run.${Buffer.from(`${options.dataset}\n${options.view ?? ''}`).toString('base64url')}`;
const seenKey = (runId: string, page: number) => `seen.${runId}.${page}`;
const encodeJson = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
