/**
 * bitrix-sync's public surface: the service definition and what the CLI, benches and end-to-end tests
 * compose it from (configuration, the Bitrix24 client and its tokens, the companies pusher and its
 * mapping, the catalog sync). Everything else is private to the service; fixtures and fakes are in
 * `@puente/bitrix-sync/testing`.
 */
export { service, startBitrixSync, BitrixSyncApp, LEASE_BUCKET } from './app.js';
export { Config, type BitrixSyncConfig } from './config.js';
export { CDC_BUCKET } from './cdcSource.js';
export { BitrixSettings, bitrixClientFrom, bitrixMissing, bitrixTokenStoreFrom } from './bitrix/config.js';
export { BitrixClient } from './bitrix/client.js';
export { BitrixTokenStore } from './bitrix/tokens.js';
export type { CatalogPriceType, CrmStatus } from './bitrix/bitrixApiTypes.js';
export { companiesConsumer } from './companies/consumer.js';
export { linksProjection, type BitrixLinkDoc } from './companies/links.js';
export { CompanyMapping, loadCompanyMapping } from './companies/mapping.js';
export { CompanyPusher, type BitrixBatchApi } from './companies/pusher.js';
export { publishCompanyResync } from './companies/resync.js';
export {
  CatalogSettings,
  CatalogSync,
  describeChange,
  loadCatalogMapping,
  type CatalogCounts,
} from './catalog/index.js';
