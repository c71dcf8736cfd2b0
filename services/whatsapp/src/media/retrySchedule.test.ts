import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mediaAttemptsWithin, mediaRetriesExhausted, mediaRetryDelayMs } from './mediaWorker.js';

describe('media download retry schedule', () => {
  test('delays double from 1 s and stop growing at 5 min', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 9, 10, 30].map(mediaRetryDelayMs),
      [1_000, 2_000, 4_000, 8_000, 256_000, 300_000, 300_000],
    );
  });
  test('a download is given up once its waits would pass MEDIA_RETRY_FOR_MS, counted from the delivery count', () => {
    assert.equal(mediaRetriesExhausted(1, 1_000), false);
    assert.equal(mediaRetriesExhausted(2, 1_000), true);
    assert.equal(mediaAttemptsWithin(1_000), 2);
    // The default hour: 9 doubling waits (511 s), then 5-minute waits until past 3,600 s.
    assert.equal(mediaAttemptsWithin(3_600_000), 20);
    assert.equal(mediaRetriesExhausted(19, 3_600_000), false);
    assert.equal(mediaRetriesExhausted(20, 3_600_000), true);
  });
});
