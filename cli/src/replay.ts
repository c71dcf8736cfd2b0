import { MongoClient, type Db } from 'mongodb';
import { type Bus } from '@puente/bus';
import { Collections } from '@puente/contracts';
import { Config as KissflowConfig, consumerFor as kissflowConsumerFor, loadMappings, recordsProjection } from '@puente/kissflow-sync';
import { ProjectionStore, rebuild, renamed, type RebuildTarget } from '@puente/projection';
import { loadConfig, mongoDatabaseName } from '@puente/runtime';
import { Config as WhatsAppConfig, consumersFor as whatsappConsumersFor, WhatsAppProjections } from '@puente/whatsapp';
import { flag, mongoUrl, connectBus, progressPrinter } from './common.js';
import { UsageError } from './sendSample.js';

/** The projections `puente replay` can rebuild, configured as the services are (same consumers, same mapping). */
function targets(env: NodeJS.ProcessEnv): Record<string, (db: Db, bus: Bus) => RebuildTarget> {
  return {
    'kissflow-records': (db, bus) => {
      const config = loadConfig(KissflowConfig, env);
      const projection = recordsProjection(loadMappings(config.KISSFLOW_MAPPINGS));
      return {
        name: 'kissflow-records',
        consumer: kissflowConsumerFor(config.KISSFLOW_DATASETS),
        collections: [{ collection: Collections.kissflowRecords, checkpoint: projection.name, ...(config.KISSFLOW_DATASETS ? { scope: { dataset: { $in: config.KISSFLOW_DATASETS } } } : {}) }],
        staging: (suffix) => {
          const store = new ProjectionStore({ db, bus, writers: 'exclusive', notify: false, projection: renamed(projection, suffix) });
          return { init: () => store.init(), apply: async (events) => (await store.apply(events)).outcomes };
        },
      };
    },
    whatsapp: (db, bus) => {
      const config = loadConfig(WhatsAppConfig, env);
      // Sessions are `_id` in wa_sessions, a `session` field elsewhere.
      const scope = (collection: string) => (config.WHATSAPP_SESSIONS ? { scope: { [collection === Collections.waSessions ? '_id' : 'session']: { $in: config.WHATSAPP_SESSIONS } } } : {});
      const names = new WhatsAppProjections(db, bus).stores.map((s) => ({ collection: s.projection.collection, checkpoint: s.projection.name, ...scope(s.projection.collection) }));
      return {
        name: 'whatsapp',
        consumer: whatsappConsumersFor(config.WHATSAPP_SESSIONS).projections,
        collections: names,
        staging: (suffix) => {
          const projections = new WhatsAppProjections(db, bus, { writers: 'exclusive', staging: suffix });
          return { init: () => projections.init(), apply: (events) => projections.apply(events) };
        },
      };
    },
  };
}

export const REPLAYABLE = ['kissflow-records', 'whatsapp'] as const;

/**
 * `puente replay <projection> [--from <seq>]`: rebuilds a read model from `EVENTS` beside the live one
 * and swaps it in (`rebuild` in libs/projection), with progress (events/s, ETA).
 */
export async function replay(args: string[], env: NodeJS.ProcessEnv, out: (line: string) => void, isTty = process.stdout.isTTY === true): Promise<number> {
  const [name] = args;
  const make = name ? targets(env)[name] : undefined;
  if (!make) throw new UsageError(`replay <projection>: one of ${REPLAYABLE.join(', ')}`);
  const fromFlag = flag(args, '--from');
  const from = fromFlag === undefined ? 1 : Number(fromFlag);
  if (!Number.isInteger(from) || from < 1) throw new UsageError('--from must be a stream sequence (1 or more)');
  const url = await mongoUrl(env);
  const mongo = await MongoClient.connect(url, { serverSelectionTimeoutMS: 5_000 });
  const bus = await connectBus(env);
  try {
    const target = make(mongo.db(mongoDatabaseName(url)), bus);
    const progress = progressPrinter(out, isTty);
    const result = await rebuild({
      bus, db: mongo.db(mongoDatabaseName(url)), target, from,
      onProgress: (p) => progress.show(p.end > 0 ? Math.min(1, p.position / p.end) : 1, `${p.phase}: ${p.position}/${p.end}, ${p.events} events, ${Math.round(p.eventsPerSecond)} events/s${p.etaSeconds !== undefined && p.phase !== 'done' ? `, ETA ${Math.ceil(p.etaSeconds)} s` : ''}`, p.phase === 'done'),
    });
    progress.done();
    out(`replay ${name}: ${result.events} events in ${result.seconds.toFixed(1)} s (${Math.round(result.events / Math.max(0.001, result.seconds))} events/s), up to position ${result.position}; live collections: ${result.inserted} inserted, ${result.replaced} replaced, ${result.unchanged} unchanged, ${result.removed} removed${result.failed ? `; ${result.failed} events could not be applied` : ''}; realtime clients told to resync`);
    return result.failed > 0 ? 1 : 0;
  } finally {
    await bus.close();
    await mongo.close();
  }
}

