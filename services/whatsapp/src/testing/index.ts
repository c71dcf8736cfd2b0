export {
  FakeInboxHub,
  type FakeAccountWebhook,
  type FakeInboxHubOptions,
  type FakeRequest,
  type FakeSend,
} from './fakeInboxHub.js';
export { FakeGraph, type FakeGraphOptions, type GraphSend, type GraphTemplate, type GraphUpload } from './fakeGraph.js';
export { INBOXHUB_EVENTS } from '../providers/inboxhubApiTypes.js';
export { FakeEvolution, type FakeEvolutionOptions } from './fakeEvolution.js';
export { FakeWaha, type FakeWahaOptions } from './fakeWaha.js';
export { type GatewayRequest, type GatewaySend, type ReceivedFile } from './fakeHttp.js';
export { FakeMediaFiles, type FakeFile } from './fakeMedia.js';
export { outgoingMediaOf, reportSentStatus } from './sends.js';
export { FileServer, type ServedFile } from './fileServer.js';
