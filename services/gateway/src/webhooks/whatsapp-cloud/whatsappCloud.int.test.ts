import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { decodeEvent, encodeToken, StreamNames, type DomainEvent } from '@puente/contracts';
import { uniqueName } from '@puente/bus/testing';
import { useTestGateway } from '../../testing.js';

const gw = useTestGateway();

const APP_SECRET = 'test-whatsapp-app-secret';
const sign = (raw: string | Buffer, secret = APP_SECRET) =>
  `sha256=${createHmac('sha256', secret).update(raw).digest('hex')}`;
/** Meta's serialization: non-ASCII escaped as \uXXXX (what it signs). */
const metaJson = (value: unknown) =>
  JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
const post = (raw: string, headers: Record<string, string> = { 'x-hub-signature-256': sign(raw) }) =>
  fetch(`${gw.url}/webhooks/whatsapp-cloud`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: raw,
  });

const ts = '1760524200';
function delivery(phoneNumberId: string, n: string) {
  const value = (extra: Record<string, unknown>) => ({
    messaging_product: 'whatsapp',
    metadata: { display_phone_number: '15550001111', phone_number_id: phoneNumberId },
    ...extra,
  });
  return {
    object: 'whatsapp_business_account',
    entry: [
      {
        id: 'WABA-1',
        changes: [
          {
            field: 'messages',
            value: value({
              contacts: [
                { profile: { name: 'Juan Pérez' }, wa_id: '34612345678' },
                { profile: { name: 'maria.l' }, user_id: 'ES.7391208655302741918' },
              ],
              messages: [
                {
                  from: '34612345678',
                  id: `wamid.${n}-text`,
                  timestamp: ts,
                  type: 'text',
                  text: { body: 'Hola, ¿cómo estás? 👋' },
                },
                {
                  from: '34612345678',
                  id: `wamid.${n}-img`,
                  timestamp: ts,
                  type: 'image',
                  image: { id: '1013859600285441', mime_type: 'image/jpeg', sha256: 'abc=', caption: 'Factura' },
                  context: { from: '15550001111', id: 'wamid.prev' },
                },
                {
                  from: '34612345678',
                  id: `wamid.${n}-voice`,
                  timestamp: ts,
                  type: 'audio',
                  audio: { id: '55', mime_type: 'audio/ogg; codecs=opus', voice: true },
                },
                {
                  from: '34612345678',
                  id: `wamid.${n}-doc`,
                  timestamp: ts,
                  type: 'document',
                  document: { id: '56', mime_type: 'application/pdf', filename: 'contrato.pdf' },
                },
                {
                  from: '34612345678',
                  id: `wamid.${n}-loc`,
                  timestamp: ts,
                  type: 'location',
                  location: { latitude: -12.0464, longitude: -77.0428, name: 'Lima' },
                },
                {
                  from: '34612345678',
                  id: `wamid.${n}-react`,
                  timestamp: ts,
                  type: 'reaction',
                  reaction: { message_id: 'wamid.ours', emoji: '❤️' },
                },
                {
                  from: '34612345678',
                  id: `wamid.${n}-unreact`,
                  timestamp: ts,
                  type: 'reaction',
                  reaction: { message_id: 'wamid.ours' },
                },
                {
                  from: '34612345678',
                  id: `wamid.${n}-btn`,
                  timestamp: ts,
                  type: 'interactive',
                  interactive: { type: 'button_reply', button_reply: { id: 'yes', title: 'Sí, confirmo' } },
                },
                {
                  from: '34612345678',
                  id: `wamid.${n}-list`,
                  timestamp: ts,
                  type: 'interactive',
                  interactive: { type: 'list_reply', list_reply: { id: 'r1', title: 'Lima', description: 'Sede' } },
                },
                {
                  from: '34612345678',
                  id: `wamid.${n}-tpl`,
                  timestamp: ts,
                  type: 'button',
                  button: { payload: 'STOP', text: 'Detener' },
                },
                {
                  from: '34612345678',
                  id: `wamid.${n}-unsup`,
                  timestamp: ts,
                  type: 'unsupported',
                  errors: [{ code: 131051, title: 'Message type unknown' }],
                },
                {
                  user_id: 'ES.7391208655302741918',
                  id: `wamid.${n}-username`,
                  timestamp: ts,
                  type: 'text',
                  text: { body: 'sin número' },
                },
              ],
            }),
          },
          { field: 'message_template_status_update', value: { event: 'APPROVED', message_template_id: 1 } },
        ],
      },
      {
        id: 'WABA-1',
        changes: [
          {
            field: 'messages',
            value: value({
              statuses: [
                { id: `wamid.${n}-out`, status: 'sent', timestamp: ts, recipient_id: '34612345678' },
                {
                  id: `wamid.${n}-out`,
                  status: 'read',
                  timestamp: String(Number(ts) + 60),
                  recipient_id: '34612345678',
                },
                {
                  id: `wamid.${n}-out2`,
                  status: 'failed',
                  timestamp: ts,
                  recipient_id: '34612345678',
                  errors: [{ code: 131047, title: 'Re-engagement message', message: 'Re-engagement message' }],
                },
              ],
            }),
          },
        ],
      },
    ],
  };
}

async function eventsOn(subject: string): Promise<DomainEvent[]> {
  const out: DomainEvent[] = [];
  let seq = 1;
  for (;;) {
    try {
      const m = await gw.bus.direct.getMessage(StreamNames.EVENTS, { seq, next_by_subj: subject });
      out.push(decodeEvent(m.data));
      seq = m.seq + 1;
    } catch {
      return out;
    }
  }
}

describe('gateway - WhatsApp Cloud API', () => {
  test('the GET handshake echoes hub.challenge as text for the right verify token, and refuses any other', async () => {
    const ok = await fetch(
      `${gw.url}/webhooks/whatsapp-cloud?hub.mode=subscribe&hub.verify_token=test-verify-token&hub.challenge=1158201444`,
    );
    assert.equal(ok.status, 200);
    assert.equal(await ok.text(), '1158201444');
    assert.equal(
      (await fetch(`${gw.url}/webhooks/whatsapp-cloud?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1`))
        .status,
      401,
    );
    assert.equal(
      (await fetch(`${gw.url}/webhooks/whatsapp-cloud?hub.verify_token=test-verify-token&hub.challenge=1`)).status,
      401,
    );
  });

  test('every message, status and contact of every entry and change becomes its own event, acked before the 200', async () => {
    const session = uniqueName('1065');
    const raw = metaJson(delivery(session, 'a'));
    const response = await post(raw);
    assert.equal(response.status, 200);
    const body = (await response.json()) as {
      accepted: { id: string; duplicate: boolean }[];
      ignored: { type: string }[];
    };
    assert.equal(body.accepted.length, 2 + 12 + 3);
    assert.deepEqual(
      body.ignored.map((i) => i.type),
      ['message_template_status_update'],
    );
    const received = await eventsOn(`evt.whatsapp.message.received.${encodeToken(session)}`);
    const byId = new Map(received.map((e) => [e.type === 'whatsapp.message.received.v1' ? e.data.messageId : '', e]));
    const data = (id: string) => {
      const e = byId.get(`wamid.a-${id}`);
      assert.ok(e && e.type === 'whatsapp.message.received.v1', id);
      return e.data;
    };
    assert.equal(data('text').text, 'Hola, ¿cómo estás? 👋');
    assert.equal(data('text').pushName, 'Juan Pérez');
    assert.equal(data('text').chatId, '34612345678@s.whatsapp.net');
    assert.equal(data('text').timestamp, '2025-10-15T10:30:00.000Z');
    assert.equal(data('text').provider, 'cloud-api');
    assert.deepEqual(
      [data('img').type, data('img').text, data('img').media?.id, data('img').quotedMessageId],
      ['image', 'Factura', '1013859600285441', 'wamid.prev'],
    );
    assert.equal(data('voice').type, 'voice');
    assert.equal(data('doc').media?.fileName, 'contrato.pdf');
    assert.deepEqual(data('loc').location, { latitude: -12.0464, longitude: -77.0428, name: 'Lima' });
    assert.deepEqual(data('react').reaction, { messageId: 'wamid.ours', emoji: '❤️' });
    assert.deepEqual(data('unreact').reaction, { messageId: 'wamid.ours', emoji: '' });
    assert.deepEqual([data('btn').type, data('btn').text], ['interactive', 'Sí, confirmo']);
    assert.equal(data('list').text, 'Lima');
    assert.deepEqual([data('tpl').type, data('tpl').text], ['button', 'Detener']);
    assert.equal(data('unsup').type, 'unsupported');
    assert.deepEqual([data('username').chatId, data('username').pushName], ['ES.7391208655302741918', 'maria.l']);

    const statuses = await eventsOn(`evt.whatsapp.message.status.${encodeToken(session)}`);
    assert.deepEqual(
      statuses.map((e) => e.type === 'whatsapp.message.status.v1' && [e.data.messageId, e.data.status]),
      [
        ['wamid.a-out', 'sent'],
        ['wamid.a-out', 'read'],
        ['wamid.a-out2', 'failed'],
      ],
    );
    const failed = statuses[2]!;
    assert.deepEqual(failed.type === 'whatsapp.message.status.v1' && failed.data.error, {
      code: '131047',
      message: 'Re-engagement message',
    });
    const contacts = await eventsOn(`evt.whatsapp.contact.updated.${encodeToken(session)}`);
    assert.deepEqual(
      contacts.map((e) => e.type === 'whatsapp.contact.updated.v1' && [e.data.jid, e.data.name]),
      [
        ['34612345678@s.whatsapp.net', 'Juan Pérez'],
        ['ES.7391208655302741918', 'maria.l'],
      ],
    );
  });

  test('a replayed delivery is accepted once: every item answers duplicate and nothing is stored twice', async () => {
    const session = uniqueName('1066');
    const raw = metaJson(delivery(session, 'b'));
    const first = (await (await post(raw)).json()) as { accepted: { id: string; duplicate: boolean }[] };
    const again = (await (await post(raw)).json()) as { accepted: { id: string; duplicate: boolean }[] };
    assert.ok(first.accepted.every((a) => !a.duplicate));
    assert.ok(again.accepted.every((a) => a.duplicate));
    assert.deepEqual(
      again.accepted.map((a) => a.id),
      first.accepted.map((a) => a.id),
    );
    assert.equal((await eventsOn(`evt.whatsapp.message.received.${encodeToken(session)}`)).length, 12);
  });

  test('signatures are checked over the raw bytes: the escaped and the UTF-8 forms each verify as sent; tampering, a wrong secret or a missing header is 401', async () => {
    const session = uniqueName('1067');
    const utf8 = JSON.stringify(delivery(session, 'c'));
    assert.equal((await post(utf8)).status, 200);
    const escaped = metaJson(delivery(session, 'd'));
    assert.notEqual(escaped, JSON.stringify(JSON.parse(escaped)), 'the escaped form differs from a re-serialization');
    assert.equal((await post(escaped)).status, 200);
    const tampered = escaped.replace('Juan', 'Juana');
    assert.equal((await post(tampered, { 'x-hub-signature-256': sign(escaped) })).status, 401);
    assert.equal((await post(escaped, { 'x-hub-signature-256': sign(escaped, 'another-secret') })).status, 401);
    assert.equal((await post(escaped, {})).status, 401);
    assert.equal(
      (
        await post(escaped, {
          'x-hub-signature': `sha1=${createHmac('sha1', APP_SECRET).update(escaped).digest('hex')}`,
        })
      ).status,
      401,
    );
    assert.equal((await post('{"object":', { 'x-hub-signature-256': sign('{"object":') })).status, 400);
  });

  test('a change without its phone_number_id is a 400 naming the path; a 3 MB batch is accepted', async () => {
    const broken = JSON.stringify({
      object: 'whatsapp_business_account',
      entry: [{ id: 'W', changes: [{ field: 'messages', value: { messages: [] } }] }],
    });
    const response = await post(broken);
    assert.equal(response.status, 400);
    const problem = (await response.json()) as { errors: { path: string }[] };
    assert.equal(problem.errors[0]!.path, 'entry.0.changes.0.value.metadata');

    const session = uniqueName('1068');
    const messages = Array.from({ length: 4000 }, (_, i) => ({
      from: '34612345678',
      id: `wamid.big-${i}`,
      timestamp: ts,
      type: 'text',
      text: { body: `mensaje ${i} ${'ñ'.repeat(120)}` },
    }));
    const raw = metaJson({
      object: 'whatsapp_business_account',
      entry: [
        {
          id: 'W',
          changes: [
            {
              field: 'messages',
              value: { messaging_product: 'whatsapp', metadata: { phone_number_id: session }, messages },
            },
          ],
        },
      ],
    });
    assert.ok(raw.length > 3_000_000 && raw.length < 4 * 1024 * 1024, `${raw.length} bytes`);
    const big = await post(raw);
    assert.equal(big.status, 200);
    assert.equal(((await big.json()) as { accepted: unknown[] }).accepted.length, 4000);
  });
});
