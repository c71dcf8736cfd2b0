import { createHash } from 'node:crypto';
import {
  canonicalJson,
  Channels,
  Collections,
  toStorable,
  type DomainEventOf,
  type KissflowMappings,
} from '@puente/contracts';
import { sourceOrder, unhandled, type AspectVersion, type ProjectedDoc, type Projection } from '@puente/projection';
import { applyMapping, type MappingError } from './mapping.js';

/** A `kissflow_records` document (`_id` `<dataset>:<row id>`). */
export interface KissflowRecordDoc extends ProjectedDoc {
  dataset: string;
  rowId: string;
  /** The row as sent (or as the dataset's mapping shapes it), field names and values made storable. */
  fields: Record<string, unknown>;
  /** Kissflow's `_modified_at` of the stored version; null when no source said it. */
  modifiedAt: string | null;
  /** What brought the stored version: `webhook`, `backfill` or `reconcile`. */
  origin: 'webhook' | 'backfill' | 'reconcile';
  /** Digests of the row contents already applied at the stored version's time (duplicates are free). */
  digests: string[];
  /** Cells the mapping could not coerce (stored as null). */
  mappingErrors?: MappingError[];
  /** When reconciliation found the row gone (tombstones only). */
  deletedAt?: string;
  _v: { row: AspectVersion };
}

/** The events the records read model applies. */
export type RecordEvent = DomainEventOf<'kissflow.record.upserted.v1' | 'kissflow.record.deleted.v1'>;

/** How many digests of same-time versions a document remembers. */
const DIGESTS = 8;

export const recordKey = (dataset: string, rowId: string): string => `${dataset}:${rowId}`;

/** Digest of a row's content (canonical JSON: key order does not matter). */
export const rowDigest = (fields: Record<string, unknown>): string =>
  createHash('sha1').update(canonicalJson(fields)).digest('base64url').slice(0, 16);

/**
 * `kissflow_records`: one document per dataset row. A row moves forward in modification time only;
 * at the same time (Kissflow's times have one-second resolution) a different content at a later
 * stream position wins, and a content already applied at that time changes nothing. A row whose
 * source gave no modification time is ordered by when Puente observed it (a state observed at T was
 * modified at or before T). A delete leaves a tombstone versioned at the time it was detected: only a
 * version modified later (a known `_modified_at`, or a backfill that saw the row afterwards) revives it.
 */
export function recordsProjection(
  mappings: KissflowMappings = { datasets: {} },
): Projection<KissflowRecordDoc, RecordEvent> {
  return {
    name: 'kissflow-records',
    collection: Collections.kissflowRecords,
    indexes: [{ key: { dataset: 1 }, name: 'dataset' }],
    handles: ['kissflow.record.upserted.v1', 'kissflow.record.deleted.v1'],
    keys: (event) => [recordKey(event.data.dataset, event.data.rowId)],
    channel: (doc) => Channels.kissflow(doc.dataset),
    evolve(doc, event, { position }) {
      switch (event.type) {
        case 'kissflow.record.deleted.v1':
          return deleted(doc, event, position);
        case 'kissflow.record.upserted.v1':
          return upserted(doc, event, position, mappings);
        default:
          return unhandled(event);
      }
    },
  };
}

/** A delete leaves a tombstone, unless the row was modified after the delete was detected. */
function deleted(
  doc: KissflowRecordDoc | null,
  event: DomainEventOf<'kissflow.record.deleted.v1'>,
  position: number,
): KissflowRecordDoc {
  const at = sourceOrder(event.data.detectedAt);
  if (doc?._deleted) return doc;
  // Modified after the delete was detected: the row exists (a listing missed it).
  if (doc && doc._v.row[0] > at) return doc;
  return {
    ...(doc ?? {
      dataset: event.data.dataset,
      rowId: event.data.rowId,
      fields: {},
      modifiedAt: null,
      origin: 'reconcile' as const,
      digests: [],
    }),
    _deleted: true,
    deletedAt: new Date(at).toISOString(),
    digests: [],
    _v: { row: [at, position] },
  };
}

/** An upsert moves the row forward in modification time (see `recordsProjection`). */
function upserted(
  doc: KissflowRecordDoc | null,
  event: DomainEventOf<'kissflow.record.upserted.v1'>,
  position: number,
  mappings: KissflowMappings,
): KissflowRecordDoc | null {
  const { dataset, rowId, fields, modifiedAt, origin } = event.data;
  const known = modifiedAt !== null;
  const at = sourceOrder(modifiedAt ?? event.time);
  if (doc) {
    const [current, currentPosition] = doc._v.row;
    if (doc._deleted) {
      const proves = known || origin !== 'webhook';
      if (!proves || at <= current) return doc;
    } else {
      if (at < current) return doc;
      if (at === current && (position <= currentPosition || doc.digests.includes(rowDigest(fields)))) return doc;
    }
  }
  const digest = rowDigest(fields);
  const mapped = applyMapping(fields, mappings.datasets[dataset]);
  const sameTime = doc !== null && !doc._deleted && doc._v.row[0] === at;
  const next: KissflowRecordDoc = {
    dataset,
    rowId,
    fields: toStorable(mapped.fields) as Record<string, unknown>,
    modifiedAt,
    origin,
    digests: sameTime ? [...doc.digests, digest].slice(-DIGESTS) : [digest],
    _v: { row: [at, position] },
  };
  if (mapped.errors.length > 0) next.mappingErrors = mapped.errors;
  return next;
}
