import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { KV } from 'nats';
import { pino } from 'pino';
import type { Bus } from '@puente/bus';
import { connectTestBus, eventually, uniqueName } from '@puente/bus/testing';
import { Lease, LeaseLostError } from '@puente/cdc';
import { BitrixClient } from './bitrix/client.js';
import { FakeBitrix24 } from './testing/index.js';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
let bus: Bus;
let fake: FakeBitrix24;

before(async () => {
  bus = await connectTestBus();
  fake = await new FakeBitrix24({ bucket: { burst: 50, drainPerSecond: 20 } }).start();
});
after(async () => {
  await fake.stop();
  await bus.close();
});

/**
 * The KV as a stalled holder sees it: reads work, but its renewals do not get through until `resume()`
 * (a process frozen by a long pause, a VM suspended, a partition of its own).
 */
function stalling(kv: KV): { kv: KV; stall: () => void; resume: () => void } {
  let release = () => {};
  let stalled: Promise<void> | undefined;
  const proxy = new Proxy(kv, {
    get(target, property, receiver) {
      if (property === 'update')
        return async (...args: Parameters<KV['update']>) => {
          await stalled;
          return target.update(...args);
        };
      return Reflect.get(target, property, receiver) as unknown;
    },
  });
  return {
    kv: proxy,
    stall: () => {
      stalled = new Promise<void>((resolve) => (release = resolve));
    },
    resume: () => {
      stalled = undefined;
      release();
    },
  };
}

test('a stalled lease holder that resumes after another replica took over sends nothing to Bitrix24', async () => {
  const kv = await bus.kv(uniqueName('lease'), { history: 1 });
  const key = 'active.slot';
  const a = stalling(kv);
  const holder = new Lease({ kv: a.kv, key, logger, ttlMs: 600, owner: 'replica-a' });
  const standby = new Lease({ kv, key, logger, ttlMs: 600, owner: 'replica-b' });
  assert.equal(await holder.tryAcquire(), true);
  assert.equal(await standby.tryAcquire(), false, 'one holder at a time');

  const client = new BitrixClient({
    auth: { kind: 'webhook', url: fake.webhookUrl() },
    bucket: { burst: 50, drainPerSecond: 20 },
    logger,
    fence: () => holder.assertHeld(),
  });
  await client.call('crm.company.add', { fields: { TITLE: 'Empresa Ficticia antes' } });
  const sent = fake.requests.length;

  // Replica A stalls: its renewals stop; once its TTL lapses, replica B takes over.
  a.stall();
  await eventually(async () => (await standby.tryAcquire()) || undefined, 10_000, 'replica B to take over');
  let lost = false;
  holder.onLost(() => (lost = true));
  a.resume();
  // A comes back with work in hand: the fencing check refuses before anything is sent.
  await assert.rejects(
    client.call('crm.company.add', { fields: { TITLE: 'Empresa Ficticia después' } }),
    LeaseLostError,
  );
  assert.equal(fake.requests.length, sent, 'nothing reached Bitrix24 after the takeover');
  assert.equal(lost, true, 'the former holder learns it lost the lease');
  assert.equal(holder.holding, false);
  await standby.assertHeld();
  await standby.release();
});
