export * from './inject.js';
