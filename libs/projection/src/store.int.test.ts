import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Db } from 'mongodb';
import { StreamNames, changeSubject, encodeToken, type DomainEvent } from '@puente/contracts';
import { ConsumerRunner, listDeadLetters, type Bus } from '@puente/bus';
import { connectTestBus, eventually, uniqueName } from '@puente/bus/testing';
import { conflictBackoffMs, ProjectionStore, type PositionedEvent } from './store.js';
import { projectionHandler } from './handler.js';
import { messageEvents, messageFixtureProjection, testDatabase } from './testing/index.js';

let bus: Bus;
let db: Db;
let drop: () => Promise<void>;
before(async () => {
  bus = await connectTestBus();
  ({ db, drop } = await testDatabase());
});
after(async () => {
  await drop();
  await bus.close();
});

function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [items.slice()];
  return items.flatMap((item, i) =>
    permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]),
  );
}

function comparable(doc: Record<string, unknown> | null): Record<string, unknown> {
  assert.ok(doc);
  const { _id, _rev, _position, ...rest } = doc;
  return rest;
}

async function noticeCount(subject: string): Promise<number> {
  const info = await bus.jsm.streams.info(StreamNames.CHANGES, { subjects_filter: subject });
  return info.state.subjects?.[subject] ?? 0;
}

describe('projection store', () => {
  test('a batch of 1,200 replaces, applied by two stores at once, completes (FerretDB v1 deadlocks for good past ~400 update statements in flight)', async () => {
    const stores = [0, 1].map(
      () =>
        new ProjectionStore({
          db,
          bus,
          projection: messageFixtureProjection(uniqueName('wide_')),
          writers: 'exclusive',
          notify: false,
        }),
    );
    for (const store of stores) await store.init();
    const session = uniqueName('s');
    const events = Array.from({ length: 1_200 }, (_, i) => messageEvents(session, `m${i}`, ['sent']));
    await Promise.all(stores.map((store) => store.apply(events.map((e, i) => ({ event: e[0]!, position: i + 1 })))));
    const started = Date.now();
    await Promise.all(
      stores.map((store) => store.apply(events.map((e, i) => ({ event: e[1]!, position: 2_000 + i })))),
    );
    for (const store of stores) assert.equal(await store.collection.countDocuments({ status: 'sent' }), 1_200);
    assert.ok(Date.now() - started < 120_000);
  });

  test('an exclusive writer reads from its cache, and still notices a document someone else wrote (compare-and-swap)', async () => {
    const projection = messageFixtureProjection(uniqueName('excl_'));
    const store = new ProjectionStore({ db, bus, projection, writers: 'exclusive' });
    await store.init();
    const session = uniqueName('s');
    const [content, sent, delivered, read] = messageEvents(session, 'm1', ['sent', 'delivered', 'read']);
    await store.apply([
      { event: content!, position: 1 },
      { event: sent!, position: 2 },
    ]);
    // Another writer moves the document on behind the store's back (a second instance by mistake).
    const key = `${session}:m1`;
    const stored = (await store.collection.findOne({ _id: key }))!;
    await store.collection.replaceOne(
      { _id: key },
      {
        ...stored,
        status: 'delivered',
        _position: 3,
        _rev: (stored._rev as number) + 1,
        _v: { ...(stored._v as object), status: [2, 3] },
      },
    );
    const result = await store.apply([{ event: read!, position: 4 }]);
    assert.equal(result.conflicts, 1, 'the cached version lost the compare-and-swap and was read again');
    const doc = await store.collection.findOne({ _id: key });
    assert.deepEqual([doc?.status, doc?._position], ['read', 4]);
    // A key the store believes new but someone else created: the insert loses, the retry merges.
    const other = messageEvents(session, 'm2', ['delivered']);
    await store.collection.insertOne({
      _id: `${session}:m2`,
      status: 'delivered',
      contentChanges: 0,
      _position: 10,
      _rev: 1,
      _v: { status: [2, 10] },
    });
    const merged = await store.apply([
      { event: other[0]!, position: 11 },
      { event: delivered!, position: 12 },
    ]);
    assert.equal(merged.conflicts, 1);
    const m2 = await store.collection.findOne({ _id: `${session}:m2` });
    assert.deepEqual([m2?.status, m2?.contentChanges, m2?._rev], ['delivered', 1, 2]);
  });

  test('a document fed by content and status events ends in the same state for every delivery order, duplicates included', async () => {
    const projection = messageFixtureProjection(uniqueName('msgs_'));
    const store = new ProjectionStore({ db, bus, projection });
    await store.init();
    const session = uniqueName('s');
    // Stream positions: content 1, sent 2, delivered 3, read 4, and delivered again at 5 (a provider retry outside the duplicate window).
    const shape = (messageId: string): PositionedEvent[] => {
      const [content, sent, delivered, read] = messageEvents(session, messageId, ['sent', 'delivered', 'read']);
      const again = messageEvents(session, messageId, ['sent', 'delivered'])[2]!;
      return [content!, sent!, delivered!, read!, again].map((event, i) => ({ event, position: i + 1 }));
    };
    const orders = permutations([0, 1, 2, 3, 4]);
    assert.equal(orders.length, 120);
    await Promise.all(
      orders.map(async (order, n) => {
        const events = shape(`m${n}`);
        for (const i of order) await store.apply([events[i]!]);
      }),
    );
    // The same events once more, as duplicates in one batch, and a batch of everything for a fresh document.
    await store.apply(shape('m0'));
    await store.apply(shape('batched'));
    const expected = comparable(await store.collection.findOne({ _id: `${session}:batched` }));
    assert.equal(expected.status, 'read');
    assert.equal(expected.text, 'Hola, ¿cómo estás? 👋');
    assert.equal(expected.contentChanges, 1);
    for (let n = 0; n < orders.length; n++) {
      assert.deepEqual(
        comparable(await store.collection.findOne({ _id: `${session}:m${n}` })),
        expected,
        `order ${orders[n]!.join(',')}`,
      );
    }
  });

  test('a late event of one kind is not blocked by a newer event of the other', async () => {
    const projection = messageFixtureProjection(uniqueName('msgs_'));
    const store = new ProjectionStore({ db, bus, projection });
    const session = uniqueName('s');
    const [content, , , read] = messageEvents(session, 'late', ['sent', 'delivered', 'read']);
    await store.apply([{ event: read!, position: 40 }]);
    const placeholder = await store.collection.findOne({ _id: `${session}:late` });
    assert.equal(placeholder?.status, 'read');
    assert.equal(placeholder?.text, undefined);
    await store.apply([{ event: content!, position: 12 }]);
    const doc = await store.collection.findOne({ _id: `${session}:late` });
    assert.equal(doc?.text, 'Hola, ¿cómo estás? 👋');
    assert.equal(doc?.status, 'read');
    assert.equal(doc?._rev, 2);
    assert.equal(doc?._position, 12);
  });

  test('two writers racing on one document both end up applied (compare-and-swap retries)', async () => {
    const collection = uniqueName('msgs_');
    const projection = messageFixtureProjection(collection);
    const other = await testDatabase().then((t) => t.client);
    try {
      const session = uniqueName('s');
      const [content, sent, delivered] = messageEvents(session, 'race', ['sent', 'delivered']);
      const seed = new ProjectionStore({ db, bus, projection });
      await seed.apply([{ event: sent!, position: 2 }]);
      let release!: () => void;
      const bWrote = new Promise<void>((resolve) => (release = resolve));
      let paused = false;
      const a = new ProjectionStore({
        db,
        bus,
        projection,
        hooks: {
          afterRead: async () => {
            if (!paused) {
              paused = true;
              await bWrote;
            }
          },
        },
      });
      const b = new ProjectionStore({ db: other.db(db.databaseName), bus, projection });
      const aResult = a.apply([{ event: content!, position: 1 }]);
      await eventually(() => (paused ? true : undefined));
      await b.apply([{ event: delivered!, position: 3 }]);
      release();
      const result = await aResult;
      assert.equal(result.conflicts, 1);
      const doc = await seed.collection.findOne({ _id: `${session}:race` });
      assert.equal(doc?.status, 'delivered');
      assert.equal(doc?.text, 'Hola, ¿cómo estás? 👋');
      assert.equal(doc?._rev, 3);

      // And under real contention, repeated: ten writers with no pause, each one content version newer than the last.
      for (let round = 0; round < 20; round++) {
        const writers = Array.from({ length: 10 }, () => new ProjectionStore({ db, bus, projection }));
        await Promise.all(
          writers.map((w, i) => {
            const event = messageEvents(session, `many${round}`, [], `v${i}`)[0]!;
            const withTime = {
              ...event,
              data: { ...event.data, timestamp: `2025-10-15T10:40:${String(i).padStart(2, '0')}.000Z` },
            } as DomainEvent;
            return w.apply([{ event: withTime, position: 100 + i }]);
          }),
        );
        const many = await seed.collection.findOne({ _id: `${session}:many${round}` });
        assert.equal(many?.text, 'v9', `round ${round}`);
        assert.ok((many?._rev as number) >= 1 && (many?.contentChanges as number) === (many?._rev as number));
      }
      assert.equal(await db.collection('projection_claims').countDocuments(), 0, 'every claim was released');
    } finally {
      await other.close();
    }
  });

  test('a crash between the write and the notice: the redelivered event publishes the notice once and applies nothing twice', async () => {
    const collection = uniqueName('msgs_');
    const projection = messageFixtureProjection(collection);
    const session = uniqueName('s');
    const [content] = messageEvents(session, 'crash', []);
    const subject = changeSubject(`fixture.${collection}.${session}`, `${session}:crash`);
    const crashing = new ProjectionStore({
      db,
      bus,
      projection,
      hooks: {
        beforeNotify: async () => {
          throw new Error('process died');
        },
      },
    });
    await assert.rejects(crashing.apply([{ event: content!, position: 7 }]), /process died/);
    assert.equal((await crashing.collection.findOne({ _id: `${session}:crash` }))?._rev, 1);
    assert.equal(await noticeCount(subject), 0);

    const healthy = new ProjectionStore({ db, bus, projection });
    const redelivered = await healthy.apply([{ event: content!, position: 7 }]);
    assert.equal(redelivered.written, 0);
    assert.equal(redelivered.republished, 1);
    assert.equal(await noticeCount(subject), 1);
    await healthy.apply([{ event: content!, position: 7 }]);
    assert.equal(await noticeCount(subject), 1, 'a second redelivery is deduplicated by the notice message id');
    const doc = await healthy.collection.findOne({ _id: `${session}:crash` });
    assert.equal(doc?._rev, 1);
    assert.equal(doc?.contentChanges, 1);
  });

  test('no batch waits for the checkpoint: it is written on its own schedule, and close() writes the last one', async () => {
    const projection = messageFixtureProjection(uniqueName('ckpt_'));
    const store = new ProjectionStore({
      db,
      bus,
      projection,
      writers: 'exclusive',
      notify: false,
      checkpointEveryMs: 60_000,
    });
    await store.init();
    const session = uniqueName('s');
    const stored = async () =>
      (
        await db
          .collection<{ _id: string; position: number }>('projection_checkpoints')
          .findOne({ _id: projection.name })
      )?.position;
    // given a first batch, whose checkpoint goes out at once (nothing written yet)
    await store.apply(messageEvents(session, 'm0', ['sent']).map((event, i) => ({ event, position: i + 1 })));
    await eventually(async () => ((await stored()) === 2 ? true : undefined), 5_000, 'the first checkpoint');
    // when more batches follow within the interval
    for (let m = 1; m <= 5; m++)
      await store.apply(messageEvents(session, `m${m}`, ['sent']).map((event, i) => ({ event, position: 10 * m + i })));
    // then the checkpoint waits for the interval, and close() writes the newest position
    assert.equal(await stored(), 2);
    await store.close();
    assert.equal(await stored(), 51);
  });

  test('one event whose document cannot be written (over 16 MB) inside a batch of 1,000: 999 applied, that one dead-lettered', async () => {
    const projection = messageFixtureProjection(uniqueName('poison_'));
    const store = new ProjectionStore({ db, bus, projection, writers: 'exclusive', notify: false });
    await store.init();
    const session = uniqueName('s');
    const events = Array.from({ length: 1_000 }, (_, i) => messageEvents(session, `m${i}`, [])[0]!);
    // Valid as an event; its document is larger than any MongoDB server stores (16 MiB).
    (events[637]!.data as { text?: string }).text = 'x'.repeat(17 * 1024 * 1024);
    const { outcomes } = await store.apply(events.map((event, i) => ({ event, position: i + 1 })));
    const dead = outcomes.flatMap((o, i) => (o.kind === 'dead' ? [i] : []));
    assert.deepEqual(dead, [637], 'only the poisoned event is dead-lettered');
    assert.equal(outcomes.filter((o) => o.kind === 'ack').length, 999);
    assert.equal(await store.collection.countDocuments({}), 999);
    assert.equal(await store.collection.findOne({ _id: `${session}:m637` }), null);
    assert.ok((await store.collection.findOne({ _id: `${session}:m999` }))?.text);
  });

  test('driven by a consumer runner: events from EVENTS become documents, notices and a checkpoint; a bad event is dead-lettered', async () => {
    const collection = uniqueName('msgs_');
    const projection = messageFixtureProjection(collection);
    const store = new ProjectionStore({ db, bus, projection });
    await store.init();
    const session = uniqueName('s');
    const durable = uniqueName('proj-');
    const runner = new ConsumerRunner({
      bus,
      consumer: { durable, stream: 'EVENTS', filterSubjects: [`evt.whatsapp.*.*.${encodeToken(session)}`] },
      handle: projectionHandler(store),
      backoffMs: [20],
    });
    await runner.start();
    let last = 0;
    for (let m = 0; m < 20; m++) {
      for (const event of messageEvents(session, `e${m}`, ['sent', 'delivered']))
        last = (await bus.publishEvent(event)).seq;
    }
    await bus.publish(`evt.whatsapp.message.status.${encodeToken(session)}`, { not: 'an event' });
    await eventually(
      async () =>
        (await store.collection.countDocuments({ status: 'delivered', text: { $exists: true } })) === 20
          ? true
          : undefined,
      15_000,
      'twenty documents',
    );
    await eventually(
      async () => ((await listDeadLetters(bus, { consumer: durable })).length === 1 ? true : undefined),
      10_000,
      'the bad event in the DLQ',
    );
    await runner.stop();
    assert.ok((await store.checkpoint()) >= last);
    const subject = changeSubject(`fixture.${collection}.${session}`, `${session}:e0`);
    const notices = await noticeCount(subject);
    assert.ok(notices >= 1 && notices <= 3, `one notice per write of e0 (its three events batched or not): ${notices}`);
    const lastNotice = (await bus.jsm.streams.getMessage(StreamNames.CHANGES, { last_by_subj: subject })).json<{
      rev: number;
      doc: { status: string };
    }>();
    assert.equal(lastNotice.rev, notices);
    assert.equal(lastNotice.doc.status, 'delivered');
  });
});

test('projection store - a lost compare-and-swap waits before it retries: doubling from 5 ms to 250 ms, jittered to half or more', () => {
  const waits = (random: () => number) => Array.from({ length: 10 }, (_, i) => conflictBackoffMs(i + 1, random));
  assert.deepEqual(
    waits(() => 1),
    [5, 10, 20, 40, 80, 160, 250, 250, 250, 250],
  );
  assert.deepEqual(
    waits(() => 0),
    [2.5, 5, 10, 20, 40, 80, 125, 125, 125, 125],
  );
  assert.ok(waits(() => 0).reduce((a, b) => a + b) >= 650, 'ten retries give a slow winner over half a second');
});
