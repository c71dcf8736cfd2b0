import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Db } from 'mongodb';
import { pino } from 'pino';
import { Collections, createEvent, fromStorable, type DomainEvent } from '@puente/contracts';
import type { Bus } from '@puente/bus';
import { connectTestBus, eventually, uniqueName } from '@puente/bus/testing';
import { testDatabase } from '@puente/projection/testing';
import {
  Backfill,
  BackfillBusyError,
  Config,
  KissflowClient,
  openBackfillBucket,
  startKissflowSync,
  type KissflowRecordDoc,
} from './index.js';
import { FakeKissflow } from './testing/index.js';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
let bus: Bus;
let database: Awaited<ReturnType<typeof testDatabase>>;
let db: Db;
let fake: FakeKissflow;

before(async () => {
  bus = await connectTestBus();
  database = await testDatabase();
  db = database.db;
  fake = await new FakeKissflow({ rateLimitPerSecond: 40 }).start();
});
after(async () => {
  await fake.stop();
  await database.drop();
  await bus.close();
});

type Doc = KissflowRecordDoc & { _id: string; _rev: number };
const records = () => db.collection<Doc>(Collections.kissflowRecords);

function config(datasets: string[], extra: Record<string, string> = {}) {
  return Config.parse({
    ...fake.env(),
    KISSFLOW_DATASETS: datasets.join(','),
    KISSFLOW_PAGE_SIZE: '25',
    KISSFLOW_RETRIES: '1',
    ...extra,
  });
}

function client(extra: Partial<ConstructorParameters<typeof KissflowClient>[0]> = {}) {
  return new KissflowClient({
    baseUrl: fake.url,
    accountId: fake.accountId,
    accessKeyId: fake.accessKeyId,
    accessKeySecret: fake.accessKeySecret,
    timeoutMs: 5_000,
    retries: 0,
    retryDelayMs: 50,
    ...extra,
  });
}

async function backfill(pageSize = 25, c = client()) {
  return new Backfill({
    bus,
    kv: await openBackfillBucket(bus),
    client: c,
    logger,
    db,
    pageSize,
    staleAfterMs: 60_000,
  });
}

const live = (dataset: string) => records().countDocuments({ dataset, _deleted: { $ne: true } });

describe('kissflow-sync', () => {
  test('rows with awkward names and values are applied on the real server and read back as sent', async () => {
    const dataset = uniqueName('DS_');
    const running = await startKissflowSync({ bus, db, logger, config: config([dataset]) });
    try {
      const row = {
        _id: 'Pk01',
        'Cliente.RUC': '20512345678',
        $precio: 10,
        'a\u0000b': 1,
        Tabla: [
          [1, 2],
          [3, [4]],
        ],
        Nota: 'x\u0000y',
        Ok: { 'b.c': [{ $d: 1 }] },
        Monto: 1250.5,
      };
      await bus.publishEvent(
        createEvent(
          'kissflow.record.upserted.v1',
          { dataset, rowId: 'Pk01', fields: row, modifiedAt: '2025-10-15T10:30:01.000Z', origin: 'webhook' },
          { source: 'urn:test' },
        ) as DomainEvent,
      );
      const doc = await eventually(
        () =>
          records()
            .findOne({ _id: `${dataset}:Pk01` })
            .then((d) => d ?? undefined),
        10_000,
        'the record',
      );
      assert.deepEqual(fromStorable(doc.fields), row);
      assert.equal(doc.modifiedAt, '2025-10-15T10:30:01.000Z');
      assert.equal(doc._rev, 1);
    } finally {
      await running.stop();
    }
  });

  test('a backfill whose list lacks _modified_at reads each row, waits out 429s as asked, and publishes every row once', async () => {
    const dataset = uniqueName('DS_');
    fake.seed(dataset, 110);
    fake.listIncludesModifiedAt = false;
    const running = await startKissflowSync({ bus, db, logger, config: config([dataset]) });
    const before = fake.calls.length;
    // Whether the row reads alone cross the fake's 40 requests/s depends on the machine's load: the
    // first two requests are refused with 429 whatever the pace.
    fake.rateLimitNext = 2;
    try {
      const c = client();
      const state = await (await backfill(25, c)).run({ dataset });
      assert.equal(state.phase, 'completed');
      assert.deepEqual([state.counts.rows, state.counts.pages, state.counts.details], [110, 5, 110]);
      assert.equal(state.total, 110);
      const calls = fake.calls.slice(before);
      assert.ok(
        calls.some((c) => c.startsWith('429')),
        'the fake rate limit was hit',
      );
      assert.ok(c.rateLimited > 0);
      await eventually(async () => ((await live(dataset)) === 110 ? true : undefined), 15_000, '110 records');
      const doc = await records().findOne({ _id: `${dataset}:Row00007` });
      assert.equal(doc!.modifiedAt, '2025-10-15T10:30:00.000Z', 'the time came from the row endpoint');
      assert.equal(doc!.origin, 'backfill');
      assert.deepEqual(doc!.fields.Cliente, { _id: 'Cli7', Name: 'Cliente 7' });
      assert.equal(await records().countDocuments({ dataset, _rev: { $ne: 1 } }), 0, 'each row written once');
    } finally {
      fake.listIncludesModifiedAt = true;
      await running.stop();
    }
  });

  test('401, 403 and 404 end the run with one line that says what to check, and never the secret', async () => {
    const dataset = uniqueName('DS_');
    fake.seed(dataset, 3);
    const forbidden = uniqueName('DS_');
    fake.seed(forbidden, 3);
    fake.forbidden.add(forbidden);
    const cases: [Backfill, { dataset: string; view?: string }, RegExp][] = [
      [
        await backfill(25, client({ accessKeySecret: 'wrong-secret-value' })),
        { dataset },
        /refused the access key \(401\): check KISSFLOW_ACCESS_KEY_ID and KISSFLOW_ACCESS_KEY_SECRET/,
      ],
      [await backfill(), { dataset: forbidden }, /denied access to dataset DS_\w+ \(403\)/],
      [await backfill(), { dataset: 'DS_Nope' }, /no dataset DS_Nope in account AcFakeAccount01 \(404\)/],
      [await backfill(), { dataset, view: 'Vw_Missing' }, /no view Vw_Missing of dataset DS_\w+ .*\(404\)/],
    ];
    for (const [runner, options, message] of cases) {
      const error = await runner.run(options).then(
        () => undefined,
        (e: unknown) => e as Error,
      );
      assert.ok(error, `${options.dataset} fails`);
      assert.match(error.message, message);
      assert.doesNotMatch(error.message, /\n/);
      assert.doesNotMatch(error.message, /wrong-secret-value|fake-access-key-secret/);
      assert.equal((await runner.status(options))?.phase, 'failed');
    }
  });

  test('a run that failed half way resumes from the next page, and only one run per dataset goes at a time', async () => {
    const dataset = uniqueName('DS_');
    fake.seed(dataset, 200);
    const runner = await backfill(20);
    const before = fake.calls.length;
    let outage = false;
    const failed = await runner
      .run({ dataset }, (s) => {
        if (s.counts.pages === 4 && !outage) {
          outage = true;
          fake.failNext = 1;
        }
      })
      .then(
        () => undefined,
        (e: unknown) => e as Error,
      );
    assert.match(failed?.message ?? '', /answered 503 .* after 1 attempts/);
    const stopped = (await runner.status({ dataset }))!;
    assert.equal(stopped.phase, 'failed');
    assert.ok(
      stopped.counts.pages >= 4 && stopped.page === stopped.counts.pages + 1,
      'the next page to read is the one after the last saved',
    );
    const [a, b] = await Promise.allSettled([runner.run({ dataset }), (await backfill(20)).run({ dataset })]);
    const outcomes = [a, b]
      .map((r) => (r.status === 'fulfilled' ? r.value.phase : (r.reason as Error).constructor.name))
      .sort();
    assert.deepEqual(outcomes, ['BackfillBusyError', 'completed']);
    const state = [a, b].find((r) => r.status === 'fulfilled')!;
    assert.equal((state as PromiseFulfilledResult<{ counts: { rows: number } }>).value.counts.rows, 200);
    const pages = fake.calls
      .slice(before)
      .filter((c) => c.startsWith('200 list'))
      .map((c) => Number(c.split(' ')[2]));
    assert.deepEqual(
      pages.sort((x, y) => x - y),
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
      'no page read twice',
    );
    assert.ok(new BackfillBusyError('x') instanceof Error);
  });

  test('reconciliation publishes deletes for rows that are gone, re-publishes rows the listing missed, and a late older update stays deleted', async () => {
    const dataset = uniqueName('DS_');
    fake.seed(dataset, 60);
    const running = await startKissflowSync({ bus, db, logger, config: config([dataset]) });
    try {
      await (await backfill()).run({ dataset });
      await eventually(async () => ((await live(dataset)) === 60 ? true : undefined), 15_000, '60 records');
      for (const n of [3, 17, 18, 40, 60]) fake.remove(dataset, `Row000${String(n).padStart(2, '0')}`);
      fake.hiddenFromList.add('Row00025');
      const state = await (await backfill()).run({ dataset, reconcile: true });
      fake.hiddenFromList.clear();
      assert.deepEqual([state.counts.candidates, state.counts.deleted, state.counts.missed], [6, 5, 1]);
      await eventually(async () => ((await live(dataset)) === 55 ? true : undefined), 15_000, '55 live records');
      const tomb = await records().findOne({ _id: `${dataset}:Row00017` });
      assert.equal(tomb!._deleted, true);
      assert.ok(tomb!.deletedAt);
      assert.equal((await records().findOne({ _id: `${dataset}:Row00025` }))!._deleted, undefined);
      // A late webhook with the row's old version does not bring it back.
      await bus.publishEvent(
        createEvent(
          'kissflow.record.upserted.v1',
          {
            dataset,
            rowId: 'Row00017',
            fields: { _id: 'Row00017', Monto: 1 },
            modifiedAt: '2025-10-15T10:30:00.000Z',
            origin: 'webhook',
          },
          { source: 'urn:test' },
        ) as DomainEvent,
      );
      await bus.publishEvent(
        createEvent(
          'kissflow.record.upserted.v1',
          {
            dataset,
            rowId: 'Row00001',
            fields: { _id: 'Row00001', Monto: 2 },
            modifiedAt: '2025-10-16T00:00:00.000Z',
            origin: 'webhook',
          },
          { source: 'urn:test' },
        ) as DomainEvent,
      );
      await eventually(
        async () => ((await records().findOne({ _id: `${dataset}:Row00001` }))?.fields.Monto === 2 ? true : undefined),
        10_000,
        'the later event applied',
      );
      assert.equal((await records().findOne({ _id: `${dataset}:Row00017` }))!._deleted, true);
      // Reconciling again finds nothing new.
      const again = await (await backfill()).run({ dataset, reconcile: true });
      assert.deepEqual([again.counts.candidates, again.counts.deleted], [0, 0]);
      // A view cannot be reconciled (rows outside it are not deleted).
      await assert.rejects((await backfill()).run({ dataset, view: 'V', reconcile: true }), /without --view/);
    } finally {
      await running.stop();
    }
  });

  test('the service reconciles the configured datasets on its schedule', async () => {
    const dataset = uniqueName('DS_');
    fake.seed(dataset, 30);
    const running = await startKissflowSync({
      bus,
      db,
      logger,
      config: config([dataset], { KISSFLOW_RECONCILE_DATASETS: dataset, KISSFLOW_RECONCILE_INTERVAL_MS: '1000' }),
    });
    try {
      await eventually(
        async () => ((await live(dataset)) === 30 ? true : undefined),
        20_000,
        'the scheduled run to load 30 records',
      );
      fake.remove(dataset, 'Row00005');
      await eventually(
        async () => ((await records().findOne({ _id: `${dataset}:Row00005` }))?._deleted ? true : undefined),
        20_000,
        'the next run to find the row gone',
      );
    } finally {
      await running.stop();
    }
  });

  test('a view is backfilled on its own', async () => {
    const dataset = uniqueName('DS_');
    fake.seed(dataset, 30);
    fake.views.set(`${dataset}/Aprobados`, (row) => row.Estado === 'Aprobado');
    const state = await (await backfill(4)).run({ dataset, view: 'Aprobados' });
    assert.equal(state.counts.rows, 10);
    assert.equal(state.view, 'Aprobados');
  });
});
