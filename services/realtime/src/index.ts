/**
 * realtime's public surface: the service definition, `build` (the server, not listening) with its options,
 * its configuration, and the tokens it accepts (`signToken`, `verifyToken`, as an app's backend mints them).
 * Everything else is private to the service; a test server and socket are in `@puente/realtime/testing`.
 */
export { build, service, type RealtimeOptions, type RealtimeServer } from './app.js';
export { Config, type RealtimeConfig } from './config.js';
export { CloseCodes } from './connection.js';
export { signToken, verifyToken } from '@puente/runtime';
