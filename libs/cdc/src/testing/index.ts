export { createCustomerTable } from './customerTable.js';
export { createTestGlymsDatabase, type TestGlymsDatabase } from './postgres.js';
export { readEvents, type StoredEvent } from './events.js';
