import { z } from 'zod';
import { url } from '@puente/runtime';

/** The service's environment: the Kissflow API, reconciliation, backfill and projection settings (docs/kissflow.md). */
export const Config = z.object({
  KISSFLOW_BASE_URL: url(['https', 'http']).optional(),
  KISSFLOW_ACCOUNT_ID: z.string().optional(),
  KISSFLOW_ACCESS_KEY_ID: z.string().optional(),
  KISSFLOW_ACCESS_KEY_SECRET: z.string().optional(),
  /** Rows per list page (public clients settled on 100: larger pages have come back truncated). */
  KISSFLOW_PAGE_SIZE: z.coerce.number().int().min(1).max(1_000).default(100),
  KISSFLOW_TIMEOUT_MS: z.coerce.number().int().min(100).max(300_000).default(30_000),
  /** Extra attempts after a timeout, a lost connection or a 5xx (429s wait as asked and do not count). */
  KISSFLOW_RETRIES: z.coerce.number().int().min(0).max(20).default(4),
  /** Row-detail calls at once (rows the list sent without `_modified_at`, and reconciliation checks). */
  KISSFLOW_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(8),
  /** Path of a JSON mapping file (docs/kissflow.md); unset: rows are kept as sent. */
  KISSFLOW_MAPPINGS: z.string().optional(),
  /** Comma-separated datasets this service reconciles on a schedule (unset: none). */
  KISSFLOW_RECONCILE_DATASETS: z
    .string()
    .optional()
    .transform(
      (v) =>
        v
          ?.split(',')
          .map((s) => s.trim())
          .filter(Boolean) ?? [],
    ),
  KISSFLOW_RECONCILE_INTERVAL_MS: z.coerce
    .number()
    .int()
    .min(1_000)
    .max(7 * 86_400_000)
    .default(6 * 3_600_000),
  /** A running backfill whose worker has not saved its page for this long is resumed by the next run. */
  KISSFLOW_BACKFILL_STALE_MS: z.coerce.number().int().min(100).max(3_600_000).default(60_000),
  /**
   * Comma-separated datasets this instance projects (default: all). Its consumer then reads only those
   * datasets' subjects under a durable name of its own: a way to split datasets across instances.
   */
  KISSFLOW_DATASETS: z
    .string()
    .optional()
    .transform((v) =>
      v
        ?.split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    ),
  /** `exclusive` (default): one instance applies the projection; `shared`: replicas pull one consumer (see docs/kissflow.md). */
  PROJECTION_WRITERS: z.enum(['exclusive', 'shared']).default('exclusive'),
  /** Documents an exclusive writer keeps in memory per read model (its memory is bounded by this). */
  PROJECTION_CACHE_SIZE: z.coerce.number().int().min(0).max(1_000_000).default(50_000),
});
export type KissflowConfig = z.infer<typeof Config>;
