import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import type { Bus } from '@puente/bus';
import { connectTestBus, uniqueName } from '@puente/bus/testing';
import { BitrixClient } from '../bitrix/client.js';
import { createTestGlymsDatabase, readEvents, type TestGlymsDatabase } from '@puente/cdc/testing';
import { FakeBitrix24 } from '../testing/index.js';
import { CatalogMapping } from './catalogMapping.js';
import { CatalogSync, CatalogSyncError } from './catalogSync.js';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const CATALOG = 14;
const READS = new Set([
  'catalog.catalog.list',
  'catalog.pricetype.list',
  'catalog.product.list',
  'catalog.price.list',
  'catalog.section.list',
]);

let bus: Bus;
let pg: TestGlymsDatabase;
let fake: FakeBitrix24;
let client: BitrixClient;
/** This test's service table (its own, so tests never see each other's rows) and external-id tag. */
let table: string;
let tag: string;

before(async () => {
  bus = await connectTestBus();
  pg = await createTestGlymsDatabase();
});
after(async () => {
  await pg.drop();
  await bus.close();
});
beforeEach(async () => {
  fake = await new FakeBitrix24({ bucket: { burst: 50, drainPerSecond: 50 } }).start();
  client = new BitrixClient({
    auth: { kind: 'webhook', url: fake.webhookUrl() },
    bucket: { burst: 50, drainPerSecond: 50 },
    retries: 0,
    logger,
  });
  table = uniqueName('servicio_').toLowerCase();
  tag = uniqueName('S').toUpperCase();
  await pg.sql(`create table public.${table} (like public.servicio including all)`);
});
afterEach(async () => {
  await fake.stop();
});

const code = (n: number) => `${tag}-${String(n).padStart(3, '0')}`;
const query = () => `select id_servicio, codigo, nombre, precio, id_seccion, activo from public.${table}`;
async function insert(...rows: [number, string, string, number | null, boolean][]): Promise<void> {
  for (const [n, nombre, precio, seccion, activo] of rows) {
    await pg.sql(
      `insert into public.${table} (codigo, nombre, precio, id_seccion, activo) values ($1, $2, $3, $4, $5)`,
      [code(n), nombre, precio, seccion, activo],
    );
  }
}
function sync(mapping: Record<string, unknown> = {}): CatalogSync {
  return new CatalogSync({
    client,
    bus,
    logger,
    databaseUrl: pg.url,
    query: query(),
    mapping: CatalogMapping.parse({ currency: 'USD', ...mapping }),
  });
}
const ours = (prefix = 'glyms:') => [...fake.products.values()].filter((p) => String(p.xmlId).startsWith(prefix));
const productOf = (n: number, prefix = 'glyms:') => ours(prefix).find((p) => p.xmlId === `${prefix}${code(n)}`);
const priceOf = (productId: unknown, group = 1) =>
  [...fake.prices.values()].find((p) => p.productId === productId && p.catalogGroupId === group);
/** The write sub-calls (and non-read requests) the fake answered since `from`. */
const writesSince = (from: number) =>
  fake.requests
    .slice(from)
    .flatMap((r) => (r.method === 'batch' ? (r.subCalls ?? []) : [r.method]))
    .filter((m) => !READS.has(m))
    .sort();
const snapshot = () =>
  JSON.stringify({ products: [...fake.products], prices: [...fake.prices], sections: [...fake.sections] });
type Outcome = { type: string; sourceKey: string; action?: string; bitrixId?: string; code?: string };
/** This test's product outcome events, in stream order. */
async function productEvents(): Promise<Outcome[]> {
  const events = await readEvents(bus, 'evt.bitrix.product.>');
  return events.flatMap(({ event: e }): Outcome[] => {
    if (e.type === 'bitrix.entity.synced.v1' && e.data.sourceKey.startsWith(tag))
      return [
        {
          type: e.type,
          sourceKey: e.data.sourceKey,
          action: e.data.action,
          ...(e.data.bitrixId ? { bitrixId: e.data.bitrixId } : {}),
        },
      ];
    if (e.type === 'bitrix.entity.failed.v1' && e.data.sourceKey.startsWith(tag))
      return [{ type: e.type, sourceKey: e.data.sourceKey, code: e.data.error.code }];
    return [];
  });
}

describe('bitrix-sync service catalog', () => {
  test('the first run creates products with prices, the second does exactly the ERP changes, the third nothing; dry runs write nothing', async () => {
    const imaging = (
      await client.call<{ section: { id: number } }>('catalog.section.add', {
        fields: { iblockId: CATALOG, name: 'Imagen' },
      })
    ).section.id;
    // Made by hand in Bitrix24: no xmlId of ours (the portal gives it its id), or another system's prefix.
    const byHand = (
      await client.call<{ element: { id: number } }>('catalog.product.add', {
        fields: { iblockId: CATALOG, name: 'Hecho a mano' },
      })
    ).element.id;
    const foreign = (
      await client.call<{ element: { id: number } }>('catalog.product.add', {
        fields: { iblockId: CATALOG, name: 'Otro sistema', xmlId: `otro:${code(1)}` },
      })
    ).element.id;
    await client.call('catalog.price.add', {
      fields: { productId: foreign, catalogGroupId: 1, price: 1, currency: 'USD' },
    });
    const untouched = () => JSON.stringify([fake.products.get(byHand), fake.products.get(foreign), priceOf(foreign)]);
    const before = untouched();
    await insert(
      [1, 'Consulta general', '120.00', 1, true],
      [2, 'Ecografia', '80.00', 2, true],
      [3, 'Laboratorio', '45.50', null, true],
      [4, 'Rayos X', '60.00', null, true],
      [9, 'Retirado', '10.00', null, false],
    );
    const catalog = sync({ sections: { 1: { name: 'Consultas' }, 2: imaging } });

    let mark = fake.requests.length;
    let state = snapshot();
    const dry = await catalog.run({ dryRun: true });
    assert.deepEqual(dry.counts, { created: 4, updated: 0, priced: 4, deactivated: 0, unchanged: 0, failed: 0 });
    assert.deepEqual(dry.plan.sections, [{ xmlId: 'glyms:section:1', name: 'Consultas' }]);
    assert.equal(snapshot(), state, 'a dry run changes nothing');
    assert.deepEqual(writesSince(mark), [], 'a dry run sends no write');

    const first = await catalog.run();
    assert.deepEqual(first.counts, { created: 4, updated: 0, priced: 4, deactivated: 0, unchanged: 0, failed: 0 });
    assert.deepEqual(first.errors, []);
    const consultas = [...fake.sections.values()].find((s) => s.xmlId === 'glyms:section:1');
    assert.equal(consultas?.name, 'Consultas');
    assert.equal(ours().length, 4);
    assert.deepEqual(
      [1, 2, 3, 4].map((n) => [
        productOf(n)?.name,
        productOf(n)?.iblockSectionId,
        productOf(n)?.active,
        priceOf(productOf(n)?.id)?.price,
        priceOf(productOf(n)?.id)?.currency,
      ]),
      [
        ['Consulta general', consultas!.id, 'Y', 120, 'USD'],
        ['Ecografia', imaging, 'Y', 80, 'USD'],
        ['Laboratorio', null, 'Y', 45.5, 'USD'],
        ['Rayos X', null, 'Y', 60, 'USD'],
      ],
    );
    assert.equal(productOf(9), undefined, 'an inactive service gets no product');
    assert.deepEqual(
      (await productEvents()).sort((a, b) => a.sourceKey.localeCompare(b.sourceKey)),
      [1, 2, 3, 4].map((n) => ({
        type: 'bitrix.entity.synced.v1',
        sourceKey: code(n),
        action: 'created',
        bitrixId: String(productOf(n)!.id),
      })),
    );

    await pg.sql(`update public.${table} set precio = 125.00 where codigo = $1`, [code(1)]);
    await pg.sql(`update public.${table} set nombre = 'Ecografía' where codigo = $1`, [code(2)]);
    await pg.sql(`update public.${table} set activo = false where codigo = $1`, [code(3)]);
    await pg.sql(`delete from public.${table} where codigo = $1`, [code(4)]);
    await insert([5, 'Nueva consulta', '99.00', 1, true]);

    state = snapshot();
    mark = fake.requests.length;
    const preview = await catalog.run({ dryRun: true });
    assert.deepEqual(
      preview.plan.changes.map((c) =>
        c.kind === 'create' ? `+ ${c.key}` : c.kind === 'deactivate' ? `- ${c.key}` : `~ ${c.key}`,
      ),
      [`~ ${code(1)}`, `~ ${code(2)}`, `- ${code(3)}`, `- ${code(4)}`, `+ ${code(5)}`],
    );
    assert.equal(snapshot(), state);
    assert.deepEqual(writesSince(mark), []);

    mark = fake.requests.length;
    const second = await catalog.run();
    assert.deepEqual(second.counts, { created: 1, updated: 1, priced: 2, deactivated: 2, unchanged: 0, failed: 0 });
    assert.deepEqual(writesSince(mark), [
      'catalog.price.add',
      'catalog.price.update',
      'catalog.product.add',
      'catalog.product.update',
      'catalog.product.update',
      'catalog.product.update',
    ]);
    assert.equal(priceOf(productOf(1)!.id)?.price, 125);
    assert.equal(productOf(2)?.name, 'Ecografía');
    assert.deepEqual([productOf(3)?.active, productOf(4)?.active], ['N', 'N'], 'deactivated, never deleted');
    assert.deepEqual(
      [productOf(5)?.name, productOf(5)?.iblockSectionId, priceOf(productOf(5)?.id)?.price],
      ['Nueva consulta', consultas!.id, 99],
    );
    assert.equal(
      [...fake.sections.values()].filter((s) => s.xmlId === 'glyms:section:1').length,
      1,
      'the named section is found again, not created twice',
    );
    const events = await productEvents();
    assert.equal(events.length, 9);
    assert.deepEqual(
      events
        .slice(4)
        .map((e) => `${e.sourceKey} ${e.action}`)
        .sort(),
      [`${code(1)} updated`, `${code(2)} updated`, `${code(3)} updated`, `${code(4)} updated`, `${code(5)} created`],
    );

    mark = fake.requests.length;
    const third = await catalog.run();
    assert.deepEqual(third.counts, { created: 0, updated: 0, priced: 0, deactivated: 0, unchanged: 5, failed: 0 });
    assert.deepEqual(writesSince(mark), [], 'nothing to write: no write request at all');
    assert.equal((await productEvents()).length, 9, 'no event when nothing was written');
    assert.equal(untouched(), before, 'products created by hand are never touched');
  });

  test('a failed sub-call is reported for its product only; the rest sync, and the next run completes it', async () => {
    await insert([1, 'Uno', '10.00', null, true], [2, 'Dos', '20.00', null, true], [3, 'Tres', '30.00', null, true]);
    const catalog = sync();
    const xmlIdIs = (n: number) => (params: Record<string, unknown>) =>
      (params.fields as Record<string, unknown> | undefined)?.xmlId === `glyms:${code(n)}`;
    fake.inject({
      subCall: true,
      method: 'catalog.product.add',
      status: 400,
      error: 'ERROR_CORE',
      description: 'Product could not be saved',
      match: xmlIdIs(2),
    });
    // The first price of the second pass: product 1's (the new products' ids are known only then).
    fake.inject({
      subCall: true,
      method: 'catalog.price.add',
      status: 500,
      error: 'INTERNAL_SERVER_ERROR',
      description: 'Internal server error',
    });

    const first = await catalog.run();
    assert.deepEqual(first.counts, { created: 2, updated: 0, priced: 1, deactivated: 0, unchanged: 0, failed: 2 });
    assert.deepEqual(
      first.errors.map((e) => [e.key, e.step, e.method, e.code, e.message]),
      [
        [code(1), 'price', 'catalog.price.add', 'INTERNAL_SERVER_ERROR', 'Internal server error'],
        [code(2), 'product', 'catalog.product.add', 'ERROR_CORE', 'Product could not be saved'],
      ],
    );
    assert.equal(productOf(2), undefined);
    assert.equal(priceOf(productOf(1)?.id), undefined);
    assert.equal(priceOf(productOf(3)?.id)?.price, 30);
    assert.deepEqual(await productEvents(), [
      { type: 'bitrix.entity.failed.v1', sourceKey: code(1), code: 'INTERNAL_SERVER_ERROR' },
      { type: 'bitrix.entity.failed.v1', sourceKey: code(2), code: 'ERROR_CORE' },
      { type: 'bitrix.entity.synced.v1', sourceKey: code(3), action: 'created', bitrixId: String(productOf(3)!.id) },
    ]);

    const second = await catalog.run();
    assert.deepEqual(second.counts, { created: 1, updated: 0, priced: 2, deactivated: 0, unchanged: 1, failed: 0 });
    assert.deepEqual(
      [1, 2, 3].map((n) => priceOf(productOf(n)?.id)?.price),
      [10, 20, 30],
    );
    assert.deepEqual(
      (await productEvents()).slice(3).map((e) => `${e.sourceKey} ${e.action}`),
      [`${code(1)} updated`, `${code(2)} created`],
    );
  });

  test('more than a page of products and prices: keyset paging, batches of 50, another price type', async () => {
    await pg.sql(
      `insert into public.${table} (codigo, nombre, precio) select $1 || '-' || lpad(g::text, 3, '0'), 'Servicio ' || g, g + 0.5 from generate_series(1, 120) g`,
      [tag],
    );
    const catalog = sync({ priceType: 'WHOLESALE', prefix: 'erp/' });
    const mark = fake.requests.length;
    const first = await catalog.run();
    assert.deepEqual(first.counts, { created: 120, updated: 0, priced: 120, deactivated: 0, unchanged: 0, failed: 0 });
    const batches = fake.requests.slice(mark).filter((r) => r.method === 'batch');
    assert.ok(batches.every((r) => r.commands <= 50));
    assert.equal(batches.length, 6, 'three batches of products, three of their prices');
    assert.equal(ours('erp/').length, 120);
    assert.equal(priceOf(productOf(77, 'erp/')?.id, 2)?.price, 77.5);
    assert.equal(priceOf(productOf(77, 'erp/')?.id, 1), undefined, 'only the mapped price type is written');

    const again = fake.requests.length;
    const second = await catalog.run();
    assert.deepEqual(second.counts, { created: 0, updated: 0, priced: 0, deactivated: 0, unchanged: 120, failed: 0 });
    assert.deepEqual(writesSince(again), []);
    assert.equal(
      fake.requests.slice(again).filter((r) => r.method === 'catalog.product.list').length,
      3,
      'three pages of products',
    );
  });

  test('a query without a mapped column, an unknown price type or a failing query stop the run with one line', async () => {
    await insert([1, 'Uno', '1.00', null, true]);
    await assert.rejects(
      sync({ name: 'titulo' }).run(),
      (e: Error) =>
        e instanceof CatalogSyncError &&
        e.code === 'MISSING_COLUMN' &&
        /returns no column titulo \(the mapping's name column\)/.test(e.message),
    );
    await assert.rejects(
      sync({ priceType: 'RETAIL' }).run({ dryRun: true }),
      (e: Error) =>
        e instanceof CatalogSyncError && /no price type "RETAIL".*1 BASE \(base\), 2 WHOLESALE/.test(e.message),
    );
    const broken = new CatalogSync({
      client,
      bus,
      databaseUrl: pg.url,
      query: 'select * from public.no_such_table',
      mapping: CatalogMapping.parse({}),
    });
    await assert.rejects(
      broken.plan(),
      (e: Error) =>
        e instanceof CatalogSyncError &&
        e.code === 'QUERY_FAILED' &&
        /^BITRIX_CATALOG_QUERY failed: relation "public.no_such_table" does not exist$/.test(e.message),
    );
    assert.equal(ours().length, 0);
  });
});
