export * from './bus.js';
export * from './errors.js';
export * from './runner.js';
export * from './deadletters.js';
export { eachConcurrently } from './pool.js';
export { injectTrace, extractTrace, withSpan, SpanKind } from './trace.js';
export { eventIdFor } from './ids.js';
export {
  ResumableJob,
  readJobState,
  type JobBusyReason,
  type JobState,
  type ResumableJobOptions,
} from './resumableJob.js';
