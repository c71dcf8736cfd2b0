import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createEvent, encodeToken, ReadModelRoutes, subjectFiltersFor, type DomainEventOf } from '@puente/contracts';
import type { Bus } from '@puente/bus';
import { connectTestBus, uniqueName } from '@puente/bus/testing';
import { rebuild, rebuildTarget, type ProjectedDoc, type Projection, type ReadModel } from '@puente/projection';
import { testDatabase } from '@puente/projection/testing';
import { startTestRealtime, TestSocket } from '@puente/realtime/testing';
import { runCli } from './cli.js';

/**
 * A throwaway read model, written the way a new one is: a pure projection and its descriptor, in this
 * file only. Nothing else in the tree names it, and realtime serves it, `rebuild` rebuilds it.
 */
interface NoteDoc extends ProjectedDoc {
  dataset: string;
  title: string;
}
type NoteEvent = DomainEventOf<'kissflow.record.upserted.v1'>;

const dataset = uniqueName('notes');
const collection = uniqueName('fixture_notes_');
const route = { channel: 'fixture.notes.<dataset>', collection };

const notesProjection: Projection<NoteDoc, NoteEvent> = {
  name: `fixture-notes-${collection}`,
  collection,
  handles: ['kissflow.record.upserted.v1'],
  keys: (event) => (event.data.dataset === dataset ? [event.data.rowId] : []),
  initial: (_key, event) => ({ dataset: event.data.dataset, title: '', _v: {} }),
  // One event type: nothing to switch over.
  evolve(doc, event, { position }) {
    const title = String(event.data.fields.Title ?? '');
    return doc!.title === title ? doc : { ...doc!, title, _v: { row: [position, position] } };
  },
  channel: (doc) => `fixture.notes.${encodeToken(doc.dataset)}`,
};

const notes: ReadModel = {
  name: 'fixture-notes',
  group: { lead: [notesProjection] },
  consumer: {
    durable: uniqueName('fixture-notes-'),
    stream: 'EVENTS',
    filterSubjects: subjectFiltersFor(notesProjection.handles),
  },
  routes: [route],
};

let bus: Bus;
let database: Awaited<ReturnType<typeof testDatabase>>;
before(async () => {
  bus = await connectTestBus();
  database = await testDatabase();
});
after(async () => {
  await database.drop();
  await bus.close();
});

test('a read model defined in one file is replayable through its derived target and routed by realtime', async () => {
  for (const [rowId, title] of [
    ['n1', 'primera'],
    ['n2', 'segunda'],
    ['n1', 'primera, corregida'],
  ] as const) {
    await bus.publishEvent(
      createEvent(
        'kissflow.record.upserted.v1',
        { dataset, rowId, fields: { _id: rowId, Title: title }, modifiedAt: null, origin: 'webhook' },
        { source: 'urn:test' },
      ),
    );
  }
  const result = await rebuild({ bus, db: database.db, target: rebuildTarget(notes, { db: database.db, bus }) });
  assert.equal(result.inserted, 2);
  const docs = await database.db.collection(collection).find({}).sort({ _id: 1 }).toArray();
  assert.deepEqual(
    docs.map((d) => [d._id, d.title]),
    [
      ['n1', 'primera, corregida'],
      ['n2', 'segunda'],
    ],
  );

  const channel = `fixture.notes.${encodeToken(dataset)}`;
  const realtime = await startTestRealtime(bus, database.db, {}, [...ReadModelRoutes, ...notes.routes]);
  try {
    const token = realtime.token(['fixture.>']);
    const page = await fetch(`${realtime.url}/api/${channel}`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(page.status, 200);
    const body = (await page.json()) as { items: NoteDoc[] };
    assert.deepEqual(body.items.map((d) => d.title).sort(), ['primera, corregida', 'segunda']);
    const socket = await TestSocket.open(`${realtime.wsUrl}?token=${token}`);
    try {
      socket.send({ op: 'subscribe', channel });
      const snapshot = await socket.next((f) => f.op === 'snapshot' && f.channel === channel, 10_000, 'the snapshot');
      assert.equal(snapshot.items.length, 2);
    } finally {
      socket.close();
    }
  } finally {
    await realtime.close();
  }
  // The default server does not know the fixture: realtime's routes are exactly what it is given.
  const plain = await startTestRealtime(bus, database.db);
  try {
    const response = await fetch(`${plain.url}/api/${channel}`, {
      headers: { authorization: `Bearer ${plain.token(['fixture.>'])}` },
    });
    assert.equal(response.status, 404);
  } finally {
    await plain.close();
  }
});

test('puente replay lists the read models the services export', async () => {
  const listed = await runCli(['replay'], process.env);
  assert.notEqual(listed.code, 0);
  assert.match(listed.output, /replay <projection>: one of kissflow-records, whatsapp/);
});
