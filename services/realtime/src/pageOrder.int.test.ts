import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Db } from 'mongodb';
import { Channels, Collections } from '@puente/contracts';
import type { Bus } from '@puente/bus';
import { connectTestBus } from '@puente/bus/testing';
import { testDatabase } from '@puente/projection/testing';
import { RealtimeClient, type ChannelEvent, type Doc } from '@puente/realtime-client';
import { startTestRealtime, TestSocket } from './testing.js';

interface Message {
  _id: string;
  _rev: number;
  session: string;
  chatId: string;
  timestamp?: string;
  text: string;
}

const SESSION = 'ventas';
const CHAT = '34612345678@s.whatsapp.net';
const channel = Channels.whatsappMessages(SESSION, CHAT);
const COUNT = 5_000;

let bus: Bus;
let database: Awaited<ReturnType<typeof testDatabase>>;
let db: Db;
let rt: Awaited<ReturnType<typeof startTestRealtime>>;

/** A message `n` seconds after a base time; every tenth shares its time with the one before (ties broken by `_id`). */
function message(n: number, id = `${SESSION}:m${((n * 7919) % 100_003).toString(36).padStart(5, '0')}`): Message {
  const second = n - (n % 10 === 0 && n > 0 ? 1 : 0);
  return {
    _id: id,
    _rev: 1,
    session: SESSION,
    chatId: CHAT,
    timestamp: new Date(Date.UTC(2026, 0, 1) + second * 1000).toISOString(),
    text: `message ${n}`,
  };
}

/** Newest first: time, then `_id`, both descending; documents without a time last. */
function newestFirst(a: Message, b: Message): number {
  const at = a.timestamp ?? '';
  const bt = b.timestamp ?? '';
  if (at !== bt) return at < bt ? 1 : -1;
  return a._id < b._id ? 1 : a._id > b._id ? -1 : 0;
}

let all: Message[];

async function page(query: string): Promise<{ status: number; body: { items: Message[]; next?: string } }> {
  const res = await fetch(`${rt.url}/api/${channel}?${query}`, {
    headers: { authorization: `Bearer ${rt.token(['whatsapp.>', 'kissflow.>'])}` },
  });
  return { status: res.status, body: (await res.json()) as { items: Message[]; next?: string } };
}

before(async () => {
  bus = await connectTestBus();
  database = await testDatabase();
  db = database.db;
  const messages = db.collection<Message>(Collections.waMessages);
  // The index the whatsapp projection declares for a chat's timeline.
  await messages.createIndex({ session: 1, chatId: 1, timestamp: -1 }, { name: 'chat_timeline' });
  all = Array.from({ length: COUNT }, (_, n) => message(n));
  // Two without a time (as a placeholder message can be) and one in another chat.
  all.push({ ...message(0, `${SESSION}:untimed-a`), timestamp: undefined }, { ...message(0, `${SESSION}:untimed-b`) });
  delete all.at(-1)!.timestamp;
  delete all.at(-2)!.timestamp;
  for (let i = 0; i < all.length; i += 1_000) await messages.insertMany(all.slice(i, i + 1_000).map((m) => ({ ...m })));
  await messages.insertOne({ ...message(1, `${SESSION}:other-chat`), chatId: 'other@s.whatsapp.net' });
  all.sort(newestFirst);
  rt = await startTestRealtime(bus, db);
});
after(async () => {
  await rt?.close();
  await database.drop();
  await bus.close();
});

describe('realtime - newest-first pages of a message channel', () => {
  test('the first HTTP page is the newest 200 messages, newest first, and answers quickly', async (t) => {
    const started = performance.now();
    const first = await page('order=newest');
    const elapsed = performance.now() - started;
    assert.equal(first.status, 200);
    assert.deepEqual(
      first.body.items.map((m) => m._id),
      all.slice(0, 200).map((m) => m._id),
    );
    assert.ok(first.body.next);
    t.diagnostic(`first newest page of ${COUNT} messages: ${elapsed.toFixed(0)} ms`);
  });

  test('walking every page yields each message once, in time order; one inserted meanwhile neither duplicates nor skips others', async (t) => {
    const messages = db.collection<Message>(Collections.waMessages);
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    const newer = message(COUNT + 10, `${SESSION}:newer`);
    const older = message(1_000, `${SESSION}:older-tie`);
    const started = performance.now();
    do {
      const found = await page(`order=newest${cursor ? `&cursor=${cursor}` : ''}`);
      assert.equal(found.status, 200);
      seen.push(...found.body.items.map((m) => m._id));
      cursor = found.body.next;
      if (++pages === 3) {
        // Between pages: one newer than everything (belongs before the walk's start) and one far older,
        // sharing its time with another message.
        await messages.insertMany([{ ...newer }, { ...older }]);
      }
    } while (cursor);
    t.diagnostic(
      `${pages} newest-first pages: ${((performance.now() - started) / pages).toFixed(0)} ms each on average`,
    );
    const expected = [...all, older].sort(newestFirst).map((m) => m._id);
    assert.equal(new Set(seen).size, seen.length, 'no message twice');
    assert.deepEqual(seen, expected);
    assert.ok(!seen.includes(newer._id));
    await messages.deleteMany({ _id: { $in: [newer._id, older._id] } });
  });

  test('subscribe with order newest answers the newest page; more walks to older ones; a cursor keeps its order', async () => {
    const socket = await TestSocket.open(`${rt.wsUrl}?token=${rt.token(['whatsapp.>'])}`);
    await socket.next((f) => f.op === 'ready');
    socket.send({ op: 'subscribe', channel, order: 'newest' });
    const first = await socket.next((f) => f.op === 'snapshot');
    assert.deepEqual(
      first.items.map((m: Message) => m._id),
      all.slice(0, 200).map((m) => m._id),
    );
    socket.send({ op: 'more', channel, cursor: first.next });
    const second = await socket.next((f) => f.op === 'snapshot' && f !== first);
    assert.deepEqual(
      second.items.map((m: Message) => m._id),
      all.slice(200, 400).map((m) => m._id),
    );
    socket.close();
    const mismatched = await page(`order=id&cursor=${String(first.next)}`);
    assert.equal(mismatched.status, 400);
  });

  test('without order, pages keep the _id order and the cursor form they always had', async () => {
    const first = await page('');
    const byId = [...all].sort((a, b) => (a._id < b._id ? -1 : 1));
    assert.deepEqual(
      first.body.items.map((m) => m._id),
      byId.slice(0, 200).map((m) => m._id),
    );
    assert.deepEqual(JSON.parse(Buffer.from(first.body.next!, 'base64url').toString()), { after: byId[199]!._id });
  });

  test('order newest on a channel without a time order, or an unknown order, is a bad request', async () => {
    const res = await fetch(`${rt.url}/api/kissflow.DS?order=newest`, {
      headers: { authorization: `Bearer ${rt.token(['kissflow.>'])}` },
    });
    assert.equal(res.status, 400);
    assert.equal((await page('order=oldest')).status, 400);
    const socket = await TestSocket.open(`${rt.wsUrl}?token=${rt.token(['kissflow.>'])}`);
    await socket.next((f) => f.op === 'ready');
    socket.send({ op: 'subscribe', channel: 'kissflow.DS', order: 'newest' });
    assert.equal((await socket.next((f) => f.op === 'error')).code, 'bad_request');
    socket.close();
  });

  test('the realtime client subscribes newest first and loads older pages with more()', async () => {
    const events: ChannelEvent[] = [];
    const client = new RealtimeClient({ url: rt.wsUrl, token: rt.token(['whatsapp.>']), backoffMs: 50 });
    const sub = client.subscribe(channel, (event) => events.push(event), { order: 'newest' });
    const snapshots = () =>
      events.filter((e) => e.kind === 'snapshot') as Extract<ChannelEvent, { kind: 'snapshot' }>[];
    const until = async (check: () => boolean, what: string) => {
      for (let i = 0; i < 400 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 25));
      assert.ok(check(), what);
    };
    await until(() => snapshots().length === 1, 'the first page');
    // No page is fetched until asked for.
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(snapshots().length, 1);
    assert.equal(sub.more(), true);
    assert.equal(sub.more(), false, 'a page already asked for is not asked again');
    await until(() => snapshots().length === 2, 'the second page');
    const ids = snapshots().flatMap((s) => s.items.map((d: Doc) => d._id));
    assert.deepEqual(
      ids,
      all.slice(0, 400).map((m) => m._id),
    );
    assert.equal(snapshots()[0]!.reset, true);
    assert.equal(snapshots()[1]!.reset, false);
    client.close();
  });
});
