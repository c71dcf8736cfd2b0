import { z } from 'zod';

export const BitrixEntity = z.enum(['company', 'product', 'price', 'section']);

/** bitrix-sync wrote (or deliberately skipped) one entity in Bitrix24. */
export const BitrixSyncedV1 = z.object({
  entity: BitrixEntity,
  sourceKey: z.string().min(1),
  bitrixId: z.string().min(1).optional(),
  action: z.enum(['created', 'updated', 'deleted', 'unchanged']),
  /** Ids of the multi-value entries (phone, email) last written, by field. */
  multiValueIds: z.record(z.string(), z.array(z.string())).optional(),
  /** The entries behind `multiValueIds`, with the value each held when written (what the next update diffs against). */
  multiValues: z.record(z.string(), z.array(z.object({ id: z.string(), value: z.string() }))).optional(),
  /** Digest of the fields last written: a change that maps to the same fields makes no call. */
  digest: z.string().optional(),
  sourceEventId: z.string().optional(),
  /** Positions of every source change this outcome covers (coalesced changes): `logtable` log ids, LSNs. */
  sourcePositions: z.array(z.string()).optional(),
  /** `EVENTS` sequence of the newest change this outcome covers: an older change redelivered later is not written over it. */
  sourceSequence: z.number().int().nonnegative().optional(),
  /** The CDC mode the changes came from. */
  cdc: z.enum(['logical', 'logtable', 'debezium', 'resync']).optional(),
  at: z.iso.datetime({ offset: true }),
});
export type BitrixSyncedV1 = z.infer<typeof BitrixSyncedV1>;

/** bitrix-sync could not write an entity; `retryable` says whether it will try again. */
export const BitrixFailedV1 = z.object({
  entity: BitrixEntity,
  sourceKey: z.string().min(1),
  bitrixId: z.string().min(1).optional(),
  error: z.object({ code: z.string(), message: z.string() }),
  retryable: z.boolean(),
  sourceEventId: z.string().optional(),
  sourcePositions: z.array(z.string()).optional(),
  cdc: z.enum(['logical', 'logtable', 'debezium', 'resync']).optional(),
  at: z.iso.datetime({ offset: true }),
});
export type BitrixFailedV1 = z.infer<typeof BitrixFailedV1>;
