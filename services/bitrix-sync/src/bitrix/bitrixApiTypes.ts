/**
 * Bitrix24 REST wire shapes, in Bitrix's own casing (`../shared/reference/bitrix24-rest.md`): CRM uses
 * UPPER_CASE (`TITLE`, `ORIGIN_ID`), the catalog module camelCase (`iblockId`, `xmlId`). Mapping to
 * Puente's domain types happens at the edge, not here.
 */
import { z } from 'zod';

/** `time` in every answer; `operating_reset_at` is when the method's time budget frees up again (unix seconds). */
export const BitrixTime = z
  .object({
    start: z.number().optional(),
    finish: z.number().optional(),
    duration: z.number().optional(),
    processing: z.number().optional(),
    date_start: z.string().optional(),
    date_finish: z.string().optional(),
    operating: z.number().optional(),
    operating_reset_at: z.number().optional(),
  })
  .loose();
export type BitrixTime = z.infer<typeof BitrixTime>;

/** A successful answer: `result`, plus `total`/`next` on list methods. */
export const BitrixEnvelope = z
  .object({
    result: z.unknown(),
    total: z.number().optional(),
    next: z.number().optional(),
    time: BitrixTime.optional(),
  })
  .loose();
export type BitrixEnvelope = z.infer<typeof BitrixEnvelope>;

/** An error answer (any 4xx/5xx, and sub-call errors of a batch). */
export const BitrixErrorBody = z
  .object({
    error: z.union([z.string(), z.number()]).transform(String),
    error_description: z.string().optional().default(''),
  })
  .loose();
export type BitrixErrorBody = z.infer<typeof BitrixErrorBody>;

/** A sub-call's error in a batch answer. */
export interface BitrixSubError {
  error: string;
  error_description: string;
}

/**
 * `result` of `batch`: per command key. PHP sends an empty map as `[]`, so every part may be an array.
 */
const keyed = <T extends z.ZodType>(value: T) => z.union([z.record(z.string(), value), z.array(value)]).optional();
export const BatchResultWire = z
  .object({
    result: keyed(z.unknown()),
    result_error: keyed(BitrixErrorBody),
    result_total: keyed(z.unknown()),
    result_next: keyed(z.unknown()),
    result_time: keyed(BitrixTime),
  })
  .loose();

/** Answer of `oauth.bitrix.info/oauth/token/` for both grants. */
export const OAuthTokenResponse = z
  .object({
    access_token: z.string().min(1),
    refresh_token: z.string().min(1),
    expires_in: z.coerce.number().optional(),
    expires: z.coerce.number().optional(),
    client_endpoint: z.string().optional(),
    server_endpoint: z.string().optional(),
    domain: z.string().optional(),
    member_id: z.string().optional(),
    scope: z.string().optional(),
    status: z.string().optional(),
    user_id: z.coerce.number().optional(),
  })
  .loose();
export type OAuthTokenResponse = z.infer<typeof OAuthTokenResponse>;

/** The multi-value field kinds of CRM entities. */
export const MultifieldKinds = ['PHONE', 'EMAIL', 'WEB', 'IM'] as const;
export type MultifieldKind = (typeof MultifieldKinds)[number];

/**
 * One multi-value entry. Written: `{VALUE, VALUE_TYPE}` adds, `{ID, VALUE, VALUE_TYPE}` changes,
 * `{ID, DELETE: 'Y'}`, `{ID, VALUE: ''}` or a bare `{ID}` deletes; read back with `TYPE_ID` too.
 */
export interface MultifieldValue {
  ID?: string | number;
  VALUE?: string;
  VALUE_TYPE?: string;
  TYPE_ID?: MultifieldKind;
  DELETE?: 'Y' | 'N';
}

/** `crm.company.*` fields Puente writes and reads (unknown keys are ignored by Bitrix). */
export interface CrmCompanyFields {
  ID?: string;
  TITLE?: string;
  COMPANY_TYPE?: string;
  INDUSTRY?: string;
  EMPLOYEES?: string;
  CURRENCY_ID?: string;
  REVENUE?: string | number;
  OPENED?: 'Y' | 'N';
  ASSIGNED_BY_ID?: string | number;
  COMMENTS?: string;
  IS_MY_COMPANY?: 'Y' | 'N';
  ORIGINATOR_ID?: string;
  ORIGIN_ID?: string;
  ORIGIN_VERSION?: string;
  DATE_CREATE?: string;
  DATE_MODIFY?: string;
  PHONE?: MultifieldValue[];
  EMAIL?: MultifieldValue[];
  WEB?: MultifieldValue[];
  IM?: MultifieldValue[];
  [userField: `UF_CRM_${string}`]: unknown;
}

/** A row of `crm.status.list` (COMPANY_TYPE, INDUSTRY, EMPLOYEES, ... directories). */
export interface CrmStatus {
  ID: string;
  ENTITY_ID: string;
  STATUS_ID: string;
  NAME: string;
  NAME_INIT?: string;
  SORT: string | number;
  SYSTEM: 'Y' | 'N';
  CATEGORY_ID?: string | null;
  COLOR?: string | null;
  SEMANTICS?: string | null;
  EXTRA?: unknown;
}

/** `catalog.catalog.list` → `result.catalogs[]`. */
export interface CatalogCatalog {
  id: number;
  iblockId: number;
  iblockTypeId?: string;
  name: string;
  productIblockId?: number | null;
  skuPropertyId?: number | null;
}

/** `catalog.section.*` → `result.section` / `result.sections[]`. */
export interface CatalogSection {
  id: number;
  iblockId: number;
  iblockSectionId?: number | null;
  name: string;
  xmlId?: string | null;
  code?: string | null;
  sort?: number;
  active?: 'Y' | 'N';
  description?: string | null;
}

/** `catalog.product.*` → `result.element` / `result.product` / `result.products[]`. */
export interface CatalogProduct {
  id: number;
  iblockId: number;
  name?: string;
  active?: 'Y' | 'N';
  xmlId?: string | null;
  code?: string | null;
  iblockSectionId?: number | null;
  [field: string]: unknown;
}

/** `catalog.priceType.list` → `result.priceTypes[]`; `base: 'Y'` is the default retail price. */
export interface CatalogPriceType {
  id: number;
  name: string;
  base: 'Y' | 'N';
  sort: number;
  xmlId: string | null;
}

/** `catalog.price.*` → `result.price` / `result.prices[]`: one row per product and price type. */
export interface CatalogPrice {
  id: number;
  productId: number;
  catalogGroupId: number;
  price: number;
  currency: string;
  quantityFrom?: number | null;
  quantityTo?: number | null;
}
