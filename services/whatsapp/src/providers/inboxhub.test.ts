import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ProviderError } from '@puente/runtime';
import { Config } from '../config.js';
import { FakeInboxHub, outgoingMediaOf } from '../testing/index.js';
import { InboxHubClient, inboxHubFrom } from './inboxhub.js';
import { listIn, unwrap } from './inboxhubApiTypes.js';

let hub: FakeInboxHub;
let webhookShaped: FakeInboxHub;

before(async () => {
  hub = await new FakeInboxHub({ tokenTtlSeconds: 3600 }).start();
  webhookShaped = await new FakeInboxHub({ messageShape: 'webhook' }).start();
});
after(async () => {
  await hub.stop();
  await webhookShaped.stop();
});

function client(fake: FakeInboxHub, extra: Record<string, string> = {}): InboxHubClient {
  const made = inboxHubFrom(
    Config.parse({
      INBOXHUB_API_URL: fake.url,
      INBOXHUB_API_KEY: fake.apiKey,
      INBOXHUB_EMAIL: fake.email,
      INBOXHUB_PASSWORD: fake.password,
      INBOXHUB_RETRIES: '0',
      ...extra,
    }),
  );
  assert.ok(typeof made !== 'string', String(made));
  return made;
}

describe('Inbox Hub client against the fake (the shapes of the reference)', () => {
  test('logs in once, then sends Bearer and X-API-Key on every call; a 401 logs in again once', async () => {
    hub.seed('auth-session', { contacts: 3, chats: 0, messagesPerChat: 0 });
    const c = client(hub);
    const from = hub.requests.length;
    assert.equal((await c.contacts('auth-session', 1, 10)).items.length, 3);
    assert.equal((await c.contacts('auth-session', 1, 10)).items.length, 3);
    const requests = hub.requests.slice(from);
    assert.deepEqual(
      requests.map((r) => `${r.method} ${r.path.replace(/\?.*/, '')}`),
      ['POST /api/auth/login', 'GET /api/sessions/auth-session/contacts', 'GET /api/sessions/auth-session/contacts'],
    );
    assert.deepEqual(requests[0]!.body, { email: hub.email, password: hub.password });
    for (const r of requests) assert.equal(r.apiKey, hub.apiKey);
    assert.ok(requests.slice(1).every((r) => /^Bearer [\w-]+\.[\w-]+\.[\w-]+$/.test(r.authorization ?? '')));
    hub.revokeTokens();
    const again = hub.requests.length;
    assert.equal((await c.contacts('auth-session', 1, 10)).items.length, 3);
    assert.deepEqual(
      hub.requests.slice(again).map((r) => `${r.method} ${r.path.replace(/\?.*/, '')}`),
      ['GET /api/sessions/auth-session/contacts', 'POST /api/auth/login', 'GET /api/sessions/auth-session/contacts'],
    );
  });

  test('a wrong password or key is an auth error that names the variables', async () => {
    const c = client(hub, { INBOXHUB_PASSWORD: 'wrong' });
    await assert.rejects(
      c.contacts('auth-session', 1, 10),
      (e: unknown) => e instanceof ProviderError && e.kind === 'auth' && /INBOXHUB_PASSWORD/.test(e.message),
    );
  });

  test('contacts from data.contacts with page, limit, search and total; chats from data.chats[].chatId', async () => {
    hub.seed('lists', { contacts: 12, chats: 7, messagesPerChat: 0 });
    const c = client(hub);
    const page2 = await c.contacts('lists', 2, 5);
    assert.deepEqual(
      page2.items.map((x) => x.phone),
      ['34601000005', '34601000006', '34601000007', '34601000008', '34601000009'],
    );
    assert.equal(page2.total, 12);
    const found = await c.contacts('lists', 1, 50, 'Contacto 11');
    assert.deepEqual(
      found.items.map((x) => [x.id, x.name, x.isUser, x.isGroup]),
      [['34601000011@s.whatsapp.net', 'Contacto 11 ✨', true, false]],
    );
    assert.equal(hub.requests.at(-1)!.path, '/api/sessions/lists/contacts?page=1&limit=50&search=Contacto%2011');
    const chats = await c.chats('lists', 1, 5);
    assert.equal(chats.items.length, 5);
    assert.equal(chats.items[4]!.chatId, '120363010004@g.us');
    assert.deepEqual([chats.items[1]!.unreadCount, chats.items[1]!.lastMessage?.fromMe], [1, false]);
    await assert.rejects(
      c.contacts('lists', 1, 500),
      (e: unknown) => e instanceof ProviderError && e.kind === 'rejected',
    );
  });

  test("a chat's messages by page and limit, in Baileys' shape and in a webhook's data shape alike", async () => {
    hub.seed('msgs', { contacts: 0, chats: 1, messagesPerChat: 7 });
    webhookShaped.seed('msgs', { contacts: 0, chats: 1, messagesPerChat: 7 });
    const chatId = '34601000000@s.whatsapp.net';
    for (const fake of [hub, webhookShaped]) {
      const c = client(fake);
      const first = await c.messages('msgs', chatId, 1, 5);
      const second = await c.messages('msgs', chatId, 2, 5);
      assert.equal(first.total, 7);
      assert.deepEqual(
        [...first.items, ...second.items].map((m) => [m.messageId, m.text, m.fromMe]),
        [7, 6, 5, 4, 3, 2, 1].map((n, i) => [
          `3EB00000${String(n).padStart(6, '0')}`,
          `Mensaje ${n} del chat 0 👋`,
          i % 4 === 0,
        ]),
      );
      assert.equal(first.items[1]!.chatId, chatId);
      assert.equal(first.items[1]!.from, chatId);
      assert.equal(first.items[1]!.type, 'text');
      assert.match(first.items[1]!.timestamp, /^2026-10-31T/);
    }
  });

  test('send is {to (digits), message, type}; the answer data.messageId is the id; mark read', async () => {
    hub.seed('sender', { contacts: 0, chats: 0, messagesPerChat: 0 });
    const c = client(hub);
    const id = await c.send('sender', { to: '34612345678@s.whatsapp.net', text: 'Hola' });
    const sent = hub.sends.at(-1)!;
    assert.equal(id, sent.messageId);
    assert.deepEqual(sent.body, { to: '34612345678', message: 'Hola', type: 'text' });
    assert.equal(hub.requests.at(-1)!.path, '/api/sessions/sender/messages/send');
    assert.deepEqual(
      InboxHubClient.sendBody({
        to: '34612345678@s.whatsapp.net',
        text: 'factura',
        media: outgoingMediaOf('document', Buffer.from('%PDF-1.4 factura'), 'application/pdf', 'f.pdf'),
      }),
      {
        to: '34612345678',
        message: 'factura',
        type: 'document',
        media: {
          data: Buffer.from('%PDF-1.4 factura').toString('base64'),
          mimetype: 'application/pdf',
          fileName: 'f.pdf',
        },
      },
    );
    await c.markRead('sender', '34612345678@s.whatsapp.net');
    assert.deepEqual(hub.reads.at(-1), { session: 'sender', chatId: '34612345678@s.whatsapp.net' });
    hub.seed('offline', { contacts: 0, chats: 0, messagesPerChat: 0 }, false);
    await assert.rejects(
      c.send('offline', { to: '34612345678', text: 'x' }),
      (e: unknown) => e instanceof ProviderError && e.kind === 'rejected' && /Session not connected/.test(e.message),
    );
  });

  test('a 2xx send answer without a readable id is unknown, never rejected', async () => {
    hub.seed('garbled', { contacts: 0, chats: 0, messagesPerChat: 0 });
    hub.garbleSendAnswers = true;
    try {
      await assert.rejects(
        client(hub).send('garbled', { to: '34612345678', text: 'x' }),
        (e: unknown) => e instanceof ProviderError && e.kind === 'unknown' && e.code === 'BAD_RESPONSE',
      );
    } finally {
      hub.garbleSendAnswers = false;
    }
  });

  test("a session's DB id and webhook URL are found in the session list, past its first page", async () => {
    const many = await new FakeInboxHub().start();
    try {
      for (let i = 0; i < 60; i++) many.seed(`s${i}`, { contacts: 0, chats: 0, messagesPerChat: 0 });
      many.sessions.get('s55')!.webhook = { url: 'https://hub.example.com/webhooks/inboxhub', secret: 'x', events: [] };
      const c = client(many);
      assert.deepEqual(await c.session('s55'), {
        dbId: String(many.sessions.get('s55')!.dbId),
        webhookUrl: 'https://hub.example.com/webhooks/inboxhub',
      });
      assert.deepEqual(await c.webhook('s3'), null);
      assert.equal(await c.session('missing'), undefined);
    } finally {
      await many.stop();
    }
  });

  test('answers are read bare or in the {success, data} envelope', () => {
    const contact = { id: '1@s.whatsapp.net' };
    assert.deepEqual(listIn({ success: true, data: { contacts: [contact], total: 1 } }, 'contacts'), [contact]);
    assert.deepEqual(listIn({ contacts: [contact] }, 'contacts'), [contact]);
    assert.deepEqual(listIn({ success: true, data: [contact] }, 'contacts'), [contact]);
    assert.deepEqual(listIn([contact], 'contacts'), [contact]);
    assert.equal(listIn({ success: true, data: { other: [] } }, 'contacts'), undefined);
    assert.deepEqual(unwrap({ success: true, data: { messageId: 'A' }, extra: 1 }), { messageId: 'A' });
    assert.deepEqual(unwrap({ messageId: 'A' }), { messageId: 'A' });
  });
});
