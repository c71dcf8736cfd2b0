import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeQuery, encodeQuery } from './query.js';

test('query - nested objects and arrays are written as PHP bracketed keys', () => {
  const query = encodeQuery({
    id: 7,
    fields: {
      TITLE: 'Acme',
      PHONE: [
        { VALUE: '+51 1 234', VALUE_TYPE: 'WORK' },
        { ID: 12, DELETE: 'Y' },
      ],
    },
    select: ['ID', 'TITLE'],
  });
  assert.equal(
    query,
    'id=7&fields[TITLE]=Acme&fields[PHONE][0][VALUE]=%2B51%201%20234&fields[PHONE][0][VALUE_TYPE]=WORK&fields[PHONE][1][ID]=12&fields[PHONE][1][DELETE]=Y&select[0]=ID&select[1]=TITLE',
  );
});

test('query - booleans become 1/0, null and undefined are left out, dates are ISO', () => {
  assert.equal(
    encodeQuery({ halt: true, off: false, gone: null, missing: undefined, at: new Date('2025-10-15T10:30:00.000Z') }),
    'halt=1&off=0&at=2025-10-15T10%3A30%3A00.000Z',
  );
});

test('query - unicode, ampersands, equals signs and brackets inside values survive a round trip', () => {
  const params = {
    fields: { TITLE: 'Pérez & Hijos = "S.A.C." [Perú] 👋', COMMENTS: 'a+b%c' },
    filter: { '>ID': '10', '@ORIGIN_ID': ['cliente:1', 'cliente:2'] },
  };
  const query = encodeQuery(params);
  assert.ok(!query.includes(' ') && !query.includes('é'), 'values are percent-encoded');
  assert.deepEqual(decodeQuery(query), {
    fields: { TITLE: params.fields.TITLE, COMMENTS: 'a+b%c' },
    filter: { '>ID': '10', '@ORIGIN_ID': ['cliente:1', 'cliente:2'] },
  });
});

test('query - batch references stay literal so Bitrix can substitute them', () => {
  const query = encodeQuery({
    id: '$result[add_1]',
    fields: { COMMENTS: 'parent $result[get_0][ID] done', EMAIL: [{ VALUE: '$result[get_0][EMAIL][0][VALUE]' }] },
  });
  assert.equal(
    query,
    'id=$result[add_1]&fields[COMMENTS]=parent%20$result[get_0][ID]%20done&fields[EMAIL][0][VALUE]=$result[get_0][EMAIL][0][VALUE]',
  );
  assert.deepEqual(decodeQuery(query), {
    id: '$result[add_1]',
    fields: { COMMENTS: 'parent $result[get_0][ID] done', EMAIL: [{ VALUE: '$result[get_0][EMAIL][0][VALUE]' }] },
  });
});

test('query - keys with special characters are encoded, and decodeQuery reads PHP forms (a[]=, +)', () => {
  assert.equal(encodeQuery({ filter: { 'UF_CRM_1&2': 'x' } }), 'filter[UF_CRM_1%262]=x');
  assert.deepEqual(decodeQuery('a[]=x&a[]=y&b=hello+world&c'), { a: ['x', 'y'], b: 'hello world', c: '' });
});
