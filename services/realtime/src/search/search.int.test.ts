import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Db } from 'mongodb';
import { Collections, SearchResult } from '@puente/contracts';
import type { Bus } from '@puente/bus';
import { connectTestBus } from '@puente/bus/testing';
import { testDatabase } from '@puente/projection/testing';
import { startTestRealtime } from '../testing.js';

const SESSION = 'ventas';
const CONTACTS = 10_000;

let bus: Bus;
let database: Awaited<ReturnType<typeof testDatabase>>;
let db: Db;
let rt: Awaited<ReturnType<typeof startTestRealtime>>;

const phoneOf = (n: number) => `51900${String(n).padStart(6, '0')}`;
const contact = (n: number, name?: string, session = SESSION) => ({
  _id: `${session}:${phoneOf(n)}@s.whatsapp.net`,
  _rev: 1,
  session,
  jid: `${phoneOf(n)}@s.whatsapp.net`,
  kind: 'phone',
  phone: phoneOf(n),
  name: name ?? `Cliente ${n}`,
});
const conversation = (chatId: string, name: string | undefined, updatedAt: string) => ({
  _id: `${SESSION}:${chatId}`,
  _rev: 1,
  session: SESSION,
  chatId,
  kind: chatId.endsWith('@g.us') ? 'group' : 'phone',
  ...(name ? { name } : {}),
  unreadCount: 0,
  archived: false,
  updatedAt,
});

async function search(
  params: Record<string, string>,
  channels = [`whatsapp.conversations.${SESSION}`, `whatsapp.contacts.${SESSION}`],
): Promise<{ status: number; body: SearchResult & { code?: string } }> {
  const res = await fetch(`${rt.url}/api/search?${new URLSearchParams(params).toString()}`, {
    headers: { authorization: `Bearer ${rt.token(channels)}` },
  });
  const body = (await res.json()) as SearchResult & { code?: string };
  // Every answer the route gives is the contract's shape.
  if (res.status === 200) SearchResult.parse(body);
  return { status: res.status, body };
}
const names = (docs: Record<string, unknown>[]) => docs.map((d) => String(d.name)).sort();

before(async () => {
  bus = await connectTestBus();
  database = await testDatabase();
  db = database.db;
  const contacts = Array.from({ length: CONTACTS }, (_, n) => contact(n));
  contacts[1] = contact(1, 'Juan Pérez'); // no conversation: found to start one
  contacts[2] = contact(2, 'JOSÉ NÚÑEZ');
  contacts[3] = contact(3, 'Regex a.* fan');
  contacts[4] = { ...contact(4, 'Borrado Pérez'), _deleted: true } as never;
  contacts.push(contact(5, 'Pérez de otra sesión', 'otra'));
  for (let i = 0; i < contacts.length; i += 2_000)
    await db.collection<{ _id: string }>(Collections.waContacts).insertMany(contacts.slice(i, i + 2_000));
  await db
    .collection<{ _id: string }>(Collections.waConversations)
    .insertMany([
      conversation(`${phoneOf(2)}@s.whatsapp.net`, 'JOSÉ NÚÑEZ', '2026-01-02T00:00:00.000Z'),
      conversation('120363041234567890@g.us', 'Ventas (Lima)', '2026-01-03T00:00:00.000Z'),
      conversation(`${phoneOf(77)}@s.whatsapp.net`, undefined, '2026-01-01T00:00:00.000Z'),
      ...Array.from({ length: 60 }, (_, n) =>
        conversation(
          `${phoneOf(100 + n)}@s.whatsapp.net`,
          `Cliente ${100 + n}`,
          `2026-02-${String(1 + (n % 28)).padStart(2, '0')}T00:00:00.000Z`,
        ),
      ),
    ]);
  rt = await startTestRealtime(bus, db);
});
after(async () => {
  await rt?.close();
  await database.drop();
  await bus.close();
});

describe('realtime - search among 10,000 contacts', () => {
  test('a name matches whatever its case and accents, a contact without a conversation included; tombstones and other sessions left out', async () => {
    for (const q of ['perez', 'PÉREZ', 'pérez']) {
      const { status, body } = await search({ session: SESSION, q });
      assert.equal(status, 200);
      assert.deepEqual(names(body.contacts), ['Juan Pérez'], q);
      assert.deepEqual(body.conversations, [], q);
    }
    const nunez = await search({ session: SESSION, q: 'jose nunez' });
    assert.deepEqual(names(nunez.body.conversations), ['JOSÉ NÚÑEZ']);
    // Its contact has that conversation: listed once, as the conversation.
    assert.deepEqual(nunez.body.contacts, []);
  });

  test('a number matches conversations by the digits of their JID and contacts by phone', async () => {
    const { body } = await search({ session: SESSION, q: `+51 900 000-077` });
    assert.deepEqual(
      body.conversations.map((c) => c.chatId),
      [`${phoneOf(77)}@s.whatsapp.net`],
    );
    assert.deepEqual(body.contacts, []);
    const contactOnly = await search({ session: SESSION, q: phoneOf(9_999) });
    assert.deepEqual(
      contactOnly.body.contacts.map((c) => c.jid),
      [`${phoneOf(9_999)}@s.whatsapp.net`],
    );
  });

  test('a group is found by its name; regular-expression characters match themselves', async () => {
    assert.deepEqual(names((await search({ session: SESSION, q: 'lima' })).body.conversations), ['Ventas (Lima)']);
    const paren = await search({ session: SESSION, q: '(' });
    assert.deepEqual(names(paren.body.conversations), ['Ventas (Lima)']);
    assert.deepEqual(paren.body.contacts, []);
    const star = await search({ session: SESSION, q: '.*' });
    assert.deepEqual(names(star.body.contacts), ['Regex a.* fan']);
    assert.deepEqual(star.body.conversations, []);
  });

  test('a query matching thousands answers at most 50, says it is truncated, and answers quickly', async (t) => {
    const started = performance.now();
    const { status, body } = await search({ session: SESSION, q: 'cliente' });
    const elapsed = performance.now() - started;
    assert.equal(status, 200);
    assert.equal(body.conversations.length + body.contacts.length, 50);
    assert.equal(body.conversations.length, 25);
    assert.equal(body.truncated, true);
    const times = body.conversations.map((c) => String(c.updatedAt));
    assert.deepEqual(times, [...times].sort().reverse(), 'conversations most recent first');
    t.diagnostic(`search over ${CONTACTS} contacts: ${elapsed.toFixed(0)} ms`);
  });

  test('a token gets only the kinds it may read, and neither is a 403', async () => {
    const onlyChats = await search({ session: SESSION, q: 'cliente 10' }, [`whatsapp.conversations.${SESSION}`]);
    assert.equal(onlyChats.status, 200);
    assert.ok(onlyChats.body.conversations.length > 0);
    assert.deepEqual(onlyChats.body.contacts, []);
    const onlyContacts = await search({ session: SESSION, q: 'cliente 10' }, [`whatsapp.contacts.*`]);
    assert.deepEqual(onlyContacts.body.conversations, []);
    assert.ok(onlyContacts.body.contacts.length > 0);
    const otherSession = await search({ session: SESSION, q: 'perez' }, ['whatsapp.contacts.otra']);
    assert.equal(otherSession.status, 403);
    assert.equal(otherSession.body.code, 'forbidden');
  });

  test('bad input is a 400, no token a 401', async () => {
    assert.equal((await search({ session: SESSION })).status, 400);
    assert.equal((await search({ session: SESSION, q: '   ' })).status, 400);
    assert.equal((await search({ session: SESSION, q: '\u0301\u0308' })).status, 400, 'only combining accents');
    assert.equal((await search({ session: SESSION, q: 'x'.repeat(101) })).status, 400);
    assert.equal((await search({ q: 'perez' })).status, 400);
    const anonymous = await fetch(`${rt.url}/api/search?session=${SESSION}&q=perez`);
    assert.equal(anonymous.status, 401);
  });
});
