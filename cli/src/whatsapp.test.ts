import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeInboxHub } from '@puente/whatsapp/testing';
import { whatsappRegisterWebhook } from './whatsapp.js';

/** The eleven events of the reference, as printed there. */
const ELEVEN = [
  'message.received',
  'message.sent',
  'message.delivered',
  'message.read',
  'message.failed',
  'session.connected',
  'session.disconnected',
  'session.qr',
  'contact.updated',
  'chat.archived',
  'chat.unarchived',
];

let hub: FakeInboxHub;
const SECRET = 'test-inboxhub-webhook-secret';

before(async () => {
  hub = await new FakeInboxHub().start();
});
after(() => hub.stop());

const env = () => ({
  INBOXHUB_API_URL: hub.url,
  INBOXHUB_API_KEY: hub.apiKey,
  INBOXHUB_EMAIL: hub.email,
  INBOXHUB_PASSWORD: hub.password,
  INBOXHUB_WEBHOOK_SECRET: SECRET,
});

async function run(args: string[]): Promise<{ lines: string[]; requests: typeof hub.requests }> {
  const lines: string[] = [];
  const from = hub.requests.length;
  await whatsappRegisterWebhook(args, env(), (line) => lines.push(line));
  return { lines, requests: hub.requests.slice(from) };
}

describe('whatsapp register-webhook against the fake Inbox Hub', () => {
  test('per session: PUT /api/sessions/{DB id}/webhook with the key alone and {webhookUrl, webhookSecret}; again: unchanged', async () => {
    hub.seed('other', { contacts: 0, chats: 0, messagesPerChat: 0 });
    const session = hub.seed('nueva_sesion_wa', { contacts: 0, chats: 0, messagesPerChat: 0 });
    session.webhook = { url: 'https://old.example.com/webhooks/inboxhub', secret: 'old-secret', events: ['*'] };
    const first = await run(['--session', 'nueva_sesion_wa', '--url', 'https://hub.example.com']);
    const put = first.requests.find((r) => r.method === 'PUT')!;
    assert.equal(put.path, `/api/sessions/${session.dbId}/webhook`);
    assert.equal(put.apiKey, hub.apiKey);
    assert.equal(put.authorization, undefined, 'the key alone, as printed');
    assert.deepEqual(put.body, { webhookUrl: 'https://hub.example.com/webhooks/inboxhub', webhookSecret: SECRET });
    assert.ok(
      first.requests.some((r) => r.method === 'GET' && r.path.startsWith('/api/sessions?')),
      'the DB id looked up from the session list',
    );
    assert.equal(session.webhook?.url, 'https://hub.example.com/webhooks/inboxhub');
    assert.match(
      first.lines.join('\n'),
      /https:\/\/old\.example\.com\/webhooks\/inboxhub -> https:\/\/hub\.example\.com/,
    );
    const second = await run(['--session', 'nueva_sesion_wa', '--url', 'https://hub.example.com']);
    assert.match(second.lines.join('\n'), /unchanged, already https:\/\/hub\.example\.com\/webhooks\/inboxhub/);
    assert.equal(session.webhook?.url, 'https://hub.example.com/webhooks/inboxhub');
  });

  test('per session with --session-db-id: no lookup, just the PUT', async () => {
    const session = hub.seed('by-db-id', { contacts: 0, chats: 0, messagesPerChat: 0 });
    const { requests } = await run([
      '--session',
      'by-db-id',
      '--session-db-id',
      String(session.dbId),
      '--url',
      'https://hub.example.com/webhooks/inboxhub',
    ]);
    assert.deepEqual(
      requests.map((r) => `${r.method} ${r.path}`),
      [`PUT /api/sessions/${session.dbId}/webhook`],
    );
    assert.equal(session.webhook?.url, 'https://hub.example.com/webhooks/inboxhub');
  });

  test('--account: POST /api/webhooks with Bearer and key, {name, url, method, events (all eleven), secret}; again: nothing created', async () => {
    const first = await run(['--account', '--url', 'https://hub.example.com', '--name', 'CRM Webhook']);
    const post = first.requests.find((r) => r.method === 'POST' && r.path === '/api/webhooks')!;
    assert.equal(post.apiKey, hub.apiKey);
    assert.match(post.authorization ?? '', /^Bearer /);
    assert.deepEqual(post.body, {
      name: 'CRM Webhook',
      url: 'https://hub.example.com/webhooks/inboxhub',
      method: 'POST',
      events: ELEVEN,
      secret: SECRET,
    });
    assert.equal(hub.accountWebhooks.length, 1);
    assert.match(
      first.lines.join('\n'),
      /created "CRM Webhook" -> https:\/\/hub\.example\.com\/webhooks\/inboxhub \(11 events/,
    );
    const second = await run(['--account', '--url', 'https://hub.example.com', '--name', 'CRM Webhook']);
    assert.equal(second.requests.filter((r) => r.method === 'POST' && r.path === '/api/webhooks').length, 0);
    assert.equal(hub.accountWebhooks.length, 1);
    assert.match(
      second.lines.join('\n'),
      /unchanged, a webhook to https:\/\/hub\.example\.com\/webhooks\/inboxhub exists/,
    );
  });

  test('a session Inbox Hub does not list is an error that says how to give its DB id', async () => {
    await assert.rejects(run(['--session', 'no-such-session', '--url', 'https://hub.example.com']), /--session-db-id/);
  });
});
