export * from './versions.js';
export * from './projection.js';
export * from './store.js';
export * from './handler.js';
export * from './group.js';
export * from './readModel.js';
export * from './rebuild.js';
