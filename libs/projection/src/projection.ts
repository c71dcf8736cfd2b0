import type { DomainEvent, EventType } from '@puente/contracts';
import type { AspectVersion } from './versions.js';

/** Fields the store owns on every read-model document. */
export interface SystemFields {
  _id: string;
  /** `EVENTS` sequence of the event whose application produced this version (the compare-and-swap token). */
  _position: number;
  /** Strictly increasing with every write of the document: the version change notices carry. */
  _rev: number;
}

/** What a projection's `evolve` sees and returns: its own fields, aspect versions and tombstone flag. */
export interface ProjectedDoc {
  _v: Record<string, AspectVersion>;
  _deleted?: boolean;
  [field: string]: unknown;
}

export type StoredDoc<D extends ProjectedDoc = ProjectedDoc> = D & SystemFields;

/**
 * A read model: pure functions from events to documents; the store does the I/O. `E` is the events
 * it handles (Emmett's `canHandle`): `keys`, `initial` and `evolve` see only those, so a
 * `switch` over `event.type` is exhaustive (and ends in a `never` check), and the consumer's subject
 * filter can be derived from `handles` (`subjectFiltersFor` in libs/contracts).
 */
export interface Projection<D extends ProjectedDoc = ProjectedDoc, E extends DomainEvent = DomainEvent> {
  /** Name of the checkpoint. */
  readonly name: string;
  readonly collection: string;
  /** The event types this projection applies; the runner never hands it another. */
  readonly handles: readonly E['type'][];
  /** Ids of the documents an event touches (none: the event changes nothing here). */
  keys(event: E): readonly string[];
  /**
   * A document's first state, before the event that creates it is applied (`evolve` then gets this
   * instead of null); null when this event does not create a document (`evolve` gets null).
   */
  initial?(key: string, event: E): D | null;
  /**
   * The next state of one document. No I/O, no clock. Returns `doc` itself (the same object) when the
   * event changes nothing, which is what makes duplicates and stale events free; never returns null for
   * an existing document (deletes are tombstones: `_deleted: true`). A document `initial` made is
   * written even when `evolve` returns it unchanged.
   */
  evolve(doc: D | null, event: E, context: { key: string; position: number }): D | null;
  /** The channel the document belongs to: its change notices go to `chg.<channel>.<key>`. */
  channel(doc: StoredDoc<D>): string;
  /** Indexes created at start-up. */
  readonly indexes?: readonly { key: Record<string, 1 | -1>; name: string; unique?: boolean }[];
}

/** Whether a projection applies an event (its type is one it `handles`). */
export function handlesEvent<D extends ProjectedDoc, E extends DomainEvent>(
  projection: Projection<D, E>,
  event: DomainEvent,
): event is E {
  return (projection.handles as readonly EventType[]).includes(event.type);
}

/** The documents an event touches in a projection, each once; none for an event it does not handle. */
export function keysOf<D extends ProjectedDoc, E extends DomainEvent>(
  projection: Projection<D, E>,
  event: DomainEvent,
): string[] {
  return handlesEvent(projection, event) ? [...new Set(projection.keys(event))] : [];
}

/**
 * One document's next state, as the store computes it: `initial` stands in for a document that does
 * not exist yet, then `evolve`. An event the projection does not handle changes nothing.
 */
export function evolveDoc<D extends ProjectedDoc, E extends DomainEvent>(
  projection: Projection<D, E>,
  doc: D | null,
  event: DomainEvent,
  context: { key: string; position: number },
): D | null {
  if (!handlesEvent(projection, event)) return doc;
  return projection.evolve(doc ?? projection.initial?.(context.key, event) ?? null, event, context);
}

/**
 * The `default:` of an exhaustive `switch` over the event types a projection handles: it does not
 * compile while a handled type has no `case`, and throws (the event is dead-lettered) if one ever
 * arrives at run time.
 */
export function unhandled(event: never): never {
  throw new Error(`no case for event type ${(event as DomainEvent).type}`);
}

/** The same read model under other names (`<name><suffix>`, `<collection><suffix>`): where a rebuild writes before it swaps in. */
export function renamed<D extends ProjectedDoc, E extends DomainEvent>(
  projection: Projection<D, E>,
  suffix: string,
): Projection<D, E> {
  return {
    ...projection,
    name: `${projection.name}${suffix}`,
    collection: `${projection.collection}${suffix}`,
    indexes: projection.indexes?.map((i) => ({ ...i })),
  };
}
