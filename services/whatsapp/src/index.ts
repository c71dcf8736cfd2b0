/**
 * whatsapp's public surface: the service definition and what the CLI, benches and end-to-end tests compose
 * it from (configuration, buckets, the full sync, the provider clients, the read models and their replay).
 * Everything else is private to the service; fixtures and fakes are in `@puente/whatsapp/testing`.
 */
export { service, startWhatsApp, WhatsAppApp } from './app.js';
export { Config, type WhatsAppConfig } from './config.js';
export { Buckets, openBuckets } from './buckets.js';
export { replayable } from './replay.js';
export {
  WhatsAppProjections,
  commandsProjection,
  contactsProjection,
  conversationsProjection,
  messagesProjection,
  sessionsProjection,
} from './readModels.js';
export type {
  CommandDoc,
  ContactDoc,
  ConversationDoc,
  MessageDoc,
  MessageMedia,
  SessionDoc,
  TemplateDoc,
} from './readModels.js';
export { templateKey } from './templates/templatesProjection.js';
export { MediaWorker, type MediaWorkerOptions } from './media/mediaWorker.js';
export {
  MediaTransientError,
  MediaUnavailableError,
  type DownloadedMedia,
  type MediaItem,
  type MediaSource,
} from './media/source.js';
export { InboxHubClient, inboxHubFrom, type InboxHubPaths } from './providers/inboxhub.js';
export { INBOXHUB_EVENTS } from './providers/inboxhubApiTypes.js';
export { EvolutionClient, evolutionFrom, type EvolutionConfig } from './providers/evolution.js';
export { WahaClient, wahaFrom, type WahaConfig } from './providers/waha.js';
export type { GatewayClient, GatewaySendInput } from './providers/gateway.js';
export { MetaAppClient, type MetaSubscription } from './providers/metaApp.js';
export { FullSync, SyncBusyError, type SyncState } from './sync/fullSync.js';
export {
  inboxHubSource,
  type SyncChat,
  type SyncContact,
  type SyncMessage,
  type SyncPage,
  type SyncSource,
} from './sync/source.js';
