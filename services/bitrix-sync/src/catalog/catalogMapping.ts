import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { duration } from '@puente/runtime';

/** The default `BITRIX_CATALOG_QUERY`: every service of the demo schema, active or not (inactive ones are deactivated). */
export const DEFAULT_CATALOG_QUERY =
  'select id_servicio, codigo, nombre, precio, id_seccion, activo from public.servicio';

/**
 * The service-catalog settings (environment variables), to merge into the service's config schema
 * (`Config.extend(CatalogSettings.shape)`).
 */
export const CatalogSettings = z.object({
  /** SQL returning the services (one row each); the mapping file names its columns. */
  BITRIX_CATALOG_QUERY: z.string().trim().min(1).default(DEFAULT_CATALOG_QUERY),
  /** Path of the catalog mapping file (docs/bitrix.md); unset: the demo schema's defaults. */
  BITRIX_CATALOG_MAPPING: z.string().optional(),
  /** How often the service runs the catalog sync on its own; `0` turns the schedule off (the CLI still runs it). */
  BITRIX_CATALOG_INTERVAL_MS: duration().default(3_600_000),
});
export type CatalogSettings = z.infer<typeof CatalogSettings>;

const Column = z.string().trim().min(1);

/** A mapped section: an existing Bitrix24 section id, or one found (by `xmlId`) or created by name. */
const SectionTarget = z.union([
  z.number().int().positive(),
  z.string().regex(/^\d+$/, 'a Bitrix24 section id (a number) or {"name": "..."}').transform(Number),
  z.strictObject({
    name: z.string().trim().min(1).max(255),
    /** How the section is found again (default `<prefix>section:<id_seccion>`). */
    xmlId: z.string().trim().min(1).max(255).optional(),
  }),
]);

/**
 * The catalog mapping file (`BITRIX_CATALOG_MAPPING`): which columns of `BITRIX_CATALOG_QUERY` make a
 * Bitrix24 catalog product and its price. Every key is optional; the defaults fit the demo schema.
 */
export const CatalogMapping = z.strictObject({
  /**
   * Products this sync owns have `xmlId` = prefix + external id. Only those are ever changed or
   * deactivated, so products created by hand in Bitrix24 (no `xmlId`, or another prefix) are left alone.
   */
  prefix: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[^\s%]+$/, 'no spaces or %')
    .default('glyms:'),
  /** Column of the external id (unique per service). */
  key: Column.default('codigo'),
  /** Column of the product name. */
  name: Column.default('nombre'),
  /** Column of the price (a number or numeric text). */
  price: Column.default('precio'),
  /**
   * ISO currency of the prices. Default `PEN` (the demo ERP is Peruvian: soles); the portal must have it
   * (`crm.currency.list`), or every price write fails with Bitrix's error.
   */
  currency: z
    .string()
    .regex(/^[A-Z]{3}$/, 'an ISO 4217 code such as PEN, USD or EUR')
    .default('PEN'),
  /** The price type written: its id, its `xmlId`, or `base` (the type with `base: 'Y'`); list them with `npx puente bitrix price-types`. */
  priceType: z.union([z.number().int().positive(), z.string().trim().min(1)]).default('base'),
  /** Column saying whether a service is active (`null`: every row is active). */
  active: Column.nullable().default('activo'),
  /** Column of the ERP section id that `sections` maps. */
  section: Column.default('id_seccion'),
  /**
   * ERP section id → Bitrix24 section: `{"3": 17}` puts services of section 3 in section 17;
   * `{"4": {"name": "Laboratorio"}}` uses the section with xmlId `<prefix>section:4`, created when missing.
   * A service whose section is not mapped keeps whatever section its product has in Bitrix24.
   */
  sections: z.record(z.string().regex(/^[^\s]+$/, 'an ERP section id'), SectionTarget).default({}),
  /** What happens to a product whose service disappeared from the query or became inactive: `active: 'N'`, or nothing. Never deleted. */
  deactivate: z.enum(['deactivate', 'keep']).default('deactivate'),
  /** The product catalog's `iblockId` (default: the catalog `catalog.catalog.list` names that is not an SKU catalog). */
  iblockId: z.number().int().positive().optional(),
});
export type CatalogMapping = z.infer<typeof CatalogMapping>;

/** Where a mapped ERP section goes: a known Bitrix24 section id, or a named section found or created by its `xmlId`. */
export type SectionTarget = { kind: 'id'; id: number } | { kind: 'named'; name: string; xmlId: string };

/** The mapping's section target for an ERP section id, with the named section's `xmlId` filled in. */
export function sectionTargetOf(mapping: CatalogMapping, erpSection: string): SectionTarget | undefined {
  const target = mapping.sections[erpSection];
  if (target === undefined) return undefined;
  if (typeof target === 'number') return { kind: 'id', id: target };
  return { kind: 'named', name: target.name, xmlId: target.xmlId ?? `${mapping.prefix}section:${erpSection}` };
}

/** Reads and validates the mapping file; no path: the defaults for the demo schema. Throws one line naming the file and the problem. */
export function loadCatalogMapping(path: string | undefined): CatalogMapping {
  if (!path) return CatalogMapping.parse({});
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new Error(`BITRIX_CATALOG_MAPPING ${path}: ${oneLine((error as Error).message)}`);
  }
  const parsed = CatalogMapping.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`BITRIX_CATALOG_MAPPING ${path}: ${issue.path.join('.') || '(root)'}: ${oneLine(issue.message)}`);
  }
  return parsed.data;
}

function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, ' ');
}
