import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { scheduleCatalogSync } from './catalogSchedule.js';
import type { CatalogRunResult } from './catalogSync.js';

const logger = pino({ level: 'silent' });
const result = {} as CatalogRunResult;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('catalog schedule', () => {
  test('runs at start and then every interval after the previous run ends; a failed run does not stop it', async () => {
    const starts: number[] = [];
    let calls = 0;
    const schedule = scheduleCatalogSync({
      logger,
      intervalMs: 30,
      sync: {
        run: async () => {
          starts.push(Date.now());
          calls++;
          await sleep(20);
          if (calls === 2) throw new Error('portal unreachable');
          return result;
        },
      },
    });
    // Three runs need about 20 + 30 + 20 + 30 + 20 ms; a loaded machine may take longer.
    for (let waited = 0; starts.length < 3 && waited < 5_000; waited += 10) await sleep(10);
    await schedule.stop();
    const count = starts.length;
    assert.ok(count >= 3, `ran ${count} times`);
    for (let i = 1; i < starts.length; i++)
      assert.ok(starts[i]! - starts[i - 1]! >= 45, 'the interval counts from the end of the previous run');
    await sleep(80);
    assert.equal(starts.length, count, 'nothing runs after stop');
  });

  test('with interval 0 nothing runs on its own, and runNow never overlaps a run in progress', async () => {
    let running = 0;
    let overlap = false;
    let calls = 0;
    const schedule = scheduleCatalogSync({
      logger,
      intervalMs: 0,
      sync: {
        run: async () => {
          calls++;
          overlap ||= running > 0;
          running++;
          await sleep(20);
          running--;
          return result;
        },
      },
    });
    await sleep(40);
    assert.equal(calls, 0);
    const [a, b] = await Promise.all([schedule.runNow(), schedule.runNow()]);
    assert.equal(a, result);
    assert.equal(b, result);
    assert.equal(calls, 2);
    assert.equal(overlap, false);
    await schedule.stop();
  });
});
