import { z } from 'zod';

const Timestamp = z.iso.datetime({ offset: true });

/** A Kissflow dataset row was created or changed (webhook, backfill or reconciliation). */
export const KissflowRecordUpsertedV1 = z.object({
  dataset: z.string().min(1),
  rowId: z.string().min(1),
  /** The row's fields as Kissflow sent them (before any mapping). */
  fields: z.record(z.string(), z.unknown()),
  /** Kissflow's `_modified_at`, when known (the list endpoint may omit it). */
  modifiedAt: Timestamp.nullable(),
  origin: z.enum(['webhook', 'backfill', 'reconcile']),
});
export type KissflowRecordUpsertedV1 = z.infer<typeof KissflowRecordUpsertedV1>;

/** Reconciliation found that a row no longer exists (Kissflow sends no delete events). */
export const KissflowRecordDeletedV1 = z.object({
  dataset: z.string().min(1),
  rowId: z.string().min(1),
  detectedAt: Timestamp,
});
export type KissflowRecordDeletedV1 = z.infer<typeof KissflowRecordDeletedV1>;
