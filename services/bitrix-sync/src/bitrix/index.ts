/** The Bitrix24 side of bitrix-sync: REST client, rate limiter, shared OAuth tokens, settings. */
export * from './bitrixApiTypes.js';
export * from './client.js';
export * from './config.js';
export * from './errors.js';
export * from './limiter.js';
export * from './query.js';
export * from './tokens.js';
