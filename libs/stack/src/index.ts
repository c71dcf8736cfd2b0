export * from './stack.js';
export * from './processes.js';
export { cacheDir, ensureChromium, Versions } from './binaries.js';
export { ensureDatabase } from './servers.js';
export * from './services.js';
export { startNats } from './servers.js';
