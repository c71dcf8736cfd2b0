/**
 * `@puente/cdc`: the ERP's row changes into `EVENTS`. One relay per `GLYMS_CDC_MODE` (`logical`,
 * `logtable`, `debezium`), each a `CdcSource`; the change events they publish (`glyms.row.<op>.v1`) and
 * their message ids; and the lease that keeps one replica of a relay's host active.
 */
export {
  CdcModes,
  changeMessage,
  changeMsgId,
  jsonRow,
  jsonValue,
  keyString,
  type CdcMode,
  type CdcSource,
  type ChangeMessage,
  type RowChange,
} from './changes.js';
export { CdcSetupError } from './cdcSetupError.js';
export { parseTableName, type TableName } from './tableName.js';
export { LogicalSource, type LogicalSourceOptions } from './logical.js';
export { LogTableSource, type LogTableSourceOptions } from './logtable.js';
export {
  DebeziumRecordError,
  DebeziumSource,
  DEFAULT_DEBEZIUM_TABLES,
  debeziumTopic,
  parseDebeziumRecord,
  type DebeziumRecord,
  type DebeziumSourceOptions,
  type DebeziumSourceStats,
} from './debezium.js';
export { lsnToBigInt, maxLsn, normalizeLsn } from './lsn.js';
export {
  RelayPublisher,
  resendPosition,
  type RelayPublisherHooks,
  type RelayPublisherOptions,
  type RelayUnit,
} from './relayPublisher.js';
export { Lease, LeaseLostError, type LeaseOptions } from './lease.js';
