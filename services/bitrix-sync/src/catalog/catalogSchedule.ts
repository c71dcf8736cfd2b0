import type { Logger } from 'pino';
import type { CatalogRunResult, CatalogSync } from './catalogSync.js';

/** A running schedule of catalog syncs. */
export interface CatalogSchedule {
  /** Runs a sync now (after the one in progress, if any: two never overlap). */
  runNow(): Promise<CatalogRunResult>;
  /** Stops the schedule and waits for a run in progress. */
  stop(): Promise<void>;
}

export interface CatalogScheduleOptions {
  sync: Pick<CatalogSync, 'run'>;
  /** `BITRIX_CATALOG_INTERVAL_MS`: the pause between the end of one run and the start of the next; 0 = no schedule (`runNow` still works). */
  intervalMs: number;
  logger: Logger;
  /** Wait before the first run (default 0: at start, so a restarted service catches up at once). */
  firstDelayMs?: number;
  /** Every finished run (for metrics or tests). */
  onRun?: (outcome: { result?: CatalogRunResult; error?: Error }) => void;
}

/**
 * Runs the catalog sync every `intervalMs`, counted from the end of the previous run so that a slow portal
 * never stacks runs. A run that fails is logged and the schedule goes on: a failure is the portal's or
 * the database's, and the next run retries the whole comparison anyway.
 */
export function scheduleCatalogSync(options: CatalogScheduleOptions): CatalogSchedule {
  const { sync, intervalMs, logger } = options;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let chain: Promise<unknown> = Promise.resolve();

  const runNow = (): Promise<CatalogRunResult> => {
    const run = chain.then(() => sync.run());
    chain = run.then(
      (result) => options.onRun?.({ result }),
      (error: Error) => {
        logger.error({ err: error.message }, 'bitrix catalog sync failed; the next run retries');
        options.onRun?.({ error });
      },
    );
    return run;
  };
  const tick = () => {
    timer = undefined;
    void runNow()
      .catch(() => undefined)
      .then(() => {
        if (!stopped) timer = setTimeout(tick, intervalMs);
      });
  };
  if (intervalMs > 0) timer = setTimeout(tick, options.firstDelayMs ?? 0);
  else
    logger.info(
      'bitrix catalog sync is not scheduled (BITRIX_CATALOG_INTERVAL_MS=0); run it with npx puente bitrix sync services',
    );

  return {
    runNow,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      await chain;
    },
  };
}
