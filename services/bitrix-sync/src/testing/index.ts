export { FakeBitrix24, type FakeBitrix24Options, type FakeRequest, type InjectedError } from './fakeBitrix24.js';
