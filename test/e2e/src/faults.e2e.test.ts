import { test } from 'node:test';
import assert from 'node:assert/strict';
import { postgresServerUrl } from '@puente/stack';
import { faultTable, FAULTS, runFaults, type Fault } from './faults.js';

/** The shortened fault suite (`npm run test:faults` runs it at full length). */
test(
  'faults: kill -9 NATS, MongoDB down 10 s, kill -9 the projectors, kill -9 the gateway, PostgreSQL restarted under the CDC relay, Bitrix24 answering 503s and expiring tokens: every acknowledged delivery or committed change is in the read model exactly once',
  { timeout: 900_000 },
  async () => {
    const server = postgresServerUrl(process.env);
    // FAULTS=<name>,<name> runs only those (when looking at one).
    const only = process.env.FAULTS?.split(',').filter((f): f is Fault => (FAULTS as readonly string[]).includes(f));
    const rows = await runFaults({
      deliveries: Number(process.env.FAULT_DELIVERIES ?? 300),
      postgresUrl: server,
      ...(only?.length ? { faults: only } : {}),
    });
    const table = faultTable(rows);
    process.stdout.write(`${table}\n`);
    for (const row of rows) {
      assert.ok(row.acknowledged > row.sent * 0.9, `${row.fault}: most deliveries acknowledged\n${table}`);
      assert.equal(row.lost, 0, `${row.fault}: nothing acknowledged is lost\n${table}`);
      assert.equal(row.duplicates, 0, `${row.fault}: nothing applied twice\n${table}`);
      assert.equal(row.deadLetters, 0, `${row.fault}: nothing in the DLQ\n${table}`);
    }
  },
);
