export * from './stack.js';
export * from './processes.js';
export { cacheDir, ensureChromium, ensureNatsServer, Versions } from './binaries.js';
export { ensureDatabase, postgresServerUrl } from './servers.js';
export * from './services.js';
export { startMongoWire, startNats, type NatsClusterOptions } from './servers.js';
export { ensureGlymsDemo, glymsDemoSql } from './glyms.js';
export * from './manifests.js';
