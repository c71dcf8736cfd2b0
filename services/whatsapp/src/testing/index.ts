export { FakeInboxHub, type FakeInboxHubOptions, type FakeSend } from './fakeInboxHub.js';
export { FakeGraph, type FakeGraphOptions, type GraphSend } from './fakeGraph.js';
