import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Db } from 'mongodb';
import {
  Channels,
  Collections,
  createEvent,
  RealtimeSubjects,
  type DomainEvent,
  type DomainEventOf,
} from '@puente/contracts';
import { Bus } from '@puente/bus';
import { connectTestBus, eventually, uniqueName } from '@puente/bus/testing';
import { ProjectionStore, unhandled, type ProjectedDoc, type Projection } from '@puente/projection';
import { testDatabase } from '@puente/projection/testing';
import { freePort, startNats } from '@puente/stack';
import { RealtimeClient, type ChannelEvent, type Doc } from '@puente/realtime-client';
import { signToken } from '@puente/runtime';
import { startTestRealtime, TestSocket, TEST_REALTIME_SECRET, type Frame } from './testing.js';

interface RowDoc extends ProjectedDoc {
  dataset: string;
  rowId: string;
  fields: Record<string, unknown>;
}

/** A minimal projector onto `kissflow_records` (the real one lives in kissflow-sync, which this service may not import). */
const rowsProjection: Projection<
  RowDoc,
  DomainEventOf<'kissflow.record.upserted.v1' | 'kissflow.record.deleted.v1'>
> = {
  name: 'realtime-test-rows',
  collection: Collections.kissflowRecords,
  handles: ['kissflow.record.upserted.v1', 'kissflow.record.deleted.v1'],
  keys: (event) => [`${event.data.dataset}:${event.data.rowId}`],
  channel: (doc) => Channels.kissflow(doc.dataset),
  evolve: (doc, event) => {
    switch (event.type) {
      case 'kissflow.record.deleted.v1':
        return {
          ...(doc ?? { dataset: event.data.dataset, rowId: event.data.rowId, fields: {}, _v: {} }),
          _deleted: true,
        };
      case 'kissflow.record.upserted.v1':
        return { dataset: event.data.dataset, rowId: event.data.rowId, fields: event.data.fields, _v: {} };
      default:
        return unhandled(event);
    }
  },
};

let bus: Bus;
let database: Awaited<ReturnType<typeof testDatabase>>;
let db: Db;
let rt: Awaited<ReturnType<typeof startTestRealtime>>;
let position = 1_000_000 + Math.floor(Math.random() * 1_000_000);

before(async () => {
  bus = await connectTestBus();
  database = await testDatabase();
  db = database.db;
  rt = await startTestRealtime(bus, db, {
    REALTIME_PAGE_SIZE: '3',
    REALTIME_MAX_SUBSCRIPTIONS: '3',
    REALTIME_MAX_FRAME_BYTES: '2048',
    REALTIME_AUTH_TIMEOUT_MS: '500',
  });
});
after(async () => {
  await rt.close();
  await database.drop();
  await bus.close();
});

function writer(targetBus = bus, targetDb = db) {
  const store = new ProjectionStore({ db: targetDb, bus: targetBus, projection: rowsProjection, writers: 'shared' });
  return {
    upsert: (dataset: string, rowId: string, fields: Record<string, unknown>) =>
      store.apply([
        {
          event: createEvent(
            'kissflow.record.upserted.v1',
            { dataset, rowId, fields, modifiedAt: null, origin: 'webhook' },
            { source: 'urn:test' },
          ) as DomainEvent,
          position: position++,
        },
      ]),
    remove: (dataset: string, rowId: string) =>
      store.apply([
        {
          event: createEvent(
            'kissflow.record.deleted.v1',
            { dataset, rowId, detectedAt: new Date().toISOString() },
            { source: 'urn:test' },
          ) as DomainEvent,
          position: position++,
        },
      ]),
  };
}

async function authed(channels = ['>']): Promise<TestSocket> {
  const socket = await TestSocket.open(`${rt.wsUrl}?token=${rt.token(channels)}`);
  await socket.next((f) => f.op === 'ready', 5_000, 'ready');
  return socket;
}

/** Applies a channel's frames to a map, recording any step back to an older version. */
function follow(frames: Frame[], channel: string): { docs: Map<string, Doc>; backwards: string[] } {
  const docs = new Map<string, Doc>();
  const seen = new Map<string, number>();
  const backwards: string[] = [];
  for (const f of frames) {
    if (f.channel !== channel) continue;
    const items: Doc[] = f.op === 'snapshot' ? f.items : f.op === 'update' ? [f.doc] : [];
    for (const doc of items) {
      const rev = doc._rev!;
      if ((seen.get(doc._id) ?? 0) > rev) backwards.push(`${doc._id}: ${seen.get(doc._id)} -> ${rev}`);
      seen.set(doc._id, Math.max(rev, seen.get(doc._id) ?? 0));
      if ((docs.get(doc._id)?._rev ?? 0) <= rev) docs.set(doc._id, doc);
    }
    if (f.op === 'remove') docs.delete(f.key);
  }
  return { docs, backwards };
}

describe('realtime - protocol', () => {
  test('a bad token in the URL, a bad auth frame, a frame before auth, and no auth in time each get unauthorized and close 4001', async () => {
    const bad = await TestSocket.open(`${rt.wsUrl}?token=not-a-jwt`);
    assert.equal((await bad.next((f) => f.op === 'error')).code, 'unauthorized');
    assert.equal((await bad.closed).code, 4001);
    const forged = await TestSocket.open(rt.wsUrl);
    forged.send({ op: 'auth', token: signToken({ sub: 'x', channels: ['>'] }, 'another-secret') });
    assert.match((await forged.next((f) => f.op === 'error')).message, /bad signature/);
    assert.equal((await forged.closed).code, 4001);
    const early = await TestSocket.open(rt.wsUrl);
    early.send({ op: 'subscribe', channel: 'whatsapp.sessions' });
    assert.equal((await early.next((f) => f.op === 'error')).code, 'unauthorized');
    assert.equal((await early.closed).code, 4001);
    const silent = await TestSocket.open(rt.wsUrl);
    assert.equal((await silent.closed).code, 4001);
    const none = signToken({ sub: 'x', channels: ['>'] }, TEST_REALTIME_SECRET).split('.');
    const algNone = await TestSocket.open(rt.wsUrl);
    algNone.send({ op: 'auth', token: `${Buffer.from('{"alg":"none"}').toString('base64url')}.${none[1]}.` });
    assert.match((await algNone.next((f) => f.op === 'error')).message, /only HS256/);
  });

  test('an auth frame works; a forbidden channel and an unknown one get errors, not data, and the connection stays', async () => {
    const socket = await TestSocket.open(rt.wsUrl);
    socket.send({ op: 'auth', token: rt.token(['whatsapp.*', 'kissflow.DS_A']) });
    await socket.next((f) => f.op === 'ready');
    socket.send({ op: 'subscribe', channel: 'kissflow.DS_B' });
    const forbidden = await socket.next((f) => f.op === 'error' && f.channel === 'kissflow.DS_B');
    assert.equal(forbidden.code, 'forbidden');
    socket.send({ op: 'subscribe', channel: 'whatsapp.nothing' });
    assert.equal(
      (await socket.next((f) => f.op === 'error' && f.channel === 'whatsapp.nothing')).code,
      'unknown_channel',
    );
    socket.send({ op: 'ping' });
    await socket.next((f) => f.op === 'pong');
    assert.ok(!socket.frames.some((f) => f.op === 'snapshot'));
    socket.close();
  });

  test('malformed frames get bad_request and the connection keeps working; an oversized frame closes it with 1009', async () => {
    const socket = await authed();
    for (const frame of [
      '{not json',
      JSON.stringify({ op: 'launch' }),
      JSON.stringify({ op: 'subscribe' }),
      JSON.stringify([1]),
    ])
      socket.send(frame);
    await socket.next(
      () => socket.frames.filter((f) => f.code === 'bad_request').length === 4,
      5_000,
      'four bad_request errors',
    );
    socket.ws.send(Buffer.from([1, 2, 3]));
    await socket.next(
      () => socket.frames.filter((f) => f.code === 'bad_request').length === 5,
      5_000,
      'binary refused',
    );
    socket.send({ op: 'ping' });
    await socket.next((f) => f.op === 'pong');
    socket.send({ op: 'subscribe', channel: 'x'.repeat(4096) });
    assert.equal((await socket.closed).code, 1009);
  });

  test('a connection holds at most REALTIME_MAX_SUBSCRIPTIONS subscriptions', async () => {
    const socket = await authed();
    for (const ds of ['A', 'B', 'C', 'D']) socket.send({ op: 'subscribe', channel: `kissflow.${uniqueName(ds)}` });
    const error = await socket.next((f) => f.op === 'error');
    assert.equal(error.code, 'too_many_subscriptions');
    await socket.next(() => socket.frames.filter((f) => f.op === 'snapshot').length === 3, 5_000, 'three snapshots');
    socket.close();
  });

  test('an expired token closes an open connection (4001), and the HTTP API refuses it', async () => {
    // `exp` has whole seconds (floor(now) + ttl): a 1-second token signed late in a second was already
    // expired when the socket opened (no `ready`). Two seconds leave it 1 to 2 s, and it still expires while open.
    const token = rt.token(['>'], 2);
    const socket = await TestSocket.open(`${rt.wsUrl}?token=${token}`);
    await socket.next((f) => f.op === 'ready');
    const error = await socket.next((f) => f.op === 'error', 5_000);
    assert.equal(error.message, 'token expired');
    assert.deepEqual(await socket.closed, { code: 4001, reason: 'token expired' });
    const response = await fetch(`${rt.url}/api/whatsapp.sessions`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(response.status, 401);
  });
});

describe('realtime - read models', () => {
  test('subscribe answers a paged snapshot, then updates and removes; unsubscribe stops them; the HTTP API pages the same', async () => {
    const dataset = uniqueName('DS_');
    const channel = Channels.kissflow(dataset);
    const w = writer();
    for (let i = 1; i <= 5; i++) await w.upsert(dataset, `r${i}`, { n: i });
    await w.remove(dataset, 'r5');
    const socket = await authed([`kissflow.${channel.split('.')[1]}`]);
    socket.send({ op: 'subscribe', channel });
    const first = await socket.next((f) => f.op === 'snapshot');
    assert.deepEqual(
      first.items.map((d: Doc) => d._id),
      [`${dataset}:r1`, `${dataset}:r2`, `${dataset}:r3`],
    );
    assert.ok(first.next && first.epoch && typeof first.position === 'number');
    socket.send({ op: 'more', channel, cursor: first.next });
    const second = await socket.next((f) => f.op === 'snapshot' && f !== first);
    assert.deepEqual(
      second.items.map((d: Doc) => d._id),
      [`${dataset}:r4`],
      'the tombstone is left out',
    );
    assert.equal(second.next, undefined);
    await w.upsert(dataset, 'r2', { n: 20 });
    const update = await socket.next((f) => f.op === 'update');
    assert.deepEqual([update.doc._id, update.doc.fields.n, update.doc._rev], [`${dataset}:r2`, 20, 2]);
    assert.ok(update.position > first.position);
    await w.remove(dataset, 'r1');
    const removed = await socket.next((f) => f.op === 'remove');
    assert.equal(removed.key, `${dataset}:r1`);
    socket.send({ op: 'unsubscribe', channel });
    socket.send({ op: 'ping' });
    await socket.next((f) => f.op === 'pong');
    const count = socket.frames.length;
    await w.upsert(dataset, 'r3', { n: 30 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(socket.frames.length, count, 'nothing after unsubscribe');
    socket.close();
    const token = rt.token([channel]);
    const page = (await (await fetch(`${rt.url}/api/${channel}?token=${token}`)).json()) as {
      items: Doc[];
      next: string;
    };
    assert.deepEqual(
      page.items.map((d) => d._id),
      [`${dataset}:r2`, `${dataset}:r3`, `${dataset}:r4`],
    );
    assert.equal(page.next, undefined);
    assert.equal(
      (await fetch(`${rt.url}/api/kissflow.Other`, { headers: { authorization: `Bearer ${token}` } })).status,
      403,
    );
    assert.equal(
      (await fetch(`${rt.url}/api/${channel}?cursor=zzz`, { headers: { authorization: `Bearer ${token}` } })).status,
      400,
    );
  });

  test('no gap, no backwards: clients subscribing while two writers change documents end with the read model exactly', async () => {
    const dataset = uniqueName('DS_');
    const channel = Channels.kissflow(dataset);
    const keys = Array.from({ length: 12 }, (_, i) => `k${i}`);
    const writers = [writer(), writer()];
    let running = true;
    const work = writers.map(async (w, n) => {
      let i = 0;
      while (running) {
        const key = keys[(i * 7 + n) % keys.length]!;
        if (i % 17 === 16) await w.remove(dataset, key);
        else await w.upsert(dataset, key, { n: i, by: n });
        i++;
      }
    });
    const sockets: TestSocket[] = [];
    for (let c = 0; c < 6; c++) {
      await new Promise((resolve) => setTimeout(resolve, 80));
      const socket = await authed();
      socket.send({ op: 'subscribe', channel });
      sockets.push(socket);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
    running = false;
    await Promise.all(work);
    const final = await db
      .collection<Doc & { _deleted?: boolean }>(Collections.kissflowRecords)
      .find({ dataset })
      .toArray();
    const live = new Map(final.filter((d) => !d._deleted).map((d) => [d._id, d._rev]));
    for (const [i, socket] of sockets.entries()) {
      // Settle: the last notices reach every client.
      await socket.next(
        () => {
          const { docs } = follow(socket.frames, channel);
          return docs.size === live.size && [...live].every(([id, rev]) => docs.get(id)?._rev === rev);
        },
        10_000,
        `client ${i} to match the read model`,
      );
      const { backwards } = follow(socket.frames, channel);
      assert.deepEqual(backwards, [], `client ${i} never steps back`);
      socket.close();
    }
  });

  test("a resync notice tells the channel's subscribers to take a new snapshot", async () => {
    const dataset = uniqueName('DS_');
    const channel = Channels.kissflow(dataset);
    await writer().upsert(dataset, 'a', { n: 1 });
    const socket = await authed();
    socket.send({ op: 'subscribe', channel });
    await socket.next((f) => f.op === 'snapshot');
    bus.nc.publish(RealtimeSubjects.resync, JSON.stringify({ collections: [Collections.kissflowRecords] }));
    await socket.next((f) => f.op === 'resync' && f.channel === channel);
    socket.close();
  });

  test('the client package: snapshot, live changes, and after a lost connection exactly the missed changes', async () => {
    const dataset = uniqueName('DS_');
    const channel = Channels.kissflow(dataset);
    const w = writer();
    await w.upsert(dataset, 'a', { n: 0 });
    const events: ChannelEvent[] = [];
    const client = new RealtimeClient({ url: rt.wsUrl, token: rt.token(['kissflow.>']), backoffMs: 50 });
    client.subscribe(channel, (event) => events.push(event));
    const until = async (check: () => boolean, what: string) => {
      for (let i = 0; i < 200 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 25));
      assert.ok(check(), what);
    };
    await until(() => events.some((e) => e.kind === 'snapshot'), 'a snapshot');
    await w.upsert(dataset, 'a', { n: 1 });
    await until(() => events.some((e) => e.kind === 'update'), 'an update');
    // Drop the connection from the server side; 100 changes happen meanwhile.
    const resumeFrom = client.position(channel)!;
    const before = events.length;
    await dropConnections();
    for (let i = 0; i < 100; i++) await w.upsert(dataset, `m${i}`, { n: i });
    await until(() => events.filter((e) => e.kind === 'update').length >= 101, 'the 100 missed changes');
    const after = events.slice(before);
    assert.equal(after.filter((e) => e.kind === 'snapshot').length, 0, 'resumed, not re-snapshotted');
    assert.deepEqual(
      after.filter((e) => e.kind === 'update').map((e) => (e as { doc: Doc }).doc._id),
      Array.from({ length: 100 }, (_, i) => `${dataset}:m${i}`),
    );
    assert.ok(client.position(channel)!.position > resumeFrom.position);
    client.close();
  });
});

describe('realtime - slow consumers', () => {
  test('a client that never reads is closed (1013) once its send buffer passes the cap; the server does not buffer for it', async () => {
    const small = await startTestRealtime(bus, db, { REALTIME_MAX_BUFFERED_BYTES: String(64 * 1024) });
    try {
      const dataset = uniqueName('DS_');
      const channel = Channels.kissflow(dataset);
      const w = writer();
      await w.upsert(dataset, 'seed', { n: 0 });
      const slow = await TestSocket.open(`${small.wsUrl}?token=${small.token(['>'])}`);
      slow.send({ op: 'subscribe', channel });
      await slow.next((f) => f.op === 'snapshot');
      // Stop reading: the kernel's buffers fill, then the server's.
      (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause();
      const fast = await TestSocket.open(`${small.wsUrl}?token=${small.token(['>'])}`);
      fast.send({ op: 'subscribe', channel });
      await fast.next((f) => f.op === 'snapshot');
      const big = 'x'.repeat(16 * 1024);
      for (let i = 0; i < 600 && small.server.stats.slowClosed === 0; i++)
        await w.upsert(dataset, `r${i % 50}`, { n: i, big });
      assert.equal(small.server.stats.slowClosed, 1, 'the slow client was closed');
      assert.equal(small.server.stats.connections, 1, 'only the reading client is left');
      (slow.ws as unknown as { _socket: { resume(): void } })._socket.resume();
      assert.ok([1013, 1006].includes((await slow.closed).code));
      // The reading client kept receiving.
      await fast.next(
        () => fast.frames.filter((f) => f.op === 'update').length > 100,
        10_000,
        'updates on the fast client',
      );
      fast.close();
    } finally {
      await small.close();
    }
  });
});

/** Closes every server-side WebSocket (as a network drop would), keeping the server up. */
async function dropConnections(): Promise<void> {
  const before = rt.server.stats.connections;
  rt.server.dropAll();
  for (let i = 0; i < 100 && rt.server.stats.connections >= before && before > 0; i++)
    await new Promise((resolve) => setTimeout(resolve, 10));
}

describe('realtime - retention and epochs (own NATS server)', () => {
  let dir: string;
  let nats: Awaited<ReturnType<typeof startNats>>;
  let privateBus: Bus;
  let privateRt: Awaited<ReturnType<typeof startTestRealtime>>;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'puente-rt-'));
    nats = await startNats({ dir, port: await freePort(), monitorPort: await freePort(), log: () => undefined });
    privateBus = await Bus.connect({ servers: nats.url, name: 'rt-private' });
    await privateBus.ensureStreams();
    privateRt = await startTestRealtime(privateBus, db);
  });
  after(async () => {
    await privateRt.close();
    await privateBus.close();
    await nats.process.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('while the CHANGES stream is gone /readyz says changes: false; once it is back the reader follows it and pushes again', async () => {
    const ready = async () => {
      const response = await fetch(`${privateRt.url}/readyz`);
      return { status: response.status, body: (await response.json()) as { checks?: Record<string, string> } };
    };
    assert.equal((await ready()).status, 200);
    await privateBus.jsm.streams.delete('CHANGES');
    const down = await eventually(
      async () => {
        const r = await ready();
        return r.status === 503 ? r : undefined;
      },
      15_000,
      '/readyz to report the reader down',
    );
    assert.equal(down.body.checks?.changes, 'failing');
    await privateBus.ensureStreams();
    await eventually(async () => ((await ready()).status === 200 ? true : undefined), 15_000, 'ready again');
    // And it pushes again: a change written now reaches a subscriber live.
    const dataset = uniqueName('DS_');
    const socket = await TestSocket.open(`${privateRt.wsUrl}?token=${privateRt.token(['>'])}`);
    socket.send({ op: 'subscribe', channel: Channels.kissflow(dataset) });
    await socket.next((f) => f.op === 'snapshot');
    await writer(privateBus).upsert(dataset, 'a', { n: 1 });
    const update = await socket.next((f) => f.op === 'update');
    assert.equal(update.doc.fields.n, 1);
    socket.close();
  });

  test('a position no longer retained, or from another epoch, answers position_expired; the client package re-snapshots', async () => {
    const dataset = uniqueName('DS_');
    const channel = Channels.kissflow(dataset);
    const w = writer(privateBus);
    await w.upsert(dataset, 'a', { n: 1 });
    const socket = await TestSocket.open(`${privateRt.wsUrl}?token=${privateRt.token(['>'])}`);
    socket.send({ op: 'subscribe', channel });
    const snapshot = await socket.next((f) => f.op === 'snapshot');
    socket.close();
    for (let i = 0; i < 5; i++) await w.upsert(dataset, 'a', { n: i + 2 });
    await privateBus.jsm.streams.purge('CHANGES');
    const late = await TestSocket.open(`${privateRt.wsUrl}?token=${privateRt.token(['>'])}`);
    late.send({ op: 'subscribe', channel, since: { epoch: snapshot.epoch, position: snapshot.position } });
    assert.equal((await late.next((f) => f.op === 'error')).code, 'position_expired');
    late.send({ op: 'subscribe', channel, since: { epoch: 'another', position: 1 } });
    assert.equal(
      (await late.next((f) => f.op === 'error' && late.frames.filter((x) => x.op === 'error').length === 2)).code,
      'position_expired',
    );
    late.close();
    // The stream recreated: a new epoch; the client package re-snapshots by itself.
    const events: ChannelEvent[] = [];
    const client = new RealtimeClient({ url: privateRt.wsUrl, token: privateRt.token(['>']), backoffMs: 50 });
    client.subscribe(channel, (event) => events.push(event));
    for (let i = 0; i < 200 && !events.some((e) => e.kind === 'snapshot'); i++)
      await new Promise((resolve) => setTimeout(resolve, 25));
    const epoch = client.position(channel)!.epoch;
    await privateBus.jsm.streams.delete('CHANGES');
    await privateBus.ensureStreams();
    await new Promise((resolve) => setTimeout(resolve, 2_500)); // the server notices the new epoch
    privateRt.server.dropAll();
    for (let i = 0; i < 200 && events.filter((e) => e.kind === 'snapshot').length < 2; i++)
      await new Promise((resolve) => setTimeout(resolve, 25));
    const snapshots = events.filter((e) => e.kind === 'snapshot') as Extract<ChannelEvent, { kind: 'snapshot' }>[];
    assert.equal(snapshots.length, 2, 'a new snapshot after position_expired');
    assert.equal(snapshots[1]!.reset, true);
    assert.equal((snapshots[1]!.items[0] as Doc & { fields: { n: number } }).fields.n, 6);
    assert.notEqual(client.position(channel)!.epoch, epoch);
    client.close();
  });
});
