import { createHash } from 'node:crypto';
import { ChannelRoutes, Collections, Consumers, encodeToken, type ConsumerDefinition } from '@puente/contracts';
import type { ReadModel, Replayable } from '@puente/projection';
import { loadConfig } from '@puente/runtime';
import { Config, type KissflowConfig } from './config.js';
import { loadMappings } from './mapping.js';
import { recordsProjection } from './records.js';

/** The projection's consumer for a set of datasets (all when none): filters `evt.kissflow.record.*.<dataset>`, durable name suffixed with a hash of the set. */
export function consumerFor(datasets: readonly string[] | undefined): ConsumerDefinition {
  const base = Consumers.kissflowRecords;
  if (!datasets || datasets.length === 0) return base;
  const suffix = createHash('sha256')
    .update([...datasets].sort().join('\n'))
    .digest('hex')
    .slice(0, 10);
  return {
    durable: `${base.durable}-${suffix}`,
    stream: base.stream,
    filterSubjects: datasets.map((dataset) => `evt.kissflow.record.*.${encodeToken(dataset)}`),
  };
}

/** The records read model as `puente replay kissflow-records` rebuilds it: this configuration's consumer, datasets and mapping. */
export function recordsReadModel(config: Pick<KissflowConfig, 'KISSFLOW_DATASETS' | 'KISSFLOW_MAPPINGS'>): ReadModel {
  const datasets = config.KISSFLOW_DATASETS;
  return {
    name: 'kissflow-records',
    group: { lead: [recordsProjection(loadMappings(config.KISSFLOW_MAPPINGS))] },
    consumer: consumerFor(datasets),
    routes: [ChannelRoutes.kissflowRecords],
    scope: (collection) =>
      datasets && collection === Collections.kissflowRecords ? { dataset: { $in: datasets } } : undefined,
  };
}

/** The read models this service owns that `puente replay` can rebuild. */
export const replayable: readonly Replayable[] = [
  { name: 'kissflow-records', readModel: (env) => recordsReadModel(loadConfig(Config, env)) },
];
