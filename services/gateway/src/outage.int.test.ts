import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeToken, StreamNames } from '@puente/contracts';
import { Bus } from '@puente/bus';
import { eventually, uniqueName } from '@puente/bus/testing';
import { freePort, startNats } from '@puente/stack';
import { startTestGateway } from './testing.js';

test('gateway - NATS stopped mid-run: 503 with Retry-After and readiness false; once it is back, the retried delivery is stored exactly once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'puente-outage-'));
  const ports = { port: await freePort(), monitorPort: await freePort() };
  let nats = await startNats({ dir, ...ports, log: () => undefined });
  const bus = await Bus.connect({ servers: nats.url, name: 'outage', publishTimeoutMs: 1_000 });
  await bus.ensureStreams();
  const gateway = await startTestGateway(bus);
  const dataset = uniqueName('DS_');
  const post = (rowId: string) =>
    fetch(`${gateway.url}/webhooks/kissflow/${dataset}`, {
      method: 'POST',
      headers: { authorization: 'Bearer test-kissflow-secret-current', 'content-type': 'application/json' },
      body: JSON.stringify({ _id: rowId, Name: `row ${rowId}`, _modified_at: '2025-10-15T10:30:01Z' }),
    });
  try {
    assert.equal((await post('before')).status, 200);
    assert.equal((await fetch(`${gateway.url}/readyz`)).status, 200);

    await nats.process.stop();
    const during = await post('during');
    assert.equal(during.status, 503);
    assert.ok(Number(during.headers.get('retry-after')) > 0);
    assert.equal(((await during.json()) as { code: string }).code, 'bus_unavailable');
    await eventually(
      async () => ((await fetch(`${gateway.url}/readyz`)).status === 503 ? true : undefined),
      5_000,
      'readiness to fail',
    );

    nats = await startNats({ dir, ...ports, log: () => undefined });
    await eventually(
      async () => ((await fetch(`${gateway.url}/readyz`)).status === 200 ? true : undefined),
      15_000,
      'readiness to return',
    );
    const retried = await post('during');
    assert.equal(retried.status, 200);
    assert.equal((await post('during')).status, 200);
    const subject = `evt.kissflow.record.upserted.${encodeToken(dataset)}`;
    const info = await bus.jsm.streams.info(StreamNames.EVENTS, { subjects_filter: subject });
    assert.equal(info.state.subjects?.[subject], 2, 'the row from before and the retried one, each once');
  } finally {
    await gateway.close();
    await bus.close();
    await nats.process.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
