import { MongoClient, type Db } from 'mongodb';
import { pino } from 'pino';
import { Config, backfillFrom, openBackfillBucket, type BackfillState } from '@puente/kissflow-sync';
import { loadConfig, mongoDatabaseName } from '@puente/runtime';
import { flag, mongoUrl, connectBus, progressPrinter, required } from './common.js';

function describe(state: BackfillState, rowsPerSecond: number): { fraction: number; label: string } {
  const stage = state.stage === 'confirm' ? 'checking rows missing from the listing' : `page ${state.page}`;
  const fraction =
    state.phase === 'completed' ? 1 : state.total ? Math.min(0.99, state.counts.rows / Math.max(1, state.total)) : 0;
  const of = state.total !== undefined ? `/${state.total}` : '';
  return { fraction, label: `${stage}: ${state.counts.rows}${of} rows, ${Math.round(rowsPerSecond)} rows/s` };
}

/**
 * `puente kissflow backfill --dataset <id> [--view <id>] [--reconcile]`: pages through the dataset and
 * publishes every row as an upserted event (resuming a run that stopped), with progress and rows/s;
 * with `--reconcile`, also publishes the deletes of rows that no longer exist.
 */
export async function kissflowBackfill(
  args: string[],
  env: NodeJS.ProcessEnv,
  out: (line: string) => void,
  isTty = process.stdout.isTTY === true,
): Promise<BackfillState> {
  const dataset = required(args, '--dataset', 'the Kissflow dataset id, e.g. DS_Documentos_Cliente');
  const view = flag(args, '--view');
  const reconcile = args.includes('--reconcile');
  const config = loadConfig(Config, env);
  const bus = await connectBus(env);
  let mongo: MongoClient | undefined;
  try {
    await bus.ensureStreams();
    const kv = await openBackfillBucket(bus);
    let db: Db | undefined;
    if (reconcile) {
      const url = await mongoUrl(env);
      mongo = await MongoClient.connect(url, { serverSelectionTimeoutMS: 5_000 });
      db = mongo.db(mongoDatabaseName(url));
    }
    const backfill = backfillFrom({ bus, kv, logger: pino({ level: 'silent' }), config, ...(db ? { db } : {}) });
    const started = Date.now();
    let firstRows: number | undefined;
    const progress = progressPrinter(out, isTty);
    const state = await backfill.run({ dataset, ...(view ? { view } : {}), reconcile }, (s) => {
      firstRows ??= s.counts.rows;
      const rate = (s.counts.rows - firstRows) / Math.max(0.001, (Date.now() - started) / 1000);
      const { fraction, label } = describe(s, rate);
      progress.show(fraction, label, s.phase !== 'running');
    });
    progress.done();
    const seconds = (Date.now() - started) / 1000;
    const c = state.counts;
    const deletes = state.reconcile
      ? `; ${c.candidates} rows missing from the listing: ${c.deleted} deleted, ${c.missed} still there`
      : '';
    out(
      `kissflow backfill ${dataset}${view ? ` (view ${view})` : ''}: ${state.phase} (run ${state.runId}): ${c.rows} rows in ${c.pages} pages, ${c.details} read one by one${c.invalid ? `, ${c.invalid} items without _id skipped` : ''}${deletes}; ${seconds.toFixed(1)} s, ${Math.round((c.rows - (firstRows ?? 0)) / Math.max(0.001, seconds))} rows/s`,
    );
    return state;
  } finally {
    await mongo?.close();
    await bus.close();
  }
}
