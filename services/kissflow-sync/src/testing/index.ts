export * from './fakeKissflow.js';
