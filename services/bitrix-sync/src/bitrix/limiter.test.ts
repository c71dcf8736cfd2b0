import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LeakyBucket, type Clock } from './limiter.js';

/** A clock that only moves when someone sleeps on it (or the test moves it). */
function manualClock(start = 1_000_000): Clock & { t: number } {
  const clock = {
    t: start,
    now: () => clock.t,
    sleep: async (ms: number) => {
      clock.t += ms;
    },
  };
  return clock;
}

test('limiter - a burst runs up to burst minus headroom at once, then one request per drain interval', async () => {
  const clock = manualClock();
  const bucket = new LeakyBucket({ burst: 5, drainPerSecond: 2, clock });
  const starts: number[] = [];
  for (let i = 0; i < 10; i++) await bucket.schedule(async () => starts.push(clock.t - 1_000_000));
  assert.deepEqual(starts, [0, 0, 0, 0, 500, 1000, 1500, 2000, 2500, 3000]);
  assert.equal(bucket.stats.requests, 10);
});

test('limiter - the level the limiter assumes is never below what a portal counting arrivals sees', async () => {
  const clock = manualClock();
  const bucket = new LeakyBucket({ burst: 50, drainPerSecond: 2, headroom: 0, clock });
  // The portal's bucket, counting each request when it arrives (half way through a 300 ms round trip).
  let portal = 0;
  let portalAt = clock.t;
  let refused = 0;
  for (let i = 0; i < 300; i++) {
    await bucket.schedule(async () => {
      clock.t += 150;
      const level = Math.max(0, portal - ((clock.t - portalAt) / 1000) * 2);
      if (level + 1 > 50) refused++;
      else portal = level + 1;
      portalAt = clock.t;
      assert.ok(
        bucket.levelAt(clock.t) + 1e-9 >= level,
        `limiter level ${bucket.levelAt(clock.t)} below the portal's ${level}`,
      );
      clock.t += 150;
    });
  }
  assert.equal(refused, 0);
});

test('limiter - after the portal says the bucket is full, the next request waits until two places drained', async () => {
  const clock = manualClock();
  const bucket = new LeakyBucket({ burst: 50, drainPerSecond: 2, clock });
  bucket.markFull();
  assert.equal(bucket.delayAt(), 1_000);
  const before = clock.t;
  await bucket.schedule(async () => undefined);
  assert.equal(clock.t - before, 1_000);
});

test('limiter - an Enterprise bucket (250, 5/s) drains five requests a second', async () => {
  const clock = manualClock();
  const bucket = new LeakyBucket({ burst: 250, drainPerSecond: 5, clock });
  for (let i = 0; i < 249; i++) await bucket.schedule(async () => undefined);
  assert.equal(clock.t, 1_000_000, 'the first 249 go at once');
  for (let i = 0; i < 5; i++) await bucket.schedule(async () => undefined);
  assert.equal(clock.t - 1_000_000, 1_000);
});

test('limiter - callers sharing a bucket run one at a time, in the order they asked', async () => {
  const bucket = new LeakyBucket({ burst: 100, drainPerSecond: 100 });
  let inFlight = 0;
  let most = 0;
  const order: number[] = [];
  await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      bucket.schedule(async () => {
        inFlight++;
        most = Math.max(most, inFlight);
        await new Promise((resolve) => setTimeout(resolve, 1));
        order.push(i);
        inFlight--;
      }),
    ),
  );
  assert.equal(most, 1);
  assert.deepEqual(
    order,
    Array.from({ length: 20 }, (_, i) => i),
  );
});

test('limiter - a failed request still counts and does not block the queue', async () => {
  const clock = manualClock();
  const bucket = new LeakyBucket({ burst: 3, drainPerSecond: 1, clock });
  await assert.rejects(
    bucket.schedule(async () => {
      throw new Error('boom');
    }),
    /boom/,
  );
  assert.equal(bucket.levelAt(), 1);
  assert.equal(await bucket.schedule(async () => 'next'), 'next');
});
