import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { numberPattern, searchPattern } from './searchPattern.js';

const finds = (query: string, text: string) => new RegExp(searchPattern(query), 'iu').test(text);

describe('realtime search - patterns', () => {
  test('a query matches regardless of case and accents, on either side', () => {
    assert.ok(finds('perez', 'Juan Pérez'));
    assert.ok(finds('PÉREZ', 'juan perez'));
    assert.ok(finds('Nuñez', 'NUNEZ'));
    assert.ok(finds('conceição', 'Maria Conceicao'));
    assert.ok(!finds('perez', 'Juan Pera'));
  });

  test('regular-expression metacharacters in a query match themselves', () => {
    assert.ok(finds('.*', 'a .* b'));
    assert.ok(!finds('.*', 'anything'));
    assert.ok(finds('(', 'Ventas (Lima)'));
    assert.ok(!finds('(', 'Ventas Lima'));
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 20 }), (query) => {
        const pattern = new RegExp(searchPattern(query), 'iu');
        assert.ok(pattern.test(`x${query}y`), `${query} inside a text`);
      }),
      { numRuns: 2_000 },
    );
  });

  test('numbers: the digits of a query, from three on', () => {
    assert.equal(numberPattern('+34 612-345'), '34612345');
    assert.equal(numberPattern('12'), undefined);
    assert.equal(numberPattern('Ana'), undefined);
  });
});
