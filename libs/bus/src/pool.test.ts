import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eachConcurrently } from './pool.js';

test('eachConcurrently - every item once, started in order, never more than the bound at a time', async () => {
  const items = Array.from({ length: 40 }, (_, i) => i);
  const started: number[] = [];
  let running = 0;
  let most = 0;
  await eachConcurrently(items, 3, async (item, index) => {
    assert.equal(item, index);
    started.push(item);
    most = Math.max(most, ++running);
    await new Promise((resolve) => setTimeout(resolve, item % 4));
    running--;
  });
  assert.deepEqual(started, items);
  assert.equal(most, 3);
});

test('eachConcurrently - rejects with the first failure; no items, no work', async () => {
  await assert.rejects(
    eachConcurrently([1, 2, 3], 2, async (n) => {
      if (n === 2) throw new Error('two failed');
    }),
    /two failed/,
  );
  let calls = 0;
  await eachConcurrently([], 4, async () => {
    calls++;
  });
  assert.equal(calls, 0);
});
