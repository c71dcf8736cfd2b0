import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Db } from 'mongodb';
import { Channels, Collections, createEvent, type DomainEvent, type DomainEventOf } from '@puente/contracts';
import type { Bus } from '@puente/bus';
import { connectTestBus, uniqueName } from '@puente/bus/testing';
import { ProjectionStore, type ProjectedDoc, type Projection } from '@puente/projection';
import { testDatabase } from '@puente/projection/testing';
import { signToken } from '@puente/runtime';
import { startTestRealtime, TestSocket, TEST_REALTIME_SECRET, type Frame } from './testing.js';

interface SessionDoc extends ProjectedDoc {
  provider: string;
  status?: string;
  qr?: string;
  qrAt?: string;
}

/** A minimal projector of pairing QRs onto `wa_sessions` (the real one lives in the whatsapp service, which realtime may not import). */
const qrProjection: Projection<SessionDoc, DomainEventOf<'whatsapp.session.qr.v1'>> = {
  name: 'realtime-test-session-qr',
  collection: Collections.waSessions,
  handles: ['whatsapp.session.qr.v1'],
  keys: (event) => [event.data.session],
  channel: () => Channels.whatsappSessions(),
  // One event type: nothing to switch over.
  evolve: (doc, event) => ({
    ...(doc ?? { provider: event.data.provider, _v: {} }),
    status: 'connecting',
    qr: event.data.qr,
    qrAt: event.data.timestamp,
  }),
};

const channel = Channels.whatsappSessions();
const run = uniqueName('qr');
const sessions = [`${run}-a`, `${run}-b`, `${run}-c`];
const [mine] = sessions as [string, string, string];

let bus: Bus;
let database: Awaited<ReturnType<typeof testDatabase>>;
let db: Db;
let rt: Awaited<ReturnType<typeof startTestRealtime>>;
let store: ProjectionStore<SessionDoc>;
let position = 2_000_000 + Math.floor(Math.random() * 1_000_000);

const qrOf = (session: string, n: number) => `2@${session}-pairing-${n}`;
async function showQr(session: string, n: number): Promise<void> {
  await store.apply([
    {
      event: createEvent(
        'whatsapp.session.qr.v1',
        {
          session,
          provider: 'inboxhub',
          qr: qrOf(session, n),
          timestamp: new Date(Date.UTC(2026, 0, 1, 0, n)).toISOString(),
        },
        { source: 'urn:test' },
      ) as DomainEvent,
      position: position++,
    },
  ]);
}

/** Tokens on the sessions channel: one may send from the first session, one may send nowhere, one everywhere. */
const tokens = {
  sender: () => signToken({ sub: 'ana', channels: [channel], send: [mine] }, TEST_REALTIME_SECRET),
  reader: () => signToken({ sub: 'luis', channels: [channel] }, TEST_REALTIME_SECRET),
  everywhere: () => signToken({ sub: 'ops', channels: [channel], send: ['*'] }, TEST_REALTIME_SECRET),
};

/** The session documents of this run among frames' or pages' items, by id. */
function ours(docs: Frame[]): Map<string, Frame> {
  return new Map(docs.filter((d) => sessions.includes(d._id)).map((d) => [d._id as string, d]));
}

/** Which of this run's sessions show a QR, and whether any QR of another session leaked in raw text. */
function qrSessions(docs: Map<string, Frame>): string[] {
  return [...docs.values()]
    .filter((d) => 'qr' in d)
    .map((d) => d._id as string)
    .sort();
}

before(async () => {
  bus = await connectTestBus();
  database = await testDatabase();
  db = database.db;
  store = new ProjectionStore({ db, bus, projection: qrProjection, writers: 'shared' });
  for (const session of sessions) await showQr(session, 1);
  rt = await startTestRealtime(bus, db, { REALTIME_PAGE_SIZE: '2' });
});
after(async () => {
  await rt?.close();
  await database.drop();
  await bus.close();
});

async function pages(token: string): Promise<Frame[]> {
  const items: Frame[] = [];
  let cursor: string | undefined;
  do {
    const res = await fetch(`${rt.url}/api/${channel}${cursor ? `?cursor=${cursor}` : ''}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { items: Frame[]; next?: string };
    items.push(...body.items);
    cursor = body.next;
  } while (cursor);
  return items;
}

async function subscribed(token: string): Promise<{ socket: TestSocket; snapshot: Frame[] }> {
  const socket = await TestSocket.open(`${rt.wsUrl}?token=${token}`);
  await socket.next((f) => f.op === 'ready');
  socket.send({ op: 'subscribe', channel });
  const items: Frame[] = [];
  for (let frame = await socket.next((f) => f.op === 'snapshot'); ;) {
    items.push(...frame.items);
    if (!frame.next) break;
    const seen = socket.frames.filter((f) => f.op === 'snapshot').length;
    socket.send({ op: 'more', channel, cursor: frame.next });
    frame = await socket.next(() => socket.frames.filter((f) => f.op === 'snapshot').length > seen);
    frame = socket.frames.filter((f) => f.op === 'snapshot').at(-1)!;
  }
  return { socket, snapshot: items };
}

describe('realtime - the pairing QR only for tokens that may send from its session', () => {
  test('HTTP pages, snapshots and more pages show the QR only of sessions the token may send from', async () => {
    assert.deepEqual(qrSessions(ours(await pages(tokens.sender()))), [mine]);
    assert.deepEqual(qrSessions(ours(await pages(tokens.reader()))), []);
    assert.deepEqual(qrSessions(ours(await pages(tokens.everywhere()))), [...sessions].sort());
    const reader = await subscribed(tokens.reader());
    const sender = await subscribed(tokens.sender());
    assert.equal(ours(reader.snapshot).size, 3, 'the reader still sees every session');
    assert.deepEqual(qrSessions(ours(reader.snapshot)), []);
    assert.equal(ours(reader.snapshot).get(mine)!.status, 'connecting', 'only the QR is hidden');
    assert.deepEqual(qrSessions(ours(sender.snapshot)), [mine]);
    reader.socket.close();
    sender.socket.close();
  });

  test('live updates and resumed history carry the QR only to its senders', async () => {
    const reader = await subscribed(tokens.reader());
    const sender = await subscribed(tokens.sender());
    const everywhere = await subscribed(tokens.everywhere());
    const resumeFrom = reader.socket.frames.find((f) => f.op === 'snapshot')!;
    await showQr(mine, 2);
    await showQr(sessions[1]!, 2);
    const updated = (socket: TestSocket, session: string) =>
      socket.next((f) => f.op === 'update' && f.doc._id === session && f.doc.qrAt?.endsWith('00:02:00.000Z'));
    for (const socket of [reader.socket, sender.socket, everywhere.socket])
      for (const session of [mine, sessions[1]!]) await updated(socket, session);
    const live = (socket: TestSocket) => ours(socket.frames.filter((f) => f.op === 'update').map((f) => f.doc));
    assert.deepEqual(qrSessions(live(reader.socket)), []);
    assert.deepEqual(qrSessions(live(sender.socket)), [mine]);
    assert.equal(live(sender.socket).get(mine)!.qr, qrOf(mine, 2));
    assert.deepEqual(qrSessions(live(everywhere.socket)), [mine, sessions[1]!].sort());
    // Nowhere in the reader's bytes, either.
    assert.ok(!JSON.stringify(reader.socket.frames).includes(`${run}-a-pairing`));

    // Resume from before those changes: the history is filtered the same way.
    const since = { epoch: resumeFrom.epoch, position: resumeFrom.position };
    for (const [token, expected] of [
      [tokens.reader(), []],
      [tokens.sender(), [mine]],
    ] as const) {
      const socket = await TestSocket.open(`${rt.wsUrl}?token=${token}`);
      await socket.next((f) => f.op === 'ready');
      socket.send({ op: 'subscribe', channel, since });
      for (const session of [mine, sessions[1]!]) await updated(socket, session);
      assert.ok(!socket.frames.some((f) => f.op === 'snapshot'), 'a resume, not a snapshot');
      assert.deepEqual(qrSessions(live(socket)), [...expected]);
      socket.close();
    }
    for (const socket of [reader.socket, sender.socket, everywhere.socket]) socket.close();
  });
});
