export * from './stack.js';
export * from './processes.js';
export { cacheDir, ensureChromium, ensureNatsServer, findBinary, locatePostgres, Versions } from './binaries.js';
export { ensureDatabase, postgresServerUrl } from './servers.js';
export * from './services.js';
export {
  NATS_SYNC_INTERVAL_DEFAULT,
  natsSyncInterval,
  startMongoWire,
  startNats,
  startPostgres,
  type NatsClusterOptions,
  type RunningServer,
} from './servers.js';
export { ensureGlymsDemo, glymsDemoSql, GLYMS_SCHEMA } from './glyms.js';
export * from './manifests.js';
export {
  ensureKafka,
  ensureMavenRuntime,
  kafkaAnswers,
  kafkaClusterId,
  startKafka,
  KafkaVersions,
  KAFKA_ARTIFACTS,
  KAFKA_JVM_OPTIONS,
  KAFKA_LOG4J,
  ensureDebeziumConnect,
  startDebeziumConnect,
  debeziumConnectorProperties,
  DebeziumVersions,
  DEBEZIUM_CONNECT_ARTIFACTS,
  type JavaRuntime,
  type MavenCoordinate,
  type DebeziumConnectorOptions,
} from './kafka.js';
