import { z } from 'zod';

/** A row of the Glyms ERP changed, as read from the CDC feed (any of the three modes). */
export const GlymsRowChangedV1 = z.object({
  schema: z.string().min(1),
  table: z.string().min(1),
  op: z.enum(['created', 'updated', 'deleted']),
  /** Primary-key columns and their values. */
  key: z.record(z.string(), z.unknown()),
  /** The row after the change (absent for deletes). */
  row: z.record(z.string(), z.unknown()).optional(),
  /** The row or key before the change, when the source provides it. */
  before: z.record(z.string(), z.unknown()).optional(),
  /** Commit LSN (`logical`, `debezium`) or change-log id (`logtable`). */
  position: z.string().min(1),
  commitTime: z.iso.datetime({ offset: true }).optional(),
  cdc: z.enum(['logical', 'logtable', 'debezium']),
});
export type GlymsRowChangedV1 = z.infer<typeof GlymsRowChangedV1>;
