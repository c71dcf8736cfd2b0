import { randomBytes } from 'node:crypto';
import { Bus } from '../bus.js';

/** A short random name for test isolation (streams share the bus; names and subjects never collide). */
export function uniqueName(prefix = 't'): string {
  return `${prefix}${randomBytes(6).toString('hex')}`;
}

/** NATS_URL of the server the test run started (see libs/stack's test runner). */
export function testNatsUrl(): string {
  const url = process.env.NATS_URL;
  if (!url) throw new Error('NATS_URL is not set: run tests through `npm test`, which starts the servers');
  return url;
}

/** A connected bus with Puente's streams in place. */
export async function connectTestBus(name = uniqueName('test-')): Promise<Bus> {
  const bus = await Bus.connect({ servers: testNatsUrl(), name });
  await bus.ensureStreams();
  return bus;
}

/** Polls `check` until it returns a value (not undefined) or the time is up. */
export async function eventually<T>(
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
