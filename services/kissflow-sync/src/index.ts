/**
 * kissflow-sync's public surface: the service definition and what the CLI, benches and end-to-end tests
 * compose it from (configuration, the backfill, the client, the records read model). Everything else is
 * private to the service; fixtures and fakes are in `@puente/kissflow-sync/testing`.
 */
export { service, startKissflowSync, KissflowSyncApp } from './app.js';
export { Config, type KissflowConfig } from './config.js';
export { consumerFor, replayable } from './readModel.js';
export {
  BACKFILL_BUCKET,
  Backfill,
  BackfillBusyError,
  backfillFrom,
  modifiedAtOf,
  openBackfillBucket,
  type BackfillCounts,
  type BackfillOptions,
  type BackfillState,
} from './backfill.js';
export { KissflowClient, kissflowFrom, type KissflowRow } from './client.js';
export { recordKey, recordsProjection, type KissflowRecordDoc } from './records.js';
