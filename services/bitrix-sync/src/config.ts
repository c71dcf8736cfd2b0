import { z } from 'zod';
import { CdcModes } from '@puente/cdc';
import { duration, list, url } from '@puente/runtime';
import { BitrixSettings } from './bitrix/config.js';
import { CatalogSettings } from './catalog/catalogMapping.js';

/** The service's environment: Bitrix24 and the catalog (their settings), the ERP's CDC relay, the companies consumer and the lease (docs/bitrix.md). */
export const Config = BitrixSettings.extend(CatalogSettings.shape).extend({
  GLYMS_DATABASE_URL: url(['postgres', 'postgresql']).default('postgres://postgres@127.0.0.1:5432/glyms'),
  GLYMS_CDC_MODE: z.enum(CdcModes).default('logical'),
  /** Tables the `logical` and `debezium` relays publish (`schema.table`, comma separated). */
  GLYMS_CDC_TABLES: list().default(['public.cliente', 'public.servicio']),
  GLYMS_CDC_PUBLICATION: z.string().default('puente_glyms'),
  GLYMS_CDC_SLOT: z.string().default('puente_glyms'),
  /** Warn when the slot holds back more WAL than this many bytes. */
  GLYMS_SLOT_LAG_WARN_BYTES: z.coerce
    .number()
    .int()
    .min(1)
    .default(256 * 1024 * 1024),
  /** `logtable` mode: the wait between polls of an empty change log. */
  GLYMS_LOGTABLE_POLL_MS: duration().default(1_000),
  KAFKA_BROKERS: list().optional(),
  DEBEZIUM_TOPIC_PREFIX: z.string().default('glyms'),
  /** Path of the companies mapping file (docs/bitrix.md); unset: the demo schema's defaults. */
  BITRIX_COMPANY_MAPPING: z.string().optional(),
  /** How long the companies consumer waits for more changes before pushing: changes to one customer inside it become one call. */
  BITRIX_COALESCE_MS: duration().default(500),
  /** The active replica renews its lease this often x3; a standby takes over after it lapses. */
  BITRIX_LEASE_TTL_MS: duration().default(15_000),
});
export type BitrixSyncConfig = z.infer<typeof Config>;
