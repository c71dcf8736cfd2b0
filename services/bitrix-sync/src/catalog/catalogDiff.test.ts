import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { CatalogMapping, CatalogSettings, loadCatalogMapping } from './catalogMapping.js';
import {
  centsOf,
  describeChange,
  diffCatalog,
  formatCents,
  planCounts,
  type CatalogDiffInput,
  type ExistingPrice,
  type ExistingProduct,
} from './catalogDiff.js';

const mapping = (extra: Record<string, unknown> = {}) => CatalogMapping.parse({ currency: 'USD', ...extra });
const row = (codigo: string | null, nombre: string | null, precio: unknown, extra: Record<string, unknown> = {}) => ({
  id_servicio: 1,
  codigo,
  nombre,
  precio,
  id_seccion: null,
  activo: true,
  ...extra,
});
const product = (id: number, xmlId: string, name: string, extra: Partial<ExistingProduct> = {}): ExistingProduct => ({
  id,
  xmlId,
  name,
  active: true,
  sectionId: null,
  ...extra,
});
const price = (id: number, productId: number, amount: number, currency = 'USD'): [number, ExistingPrice] => [
  productId,
  { id, productId, money: { cents: Math.round(amount * 100), currency } },
];

function diff(input: Partial<CatalogDiffInput> & Pick<CatalogDiffInput, 'rows'>) {
  return diffCatalog({ products: [], prices: new Map(), sectionsByXmlId: new Map(), mapping: mapping(), ...input });
}

describe('catalog diff', () => {
  test('a new active service is created with its price; a new inactive one is not', () => {
    const plan = diff({
      rows: [row('SRV-1', 'Consulta general', '120.00'), row('SRV-2', 'Retirado', '10.00', { activo: false })],
    });
    assert.deepEqual(plan.changes, [
      {
        kind: 'create',
        key: 'SRV-1',
        xmlId: 'glyms:SRV-1',
        name: 'Consulta general',
        section: null,
        price: { cents: 12000, currency: 'USD' },
      },
    ]);
    assert.deepEqual(plan.unchanged, []);
    assert.equal(describeChange(plan.changes[0]!), '+ glyms:SRV-1 Consulta general 120.00 USD');
  });

  test('a product with the same name, section, activity and price is unchanged (prices compare in cents)', () => {
    const plan = diff({
      rows: [row('SRV-1', 'Consulta', '120.10')],
      products: [product(7, 'glyms:SRV-1', 'Consulta')],
      prices: new Map([price(70, 7, 120.1)]),
    });
    assert.deepEqual(plan.changes, []);
    assert.deepEqual(plan.unchanged, ['SRV-1']);
  });

  test('a changed name updates the product and a changed price updates its price row', () => {
    const plan = diff({
      rows: [row('SRV-1', 'Consulta general', '125.00'), row('SRV-2', 'Ecografía', '80.00')],
      products: [product(7, 'glyms:SRV-1', 'Consulta general'), product(8, 'glyms:SRV-2', 'Ecografia')],
      prices: new Map([price(70, 7, 120), price(80, 8, 80)]),
    });
    assert.deepEqual(plan.changes, [
      {
        kind: 'update',
        key: 'SRV-1',
        xmlId: 'glyms:SRV-1',
        productId: 7,
        fields: [],
        price: { priceId: 70, from: { cents: 12000, currency: 'USD' }, to: { cents: 12500, currency: 'USD' } },
      },
      {
        kind: 'update',
        key: 'SRV-2',
        xmlId: 'glyms:SRV-2',
        productId: 8,
        fields: [{ field: 'name', from: 'Ecografia', to: 'Ecografía' }],
        price: null,
      },
    ]);
    assert.deepEqual(plan.changes.map(describeChange), [
      '~ glyms:SRV-1 price 120.00 → 125.00',
      '~ glyms:SRV-2 name "Ecografia" → "Ecografía"',
    ]);
    assert.deepEqual(planCounts(plan), { created: 0, updated: 1, priced: 1, deactivated: 0, unchanged: 0, failed: 0 });
  });

  test('a price in another currency is rewritten, and a product without a price row gets one', () => {
    const plan = diff({
      rows: [row('A', 'Uno', 10), row('B', 'Dos', 20)],
      products: [product(1, 'glyms:A', 'Uno'), product(2, 'glyms:B', 'Dos')],
      prices: new Map([price(11, 1, 10, 'EUR')]),
    });
    assert.deepEqual(plan.changes.map(describeChange), [
      '~ glyms:A price 10.00 EUR → 10.00 USD',
      '~ glyms:B price (none) → 20.00 USD',
    ]);
    assert.deepEqual(
      plan.changes.map((c) => (c.kind === 'update' ? c.price?.priceId : undefined)),
      [11, null],
    );
  });

  test('a service that is gone or inactive deactivates its product, once; with deactivate "keep" nothing happens', () => {
    const input = {
      rows: [row('SRV-3', 'Inactivo', '5', { activo: 'f' })],
      products: [
        product(3, 'glyms:SRV-3', 'Inactivo'),
        product(4, 'glyms:SRV-4', 'Ya no existe'),
        product(5, 'glyms:SRV-5', 'Ya desactivado', { active: false }),
      ],
      prices: new Map([price(30, 3, 5)]),
    };
    const plan = diff(input);
    assert.deepEqual(plan.changes, [
      { kind: 'deactivate', key: 'SRV-3', xmlId: 'glyms:SRV-3', productId: 3, reason: 'inactive' },
      { kind: 'deactivate', key: 'SRV-4', xmlId: 'glyms:SRV-4', productId: 4, reason: 'gone' },
    ]);
    assert.deepEqual(plan.unchanged, ['SRV-5']);
    assert.equal(describeChange(plan.changes[1]!), '- glyms:SRV-4 deactivate (gone)');
    const kept = diff({ ...input, mapping: mapping({ deactivate: 'keep' }) });
    assert.deepEqual(kept.changes, []);
    assert.deepEqual(kept.unchanged, ['SRV-3', 'SRV-4', 'SRV-5']);
  });

  test('an inactive product whose service is active again is reactivated', () => {
    const plan = diff({
      rows: [row('A', 'Uno', 1)],
      products: [product(1, 'glyms:A', 'Uno', { active: false })],
      prices: new Map([price(9, 1, 1)]),
    });
    assert.deepEqual(plan.changes.map(describeChange), ['~ glyms:A activate']);
  });

  test('products without the prefix (created by hand, or by another sync) are never in the plan', () => {
    const plan = diff({
      rows: [row('SRV-1', 'Consulta', 1)],
      products: [
        product(1, '1', 'Hecho a mano'),
        product(2, 'otro:SRV-1', 'Otro sistema'),
        product(3, 'xglyms:SRV-9', 'Casi'),
        product(4, 'glyms:', 'Sin clave'),
      ],
    });
    assert.deepEqual(
      plan.changes.map((c) => [c.kind, c.key]),
      [['create', 'SRV-1']],
    );
    assert.deepEqual(plan.unchanged, []);
  });

  test('sections: a mapped id is set, a named section is used when it exists and created when missing, an unmapped one is left alone', () => {
    const m = mapping({ sections: { 1: 17, 2: { name: 'Laboratorio' }, 3: '18' } });
    const plan = diff({
      mapping: m,
      rows: [
        row('A', 'Uno', 1, { id_seccion: 1 }),
        row('B', 'Dos', 2, { id_seccion: 2 }),
        row('C', 'Tres', 3, { id_seccion: 9 }),
        row('D', 'Cuatro', 4, { id_seccion: 3 }),
        row('E', 'Cinco', 5, { id_seccion: 2 }),
      ],
      products: [
        product(1, 'glyms:A', 'Uno', { sectionId: 5 }),
        product(3, 'glyms:C', 'Tres', { sectionId: 40 }),
        product(4, 'glyms:D', 'Cuatro', { sectionId: 18 }),
      ],
      prices: new Map([price(10, 1, 1), price(30, 3, 3), price(40, 4, 4)]),
    });
    assert.deepEqual(plan.sections, [{ xmlId: 'glyms:section:2', name: 'Laboratorio' }]);
    assert.deepEqual(plan.changes.map(describeChange), [
      '~ glyms:A section 5 → 17',
      '+ glyms:B Dos 2.00 USD in section "Laboratorio" (new)',
      '+ glyms:E Cinco 5.00 USD in section "Laboratorio" (new)',
    ]);
    assert.deepEqual(plan.unchanged, ['C', 'D']);
    const existing = diff({
      mapping: m,
      rows: [row('B', 'Dos', 2, { id_seccion: 2 })],
      sectionsByXmlId: new Map([['glyms:section:2', 33]]),
    });
    assert.deepEqual(existing.sections, []);
    assert.deepEqual(existing.changes.map(describeChange), ['+ glyms:B Dos 2.00 USD in section 33']);
  });

  test('invalid rows are reported and their products are neither changed nor deactivated', () => {
    const plan = diff({
      rows: [
        row(null, 'Sin código', 1),
        row('B', '  ', 2),
        row('C', 'Precio', 'gratis'),
        row('D', 'Uno', 1),
        row('D', 'Otro', 2),
        row('E', 'Negativo', '-1'),
      ],
      products: [product(2, 'glyms:B', 'Dos'), product(3, 'glyms:C', 'Precio'), product(4, 'glyms:D', 'Uno')],
    });
    assert.deepEqual(plan.changes, []);
    assert.deepEqual(
      plan.invalid.map((i) => [i.row, i.key, i.code]),
      [
        [0, null, 'MISSING_KEY'],
        [1, 'B', 'MISSING_NAME'],
        [2, 'C', 'INVALID_PRICE'],
        [4, 'D', 'DUPLICATE_KEY'],
        [5, 'E', 'INVALID_PRICE'],
      ],
    );
    assert.equal(planCounts(plan).failed, 5);
  });

  test('a second product with the same xmlId is deactivated as a duplicate; the oldest is kept', () => {
    const plan = diff({
      rows: [row('A', 'Uno', 1)],
      products: [product(9, 'glyms:A', 'Uno'), product(4, 'glyms:A', 'Uno')],
      prices: new Map([price(40, 4, 1)]),
    });
    assert.deepEqual(plan.changes, [
      { kind: 'deactivate', key: 'A', xmlId: 'glyms:A', productId: 9, reason: 'duplicate' },
    ]);
    assert.deepEqual(plan.unchanged, ['A']);
  });

  test('the active column may be absent (null in the mapping) and custom columns and prefix are used', () => {
    const m = mapping({ prefix: 'erp-', key: 'sku', name: 'titulo', price: 'importe', active: null });
    const plan = diff({
      mapping: m,
      rows: [{ sku: 7, titulo: 'Siete', importe: 7.5 }],
      products: [product(1, 'glyms:7', 'Otro prefijo')],
    });
    assert.deepEqual(plan.changes.map(describeChange), ['+ erp-7 Siete 7.50 USD']);
  });
});

describe('catalog mapping and money', () => {
  test('prices parse to cents from numeric text and numbers, and print with two decimals', () => {
    assert.equal(centsOf('120.00'), 12000);
    assert.equal(centsOf(0.3), 30);
    assert.equal(centsOf('99.995'), 10000);
    assert.equal(centsOf(null), undefined);
    assert.equal(centsOf('abc'), undefined);
    assert.equal(formatCents(9900), '99.00');
    assert.equal(formatCents(5), '0.05');
  });

  test('the defaults fit the demo schema, and the settings take durations', () => {
    assert.deepEqual(CatalogMapping.parse({}), {
      prefix: 'glyms:',
      key: 'codigo',
      name: 'nombre',
      price: 'precio',
      currency: 'PEN',
      priceType: 'base',
      active: 'activo',
      section: 'id_seccion',
      sections: {},
      deactivate: 'deactivate',
    });
    const settings = CatalogSettings.parse({ BITRIX_CATALOG_INTERVAL_MS: '15m' });
    assert.equal(settings.BITRIX_CATALOG_INTERVAL_MS, 900_000);
    assert.match(settings.BITRIX_CATALOG_QUERY, /from public\.servicio/);
    assert.equal(CatalogSettings.parse({ BITRIX_CATALOG_INTERVAL_MS: '0' }).BITRIX_CATALOG_INTERVAL_MS, 0);
  });

  test('a bad mapping file fails with one line naming the file and the problem', () => {
    const file = (name: string, body: string) => {
      const path = join(tmpdir(), `catalog-mapping-${process.pid}-${name}.json`);
      writeFileSync(path, body);
      return path;
    };
    const currency = file('currency', JSON.stringify({ currency: 'soles' }));
    assert.throws(
      () => loadCatalogMapping(currency),
      (e: Error) =>
        e.message.startsWith(`BITRIX_CATALOG_MAPPING ${currency}: currency: an ISO 4217 code`) &&
        !e.message.includes('\n'),
    );
    const unknownKey = file('unknown', JSON.stringify({ deactivate: 'delete' }));
    assert.throws(() => loadCatalogMapping(unknownKey), /: deactivate: /);
    const section = file('section', JSON.stringify({ sections: { 3: { nombre: 'x' } } }));
    assert.throws(() => loadCatalogMapping(section), /: sections\.3/);
    const broken = file('broken', '{"currency": ');
    assert.throws(
      () => loadCatalogMapping(broken),
      (e: Error) => e.message.startsWith(`BITRIX_CATALOG_MAPPING ${broken}: `) && !e.message.includes('\n'),
    );
    assert.throws(
      () => loadCatalogMapping('/nonexistent/catalog.json'),
      /BITRIX_CATALOG_MAPPING \/nonexistent\/catalog\.json: ENOENT/,
    );
    assert.deepEqual(
      loadCatalogMapping(file('ok', JSON.stringify({ currency: 'EUR', priceType: 'WHOLESALE', sections: { 1: 5 } })))
        .sections,
      { 1: 5 },
    );
  });
});
