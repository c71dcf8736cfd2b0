import { sectionTargetOf, type CatalogMapping } from './catalogMapping.js';

/** An amount in cents (integers, so `120.10` compares equal however it was written) and its currency. */
export interface Money {
  cents: number;
  currency: string;
}

/** A product of this sync as Bitrix24 holds it (its `xmlId` starts with the mapping's prefix). */
export interface ExistingProduct {
  id: number;
  xmlId: string;
  name: string;
  active: boolean;
  sectionId: number | null;
}

/** The product's price row of the synced price type (the one without a quantity range). */
export interface ExistingPrice {
  id: number;
  productId: number;
  money: Money;
}

/** Where a product goes: a section id, or a named section that this run creates first. */
export type SectionRef = { kind: 'id'; id: number } | { kind: 'new'; xmlId: string; name: string };

/** One field of an existing product that differs. */
export type FieldChange =
  | { field: 'name'; from: string; to: string }
  | { field: 'section'; from: number | null; to: SectionRef }
  | { field: 'active'; from: false; to: true };

/** The price to write: over an existing price row (`priceId`), or a new row. */
export interface PriceChange {
  priceId: number | null;
  from: Money | null;
  to: Money;
}

/** What one external id needs. Keys are external ids (the ERP's, without the prefix). */
export type CatalogChange =
  | { kind: 'create'; key: string; xmlId: string; name: string; section: SectionRef | null; price: Money }
  | { kind: 'update'; key: string; xmlId: string; productId: number; fields: FieldChange[]; price: PriceChange | null }
  | { kind: 'deactivate'; key: string; xmlId: string; productId: number; reason: 'gone' | 'inactive' | 'duplicate' };

/** A named section that does not exist yet and is created before the products that go in it. */
export interface SectionToCreate {
  xmlId: string;
  name: string;
}

/** An ERP row that cannot become a product (nothing is written for it; a product it already has is left alone). */
export interface InvalidService {
  /** Its position in the query's result (0-based). */
  row: number;
  key: string | null;
  code: 'MISSING_KEY' | 'MISSING_NAME' | 'INVALID_PRICE' | 'DUPLICATE_KEY';
  message: string;
}

/** The diff between the ERP's services and the products of this sync in Bitrix24. */
export interface CatalogPlan {
  sections: SectionToCreate[];
  /** Sorted by external id (deactivations of duplicates after their key's own change). */
  changes: CatalogChange[];
  /** External ids of products that need nothing (or that `deactivate: "keep"` leaves as they are). */
  unchanged: string[];
  invalid: InvalidService[];
}

/** What `diffCatalog` compares. */
export interface CatalogDiffInput {
  /** ERP rows as `BITRIX_CATALOG_QUERY` returned them. */
  rows: readonly Record<string, unknown>[];
  /** Products of the catalog; those without the mapping's prefix are ignored. */
  products: readonly ExistingProduct[];
  /** Price rows of the synced price type, by product id. */
  prices: ReadonlyMap<number, ExistingPrice>;
  /** Existing sections by `xmlId` (the named sections of the mapping that Bitrix24 already has). */
  sectionsByXmlId: ReadonlyMap<string, number>;
  mapping: CatalogMapping;
}

/** A service as the mapping reads it from a row. */
interface DesiredService {
  key: string;
  name: string;
  price: Money;
  active: boolean;
  section: SectionRef | undefined;
}

const INACTIVE = new Set(['f', 'false', '0', 'n', 'no']);

/** True unless the value says "inactive" (`false`, `'f'`, `0`, `'N'`, ...); `null` counts as active, as the demo column's default. */
export function isActiveValue(value: unknown): boolean {
  if (value === false || value === 0) return false;
  if (typeof value === 'string') return !INACTIVE.has(value.trim().toLowerCase());
  return true;
}

/** Cents of a price as PostgreSQL (`numeric` comes as text) or Bitrix24 sends it; undefined when it is not a price. */
export function centsOf(value: unknown): number | undefined {
  if (value === null || value === undefined || value === '' || typeof value === 'boolean') return undefined;
  const n = typeof value === 'number' ? value : Number(String(value).trim());
  if (!Number.isFinite(n) || n < 0) return undefined;
  // Through fixed digits first: 99.995 * 100 is 9999.499999..., which would round down.
  return Math.round(Number((n * 100).toFixed(6)));
}

/** `12345` → `123.45`. */
export function formatCents(cents: number): string {
  const sign = cents < 0 ? '-' : '';
  const abs = Math.abs(cents);
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`;
}

const text = (value: unknown): string | null => {
  if (value === null || value === undefined) return null;
  const s = (value instanceof Date ? value.toISOString() : String(value)).trim();
  return s === '' ? null : s;
};

/**
 * The diff (pure): which products to create, update, reprice or deactivate so that Bitrix24's catalog
 * holds the ERP's services. Products are matched by `xmlId` = prefix + external id; a product without
 * the prefix is never in the plan. A service that is inactive or gone deactivates its product
 * (`deactivate: "deactivate"`), never deletes it; an inactive service without a product creates none.
 * A second product with the same `xmlId` (a create whose answer was lost, then retried) is deactivated
 * as a duplicate; the oldest one is kept.
 */
export function diffCatalog(input: CatalogDiffInput): CatalogPlan {
  const { mapping } = input;
  const invalid: InvalidService[] = [];
  const desired = new Map<string, DesiredService>();
  /** Keys of invalid rows: their products are neither changed nor deactivated. */
  const untouchable = new Set<string>();
  const newSections = new Map<string, SectionToCreate>();

  input.rows.forEach((row, index) => {
    const key = text(row[mapping.key]);
    if (key === null) {
      invalid.push({
        row: index,
        key: null,
        code: 'MISSING_KEY',
        message: `column ${mapping.key} (the external id) is empty`,
      });
      return;
    }
    if (desired.has(key) || untouchable.has(key)) {
      invalid.push({
        row: index,
        key,
        code: 'DUPLICATE_KEY',
        message: `external id ${key} appears in more than one row`,
      });
      desired.delete(key);
      untouchable.add(key);
      return;
    }
    const name = text(row[mapping.name]);
    if (name === null) {
      invalid.push({
        row: index,
        key,
        code: 'MISSING_NAME',
        message: `column ${mapping.name} (the product name) is empty`,
      });
      untouchable.add(key);
      return;
    }
    const cents = centsOf(row[mapping.price]);
    if (cents === undefined) {
      invalid.push({
        row: index,
        key,
        code: 'INVALID_PRICE',
        message: `column ${mapping.price} holds no price (${String(row[mapping.price]).slice(0, 40)})`,
      });
      untouchable.add(key);
      return;
    }
    const erpSection = text(row[mapping.section]);
    const target = erpSection === null ? undefined : sectionTargetOf(mapping, erpSection);
    let section: SectionRef | undefined;
    if (target?.kind === 'id') section = { kind: 'id', id: target.id };
    else if (target?.kind === 'named') {
      const existing = input.sectionsByXmlId.get(target.xmlId);
      section =
        existing !== undefined ? { kind: 'id', id: existing } : { kind: 'new', xmlId: target.xmlId, name: target.name };
    }
    desired.set(key, {
      key,
      name,
      price: { cents, currency: mapping.currency },
      active: mapping.active === null ? true : isActiveValue(row[mapping.active]),
      section,
    });
  });

  // Our products by external id, oldest first (the one kept when a create was duplicated).
  const ours = new Map<string, ExistingProduct[]>();
  for (const product of [...input.products].sort((a, b) => a.id - b.id)) {
    if (!product.xmlId.startsWith(mapping.prefix)) continue;
    const key = product.xmlId.slice(mapping.prefix.length);
    if (key === '') continue;
    const list = ours.get(key) ?? [];
    list.push(product);
    ours.set(key, list);
  }

  const changes: CatalogChange[] = [];
  const unchanged: string[] = [];
  const keys = [...new Set([...desired.keys(), ...ours.keys()])].sort(compareKeys);
  const deactivating = mapping.deactivate === 'deactivate';
  for (const key of keys) {
    if (untouchable.has(key)) continue;
    const want = desired.get(key);
    const [product, ...duplicates] = ours.get(key) ?? [];
    const xmlId = `${mapping.prefix}${key}`;
    if (!product) {
      if (want?.active) {
        if (want.section?.kind === 'new')
          newSections.set(want.section.xmlId, { xmlId: want.section.xmlId, name: want.section.name });
        changes.push({ kind: 'create', key, xmlId, name: want.name, section: want.section ?? null, price: want.price });
      }
      continue;
    }
    if (!want || !want.active) {
      if (deactivating && product.active)
        changes.push({ kind: 'deactivate', key, xmlId, productId: product.id, reason: want ? 'inactive' : 'gone' });
      else unchanged.push(key);
    } else {
      const fields: FieldChange[] = [];
      if (product.name.trim() !== want.name) fields.push({ field: 'name', from: product.name, to: want.name });
      if (want.section && !(want.section.kind === 'id' && want.section.id === product.sectionId)) {
        if (want.section.kind === 'new')
          newSections.set(want.section.xmlId, { xmlId: want.section.xmlId, name: want.section.name });
        fields.push({ field: 'section', from: product.sectionId, to: want.section });
      }
      if (!product.active) fields.push({ field: 'active', from: false, to: true });
      const price = input.prices.get(product.id);
      const priceChange: PriceChange | null = !price
        ? { priceId: null, from: null, to: want.price }
        : price.money.cents !== want.price.cents || price.money.currency !== want.price.currency
          ? { priceId: price.id, from: price.money, to: want.price }
          : null;
      if (fields.length > 0 || priceChange)
        changes.push({ kind: 'update', key, xmlId, productId: product.id, fields, price: priceChange });
      else unchanged.push(key);
    }
    if (deactivating) {
      for (const duplicate of duplicates)
        if (duplicate.active)
          changes.push({ kind: 'deactivate', key, xmlId, productId: duplicate.id, reason: 'duplicate' });
    }
  }
  return { sections: [...newSections.values()], changes, unchanged, invalid };
}

/** Numeric-aware, so `SRV-2` comes before `SRV-10` in what the operator reads. */
function compareKeys(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

/** How many of each change a plan holds (what a dry run reports). */
export function planCounts(plan: CatalogPlan): {
  created: number;
  updated: number;
  priced: number;
  deactivated: number;
  unchanged: number;
  failed: number;
} {
  let created = 0;
  let updated = 0;
  let priced = 0;
  let deactivated = 0;
  for (const change of plan.changes) {
    if (change.kind === 'create') {
      created++;
      priced++;
    } else if (change.kind === 'update') {
      if (change.fields.length > 0) updated++;
      if (change.price) priced++;
    } else deactivated++;
  }
  return { created, updated, priced, deactivated, unchanged: plan.unchanged.length, failed: plan.invalid.length };
}

/** One line per change, as the CLI prints it: `+ glyms:SRV-5 Nueva consulta 99.00 PEN`, `~ ... price 120.00 → 125.00`, `- ... deactivate`. */
export function describeChange(change: CatalogChange): string {
  switch (change.kind) {
    case 'create':
      return `+ ${change.xmlId} ${change.name} ${formatCents(change.price.cents)} ${change.price.currency}${change.section ? ` in section ${describeSection(change.section)}` : ''}`;
    case 'update': {
      const parts: string[] = [];
      for (const field of change.fields) {
        if (field.field === 'name') parts.push(`name ${JSON.stringify(field.from)} → ${JSON.stringify(field.to)}`);
        else if (field.field === 'section')
          parts.push(`section ${field.from ?? '(none)'} → ${describeSection(field.to)}`);
        else parts.push('activate');
      }
      if (change.price) {
        const { from, to } = change.price;
        if (!from) parts.push(`price (none) → ${formatCents(to.cents)} ${to.currency}`);
        else if (from.currency !== to.currency)
          parts.push(`price ${formatCents(from.cents)} ${from.currency} → ${formatCents(to.cents)} ${to.currency}`);
        else parts.push(`price ${formatCents(from.cents)} → ${formatCents(to.cents)}`);
      }
      return `~ ${change.xmlId} ${parts.join(', ')}`;
    }
    case 'deactivate':
      return `- ${change.xmlId} deactivate${change.reason === 'duplicate' ? ` (duplicate product ${change.productId})` : change.reason === 'inactive' ? ' (inactive)' : ' (gone)'}`;
    default: {
      const unexpected: never = change;
      throw new Error(`unknown change ${(unexpected as CatalogChange).kind}`);
    }
  }
}

function describeSection(section: SectionRef): string {
  return section.kind === 'id' ? String(section.id) : `${JSON.stringify(section.name)} (new)`;
}
