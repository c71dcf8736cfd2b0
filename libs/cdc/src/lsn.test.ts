import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { lsnToBigInt, maxLsn, normalizeLsn } from './lsn.js';

describe('LSNs', () => {
  test('padded, lower-case and canonical forms of one position compare equal after normalizing', () => {
    assert.equal(normalizeLsn('00000016/0B374D84'), '16/B374D84');
    assert.equal(normalizeLsn('16/b374d84'), '16/B374D84');
    assert.equal(normalizeLsn('0/0'), '0/0');
    assert.equal(normalizeLsn('00000000/00000000'), '0/0');
    assert.equal(normalizeLsn('00000000/000000a0'), '0/A0');
    assert.equal(normalizeLsn('FFFFFFFF/10000000'), 'FFFFFFFF/10000000');
    for (const lsn of ['00000001/00000000', '0000ABCD/0000EF01', '00000000/FFFFFFFF'])
      assert.equal(lsnToBigInt(normalizeLsn(lsn)), lsnToBigInt(lsn));
    assert.equal(lsnToBigInt('1/0'), 2n ** 32n);
  });
  test('the later of two LSNs is chosen by value, not by text', () => {
    assert.equal(maxLsn('0/FFFFFFFF', '1/0'), '1/0');
    assert.equal(maxLsn('A/10', '9/FFFFFFFF'), 'A/10');
  });
  test('a malformed LSN is refused', () => {
    assert.throws(() => lsnToBigInt('16-B374D84'), /not an LSN/);
  });
});
