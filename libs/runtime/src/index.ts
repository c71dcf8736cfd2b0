export * from './config.js';
export * from './logger.js';
export * from './telemetry.js';
export * from './httpServer.js';
export * from './service.js';
export * from './providerClient.js';
export * from './metrics.js';
export * from './jwt.js';
