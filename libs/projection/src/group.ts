import type { Db } from 'mongodb';
import type { DomainEvent, EventType } from '@puente/contracts';
import { Outcomes, type BatchHandler, type Bus, type Outcome } from '@puente/bus';
import { batchHandler } from './handler.js';
import { evolveDoc, keysOf, renamed, type ProjectedDoc, type Projection } from './projection.js';
import { ProjectionStore, type PositionedEvent } from './store.js';

/**
 * What the projections applied later in a group read of those applied before them: a document of an
 * earlier projection as it stands after the current batch (in memory: after the current event);
 * undefined for a document the batch did not touch.
 */
export interface Upstream {
  doc<D extends ProjectedDoc>(projection: Projection<D>, key: string): D | undefined;
}

/**
 * Projections applied together from one consumer. The `lead` projections apply each batch first;
 * `follow` builds the others over an `Upstream` of the lead's documents, and they apply the batch after
 * (so a fact the lead records, such as the position that first gave a message content, is what the
 * followers count on). Within a stage the projections apply side by side.
 */
export interface ProjectionGroup {
  readonly lead: readonly Projection[];
  readonly follow?: (upstream: Upstream) => readonly Projection[];
}

/** Every projection of a group, lead first (the followers over an upstream that knows nothing). */
export function projectionsOf(group: ProjectionGroup): Projection[] {
  return [...group.lead, ...(group.follow?.({ doc: () => undefined }) ?? [])];
}

/** Every event type a group's projections handle: what its consumer must read. */
export function handledBy(group: ProjectionGroup): EventType[] {
  return [...new Set(projectionsOf(group).flatMap((p) => p.handles))];
}

export interface ProjectionGroupStoreOptions {
  writers?: 'shared' | 'exclusive';
  /** A rebuild: every read model under `<collection><suffix>` and checkpoint `<name><suffix>`, without change notices. */
  staging?: string;
  cacheSize?: number;
}

/** A group's projections on their stores: each batch goes to the lead's stores, then to the followers'. */
export class ProjectionGroupStore {
  readonly lead: ProjectionStore[];
  readonly followers: ProjectionStore[];
  /** The lead's documents after the batch in flight, by the lead projection's (live) name. */
  private latest = new Map<string, Map<string, ProjectedDoc | null>>();
  private readonly leadNames: string[];

  constructor(db: Db, bus: Bus, group: ProjectionGroup, options: ProjectionGroupStoreOptions = {}) {
    const upstream: Upstream = {
      doc: <D extends ProjectedDoc>(projection: Projection<D>, key: string) =>
        (this.latest.get(projection.name)?.get(key) ?? undefined) as D | undefined,
    };
    const store = (projection: Projection) =>
      new ProjectionStore({
        db,
        bus,
        writers: options.writers ?? 'shared',
        notify: options.staging === undefined,
        ...(options.cacheSize === undefined ? {} : { cacheSize: options.cacheSize }),
        projection: options.staging ? renamed(projection, options.staging) : projection,
      });
    this.lead = group.lead.map(store);
    this.followers = (group.follow?.(upstream) ?? []).map(store);
    this.leadNames = group.lead.map((p) => p.name);
  }

  /** Every store, lead first (their collections and checkpoint names are what a rebuild swaps). */
  get stores(): ProjectionStore[] {
    return [...this.lead, ...this.followers];
  }

  async init(): Promise<void> {
    await Promise.all(this.stores.map((store) => store.init()));
  }

  /** Writes every read model's latest checkpoint (after the consumer has stopped). */
  async close(): Promise<void> {
    await Promise.all(this.stores.map((store) => store.close()));
  }

  /** Applies a batch to every read model; an event any of them could not apply is dead-lettered. */
  async apply(events: readonly PositionedEvent[]): Promise<Outcome[]> {
    const lead = await Promise.all(this.lead.map((store) => store.apply(events)));
    this.latest = new Map(lead.map((applied, i) => [this.leadNames[i]!, applied.docs]));
    const followers = await Promise.all(this.followers.map((store) => store.apply(events)));
    const all = [...lead, ...followers];
    return events.map((_, i) => all.map((r) => r.outcomes[i]!).find((o) => o.kind !== 'ack') ?? Outcomes.ack);
  }

  /** A consumer-runner handler: decodes each delivery (an undecodable one is dead-lettered) and applies the rest. */
  handler(): BatchHandler {
    return batchHandler((events) => this.apply(events));
  }
}

/** A group's documents in memory, by projection name, then key. */
export type GroupState = Map<string, Map<string, ProjectedDoc>>;

/**
 * The group without a database, event by event in order (positions `firstPosition`, +1, ...): what the
 * stores compute, for given/when/then tests and for checking that every order ends in one state.
 */
export function evolveGroup(
  group: ProjectionGroup,
  events: readonly DomainEvent[],
  state: GroupState = new Map(),
  firstPosition = 1,
): GroupState {
  const docsOf = (projection: Projection) => {
    let docs = state.get(projection.name);
    if (!docs) state.set(projection.name, (docs = new Map()));
    return docs;
  };
  const upstream: Upstream = {
    doc: <D extends ProjectedDoc>(projection: Projection<D>, key: string) =>
      state.get(projection.name)?.get(key) as D | undefined,
  };
  const projections = [...group.lead, ...(group.follow?.(upstream) ?? [])];
  events.forEach((event, i) => {
    const position = firstPosition + i;
    for (const projection of projections) {
      const docs = docsOf(projection);
      for (const key of keysOf(projection, event)) {
        const next = evolveDoc(projection, docs.get(key) ?? null, event, { key, position });
        if (next) docs.set(key, next);
      }
    }
  });
  return state;
}
