import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Channels, Collections, createEvent, type DomainEvent } from '@puente/contracts';
import type { Bus } from '@puente/bus';
import { runCli } from './cli.js';
import { connectTestBus, eventually, uniqueName } from '@puente/bus/testing';
import { REBUILD_BUCKET } from '@puente/projection';
import { testDatabase } from '@puente/projection/testing';
import { Config, consumerFor, startKissflowSync } from '@puente/kissflow-sync';
import { startTestRealtime, TestSocket } from '@puente/realtime/testing';

let bus: Bus;
let database: Awaited<ReturnType<typeof testDatabase>>;
let dir: string;
before(async () => {
  bus = await connectTestBus();
  database = await testDatabase();
  dir = mkdtempSync(join(tmpdir(), 'puente-replay-'));
});
after(async () => {
  await database.drop();
  await bus.close();
  rmSync(dir, { recursive: true, force: true });
});

const run = (args: string[], env: NodeJS.ProcessEnv) => runCli(args, env);

const upsert = (dataset: string, rowId: string, n: number) =>
  createEvent(
    'kissflow.record.upserted.v1',
    {
      dataset,
      rowId,
      fields: { _id: rowId, Name: `fila ${rowId}`, n },
      modifiedAt: new Date(Date.UTC(2026, 0, 1) + n * 1000).toISOString(),
      origin: 'webhook',
    },
    { source: 'urn:test' },
  ) as DomainEvent;

test('replay rebuilds a read model with a new mapping while the live one serves (a polling reader never sees it empty or a document missing), swaps it in, and realtime clients resync', async () => {
  const dataset = uniqueName('DS_Replay_');
  const other = uniqueName('DS_Other_');
  const db = database.db;
  const records = db.collection<{ _id: string; dataset: string; fields: Record<string, unknown>; _rev: number }>(
    Collections.kissflowRecords,
  );
  const live = await startKissflowSync({
    bus,
    db,
    logger: pino({ level: 'silent' }),
    config: Config.parse({ KISSFLOW_DATASETS: dataset }),
  });
  const realtime = await startTestRealtime(bus, db);
  const socket = await TestSocket.open(`${realtime.wsUrl}?token=${realtime.token(['kissflow.>'])}`);
  try {
    for (let n = 0; n < 200; n++) await bus.publishEvent(upsert(dataset, `r${n % 50}`, n));
    await eventually(
      async () => ((await records.countDocuments({ dataset, 'fields.n': { $gte: 150 } })) === 50 ? true : undefined),
      30_000,
      'the live read model',
    );
    // A document the rebuild will not have, and one of another dataset (outside the consumer's scope) that must stay.
    await records.insertOne({ _id: `${dataset}:ghost`, dataset, fields: {}, _rev: 1 } as never);
    await records.insertOne({ _id: `${other}:keep`, dataset: other, fields: { n: 1 }, _rev: 1 } as never);
    socket.send({ op: 'subscribe', channel: Channels.kissflow(dataset) });
    await socket.next((f) => f.op === 'snapshot');
    const mappings = join(dir, 'mappings.json');
    writeFileSync(
      mappings,
      JSON.stringify({ datasets: { [dataset]: { fields: { titulo: 'Name', numero: { from: 'n', as: 'number' } } } } }),
    );
    const env = {
      ...process.env,
      MONGO_URL: `${process.env.MONGO_URL}${db.databaseName}`,
      KISSFLOW_DATASETS: dataset,
      KISSFLOW_MAPPINGS: mappings,
    };
    // A rebuild already running elsewhere: refused.
    const kv = await bus.js.views.kv(REBUILD_BUCKET, { history: 1 });
    await kv.put('kissflow-records', new TextEncoder().encode(JSON.stringify({ owner: 'someone', at: Date.now() })));
    const busy = await run(['replay', 'kissflow-records'], env);
    assert.equal(busy.code, 1);
    assert.match(busy.output, /^puente: a rebuild of kissflow-records is running\n$/);
    await kv.delete('kissflow-records');
    // Changes keep coming during the rebuild.
    const during = (async () => {
      for (let n = 200; n < 230; n++) {
        await bus.publishEvent(upsert(dataset, `r${n % 50}`, n));
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    // A reader polls throughout: the collection is never empty and a stable document never missing.
    let polling = true;
    let polls = 0;
    const misses: string[] = [];
    const reader = (async () => {
      while (polling) {
        const [count, stable] = await Promise.all([
          records.countDocuments({ dataset }),
          records.findOne({ _id: `${dataset}:r45` } as never),
        ]);
        if (count < 50) misses.push(`count ${count}`);
        if (!stable) misses.push('r45 missing');
        polls++;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();
    const replayed = await run(['replay', 'kissflow-records'], env);
    await during;
    polling = false;
    await reader;
    assert.deepEqual(misses, [], `the reader never saw a gap (${polls} polls)`);
    assert.ok(polls > 5);
    assert.equal(replayed.code, 0, replayed.output);
    assert.match(
      replayed.output,
      /replay kissflow-records: \d+ events in [\d.]+ s \(\d+ events\/s\), up to position \d+; live collections: \d+ inserted, \d+ replaced, \d+ unchanged, 1 removed; realtime clients told to resync/,
    );
    assert.match(replayed.output, /events\/s/);
    await socket.next((f) => f.op === 'resync' && f.channel === Channels.kissflow(dataset), 10_000, 'resync');
    // The live projector resumed and applied what came meanwhile; every document has the new shape (the live
    // service still runs the old mapping, so a row it changed after the swap is shaped the old way until it is
    // redeployed: here rows changed during the rebuild may be either, the others must be new).
    await eventually(
      async () => ((await records.countDocuments({ dataset })) === 50 ? true : undefined),
      30_000,
      '50 documents',
    );
    const docs = await records.find({ dataset }).toArray();
    const newShape = docs.filter((d) => typeof d.fields.titulo === 'string' && typeof d.fields.numero === 'number');
    assert.ok(newShape.length >= 20, `rows not touched after the swap carry the new mapping (${newShape.length}/50)`);
    assert.equal(
      await records.countDocuments({ _id: `${dataset}:ghost` } as never),
      0,
      'what the rebuild does not have is removed',
    );
    assert.equal(
      await records.countDocuments({ _id: `${other}:keep` } as never),
      1,
      "documents outside the consumer's scope stay",
    );
    await eventually(
      async () => {
        const all = await records.find({ dataset }).toArray();
        const latest = new Map(all.map((d) => [d._id, (d.fields.n ?? d.fields.numero) as number]));
        return [...Array(50).keys()].every(
          (i) => (latest.get(`${dataset}:r${i}`) ?? -1) >= (i < 30 ? 200 + i : 150 + i),
        )
          ? true
          : undefined;
      },
      30_000,
      'every row at its newest version',
    );
    const info = await bus.jsm.consumers.info('EVENTS', consumerFor([dataset]).durable);
    assert.notEqual((info as { paused?: boolean }).paused, true, 'the live consumer runs again');
    assert.equal(
      await db
        .listCollections({ name: `${Collections.kissflowRecords}__rebuild` })
        .toArray()
        .then((c) => c.length),
      0,
      'staging dropped',
    );
  } finally {
    socket.close();
    await realtime.close();
    await live.stop();
  }
});

test('a replay with unchanged code, while events keep arriving, ends identical to the same read model built live from the start', async () => {
  const dataset = uniqueName('DS_Same_');
  const db = database.db;
  const records = db.collection<{ _id: string; dataset: string }>(Collections.kissflowRecords);
  const live = await startKissflowSync({
    bus,
    db,
    logger: pino({ level: 'silent' }),
    config: Config.parse({ KISSFLOW_DATASETS: dataset }),
  });
  // The reference: another consumer of the same dataset (its own durable) into its own database, from the start.
  const reference = await testDatabase();
  const referenceService = await startKissflowSync({
    bus,
    db: reference.db,
    logger: pino({ level: 'silent' }),
    config: Config.parse({ KISSFLOW_DATASETS: `${dataset},${uniqueName('DS_None_')}` }),
  });
  // Out-of-order times, a duplicate, deletes, and a late older update after a delete.
  const history = (n: number): DomainEvent[] => {
    const row = `r${n % 40}`;
    if (n % 17 === 0)
      return [
        createEvent(
          'kissflow.record.deleted.v1',
          { dataset, rowId: row, detectedAt: new Date(Date.UTC(2026, 0, 1) + (n + 1) * 1000).toISOString() },
          { source: 'urn:test' },
        ) as DomainEvent,
      ];
    const event = upsert(dataset, row, n % 5 === 0 ? n - 30 : n);
    return n % 7 === 0 ? [event, event] : [event];
  };
  try {
    for (let n = 0; n < 240; n++) for (const event of history(n)) await bus.publishEvent(event);
    const env = { ...process.env, MONGO_URL: `${process.env.MONGO_URL}${db.databaseName}`, KISSFLOW_DATASETS: dataset };
    const during = (async () => {
      for (let n = 240; n < 300; n++) {
        for (const event of history(n)) await bus.publishEvent(event);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();
    const replayed = await run(['replay', 'kissflow-records'], env);
    await during;
    assert.equal(replayed.code, 0, replayed.output);
    // Both settle on the whole history; then the documents are equal but for their revision counters.
    const strip = (docs: Record<string, unknown>[]) => docs.map(({ _rev, ...rest }) => (void _rev, rest));
    const snapshot = async (d: typeof db) =>
      strip(
        await d
          .collection(Collections.kissflowRecords)
          .find({ dataset } as never, { sort: { _id: 1 } })
          .toArray(),
      );
    let last = '';
    await eventually(
      async () => {
        const [a, b] = await Promise.all([snapshot(db), snapshot(reference.db)]);
        last = `rebuilt ${a.length}, reference ${b.length}`;
        return a.length === 40 && JSON.stringify(a) === JSON.stringify(b) ? true : undefined;
      },
      30_000,
      'the rebuilt read model to equal the live-built one',
    ).catch(async (error: unknown) => {
      const [a, b] = await Promise.all([snapshot(db), snapshot(reference.db)]);
      assert.deepEqual(a, b, `${(error as Error).message} (${last})`);
    });
    assert.ok(
      (await records.countDocuments({ dataset, deletedAt: { $exists: true } } as never)) > 0,
      'the history has tombstones',
    );
  } finally {
    await referenceService.stop();
    await live.stop();
    await reference.drop();
  }
});

test('replay --from N never removes a document the partial replay did not produce; it says how many it kept', async () => {
  const dataset = uniqueName('DS_From_');
  const db = database.db;
  const records = db.collection<{ _id: string; dataset: string; fields: Record<string, unknown> }>(
    Collections.kissflowRecords,
  );
  const live = await startKissflowSync({
    bus,
    db,
    logger: pino({ level: 'silent' }),
    config: Config.parse({ KISSFLOW_DATASETS: dataset }),
  });
  try {
    // Ten rows written early, then five of them updated: a replay from the updates sees only those five.
    for (let n = 0; n < 10; n++) await bus.publishEvent(upsert(dataset, `r${n}`, n));
    let from = 0;
    for (let n = 0; n < 5; n++) {
      const { seq } = await bus.publishEvent(upsert(dataset, `r${n}`, 100 + n));
      if (n === 0) from = seq;
    }
    await eventually(
      async () =>
        (await records.countDocuments({ dataset, 'fields.n': { $gte: 100 } } as never)) === 5 ? true : undefined,
      15_000,
      'the live read model',
    );
    const env = { ...process.env, MONGO_URL: `${process.env.MONGO_URL}${db.databaseName}`, KISSFLOW_DATASETS: dataset };
    const replayed = await run(['replay', 'kissflow-records', '--from', String(from)], env);
    assert.equal(replayed.code, 0, replayed.output);
    assert.match(replayed.output, /5 kept \(not reached from --from/);
    assert.match(replayed.output, /0 removed/);
    assert.equal(await records.countDocuments({ dataset } as never), 10, 'every row is still there');
    const untouched = await records.findOne({ _id: { $regex: 'r9$' } as never, dataset } as never);
    assert.equal(untouched?.fields.n, 9);
  } finally {
    await live.stop();
  }
});
