import type { DomainEvent } from '@puente/contracts';
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

/** A read model: pure functions from events to documents; the store does the I/O. */
export interface Projection<D extends ProjectedDoc = ProjectedDoc> {
  /** Name of the checkpoint. */
  readonly name: string;
  readonly collection: string;
  /** Ids of the documents an event touches (none when it is not for this projection). */
  keys(event: DomainEvent): readonly string[];
  /**
   * The next state of one document. No I/O, no clock. Returns `doc` itself (the same object) when the
   * event changes nothing, which is what makes duplicates and stale events free; never returns null for
   * an existing document (deletes are tombstones: `_deleted: true`).
   */
  evolve(doc: D | null, event: DomainEvent, context: { key: string; position: number }): D | null;
  /** The channel the document belongs to: its change notices go to `chg.<channel>.<key>`. */
  channel(doc: StoredDoc<D>): string;
  /** Indexes created at start-up. */
  readonly indexes?: readonly { key: Record<string, 1 | -1>; name: string; unique?: boolean }[];
}

/** The same read model under other names (`<name><suffix>`, `<collection><suffix>`): where a rebuild writes before it swaps in. */
export function renamed<D extends ProjectedDoc>(projection: Projection<D>, suffix: string): Projection<D> {
  return { ...projection, name: `${projection.name}${suffix}`, collection: `${projection.collection}${suffix}`, indexes: projection.indexes?.map((i) => ({ ...i })) };
}
