import { MongoClient } from 'mongodb';
import { replayable as kissflowReplayable } from '@puente/kissflow-sync';
import { rebuild, rebuildTarget, type Replayable } from '@puente/projection';
import { mongoDatabaseName } from '@puente/runtime';
import { replayable as whatsappReplayable } from '@puente/whatsapp';
import { flag, mongoUrl, connectBus, progressPrinter } from './common.js';
import { UsageError } from './sendSample.js';

/** The read models `puente replay` can rebuild: what each service that owns projections exports. */
export const REPLAYABLE: readonly Replayable[] = [...kissflowReplayable, ...whatsappReplayable];

/**
 * `puente replay <projection> [--from <seq>]`: rebuilds a read model from `EVENTS` beside the live one
 * and swaps it in (`rebuild` in libs/projection), with progress (events/s, ETA).
 */
export async function replay(
  args: string[],
  env: NodeJS.ProcessEnv,
  out: (line: string) => void,
  isTty = process.stdout.isTTY === true,
  replayable: readonly Replayable[] = REPLAYABLE,
): Promise<number> {
  const [name] = args;
  const entry = replayable.find((r) => r.name === name);
  if (!entry) throw new UsageError(`replay <projection>: one of ${replayable.map((r) => r.name).join(', ')}`);
  const readModel = entry.readModel(env);
  const fromFlag = flag(args, '--from');
  const from = fromFlag === undefined ? 1 : Number(fromFlag);
  if (!Number.isInteger(from) || from < 1) throw new UsageError('--from must be a stream sequence (1 or more)');
  const url = await mongoUrl(env);
  const mongo = await MongoClient.connect(url, { serverSelectionTimeoutMS: 5_000 });
  const bus = await connectBus(env);
  try {
    const target = rebuildTarget(readModel, { db: mongo.db(mongoDatabaseName(url)), bus });
    const progress = progressPrinter(out, isTty);
    const result = await rebuild({
      bus,
      db: mongo.db(mongoDatabaseName(url)),
      target,
      from,
      onProgress: (p) =>
        progress.show(
          p.end > 0 ? Math.min(1, p.position / p.end) : 1,
          `${p.phase}: ${p.position}/${p.end}, ${p.events} events, ${Math.round(p.eventsPerSecond)} events/s${p.etaSeconds !== undefined && p.phase !== 'done' ? `, ETA ${Math.ceil(p.etaSeconds)} s` : ''}`,
          p.phase === 'done',
        ),
    });
    progress.done();
    out(
      `replay ${name}: ${result.events} events in ${result.seconds.toFixed(1)} s (${Math.round(result.events / Math.max(0.001, result.seconds))} events/s), up to position ${result.position}; live collections: ${result.inserted} inserted, ${result.replaced} replaced, ${result.unchanged} unchanged, ${result.removed} removed${result.kept ? `, ${result.kept} kept (not reached from --from ${from}, left as they were)` : ''}${result.failed ? `; ${result.failed} events could not be applied` : ''}; realtime clients told to resync`,
    );
    return result.failed > 0 ? 1 : 0;
  } finally {
    await bus.close();
    await mongo.close();
  }
}
