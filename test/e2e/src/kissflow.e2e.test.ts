import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Db } from 'mongodb';
import { pino } from 'pino';
import { Collections } from '@puente/contracts';
import type { Bus } from '@puente/bus';
import { connectTestBus, eventually, uniqueName } from '@puente/bus/testing';
import { testDatabase } from '@puente/projection/testing';
import { startTestGateway, TEST_SECRETS } from '@puente/gateway/testing';
import { Config, startKissflowSync, type KissflowRecordDoc } from '@puente/kissflow-sync';
import { FakeKissflow } from '@puente/kissflow-sync/testing';
import { startCli } from './cli.js';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const secret = TEST_SECRETS.KISSFLOW_WEBHOOK_SECRET[0]!;

let bus: Bus;
let gateway: { url: string; close: () => Promise<void> };
let database: Awaited<ReturnType<typeof testDatabase>>;
let db: Db;
let fake: FakeKissflow;

before(async () => {
  bus = await connectTestBus();
  gateway = await startTestGateway(bus);
  database = await testDatabase();
  db = database.db;
  fake = await new FakeKissflow({ rateLimitPerSecond: 1_000 }).start();
});
after(async () => {
  await fake.stop();
  await gateway.close();
  await database.drop();
  await bus.close();
});

type Doc = KissflowRecordDoc & { _id: string; _rev: number };
const records = () => db.collection<Doc>(Collections.kissflowRecords);
const start = (dataset: string) =>
  startKissflowSync({ bus, db, logger, config: Config.parse({ ...fake.env(), KISSFLOW_DATASETS: dataset }) });

async function webhook(dataset: string, body: unknown): Promise<void> {
  const response = await fetch(`${gateway.url}/webhooks/kissflow/${encodeURIComponent(dataset)}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  assert.equal(response.status, 200, await response.text());
}

const cli = (args: string[], env: NodeJS.ProcessEnv) => startCli(args, env);

describe('kissflow end to end', () => {
  test('signed webhook -> gateway -> kissflow_records; a retry and the wrapped form of the same row change nothing', async () => {
    const dataset = uniqueName('DS_Documentos_');
    const running = await start(dataset);
    try {
      const row = {
        _id: 'Pk8dLs9_2Xq',
        Name: 'Contrato marco',
        _modified_at: '2025-10-15T10:30:01Z',
        'Cliente.RUC': '20512345678',
        Monto: 1250.5,
      };
      await webhook(dataset, row);
      await webhook(dataset, row);
      const { _id, _modified_at, ...fields } = row;
      await webhook(dataset, { event: 'dataset.row.updated', dataset_id: dataset, _id, _modified_at, row: fields });
      const doc = await eventually(
        () =>
          records()
            .findOne({ _id: `${dataset}:Pk8dLs9_2Xq` })
            .then((d) => d ?? undefined),
        10_000,
        'the record',
      );
      assert.deepEqual(
        [doc.dataset, doc.rowId, doc.modifiedAt, doc.origin],
        [dataset, 'Pk8dLs9_2Xq', '2025-10-15T10:30:01.000Z', 'webhook'],
      );
      assert.equal(doc.fields['Cliente%2ERUC'], '20512345678', 'the dotted column is stored under its encoded name');
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal((await records().findOne({ _id: `${dataset}:Pk8dLs9_2Xq` }))!._rev, 1, 'written once');
    } finally {
      await running.stop();
    }
  });

  test('a webhook and a backfill for the same row, in either order, end with the newer version', async () => {
    const dataset = uniqueName('DS_');
    const running = await start(dataset);
    try {
      // The backfill reads the older version after the webhook brought the newer one.
      fake.put(dataset, { _id: 'A', Estado: 'Pendiente', _modified_at: '2025-10-15T10:00:00Z' });
      await webhook(dataset, { _id: 'A', Estado: 'Aprobado', _modified_at: '2025-10-15T11:00:00Z' });
      await eventually(
        () =>
          records()
            .findOne({ _id: `${dataset}:A` })
            .then((d) => d ?? undefined),
        10_000,
        'A from the webhook',
      );
      // The backfill brings the newer version; a late webhook carries the older one.
      fake.put(dataset, { _id: 'B', Estado: 'Aprobado', _modified_at: '2025-10-15T11:00:00Z' });
      const run = cli(['kissflow', 'backfill', '--dataset', dataset], { ...process.env, ...fake.env() });
      assert.equal(await run.exited, 0, run.output());
      await eventually(
        () =>
          records()
            .findOne({ _id: `${dataset}:B` })
            .then((d) => d ?? undefined),
        10_000,
        'B from the backfill',
      );
      await webhook(dataset, { _id: 'B', Estado: 'Pendiente', _modified_at: '2025-10-15T10:00:00Z' });
      await webhook(dataset, { _id: 'C', Estado: 'Marca' });
      await eventually(
        () =>
          records()
            .findOne({ _id: `${dataset}:C` })
            .then((d) => d ?? undefined),
        10_000,
        'a later event applied',
      );
      const [a, b] = await Promise.all(['A', 'B'].map((id) => records().findOne({ _id: `${dataset}:${id}` })));
      assert.deepEqual(
        [a!.fields.Estado, a!.origin, a!.modifiedAt],
        ['Aprobado', 'webhook', '2025-10-15T11:00:00.000Z'],
      );
      assert.deepEqual(
        [b!.fields.Estado, b!.origin, b!.modifiedAt],
        ['Aprobado', 'backfill', '2025-10-15T11:00:00.000Z'],
      );
    } finally {
      await running.stop();
    }
  });

  test('a backfill of 2,500 rows over many pages, killed (SIGKILL) half way and run again, ends with exactly 2,500 documents', async () => {
    const dataset = uniqueName('DS_');
    fake.seed(dataset, 2_500);
    const running = await start(dataset);
    const env = { ...process.env, ...fake.env(), KISSFLOW_PAGE_SIZE: '50' };
    const before = fake.calls.length;
    try {
      fake.latencyMs = 40;
      const first = cli(['kissflow', 'backfill', '--dataset', dataset], env);
      await eventually(
        () => (fake.calls.slice(before).filter((c) => c.startsWith('200 list')).length >= 25 ? true : undefined),
        30_000,
        'the backfill to be half way',
      );
      first.child.kill('SIGKILL');
      await first.exited;
      fake.latencyMs = 0;
      assert.match(first.output(), /rows\/s/, 'the CLI shows progress with rows/s');
      assert.doesNotMatch(first.output(), /completed/, 'killed before the end');
      // The killed run's heartbeat is fresh: a new run waits for it to go stale, then resumes it.
      const busy = cli(['kissflow', 'backfill', '--dataset', dataset], env);
      assert.equal(await busy.exited, 1);
      assert.match(busy.output(), /^puente: a backfill of DS_\w+ is running \(page \d+, \d+ rows so far\)\n$/);
      const second = cli(['kissflow', 'backfill', '--dataset', dataset], { ...env, KISSFLOW_BACKFILL_STALE_MS: '100' });
      assert.equal(await second.exited, 0, second.output());
      assert.match(second.output(), /completed .*: 2500 rows in 50 pages/);
      await eventually(
        async () => ((await records().countDocuments({ dataset })) === 2_500 ? true : undefined),
        30_000,
        '2,500 records',
      );
      const pages = fake.calls.slice(before).filter((c) => c.startsWith('200 list')).length;
      // The killed run may have read two pages past its last save: the one it was publishing and the next (prefetched).
      assert.ok(pages <= 53, `resumed from the saved page, not from the start (${pages} list calls for 50 pages)`);
      assert.equal(await records().countDocuments({ dataset, _rev: { $ne: 1 } }), 0, 'no row written twice');
    } finally {
      fake.latencyMs = 0;
      await running.stop();
    }
  });

  test('the CLI says in one line what is wrong: missing configuration, refused key, unknown dataset', async () => {
    const unset = cli(['kissflow', 'backfill', '--dataset', 'DS_X'], {
      ...process.env,
      KISSFLOW_BASE_URL: '',
      KISSFLOW_ACCOUNT_ID: '',
      KISSFLOW_ACCESS_KEY_ID: '',
      KISSFLOW_ACCESS_KEY_SECRET: '',
    });
    assert.equal(await unset.exited, 1);
    assert.match(
      unset.output(),
      /^puente: Kissflow API not configured: set KISSFLOW_BASE_URL, KISSFLOW_ACCOUNT_ID, KISSFLOW_ACCESS_KEY_ID, KISSFLOW_ACCESS_KEY_SECRET\n$/,
    );
    const refused = cli(['kissflow', 'backfill', '--dataset', 'DS_X'], {
      ...process.env,
      ...fake.env(),
      KISSFLOW_ACCESS_KEY_SECRET: 'not-the-secret',
    });
    assert.equal(await refused.exited, 1);
    assert.match(refused.output(), /(^|\n)puente: Kissflow refused the access key \(401\)[^\n]*\n$/);
    const unknown = cli(['kissflow', 'backfill', '--dataset', 'DS_Unknown'], { ...process.env, ...fake.env() });
    assert.equal(await unknown.exited, 1);
    assert.match(unknown.output(), /(^|\n)puente: Kissflow has no dataset DS_Unknown in account \w+ \(404\)[^\n]*\n$/);
    const usage = cli(['kissflow', 'backfill'], process.env);
    assert.equal(await usage.exited, 2);
    assert.match(usage.output(), /--dataset is required/);
  });
});
