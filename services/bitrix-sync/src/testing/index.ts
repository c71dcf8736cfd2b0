export { createTestGlymsDatabase, type TestGlymsDatabase } from './postgres.js';
export { readEvents, type StoredEvent } from './events.js';
export { FakeBitrix24, type FakeBitrix24Options, type FakeRequest, type InjectedError } from './fakeBitrix24.js';
