export {
  FakeInboxHub,
  type FakeAccountWebhook,
  type FakeInboxHubOptions,
  type FakeRequest,
  type FakeSend,
} from './fakeInboxHub.js';
export { FakeGraph, type FakeGraphOptions, type GraphSend } from './fakeGraph.js';
export { INBOXHUB_EVENTS } from '../providers/inboxhubApiTypes.js';
export { FakeEvolution, type FakeEvolutionOptions } from './fakeEvolution.js';
export { FakeWaha, type FakeWahaOptions } from './fakeWaha.js';
export { type GatewayRequest, type GatewaySend } from './fakeHttp.js';
export { FakeMediaFiles, type FakeFile } from './fakeMedia.js';
export { reportSentStatus } from './sends.js';
