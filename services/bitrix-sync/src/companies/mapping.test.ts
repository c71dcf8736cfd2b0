import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CompanyMapping, loadCompanyMapping, mapCompany } from './mapping.js';
import { diffMultiValue } from './pusher.js';

const mapping = CompanyMapping.parse({
  companyType: { column: 'idclientetipo', values: { 1: 'CUSTOMER' }, default: 'OTHER' },
  fields: { UF_CRM_RUC: 'ruc' },
  active: { column: 'activo', whenInactive: 'delete' },
});
const row = {
  id_cliente: 5,
  razon_social: ' Comercial Andina S.A.C. ',
  ruc: '20512345678',
  email: 'compras@andina.example',
  telefono: '+51 (1) 555-0101',
  idclientetipo: 1,
  activo: true,
};

describe('companies mapping', () => {
  test('given a customer row, the company has its title, directory STATUS_ID, custom field, phone and e-mail', () => {
    const mapped = mapCompany(row, mapping);
    assert.equal(mapped.kind, 'upsert');
    if (mapped.kind !== 'upsert') return;
    assert.deepEqual(mapped.company.fields, {
      TITLE: 'Comercial Andina S.A.C.',
      COMPANY_TYPE: 'CUSTOMER',
      UF_CRM_RUC: '20512345678',
    });
    assert.deepEqual(mapped.company.multi, {
      EMAIL: [{ value: 'compras@andina.example', valueType: 'WORK' }],
      PHONE: [{ value: '+51 (1) 555-0101', valueType: 'WORK' }],
    });
  });
  test('an unmapped directory value takes the default; equal rows have equal digests, a changed one another', () => {
    const a = mapCompany({ ...row, idclientetipo: 9 }, mapping);
    assert.equal(a.kind === 'upsert' && a.company.fields.COMPANY_TYPE, 'OTHER');
    const b = mapCompany(row, mapping);
    const c = mapCompany({ ...row, telefono: '+51 1 555 0102' }, mapping);
    assert.ok(b.kind === 'upsert' && c.kind === 'upsert' && b.company.digest !== c.company.digest);
    assert.equal(
      b.kind === 'upsert' && b.company.digest,
      (mapCompany({ ...row }, mapping) as { company: { digest: string } }).company.digest,
    );
  });
  test('invalid e-mail, invalid phone and missing title are reported, not sent', () => {
    assert.deepEqual(mapCompany({ ...row, email: 'no-es-correo' }, mapping).kind, 'invalid');
    assert.equal((mapCompany({ ...row, telefono: '12' }, mapping) as { code?: string }).code, 'INVALID_PHONE');
    assert.equal((mapCompany({ ...row, razon_social: '  ' }, mapping) as { code?: string }).code, 'MISSING_TITLE');
  });
  test('an inactive customer is deleted when the mapping says so; a deleted row is deleted', () => {
    assert.equal(mapCompany({ ...row, activo: false }, mapping).kind, 'delete');
    assert.equal(mapCompany(undefined, mapping).kind, 'delete');
  });
  test('a bad mapping file is refused with one line naming the file and the field', () => {
    const file = join(tmpdir(), `mapping-${process.pid}.json`);
    writeFileSync(file, JSON.stringify({ fields: { uf_crm_x: 'ruc' } }));
    assert.throws(
      () => loadCompanyMapping(file),
      (error: Error) =>
        error.message.startsWith(`BITRIX_COMPANY_MAPPING ${file}: fields`) && !error.message.includes('\n'),
    );
  });
});

describe('multi-value entries', () => {
  test('a changed value is changed by its id, a new one added, a removed one deleted by id: never re-added', () => {
    assert.deepEqual(diffMultiValue([{ value: 'b', valueType: 'WORK' }], [{ id: '7', value: 'a' }]), {
      ops: [{ ID: '7', VALUE: 'b', VALUE_TYPE: 'WORK' }],
      kept: [{ id: '7', value: 'b' }],
      added: [],
    });
    assert.deepEqual(diffMultiValue([{ value: 'a', valueType: 'WORK' }], [{ id: '7', value: 'a' }]).ops, []);
    assert.deepEqual(diffMultiValue([], [{ id: '7', value: 'a' }]).ops, [{ ID: '7', DELETE: 'Y' }]);
    assert.deepEqual(diffMultiValue([{ value: 'n', valueType: 'MOBILE' }], []), {
      ops: [{ VALUE: 'n', VALUE_TYPE: 'MOBILE' }],
      kept: [],
      added: ['n'],
    });
  });
});
