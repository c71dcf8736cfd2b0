import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createEvent, fromStorable, toStorable, type KissflowMappings } from '@puente/contracts';
import { recordsProjection, type KissflowRecordDoc, type RecordEvent } from './records.js';

const DS = 'DS_Documentos_Cliente';
const upsert = (
  fields: Record<string, unknown>,
  modifiedAt: string | null,
  options: { origin?: 'webhook' | 'backfill' | 'reconcile'; observedAt?: string; rowId?: string } = {},
): RecordEvent =>
  createEvent(
    'kissflow.record.upserted.v1',
    {
      dataset: DS,
      rowId: options.rowId ?? 'Pk01',
      fields: { _id: options.rowId ?? 'Pk01', ...fields },
      modifiedAt,
      origin: options.origin ?? 'webhook',
    },
    { source: 'urn:test', ...(options.observedAt ? { time: options.observedAt } : {}) },
  ) as RecordEvent;
const deleted = (detectedAt: string, rowId = 'Pk01'): RecordEvent =>
  createEvent('kissflow.record.deleted.v1', { dataset: DS, rowId, detectedAt }, { source: 'urn:test' }) as RecordEvent;
const t = (second: number) => new Date(Date.UTC(2025, 9, 15, 10, 30, second)).toISOString();

/** Applies events in order at positions 1, 2, ...; returns the document (null when never created). */
function run(events: readonly RecordEvent[], mappings?: KissflowMappings): KissflowRecordDoc | null {
  const projection = recordsProjection(mappings);
  let doc: KissflowRecordDoc | null = null;
  events.forEach((event, i) => {
    const [key] = projection.keys(event);
    if (key) doc = projection.evolve(doc, event, { key, position: i + 1 });
  });
  return doc;
}

describe('kissflow_records projection', () => {
  test('given a row, when a newer version arrives it replaces the row; an older one changes nothing', () => {
    const doc = run([upsert({ Monto: 1 }, t(1)), upsert({ Monto: 3 }, t(3)), upsert({ Monto: 2 }, t(2))]);
    assert.equal(doc!.fields.Monto, 3);
    assert.equal(doc!.modifiedAt, t(3));
    assert.deepEqual(doc!._v.row, [Date.parse(t(3)), 2]);
    assert.equal(doc!.dataset, DS);
    assert.equal(doc!.rowId, 'Pk01');
  });

  test('a newer version replaces the fields: columns it does not carry are not kept from the older one', () => {
    const doc = run([upsert({ Monto: 1, Estado: 'Pendiente' }, t(1)), upsert({ Monto: 2 }, t(2))]);
    assert.deepEqual(doc!.fields, { _id: 'Pk01', Monto: 2 });
  });

  test('two edits in the same second: the later stream position wins, and a duplicate of the first, even much later, changes nothing', () => {
    const first = upsert({ Monto: 1 }, t(5));
    const second = upsert({ Monto: 2 }, t(5));
    const projection = recordsProjection();
    const key = 'DS_Documentos_Cliente:Pk01';
    const a = projection.evolve(null, first, { key, position: 10 })!;
    const b = projection.evolve(a, second, { key, position: 11 })!;
    assert.equal(b.fields.Monto, 2);
    assert.equal(
      projection.evolve(b, first, { key, position: 500_000 }),
      b,
      'a redelivery of the first edit is the same object: nothing to write',
    );
    assert.equal(projection.evolve(b, second, { key, position: 500_001 }), b);
    // Same time, older position (a replay of an earlier batch seen again): nothing.
    assert.equal(projection.evolve(b, upsert({ Monto: 9 }, t(5)), { key, position: 9 }), b);
  });

  test('duplicates change nothing: the same row again, also with keys in another order', () => {
    const projection = recordsProjection();
    const key = 'DS_Documentos_Cliente:Pk01';
    const doc = projection.evolve(null, upsert({ A: 1, B: { x: 1, y: 2 } }, t(1)), { key, position: 1 })!;
    assert.equal(projection.evolve(doc, upsert({ B: { y: 2, x: 1 }, A: 1 }, t(1)), { key, position: 2 }), doc);
  });

  test('a row without a modification time is ordered by when it was observed', () => {
    // Observed after the stored version was modified: it is the newer state.
    assert.equal(run([upsert({ Monto: 1 }, t(1)), upsert({ Monto: 2 }, null, { observedAt: t(30) })])!.fields.Monto, 2);
    // Observed before: the stored version is newer.
    assert.equal(
      run([upsert({ Monto: 1 }, t(30)), upsert({ Monto: 2 }, null, { observedAt: t(10) })])!.fields.Monto,
      1,
    );
    assert.equal(run([upsert({ Monto: 2 }, null, { observedAt: t(10) })])!.modifiedAt, null);
  });

  test('a delete leaves a tombstone; a late older update never brings the row back', () => {
    const doc = run([
      upsert({ Monto: 1 }, t(1)),
      deleted(t(40)),
      upsert({ Monto: 5 }, t(20)),
      upsert({ Monto: 6 }, null, { observedAt: t(50) }),
    ]);
    assert.equal(doc!._deleted, true);
    assert.equal(doc!.deletedAt, t(40));
    assert.equal(doc!.fields.Monto, 1, 'the last known fields stay for audit');
    // A delete that arrives before the row ever did still wins over the older row.
    assert.equal(run([deleted(t(40)), upsert({ Monto: 1 }, t(1))])!._deleted, true);
    // A duplicate delete changes nothing.
    const projection = recordsProjection();
    const tomb = run([deleted(t(40))])!;
    assert.equal(projection.evolve(tomb, deleted(t(41)), { key: 'k', position: 9 }), tomb);
  });

  test('a version modified after the delete was detected, or a listing that saw the row afterwards, brings it back', () => {
    const revived = run([upsert({ Monto: 1 }, t(1)), deleted(t(40)), upsert({ Monto: 7 }, t(45))]);
    assert.equal(revived!._deleted, undefined);
    assert.equal(revived!.fields.Monto, 7);
    const listed = run([
      upsert({ Monto: 1 }, t(1)),
      deleted(t(40)),
      upsert({ Monto: 8 }, null, { origin: 'reconcile', observedAt: t(45) }),
    ]);
    assert.equal(listed!._deleted, undefined);
    // A delete detected before a known later modification does not apply.
    assert.equal(run([upsert({ Monto: 1 }, t(50)), deleted(t(40))])!._deleted, undefined);
  });

  test('awkward field names and values are stored in a form MongoDB and FerretDB accept, reversibly', () => {
    const row = {
      'Cliente.RUC': '20512345678',
      $precio: 10,
      '%': 'pct',
      'a\u0000b': 1,
      Tabla: [
        [1, 2],
        [3, [4]],
      ],
      Nota: 'x\u0000y',
      Ok: { 'b.c': [{ $d: 1 }] },
      '': 'vacío',
    };
    const doc = run([upsert(row, t(1))])!;
    const stored = JSON.stringify(doc.fields);
    assert.doesNotMatch(stored, /"[^"]*\.[^"]*":/, 'no key with a dot');
    assert.doesNotMatch(stored, /"\$/, 'no key with a leading $');
    JSON.stringify(doc.fields, (key, value: unknown) => {
      assert.ok(
        !key.includes('\u0000') && !(typeof value === 'string' && value.includes('\u0000')),
        'no NUL in a name or a text',
      );
      return value;
    });
    assert.doesNotMatch(stored, /\[\[/, 'no array directly inside an array');
    assert.deepEqual(fromStorable(doc.fields), { _id: 'Pk01', ...row });
  });

  test('toStorable and fromStorable are inverse for any JSON value', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        assert.deepEqual(fromStorable(toStorable(value)), value);
      }),
      { numRuns: 2_000 },
    );
    for (const odd of [Infinity, -Infinity, Number.NaN, { a: [Infinity] }])
      assert.deepEqual(fromStorable(toStorable(odd)), odd);
    assert.deepEqual(toStorable({ n: Infinity }), { n: { '%num': 'Infinity' } });
    const proto = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}') as Record<string, unknown>;
    const stored = toStorable(proto) as Record<string, unknown>;
    assert.deepEqual(Object.keys(stored), ['%5F_proto__', 'a']);
    assert.equal(Object.getPrototypeOf(stored), Object.prototype);
    assert.deepEqual(fromStorable(stored), proto);
    const deep = JSON.parse(`${'{"a":'.repeat(80)}1${'}'.repeat(80)}`) as unknown;
    assert.deepEqual(fromStorable(toStorable(deep)), deep);
  });

  test('a mapping renames, selects and coerces, and keeps a row whose cell cannot be coerced', () => {
    const mappings: KissflowMappings = {
      datasets: {
        [DS]: {
          unmapped: 'drop',
          fields: {
            ruc: 'Cliente_RUC',
            monto: { from: 'Monto', as: 'number' },
            montoTexto: { from: 'Monto_Texto', as: 'number' },
            emitido: { from: 'Fecha_Emision', as: 'date' },
            aprobadoEn: { from: 'Aprobado_En', as: 'date' },
            activo: { from: 'Activo', as: 'boolean' },
            cliente: { from: 'Cliente', as: 'lookup' },
            contactos: { from: 'Contactos', as: 'lookup' },
            codigo: { from: 'Codigo', as: 'string' },
            roto: { from: 'Roto', as: 'number' },
            'detalle.item': { from: 'Detalle', as: 'raw' },
          },
        },
      },
    };
    const doc = run(
      [
        upsert(
          {
            Cliente_RUC: '20512345678',
            Monto: 1250.5,
            Monto_Texto: '1,250.50',
            Fecha_Emision: '2025-10-01',
            Aprobado_En: '2025-10-15T10:30:01Z',
            Activo: 'sí',
            Cliente: { _id: 'Cli07', Name: 'Acme SAC' },
            Contactos: [
              { _id: 'U1', Name: 'Ana' },
              { _id: 'U2', Name: 'Luis' },
            ],
            Codigo: 42,
            Roto: 'doce',
            Detalle: [[1]],
            Ignorado: 'x',
          },
          t(1),
        ),
      ],
      mappings,
    )!;
    assert.deepEqual(fromStorable(doc.fields), {
      ruc: '20512345678',
      monto: 1250.5,
      montoTexto: 1250.5,
      emitido: new Date('2025-10-01T00:00:00Z'),
      aprobadoEn: new Date('2025-10-15T10:30:01Z'),
      activo: true,
      cliente: 'Cli07',
      contactos: ['U1', 'U2'],
      codigo: '42',
      roto: null,
      'detalle.item': [[1]],
    });
    assert.ok(doc.fields.emitido instanceof Date, 'dates are stored as dates');
    assert.deepEqual(doc.mappingErrors, [{ field: 'roto', message: 'Roto: expected a number, got "doce"' }]);
    // Another dataset has no mapping: kept as sent. `unmapped: keep` keeps the other columns.
    assert.equal(
      run([upsert({ Ignorado: 'x' }, t(1))], { datasets: { Other: { fields: {}, unmapped: 'drop' } } })!.fields
        .Ignorado,
      'x',
    );
    const kept = run([upsert({ A: '1', B: 2 }, t(1))], {
      datasets: { [DS]: { fields: { a: { from: 'A', as: 'number' } }, unmapped: 'keep' } },
    })!;
    assert.deepEqual(kept.fields, { a: 1, _id: 'Pk01', B: 2 });
  });

  test('for versions with distinct times, every order of arrival ends in the newest', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 59 }), { minLength: 1, maxLength: 6 }),
        fc.boolean(),
        (seconds, withDelete) => {
          const events = seconds.map((s) => upsert({ Monto: s }, t(s)));
          const newest = Math.max(...seconds);
          const doc = run(events)!;
          assert.equal(doc.fields.Monto, newest);
          if (withDelete) {
            const all = [...events, deleted(t(60))];
            for (let i = 0; i < all.length; i++)
              assert.equal(run([...all.slice(i), ...all.slice(0, i)])!._deleted, true);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
