export * from './config.js';
export * from './logger.js';
export * from './telemetry.js';
export * from './health.js';
export * from './service.js';
export * from './http.js';
export * from './metrics.js';
export * from './jwt.js';
