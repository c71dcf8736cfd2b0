/** The service catalog of bitrix-sync: ERP services to Bitrix24 catalog products with prices (full comparison, batched writes). */
export {
  CatalogMapping,
  CatalogSettings,
  DEFAULT_CATALOG_QUERY,
  loadCatalogMapping,
  sectionTargetOf,
  type SectionTarget,
} from './catalogMapping.js';
export {
  centsOf,
  describeChange,
  diffCatalog,
  formatCents,
  isActiveValue,
  planCounts,
  type CatalogChange,
  type CatalogDiffInput,
  type CatalogPlan,
  type ExistingPrice,
  type ExistingProduct,
  type FieldChange,
  type InvalidService,
  type Money,
  type PriceChange,
  type SectionRef,
  type SectionToCreate,
} from './catalogDiff.js';
export { scheduleCatalogSync, type CatalogSchedule, type CatalogScheduleOptions } from './catalogSchedule.js';
export {
  CatalogSync,
  CatalogSyncError,
  type CatalogApi,
  type CatalogContext,
  type CatalogCounts,
  type CatalogItemError,
  type CatalogRunResult,
  type CatalogSyncOptions,
  type CatalogSyncPlan,
} from './catalogSync.js';
