import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { createEvent, decodeEvent, type DomainEvent, type DomainEventOf } from '@puente/contracts';
import {
  eachConcurrently,
  Outcomes,
  PermanentError,
  SpanKind,
  withSpan,
  type Bus,
  type Delivery,
  type Outcome,
} from '@puente/bus';
import type { ProjectionStore } from '@puente/projection';
import { linkKey, type BitrixLinkDoc, type MultiValueEntry } from './links.js';
import { mapCompany, originIdOf, type CompanyMapping, type DesiredCompany } from './mapping.js';
import { isResync } from './resync.js';

/** One sub-call of a Bitrix24 `batch`. */
export interface BitrixCommand {
  method: string;
  params?: Record<string, unknown>;
}

/** What the pusher needs from a Bitrix24 client: `batch`, whose sub-calls fail one by one (HTTP 200 with `result_error`). */
export interface BitrixBatchApi {
  batch(
    commands: Record<string, BitrixCommand>,
    options?: { halt?: boolean },
  ): Promise<{ result: Record<string, unknown>; errors: Record<string, { error: string; error_description: string }> }>;
}

/** Most sub-calls Bitrix24 runs in one `batch`. */
export const BATCH_LIMIT = 50;

type GlymsEvent =
  DomainEventOf<'glyms.row.created.v1'> | DomainEventOf<'glyms.row.updated.v1'> | DomainEventOf<'glyms.row.deleted.v1'>;

/** The changes of one customer in a batch: only the newest state is pushed. */
interface Group {
  sourceKey: string;
  indexes: number[];
  /** The newest change by stream position (a redelivery arrives after newer changes, not in stream order). */
  last: GlymsEvent;
  /** Index in the batch of `last`: the delivery that carries the group's outcome. */
  lastIndex: number;
  positions: string[];
  /** `EVENTS` sequence of the newest change. */
  sequence: number;
  redelivered: boolean;
}

/** What the pusher knows of a company in Bitrix24 (from `bitrix_links`). */
interface LinkState {
  bitrixId: string | null;
  status: BitrixLinkDoc['status'];
  multiValues: Record<string, MultiValueEntry[]>;
  digest: string | null;
  /** `EVENTS` sequence of the newest change written (0: unknown). */
  sourceSequence: number;
}

type Plan =
  | { kind: 'unchanged'; bitrixId: string | null }
  /** Deleted in the ERP and never (or no longer) in Bitrix24: nothing to call. */
  | { kind: 'gone' }
  | { kind: 'invalid'; code: string; message: string; bitrixId: string | null }
  | { kind: 'delete'; bitrixId: string }
  | { kind: 'update'; bitrixId: string; company: DesiredCompany; current: Record<string, MultiValueEntry[]> }
  | { kind: 'create'; company: DesiredCompany };

/** How one company ended in this flush. */
type Result =
  | {
      kind: 'synced';
      action: 'created' | 'updated' | 'deleted' | 'unchanged';
      bitrixId: string | null;
      multiValues?: Record<string, MultiValueEntry[]>;
      digest?: string;
    }
  | { kind: 'failed'; code: string; message: string; retryable: boolean; bitrixId: string | null };

/** Per-command error codes that will not succeed on a retry: the change is reported and dead-lettered. */
const PERMANENT_ERRORS = new Set([
  'ERROR_CORE',
  'ERROR_ARGUMENT',
  'INVALID_CREDENTIALS',
  'ACCESS_DENIED',
  'insufficient_scope',
  'user_access_error',
  'ERROR_METHOD_NOT_FOUND',
  '',
]);
const READ_FAILED = { error: 'READ_FAILED', error_description: 'Bitrix24 returned no company for crm.company.get' };
const NOT_FOUND = (error: { error: string; error_description: string }) =>
  error.error === 'NOT_FOUND' || /not found/i.test(error.error_description);

const short = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 32);

/** Multi-value update entries that make `current` hold exactly `desired`, by position: change, add, delete by `ID`. */
export function diffMultiValue(
  desired: readonly { value: string; valueType: string }[],
  current: readonly MultiValueEntry[],
): { ops: Record<string, string>[]; kept: MultiValueEntry[]; added: string[] } {
  const ops: Record<string, string>[] = [];
  const kept: MultiValueEntry[] = [];
  const added: string[] = [];
  for (let i = 0; i < Math.max(desired.length, current.length); i++) {
    const want = desired[i];
    const have = current[i];
    if (want && have) {
      if (want.value !== have.value) ops.push({ ID: have.id, VALUE: want.value, VALUE_TYPE: want.valueType });
      kept.push({ id: have.id, value: want.value });
    } else if (want) {
      ops.push({ VALUE: want.value, VALUE_TYPE: want.valueType });
      added.push(want.value);
    } else if (have) {
      ops.push({ ID: have.id, DELETE: 'Y' });
    }
  }
  return { ops, kept, added };
}

/** Entries of a company as `crm.company.get`/`list` return them: `[{ID, VALUE, VALUE_TYPE, TYPE_ID}]`. */
function entriesOf(company: unknown, field: string): MultiValueEntry[] {
  const list = (company as Record<string, unknown> | null)?.[field];
  if (!Array.isArray(list)) return [];
  return list
    .filter((e): e is { ID: unknown; VALUE: unknown } => typeof e === 'object' && e !== null)
    .map((e) => ({ id: String(e.ID), value: String(e.VALUE ?? '') }));
}

export interface CompanyPusherOptions {
  api: BitrixBatchApi;
  bus: Bus;
  links: ProjectionStore<BitrixLinkDoc>;
  mapping: CompanyMapping;
  logger: Logger;
  now?: () => Date;
  /** Links kept in memory (this process is the only writer while it holds the lease). Default 50,000. */
  cacheSize?: number;
}

/**
 * Pushes ERP customer changes to Bitrix24 companies. A batch of changes (the consumer lingers a moment
 * so that changes close together arrive together) is coalesced to the newest state per customer; a
 * customer whose mapped fields did not change makes no call; the rest go as `batch` requests of up to
 * 50 sub-calls, a customer's calls never split across two. A company is found by `ORIGINATOR_ID` and
 * `ORIGIN_ID` before it is created, so a push retried after a crash does not create it twice; phones and
 * e-mails are changed by the entry ids remembered in `bitrix_links`, so they never pile up. Every
 * outcome is an event (`bitrix.entity.synced|failed.v1`), applied to `bitrix_links` at once.
 */
export class CompanyPusher {
  private readonly cache = new Map<string, LinkState>();
  private readonly now: () => Date;
  /** Requests and sub-calls sent (for benchmarks and logs). */
  readonly stats = { requests: 0, commands: 0, companies: 0 };

  constructor(private readonly options: CompanyPusherOptions) {
    this.now = options.now ?? (() => new Date());
  }

  /** The consumer's batch handler. */
  async handle(deliveries: readonly Delivery[]): Promise<Outcome[]> {
    const outcomes: Outcome[] = deliveries.map(() => Outcomes.ack);
    const groups = new Map<string, Group>();
    deliveries.forEach((delivery, i) => {
      let event: DomainEvent;
      try {
        event = decodeEvent(delivery.data);
      } catch (error) {
        outcomes[i] = Outcomes.dead(error);
        return;
      }
      if (
        event.type !== 'glyms.row.created.v1' &&
        event.type !== 'glyms.row.updated.v1' &&
        event.type !== 'glyms.row.deleted.v1'
      )
        return;
      const [schema, table] = this.options.mapping.table.includes('.')
        ? this.options.mapping.table.split('.')
        : ['public', this.options.mapping.table];
      if (event.data.schema !== schema || event.data.table !== table) return;
      const sourceKey = originIdOf(event.data.key, this.options.mapping);
      const group = groups.get(sourceKey) ?? {
        sourceKey,
        indexes: [],
        last: event,
        lastIndex: i,
        positions: [],
        sequence: 0,
        redelivered: false,
      };
      // A batch is in stream order except for redeliveries (a change retried after a backoff comes after
      // newer ones): the newest change is the one with the highest position, not the last one here.
      if (delivery.position >= group.sequence) {
        group.sequence = delivery.position;
        group.last = event;
        group.lastIndex = i;
      }
      group.indexes.push(i);
      group.positions.push(event.data.position);
      // A redelivery or a resync writes even when the fields look unchanged: the last attempt's outcome is unknown, or Bitrix24 may have been edited.
      group.redelivered ||= delivery.deliveryCount > 1 || delivery.redrive || isResync(event.data.position);
      groups.set(sourceKey, group);
    });
    if (groups.size === 0) return outcomes;
    const started = Date.now();
    const results = await this.push([...groups.values()]);
    this.options.logger.debug(
      { changes: deliveries.length, companies: groups.size, ms: Date.now() - started },
      'pushed customer changes to Bitrix24',
    );
    const events: { event: DomainEvent; msgId: string }[] = [];
    for (const group of groups.values()) {
      const result = results.get(group.sourceKey)!;
      events.push(this.outcomeEvent(group, result));
      const last = group.lastIndex;
      if (result.kind === 'failed') {
        const error = result.retryable
          ? new Error(`${result.code}: ${result.message}`)
          : new PermanentError(result.code, `${result.code}: ${result.message}`);
        // The newest change carries the failure (to the DLQ when it is final); the older ones are superseded by it.
        outcomes[last] = result.retryable ? Outcomes.retry(error) : Outcomes.dead(error);
      }
    }
    await this.record(events);
    for (const group of groups.values()) this.remember(group, results.get(group.sourceKey)!);
    return outcomes;
  }

  /** Publishes the outcome events and applies them to `bitrix_links` at their stream positions. */
  private async record(events: { event: DomainEvent; msgId: string }[]): Promise<void> {
    const { bus, links } = this.options;
    const acks = await bus.publishEvents(events);
    await links.apply(events.map(({ event }, i) => ({ event, position: acks[i]!.seq })));
  }

  private remember(group: Group, result: Result): void {
    const { sourceKey } = group;
    const previous = this.cache.get(sourceKey);
    const sourceSequence = Math.max(previous?.sourceSequence ?? 0, result.kind === 'synced' ? group.sequence : 0);
    let next: LinkState;
    if (result.kind === 'synced') {
      if (result.action === 'deleted')
        next = { bitrixId: result.bitrixId, status: 'deleted', multiValues: {}, digest: null, sourceSequence };
      else if (result.action === 'unchanged' && previous) next = { ...previous, sourceSequence };
      else
        next = {
          bitrixId: result.bitrixId,
          status: 'synced',
          multiValues: result.multiValues ?? previous?.multiValues ?? {},
          digest: result.digest ?? previous?.digest ?? null,
          sourceSequence,
        };
    } else {
      next = {
        bitrixId: result.bitrixId,
        status: 'failed',
        multiValues: previous?.multiValues ?? {},
        digest: null,
        sourceSequence,
      };
    }
    this.cache.delete(sourceKey);
    this.cache.set(sourceKey, next);
    const limit = this.options.cacheSize ?? 50_000;
    while (this.cache.size > limit) this.cache.delete(this.cache.keys().next().value!);
  }

  private async load(keys: readonly string[]): Promise<Map<string, LinkState | undefined>> {
    const out = new Map<string, LinkState | undefined>();
    const missing = keys.filter((key) => {
      const cached = this.cache.get(key);
      if (cached) out.set(key, cached);
      return !cached;
    });
    await eachConcurrently(missing, 16, async (key) => {
      const doc = (await this.options.links.collection.findOne({ _id: linkKey('company', key) })) as
        (BitrixLinkDoc & { _id: string }) | null;
      out.set(
        key,
        doc
          ? {
              bitrixId: doc.bitrixId,
              status: doc.status,
              multiValues: doc.multiValues ?? {},
              digest: doc.digest,
              sourceSequence: doc.sourceSequence ?? 0,
            }
          : undefined,
      );
    });
    return out;
  }

  /** Plans, looks up unknown companies, sends the batches; one result per customer. */
  private async push(groups: Group[]): Promise<Map<string, Result>> {
    const { mapping } = this.options;
    const links = await this.load(groups.map((g) => g.sourceKey));
    const plans = new Map<string, Plan>();
    for (const group of groups) {
      const link = links.get(group.sourceKey);
      const bitrixId = link?.status === 'deleted' ? null : (link?.bitrixId ?? null);
      // A change older than one already written (a retry that lost the race with a newer change) writes nothing.
      if (link && link.sourceSequence >= group.sequence) {
        plans.set(group.sourceKey, { kind: 'unchanged', bitrixId });
        continue;
      }
      const mapped = mapCompany(group.last.type === 'glyms.row.deleted.v1' ? undefined : group.last.data.row, mapping);
      if (mapped.kind === 'invalid')
        plans.set(group.sourceKey, { kind: 'invalid', code: mapped.code, message: mapped.message, bitrixId });
      else if (mapped.kind === 'delete')
        plans.set(group.sourceKey, bitrixId ? { kind: 'delete', bitrixId } : { kind: 'gone' });
      else if (bitrixId && link?.status === 'synced' && link.digest === mapped.company.digest && !group.redelivered)
        plans.set(group.sourceKey, { kind: 'unchanged', bitrixId });
      else if (bitrixId)
        plans.set(group.sourceKey, {
          kind: 'update',
          bitrixId,
          company: mapped.company,
          current: link?.multiValues ?? {},
        });
      else plans.set(group.sourceKey, { kind: 'create', company: mapped.company });
    }
    const results = new Map<string, Result>();
    await this.adoptExisting(plans, results);
    await this.readUncertain(plans, groups, links, results);
    const pending: {
      key: string;
      commands: Record<string, BitrixCommand>;
      finish: (
        result: Record<string, unknown>,
        errors: Record<string, { error: string; error_description: string }>,
      ) => Result;
    }[] = [];
    let n = 0;
    for (const [key, plan] of plans) {
      if (results.has(key)) continue;
      switch (plan.kind) {
        case 'unchanged':
          results.set(key, { kind: 'synced', action: 'unchanged', bitrixId: plan.bitrixId });
          break;
        case 'gone':
          results.set(key, { kind: 'synced', action: 'deleted', bitrixId: null });
          break;
        case 'invalid':
          results.set(key, {
            kind: 'failed',
            code: plan.code,
            message: plan.message,
            retryable: false,
            bitrixId: plan.bitrixId,
          });
          break;
        case 'delete': {
          const id = `d${n++}`;
          pending.push({
            key,
            commands: { [id]: { method: 'crm.company.delete', params: { id: plan.bitrixId } } },
            finish: (_r, errors) => {
              const error = errors[id];
              // Already gone in Bitrix24 is what a delete wants.
              if (!error || NOT_FOUND(error)) return { kind: 'synced', action: 'deleted', bitrixId: plan.bitrixId };
              return failure(error, plan.bitrixId);
            },
          });
          break;
        }
        case 'update':
        case 'create':
          pending.push(this.writeCommands(key, plan, n++));
          break;
        default: {
          const unexpected: never = plan;
          throw new Error(`unknown plan ${(unexpected as Plan).kind}`);
        }
      }
    }
    // Pack whole companies into batches of at most 50 sub-calls.
    let batch: typeof pending = [];
    let size = 0;
    const flush = async () => {
      if (batch.length === 0) return;
      const commands = Object.assign({}, ...batch.map((p) => p.commands)) as Record<string, BitrixCommand>;
      this.stats.requests++;
      this.stats.commands += size;
      const companies = batch.length;
      const { result, errors } = await withSpan(
        'bitrix batch',
        { kind: SpanKind.CLIENT, attributes: { 'puente.bitrix.commands': size, 'puente.bitrix.companies': companies } },
        () => this.options.api.batch(commands),
      );
      for (const p of batch) results.set(p.key, p.finish(result, errors));
      batch = [];
      size = 0;
    };
    for (const p of pending) {
      const count = Object.keys(p.commands).length;
      if (size + count > BATCH_LIMIT) await flush();
      batch.push(p);
      size += count;
    }
    await flush();
    this.stats.companies += groups.length;
    return results;
  }

  /**
   * Companies about to be created are first looked up by `ORIGINATOR_ID` + `ORIGIN_ID` (50 ids per
   * list call, up to 50 calls per request): one that exists (created by a push whose outcome was lost,
   * or before the link store existed) is updated instead, adopting its phone and e-mail entries.
   */
  private async adoptExisting(plans: Map<string, Plan>, results: Map<string, Result>): Promise<void> {
    const { mapping, api } = this.options;
    const unknown = [...plans].filter(([, plan]) => plan.kind === 'create').map(([key]) => key);
    for (let start = 0; start < unknown.length; start += BATCH_LIMIT * BATCH_LIMIT) {
      const slice = unknown.slice(start, start + BATCH_LIMIT * BATCH_LIMIT);
      const commands: Record<string, BitrixCommand> = {};
      for (let i = 0; i * BATCH_LIMIT < slice.length; i++) {
        commands[`f${i}`] = {
          method: 'crm.company.list',
          params: {
            filter: {
              ORIGINATOR_ID: mapping.originatorId,
              '@ORIGIN_ID': slice.slice(i * BATCH_LIMIT, (i + 1) * BATCH_LIMIT),
            },
            select: ['ID', 'ORIGIN_ID', 'PHONE', 'EMAIL'],
            order: { ID: 'ASC' },
            start: -1,
          },
        };
      }
      this.stats.requests++;
      this.stats.commands += Object.keys(commands).length;
      const { result, errors } = await withSpan(
        'bitrix batch',
        {
          kind: SpanKind.CLIENT,
          attributes: { 'puente.bitrix.commands': Object.keys(commands).length, 'puente.bitrix.lookup': 1 },
        },
        () => api.batch(commands),
      );
      const failed = Object.values(errors)[0];
      if (failed) {
        for (const key of slice) results.set(key, failure(failed, null, true));
        continue;
      }
      const found = new Map<string, Record<string, unknown>>();
      for (const list of Object.values(result)) {
        for (const company of Array.isArray(list) ? (list as Record<string, unknown>[]) : []) {
          const origin = String(company.ORIGIN_ID ?? '');
          if (!found.has(origin)) found.set(origin, company);
        }
      }
      for (const key of slice) {
        const company = found.get(key);
        const plan = plans.get(key);
        if (!company || plan?.kind !== 'create') continue;
        plans.set(key, {
          kind: 'update',
          bitrixId: String(company.ID),
          company: plan.company,
          current: { PHONE: entriesOf(company, 'PHONE'), EMAIL: entriesOf(company, 'EMAIL') },
        });
      }
    }
  }

  /**
   * Companies whose entry ids bitrix-sync cannot trust are read before they are updated: after a failed
   * or unknown outcome (a write that landed while the read-back in the same batch failed, or a process
   * that died before it recorded what it wrote) the remembered phone and e-mail entries may be missing
   * some Bitrix24 holds, and diffing against them would add the same value twice.
   */
  private async readUncertain(
    plans: Map<string, Plan>,
    groups: readonly Group[],
    links: Map<string, LinkState | undefined>,
    results: Map<string, Result>,
  ): Promise<void> {
    const uncertain = groups
      .filter((group) => {
        const plan = plans.get(group.sourceKey);
        if (plan?.kind !== 'update' || results.has(group.sourceKey)) return false;
        return links.get(group.sourceKey)?.status !== 'synced' || group.redelivered;
      })
      .map((group) => group.sourceKey);
    for (let start = 0; start < uncertain.length; start += BATCH_LIMIT) {
      const slice = uncertain.slice(start, start + BATCH_LIMIT);
      const commands: Record<string, BitrixCommand> = {};
      slice.forEach((key, i) => {
        const plan = plans.get(key) as Extract<Plan, { kind: 'update' }>;
        commands[`r${i}`] = { method: 'crm.company.get', params: { id: plan.bitrixId } };
      });
      this.stats.requests++;
      this.stats.commands += slice.length;
      const { result, errors } = await withSpan(
        'bitrix batch',
        { kind: SpanKind.CLIENT, attributes: { 'puente.bitrix.commands': slice.length, 'puente.bitrix.read': 1 } },
        () => this.options.api.batch(commands),
      );
      slice.forEach((key, i) => {
        const plan = plans.get(key) as Extract<Plan, { kind: 'update' }>;
        const error = errors[`r${i}`];
        const company = result[`r${i}`];
        if (error && NOT_FOUND(error))
          results.set(key, {
            kind: 'failed',
            code: 'NOT_FOUND',
            message: `company ${plan.bitrixId} no longer exists in Bitrix24; it will be created again`,
            retryable: true,
            bitrixId: null,
          });
        else if (error || !company) results.set(key, failure(error ?? READ_FAILED, plan.bitrixId, true));
        else {
          const current: Record<string, MultiValueEntry[]> = {};
          for (const field of Object.keys(plan.company.multi)) current[field] = entriesOf(company, field);
          plans.set(key, { ...plan, current });
        }
      });
    }
  }

  /** The sub-calls that create or update one company, and how to read their results. */
  private writeCommands(
    key: string,
    plan: Extract<Plan, { kind: 'update' | 'create' }>,
    n: number,
  ): {
    key: string;
    commands: Record<string, BitrixCommand>;
    finish: (
      result: Record<string, unknown>,
      errors: Record<string, { error: string; error_description: string }>,
    ) => Result;
  } {
    const { mapping } = this.options;
    const fields: Record<string, unknown> = { ...plan.company.fields };
    const kept: Record<string, MultiValueEntry[]> = {};
    const added: Record<string, string[]> = {};
    for (const [field, desired] of Object.entries(plan.company.multi)) {
      const diff = diffMultiValue(desired, plan.kind === 'update' ? (plan.current[field] ?? []) : []);
      if (diff.ops.length > 0) fields[field] = diff.ops;
      kept[field] = diff.kept;
      added[field] = diff.added;
    }
    const needsRead = Object.values(added).some((list) => list.length > 0);
    const write = plan.kind === 'create' ? `a${n}` : `u${n}`;
    const read = `g${n}`;
    const commands: Record<string, BitrixCommand> =
      plan.kind === 'create'
        ? {
            [write]: {
              method: 'crm.company.add',
              params: {
                fields: { ...fields, ORIGINATOR_ID: mapping.originatorId, ORIGIN_ID: key },
                params: { REGISTER_SONET_EVENT: 'N' },
              },
            },
          }
        : {
            [write]: {
              method: 'crm.company.update',
              params: { id: plan.bitrixId, fields, params: { REGISTER_SONET_EVENT: 'N' } },
            },
          };
    if (needsRead)
      commands[read] = {
        method: 'crm.company.get',
        params: { id: plan.kind === 'create' ? `$result[${write}]` : plan.bitrixId },
      };
    return {
      key,
      commands,
      finish: (result, errors) => {
        const knownId = plan.kind === 'update' ? plan.bitrixId : null;
        const writeError = errors[write];
        if (writeError) {
          // A company deleted in Bitrix24 by hand: forget the link; the retry looks it up and creates it again.
          if (plan.kind === 'update' && NOT_FOUND(writeError))
            return {
              kind: 'failed',
              code: 'NOT_FOUND',
              message: `company ${plan.bitrixId} no longer exists in Bitrix24; it will be created again`,
              retryable: true,
              bitrixId: null,
            };
          return failure(writeError, knownId);
        }
        const bitrixId = plan.kind === 'create' ? String(result[write]) : plan.bitrixId;
        const multiValues: Record<string, MultiValueEntry[]> = {};
        for (const [field, entries] of Object.entries(kept)) multiValues[field] = [...entries];
        if (needsRead) {
          const company = result[read];
          if (errors[read] || !company)
            return {
              kind: 'failed',
              code: 'READ_BACK_FAILED',
              message: `could not read company ${bitrixId} back to learn its new entry ids`,
              retryable: true,
              bitrixId,
            };
          for (const [field, values] of Object.entries(added)) {
            const taken = new Set(multiValues[field]!.map((e) => e.id));
            for (const value of values) {
              const entry = entriesOf(company, field).find((e) => e.value === value && !taken.has(e.id));
              if (entry) {
                taken.add(entry.id);
                multiValues[field]!.push(entry);
              }
            }
          }
        }
        return {
          kind: 'synced',
          action: plan.kind === 'create' ? 'created' : 'updated',
          bitrixId,
          multiValues,
          digest: plan.company.digest,
        };
      },
    };
  }

  private outcomeEvent(group: Group, result: Result): { event: DomainEvent; msgId: string } {
    const at = this.now().toISOString();
    const common = {
      entity: 'company' as const,
      sourceKey: group.sourceKey,
      sourceEventId: group.last.id,
      sourcePositions: group.positions,
      sourceSequence: group.sequence,
      cdc: group.last.data.cdc,
      at,
    };
    const msgId = `bitrix:company:${group.sourceKey}:${group.last.id}:${result.kind === 'synced' ? result.action : `failed:${result.code}`}`;
    if (result.kind === 'synced') {
      const multiValueIds = result.multiValues
        ? Object.fromEntries(Object.entries(result.multiValues).map(([f, list]) => [f, list.map((e) => e.id)]))
        : undefined;
      return {
        event: createEvent(
          'bitrix.entity.synced.v1',
          {
            ...common,
            action: result.action,
            ...(result.bitrixId ? { bitrixId: result.bitrixId } : {}),
            ...(result.multiValues ? { multiValues: result.multiValues, multiValueIds } : {}),
            ...(result.digest ? { digest: result.digest } : {}),
          },
          { source: 'urn:puente:bitrix-sync', id: short(msgId), time: at },
        ) as DomainEvent,
        msgId,
      };
    }
    return {
      event: createEvent(
        'bitrix.entity.failed.v1',
        {
          ...common,
          ...(result.bitrixId ? { bitrixId: result.bitrixId } : {}),
          error: { code: result.code, message: result.message },
          retryable: result.retryable,
        },
        { source: 'urn:puente:bitrix-sync', id: short(msgId), time: at },
      ) as DomainEvent,
      msgId,
    };
  }
}

function failure(
  error: { error: string; error_description: string },
  bitrixId: string | null,
  forceRetry = false,
): Result {
  const code = error.error || 'ACCESS_DENIED';
  return {
    kind: 'failed',
    code,
    message: error.error_description.slice(0, 500),
    retryable: forceRetry || !PERMANENT_ERRORS.has(error.error),
    bitrixId,
  };
}
