import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './processes.js';
import { natsSyncInterval, startNats } from './servers.js';

test('the stack runs NATS syncing every write to disk before it acknowledges (NATS_SYNC_INTERVAL can say otherwise)', async () => {
  assert.equal(natsSyncInterval({}), 'always');
  assert.equal(natsSyncInterval({ NATS_SYNC_INTERVAL: '2m' }), '2m');
  assert.throws(() => natsSyncInterval({ NATS_SYNC_INTERVAL: 'sometimes' }), /NATS_SYNC_INTERVAL must be/);
  for (const [syncInterval, syncAlways] of [
    [undefined, true],
    ['2m', false],
  ] as const) {
    const dir = mkdtempSync(join(tmpdir(), 'puente-nats-sync-'));
    const monitorPort = await freePort();
    const nats = await startNats({
      dir,
      port: await freePort(),
      monitorPort,
      log: () => undefined,
      ...(syncInterval ? { syncInterval } : {}),
    });
    try {
      // What the running server says it does, not what we wrote.
      const varz = (await (await fetch(`http://127.0.0.1:${monitorPort}/varz`)).json()) as {
        jetstream: { config: { sync_always?: boolean; sync_interval: number } };
      };
      assert.equal(
        varz.jetstream.config.sync_always ?? false,
        syncAlways,
        `sync_interval ${syncInterval ?? 'default'}`,
      );
    } finally {
      await nats.process.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }
});
