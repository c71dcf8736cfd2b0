import { createHash } from 'node:crypto';
import pg from 'pg';
import type { Logger } from 'pino';
import { z } from 'zod';
import { createEvent, type DomainEvent } from '@puente/contracts';
import type { Bus } from '@puente/bus';
import { MAX_BATCH, PAGE_SIZE, type BatchCommand, type BatchResult, type BitrixClient } from '../bitrix/client.js';
import type { BitrixSubError } from '../bitrix/bitrixApiTypes.js';
import { DEFAULT_CATALOG_QUERY, type CatalogMapping } from './catalogMapping.js';
import {
  centsOf,
  diffCatalog,
  formatCents,
  planCounts,
  type CatalogChange,
  type CatalogPlan,
  type ExistingPrice,
  type ExistingProduct,
  type SectionRef,
} from './catalogDiff.js';

/** What the sync needs from a Bitrix24 client (`BitrixClient`, or a stand-in in tests). */
export type CatalogApi = Pick<BitrixClient, 'call' | 'callEnvelope' | 'batch'>;

/** The catalog sync cannot start: the query, the catalog or the price type is not what the mapping says. */
export class CatalogSyncError extends Error {
  constructor(
    readonly code: 'QUERY_FAILED' | 'MISSING_COLUMN' | 'NO_CATALOG' | 'NO_PRICE_TYPE' | 'READ_FAILED',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message.replace(/\s*[\r\n]+\s*/g, ' '), options);
    this.name = 'CatalogSyncError';
  }
}

/** The Bitrix24 ids the plan was made against. */
export interface CatalogContext {
  /** The product catalog's info block. */
  iblockId: number;
  /** The price type (`catalogGroupId`) written. */
  priceTypeId: number;
}

/** A plan, with what it was computed from. */
export interface CatalogSyncPlan extends CatalogPlan {
  context: CatalogContext;
  /** Rows the query returned. */
  services: number;
  /** Products of this sync (with the prefix) found in Bitrix24. */
  products: number;
}

/** A write that failed, for one external id. */
export interface CatalogItemError {
  key: string;
  xmlId: string;
  /** What could not be written: the product's section, the product, or its price. */
  step: 'section' | 'product' | 'price' | 'row';
  method: string;
  /** Bitrix24's error code (or ours for an invalid row, e.g. `INVALID_PRICE`). */
  code: string;
  message: string;
}

/** How many products ended each way. `failed` counts changes with any failed write, plus invalid ERP rows. */
export interface CatalogCounts {
  created: number;
  updated: number;
  /** Price rows written (a new product's price included). */
  priced: number;
  deactivated: number;
  unchanged: number;
  failed: number;
}

/** What `run` did (or, with `dryRun`, would do). */
export interface CatalogRunResult {
  dryRun: boolean;
  plan: CatalogSyncPlan;
  counts: CatalogCounts;
  errors: CatalogItemError[];
  /** Outcome events published (`bitrix.entity.synced|failed.v1`, entity `product`). */
  events: number;
  /** Why the outcome events could not be published (the writes above happened all the same). */
  eventsError?: string;
}

export interface CatalogSyncOptions {
  client: CatalogApi;
  /** Where the outcome events go (a `Bus`). */
  bus: Pick<Bus, 'publishEvents'>;
  /** The ERP database (`GLYMS_DATABASE_URL`). */
  databaseUrl: string;
  /** `BITRIX_CATALOG_QUERY`. */
  query?: string;
  mapping: CatalogMapping;
  logger?: Logger;
  now?: () => Date;
  /** Progress of long work, one short line at a time (`writing 2/5 batches`). */
  onProgress?: (message: string) => void;
}

// ---------------------------------------------------------------- wire shapes (Bitrix's camelCase)

const id = z.coerce.number().int().positive();
const CatalogListWire = z
  .object({
    catalogs: z.array(
      z
        .object({
          iblockId: id,
          iblockTypeId: z.string().nullish(),
          productIblockId: z.coerce.number().nullish(),
          name: z.string().nullish(),
        })
        .loose(),
    ),
  })
  .loose();
const PriceTypeListWire = z
  .object({
    priceTypes: z.array(
      z.object({ id, name: z.string().nullish(), base: z.string().nullish(), xmlId: z.string().nullish() }).loose(),
    ),
  })
  .loose();
const ProductWire = z
  .object({
    id,
    name: z.string().nullish(),
    xmlId: z.coerce.string().nullish(),
    active: z.union([z.string(), z.boolean()]).nullish(),
    iblockSectionId: z.coerce.number().nullish(),
  })
  .loose();
const ProductListWire = z.object({ products: z.array(ProductWire) }).loose();
const PriceWire = z
  .object({
    id,
    productId: id,
    catalogGroupId: id,
    price: z.union([z.number(), z.string()]),
    currency: z.string(),
    quantityFrom: z.union([z.number(), z.string()]).nullish(),
  })
  .loose();
const PriceListWire = z.object({ prices: z.array(PriceWire) }).loose();
const SectionListWire = z
  .object({ sections: z.array(z.object({ id, xmlId: z.coerce.string().nullish() }).loose()) })
  .loose();
const ElementWire = z.object({ element: z.object({ id }).loose() }).loose();
const SectionWire = z.object({ section: z.object({ id }).loose() }).loose();

/** Sub-call error codes that the next run will meet again unless someone changes the data or the portal. */
const PERMANENT = new Set([
  'ERROR_ARGUMENT',
  'ERROR_CORE',
  'ERROR_NOT_FOUND',
  'INVALID_CREDENTIALS',
  'ACCESS_DENIED',
  'insufficient_scope',
  'user_access_error',
  'ERROR_METHOD_NOT_FOUND',
  '',
]);

/** One unit of batched work: its sub-calls always travel in the same request. */
interface WorkItem {
  commands: Record<string, BatchCommand>;
  finish(result: Record<string, unknown>, errors: Record<string, BitrixSubError>): void;
}

/** How one change is going. */
interface ItemState {
  change: CatalogChange;
  productId: number | null;
  /** The product write (`add`/`update`) succeeded; for a price-only update there is none. */
  productWritten: boolean;
  priceWritten: boolean;
  errors: CatalogItemError[];
}

/**
 * Pushes the ERP's service catalog to Bitrix24's product catalog with prices (a full comparison, run on
 * a schedule or from the CLI; the catalog is small and changes rarely, so there is no CDC for it).
 *
 * `plan()` reads the services with `BITRIX_CATALOG_QUERY`, the products of this sync (`xmlId` starting
 * with the mapping's prefix, keyset-paged), their price rows of the synced price type (50 products per
 * `catalog.price.list`, 50 of those per `batch`) and the mapped sections, and diffs them (`diffCatalog`).
 * `run()` writes the plan with `batch` requests of at most 50 sub-calls, checking every sub-result, in
 * three passes: missing named sections, then products (with the prices of existing products), then the
 * prices of new products, whose ids the second pass learned (a second pass instead of `$result[...]`
 * references, whose nested form is not documented, so a failed create can never misplace a price).
 * Every product written publishes `bitrix.entity.synced.v1` or `bitrix.entity.failed.v1`.
 */
export class CatalogSync {
  private readonly now: () => Date;

  constructor(private readonly options: CatalogSyncOptions) {
    this.now = options.now ?? (() => new Date());
  }

  /** Reads both sides and returns the diff; writes nothing. */
  async plan(): Promise<CatalogSyncPlan> {
    const { mapping } = this.options;
    const rows = await this.readServices();
    const context = await this.resolveContext();
    const products = await this.readProducts(context.iblockId);
    const prices = await this.readPrices(
      products.map((p) => p.id),
      context.priceTypeId,
    );
    const named = [
      ...new Set(
        Object.entries(mapping.sections).flatMap(([erp, target]) =>
          typeof target === 'number' ? [] : [target.xmlId ?? `${mapping.prefix}section:${erp}`],
        ),
      ),
    ];
    const sectionsByXmlId = await this.readSections(context.iblockId, named);
    const plan = diffCatalog({ rows, products, prices, sectionsByXmlId, mapping });
    return { ...plan, context, services: rows.length, products: products.length };
  }

  /** Plans, then (unless `dryRun`) writes the plan and publishes an outcome event per product written. */
  async run(options: { dryRun?: boolean } = {}): Promise<CatalogRunResult> {
    const plan = await this.plan();
    if (options.dryRun) {
      const errors = plan.invalid.map((row) => this.invalidError(row));
      return { dryRun: true, plan, counts: planCounts(plan), errors, events: 0 };
    }
    const startedAt = this.now();
    const states = await this.write(plan);
    const errors = [...plan.invalid.map((row) => this.invalidError(row)), ...states.flatMap((s) => s.errors)];
    const counts: CatalogCounts = {
      created: 0,
      updated: 0,
      priced: 0,
      deactivated: 0,
      unchanged: plan.unchanged.length,
      failed: plan.invalid.length,
    };
    for (const state of states) {
      if (state.errors.length > 0) counts.failed++;
      if (state.priceWritten) counts.priced++;
      if (!state.productWritten) continue;
      if (state.change.kind === 'create') counts.created++;
      else if (state.change.kind === 'deactivate') counts.deactivated++;
      else counts.updated++;
    }
    // The writes are done: a bus outage must not hide what they did from the caller.
    let events = 0;
    let eventsError: string | undefined;
    try {
      events = await this.publish(plan, states, startedAt);
    } catch (error) {
      eventsError = (error as Error).message;
      this.options.logger?.error({ err: eventsError }, 'bitrix catalog sync: outcome events not published');
    }
    this.options.logger?.info({ ...counts, events }, 'bitrix catalog sync done');
    return { dryRun: false, plan, counts, errors, events, ...(eventsError !== undefined ? { eventsError } : {}) };
  }

  // ---------------------------------------------------------------- reading

  private async readServices(): Promise<Record<string, unknown>[]> {
    const { mapping, databaseUrl } = this.options;
    const query = this.options.query ?? DEFAULT_CATALOG_QUERY;
    const client = new pg.Client({ connectionString: databaseUrl, application_name: 'puente-bitrix-catalog' });
    // A server that goes away mid-query rejects the query; the client's own error event must not crash the process.
    client.on('error', () => undefined);
    let result: pg.QueryResult<Record<string, unknown>>;
    try {
      await client.connect();
      result = await client.query<Record<string, unknown>>(query);
    } catch (error) {
      throw new CatalogSyncError('QUERY_FAILED', `BITRIX_CATALOG_QUERY failed: ${(error as Error).message}`, {
        cause: error,
      });
    } finally {
      await client.end().catch(() => undefined);
    }
    const columns = new Set(result.fields.map((f) => f.name));
    const needed: [string, string][] = [
      [mapping.key, 'key'],
      [mapping.name, 'name'],
      [mapping.price, 'price'],
    ];
    if (mapping.active !== null) needed.push([mapping.active, 'active']);
    if (Object.keys(mapping.sections).length > 0) needed.push([mapping.section, 'section']);
    for (const [column, role] of needed) {
      if (!columns.has(column))
        throw new CatalogSyncError(
          'MISSING_COLUMN',
          `BITRIX_CATALOG_QUERY returns no column ${column} (the mapping's ${role} column); it returns ${[...columns].join(', ') || 'no columns'}`,
        );
    }
    return result.rows;
  }

  private async resolveContext(): Promise<CatalogContext> {
    const { client, mapping } = this.options;
    const catalogs = parse(
      CatalogListWire,
      await client.call('catalog.catalog.list', {}),
      'catalog.catalog.list',
    ).catalogs;
    let iblockId: number | undefined;
    if (mapping.iblockId !== undefined) {
      if (!catalogs.some((c) => c.iblockId === mapping.iblockId))
        throw new CatalogSyncError(
          'NO_CATALOG',
          `the mapping's iblockId ${mapping.iblockId} is not a product catalog of this portal (catalogs: ${catalogs.map((c) => c.iblockId).join(', ') || 'none'})`,
        );
      iblockId = mapping.iblockId;
    } else {
      // The product catalog, not its SKU (offers) catalog, which names its parent in productIblockId.
      const products = catalogs.filter((c) => !c.productIblockId);
      iblockId = (products.find((c) => c.iblockTypeId === 'CRM_PRODUCT_CATALOG') ?? products[0])?.iblockId;
      if (iblockId === undefined)
        throw new CatalogSyncError(
          'NO_CATALOG',
          'Bitrix24 has no product catalog (catalog.catalog.list answered none); enable the CRM catalog or set iblockId in the mapping',
        );
    }
    const types = parse(
      PriceTypeListWire,
      await client.call('catalog.priceType.list', {}),
      'catalog.priceType.list',
    ).priceTypes;
    const wanted = mapping.priceType;
    const found =
      wanted === 'base'
        ? types.find((t) => t.base === 'Y')
        : typeof wanted === 'number' || /^\d+$/.test(wanted)
          ? types.find((t) => t.id === Number(wanted))
          : types.find((t) => t.xmlId === wanted);
    if (!found) {
      const known = types.map((t) => `${t.id} ${t.xmlId ?? t.name ?? ''}${t.base === 'Y' ? ' (base)' : ''}`).join(', ');
      throw new CatalogSyncError(
        'NO_PRICE_TYPE',
        `Bitrix24 has no price type ${JSON.stringify(wanted)} (the mapping's priceType: an id, an xmlId or "base"); it has ${known || 'none'}`,
      );
    }
    return { iblockId, priceTypeId: found.id };
  }

  /** Products whose `xmlId` holds the prefix, keyset-paged by id (`start: -1` skips Bitrix's costly count). */
  private async readProducts(iblockId: number): Promise<ExistingProduct[]> {
    const { client, mapping } = this.options;
    const out: ExistingProduct[] = [];
    let last = 0;
    for (;;) {
      const page = parse(
        ProductListWire,
        await client.call('catalog.product.list', {
          select: ['id', 'iblockId', 'name', 'xmlId', 'active', 'iblockSectionId'],
          // `%` is a substring match: the exact prefix test is below.
          filter: { iblockId, '%xmlId': mapping.prefix, '>id': last },
          order: { id: 'ASC' },
          start: -1,
        }),
        'catalog.product.list',
      ).products;
      for (const p of page) {
        const xmlId = p.xmlId ?? '';
        if (!xmlId.startsWith(mapping.prefix)) continue;
        out.push({
          id: p.id,
          xmlId,
          name: p.name ?? '',
          active: p.active !== 'N' && p.active !== false,
          sectionId: p.iblockSectionId ? p.iblockSectionId : null,
        });
      }
      if (page.length < PAGE_SIZE) break;
      last = page[page.length - 1]!.id;
      this.options.onProgress?.(`read ${out.length} products`);
    }
    return out;
  }

  /** The price row of the price type for each product: 50 products per list sub-call, 50 sub-calls per request, further pages followed. */
  private async readPrices(productIds: number[], priceTypeId: number): Promise<Map<number, ExistingPrice>> {
    const { client } = this.options;
    const rows: z.infer<typeof PriceWire>[] = [];
    const params = (ids: number[]) => ({
      select: ['id', 'productId', 'catalogGroupId', 'price', 'currency', 'quantityFrom'],
      filter: { catalogGroupId: priceTypeId, '@productId': ids },
      order: { id: 'ASC' },
    });
    const perRequest = PAGE_SIZE * MAX_BATCH;
    for (let from = 0; from < productIds.length; from += perRequest) {
      const slice = productIds.slice(from, from + perRequest);
      const commands: Record<string, BatchCommand> = {};
      for (let i = 0; i * PAGE_SIZE < slice.length; i++)
        commands[`l${i}`] = {
          method: 'catalog.price.list',
          params: params(slice.slice(i * PAGE_SIZE, (i + 1) * PAGE_SIZE)),
        };
      const answer = await client.batch(commands);
      for (const key of Object.keys(commands)) {
        const error = answer.errors[key];
        if (error)
          throw new CatalogSyncError(
            'READ_FAILED',
            `catalog.price.list failed: ${error.error || 'error'}: ${error.error_description}`,
          );
        rows.push(...parse(PriceListWire, answer.result[key], 'catalog.price.list').prices);
        // A product with prices by quantity range has several rows: follow the sub-call's further pages.
        let next = answer.next[key];
        while (typeof next === 'number' && next > 0) {
          const envelope = await client.callEnvelope('catalog.price.list', { ...commands[key]!.params, start: next });
          rows.push(...parse(PriceListWire, envelope.result, 'catalog.price.list').prices);
          next = envelope.next;
        }
      }
    }
    const found = new Map<number, { price: ExistingPrice; ranged: boolean }>();
    for (const row of rows) {
      if (row.catalogGroupId !== priceTypeId) continue;
      const ranged = row.quantityFrom !== null && row.quantityFrom !== undefined && row.quantityFrom !== '';
      const current = found.get(row.productId);
      // The row without a quantity range is the product's price; a ranged one only when there is no other.
      if (current && (ranged || !current.ranged)) continue;
      found.set(row.productId, {
        price: {
          id: row.id,
          productId: row.productId,
          money: { cents: centsOf(row.price) ?? 0, currency: row.currency.toUpperCase() },
        },
        ranged,
      });
    }
    const prices = new Map<number, ExistingPrice>();
    for (const [productId, { price }] of found) prices.set(productId, price);
    return prices;
  }

  private async readSections(iblockId: number, xmlIds: string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    if (xmlIds.length === 0) return out;
    for (let from = 0; from < xmlIds.length; from += PAGE_SIZE) {
      const envelope = await this.options.client.callEnvelope('catalog.section.list', {
        select: ['id', 'xmlId', 'name'],
        filter: { iblockId, '@xmlId': xmlIds.slice(from, from + PAGE_SIZE) },
        order: { id: 'ASC' },
      });
      for (const section of parse(SectionListWire, envelope.result, 'catalog.section.list').sections) {
        if (section.xmlId && !out.has(section.xmlId)) out.set(section.xmlId, section.id);
      }
    }
    return out;
  }

  // ---------------------------------------------------------------- writing

  private async write(plan: CatalogSyncPlan): Promise<ItemState[]> {
    const { iblockId, priceTypeId } = plan.context;
    const sectionIds = new Map<string, number>();
    const sectionErrors = new Map<string, BitrixSubError>();
    const sectionItems: WorkItem[] = plan.sections.map((section, n) => ({
      commands: {
        [`s${n}`]: {
          method: 'catalog.section.add',
          params: { fields: { iblockId, name: section.name, xmlId: section.xmlId, active: 'Y' } },
        },
      },
      finish: (result, errors) => {
        const error = errors[`s${n}`];
        const created = error ? undefined : parsedOrUndefined(SectionWire, result[`s${n}`])?.section.id;
        if (created !== undefined) sectionIds.set(section.xmlId, created);
        else
          sectionErrors.set(
            section.xmlId,
            error ?? { error: 'BAD_RESPONSE', error_description: 'catalog.section.add answered without section.id' },
          );
      },
    }));
    await this.send(sectionItems, 'sections');

    const states: ItemState[] = plan.changes.map((change) => ({
      change,
      productId: change.kind === 'create' ? null : change.productId,
      productWritten: false,
      priceWritten: false,
      errors: [],
    }));
    const fail = (state: ItemState, step: CatalogItemError['step'], method: string, error: BitrixSubError) => {
      state.errors.push({
        key: state.change.key,
        xmlId: state.change.xmlId,
        step,
        method,
        code: error.error,
        message: error.error_description.slice(0, 500),
      });
    };
    /** A section id for the product, or undefined (and the error recorded) when its new section could not be created. */
    const sectionOf = (state: ItemState, ref: SectionRef): number | undefined => {
      if (ref.kind === 'id') return ref.id;
      const created = sectionIds.get(ref.xmlId);
      if (created === undefined)
        fail(
          state,
          'section',
          'catalog.section.add',
          sectionErrors.get(ref.xmlId) ?? {
            error: 'NOT_CREATED',
            error_description: `section ${ref.xmlId} was not created`,
          },
        );
      return created;
    };
    const price = (money: { cents: number; currency: string }) => ({
      price: formatCents(money.cents),
      currency: money.currency,
    });

    const productItems: WorkItem[] = [];
    states.forEach((state, n) => {
      const { change } = state;
      const commands: Record<string, BatchCommand> = {};
      const write = `p${n}`;
      const priceKey = `q${n}`;
      if (change.kind === 'create') {
        const section = change.section ? sectionOf(state, change.section) : null;
        if (section === undefined) return;
        commands[write] = {
          method: 'catalog.product.add',
          params: {
            fields: {
              iblockId,
              name: change.name,
              xmlId: change.xmlId,
              active: 'Y',
              ...(section !== null ? { iblockSectionId: section } : {}),
            },
          },
        };
      } else if (change.kind === 'deactivate') {
        commands[write] = {
          method: 'catalog.product.update',
          params: { id: change.productId, fields: { active: 'N' } },
        };
      } else {
        const fields: Record<string, unknown> = {};
        for (const field of change.fields) {
          if (field.field === 'name') fields.name = field.to;
          else if (field.field === 'active') fields.active = 'Y';
          else {
            const section = sectionOf(state, field.to);
            if (section !== undefined) fields.iblockSectionId = section;
          }
        }
        if (Object.keys(fields).length > 0)
          commands[write] = { method: 'catalog.product.update', params: { id: change.productId, fields } };
        if (change.price) {
          commands[priceKey] =
            change.price.priceId !== null
              ? { method: 'catalog.price.update', params: { id: change.price.priceId, fields: price(change.price.to) } }
              : {
                  method: 'catalog.price.add',
                  params: {
                    fields: { productId: change.productId, catalogGroupId: priceTypeId, ...price(change.price.to) },
                  },
                };
        }
      }
      if (Object.keys(commands).length === 0) return;
      productItems.push({
        commands,
        finish: (result, errors) => {
          if (commands[write]) {
            const error = errors[write];
            if (error) fail(state, 'product', commands[write].method, error);
            else if (change.kind === 'create') {
              const created = parsedOrUndefined(ElementWire, result[write])?.element.id;
              if (created === undefined)
                fail(state, 'product', 'catalog.product.add', {
                  error: 'BAD_RESPONSE',
                  error_description: 'catalog.product.add answered without element.id',
                });
              else {
                state.productId = created;
                state.productWritten = true;
              }
            } else state.productWritten = true;
          }
          if (commands[priceKey]) {
            const error = errors[priceKey];
            if (error) fail(state, 'price', commands[priceKey].method, error);
            else state.priceWritten = true;
          }
        },
      });
    });
    await this.send(productItems, 'products');

    const priceItems: WorkItem[] = [];
    states.forEach((state, n) => {
      if (state.change.kind !== 'create' || state.productId === null) return;
      const key = `c${n}`;
      const command: BatchCommand = {
        method: 'catalog.price.add',
        params: { fields: { productId: state.productId, catalogGroupId: priceTypeId, ...price(state.change.price) } },
      };
      priceItems.push({
        commands: { [key]: command },
        finish: (_result, errors) => {
          const error = errors[key];
          if (error) fail(state, 'price', command.method, error);
          else state.priceWritten = true;
        },
      });
    });
    await this.send(priceItems, 'prices');
    return states;
  }

  /**
   * Sends work items in `batch` requests of at most 50 sub-calls (an item's sub-calls never split). A
   * request that fails as a whole (after the client's own retries) fails its items, and the items not
   * sent yet with it: the portal is unreachable or refuses us, and more requests would not help.
   */
  private async send(items: WorkItem[], what: string): Promise<void> {
    const batches: WorkItem[][] = [];
    let current: WorkItem[] = [];
    let size = 0;
    for (const item of items) {
      const count = Object.keys(item.commands).length;
      if (size + count > MAX_BATCH && current.length > 0) {
        batches.push(current);
        current = [];
        size = 0;
      }
      current.push(item);
      size += count;
    }
    if (current.length > 0) batches.push(current);
    let abort: BitrixSubError | undefined;
    for (const [index, batch] of batches.entries()) {
      const commands: Record<string, BatchCommand> = Object.assign({}, ...batch.map((item) => item.commands));
      let answer: Pick<BatchResult, 'result' | 'errors'>;
      if (abort)
        answer = {
          result: {},
          errors: everyKey(commands, { error: abort.error, error_description: `not sent: ${abort.error_description}` }),
        };
      else {
        try {
          answer = await this.options.client.batch(commands);
        } catch (error) {
          const code = (error as { code?: unknown }).code;
          abort = {
            error: typeof code === 'string' ? code : 'BATCH_FAILED',
            error_description: (error as Error).message,
          };
          answer = { result: {}, errors: everyKey(commands, abort) };
        }
      }
      for (const item of batch) item.finish(answer.result, answer.errors);
      if (batches.length > 1) this.options.onProgress?.(`writing ${what}: ${index + 1}/${batches.length} batches`);
    }
  }

  // ---------------------------------------------------------------- outcomes

  private invalidError(row: CatalogPlan['invalid'][number]): CatalogItemError {
    const key = row.key ?? `(row ${row.row + 1})`;
    return {
      key,
      xmlId: row.key === null ? key : `${this.options.mapping.prefix}${row.key}`,
      step: 'row',
      method: 'BITRIX_CATALOG_QUERY',
      code: row.code,
      message: row.message,
    };
  }

  /**
   * One event per product written (and per invalid ERP row with an external id), with a message id made
   * of the run's start, the external id and the outcome: publishing them again within the run (the
   * pipeline retries) stores each once, and a later run's outcome is a new message.
   */
  private async publish(plan: CatalogSyncPlan, states: ItemState[], startedAt: Date): Promise<number> {
    const at = this.now().toISOString();
    const run = startedAt.getTime();
    const items: { event: DomainEvent; msgId: string }[] = [];
    const event = (sourceKey: string, outcome: string, make: (id: string) => DomainEvent) => {
      const msgId = `bitrix:product:${sourceKey}:${run}:${outcome}`;
      items.push({ event: make(createHash('sha256').update(msgId).digest('hex').slice(0, 32)), msgId });
    };
    const fields = (id: string) => ({ source: 'urn:puente:bitrix-sync', id, time: at });
    for (const state of states) {
      const { change } = state;
      // A duplicate's outcome would point the external id's link at the product being retired.
      if (change.kind === 'deactivate' && change.reason === 'duplicate') continue;
      const bitrixId = state.productId !== null ? { bitrixId: String(state.productId) } : {};
      const error = state.errors[0];
      if (error) {
        event(
          change.key,
          `failed:${error.code || 'error'}`,
          (id) =>
            createEvent(
              'bitrix.entity.failed.v1',
              {
                entity: 'product',
                sourceKey: change.key,
                ...bitrixId,
                error: { code: error.code || 'ERROR', message: `${error.step}: ${error.message}`.slice(0, 500) },
                retryable: !PERMANENT.has(error.code),
                at,
              },
              fields(id),
            ) as DomainEvent,
        );
      } else {
        const action = change.kind === 'create' ? 'created' : 'updated';
        event(
          change.key,
          action,
          (id) =>
            createEvent(
              'bitrix.entity.synced.v1',
              { entity: 'product', sourceKey: change.key, ...bitrixId, action, at },
              fields(id),
            ) as DomainEvent,
        );
      }
    }
    const invalidKeys = new Set<string>();
    for (const row of plan.invalid) {
      if (row.key === null || invalidKeys.has(row.key)) continue;
      invalidKeys.add(row.key);
      const key = row.key;
      event(
        key,
        `failed:${row.code}`,
        (id) =>
          createEvent(
            'bitrix.entity.failed.v1',
            {
              entity: 'product',
              sourceKey: key,
              error: { code: row.code, message: row.message },
              retryable: false,
              at,
            },
            fields(id),
          ) as DomainEvent,
      );
    }
    await this.options.bus.publishEvents(items);
    return items.length;
  }
}

function everyKey(commands: Record<string, BatchCommand>, error: BitrixSubError): Record<string, BitrixSubError> {
  return Object.fromEntries(Object.keys(commands).map((key) => [key, error]));
}

function parse<T extends z.ZodType>(schema: T, value: unknown, method: string): z.infer<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new CatalogSyncError(
      'READ_FAILED',
      `${method} answered an unexpected shape: ${issue.path.join('.') || '(result)'}: ${issue.message}`,
    );
  }
  return parsed.data;
}

/** The parsed answer of a write sub-call, or undefined when it is not the documented shape. */
function parsedOrUndefined<T extends z.ZodType>(schema: T, value: unknown): z.infer<T> | undefined {
  const parsed = schema.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}
