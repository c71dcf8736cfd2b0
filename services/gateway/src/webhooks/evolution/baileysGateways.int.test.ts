import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { decodeEvent, encodeToken, StreamNames, type DomainEvent } from '@puente/contracts';
import { uniqueName } from '@puente/bus/testing';
import { useTestGateway } from '../../testing.js';
import { signHs256Jwt } from '../../http/jwt.js';

const gw = useTestGateway();

const EVOLUTION_KEY = 'test-evolution-secret';
const WAHA_SECRET = 'test-waha-secret';
const post = (path: string, raw: string, headers: Record<string, string>) =>
  fetch(`${gw.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: raw });
const last = async (subject: string): Promise<DomainEvent> =>
  decodeEvent((await gw.bus.jsm.streams.getMessage(StreamNames.EVENTS, { last_by_subj: subject })).data);

/** An Evolution API v2 `messages.upsert` delivery, as its docs show it. */
const evolutionUpsert = (instance: string, id: string, apikey: string) => ({
  event: 'messages.upsert',
  instance,
  data: {
    key: { remoteJid: '5511999999999@s.whatsapp.net', fromMe: false, id },
    pushName: 'João',
    message: { conversation: 'Olá! Tudo bem? 😀' },
    messageType: 'conversation',
    messageTimestamp: 1717689097,
    owner: instance,
    source: 'android',
  },
  destination: 'https://hub.example.invalid/webhooks/evolution',
  date_time: '2024-06-06T12:51:37.610Z',
  sender: '5511888888888@s.whatsapp.net',
  server_url: 'http://localhost:8080',
  apikey,
});

describe('gateway - Evolution API', () => {
  test('messages.upsert authenticated by the apikey in the body becomes whatsapp.message.received.v1; a replay is a duplicate', async () => {
    const instance = uniqueName('evo-');
    const raw = JSON.stringify(evolutionUpsert(instance, '3EB0B430B6F8C1D073A0', EVOLUTION_KEY));
    const first = await post('/webhooks/evolution', raw, {});
    assert.equal(first.status, 200);
    assert.equal(
      ((await (await post('/webhooks/evolution', raw, {})).json()) as { accepted: { duplicate: boolean }[] })
        .accepted[0]!.duplicate,
      true,
    );
    const event = await last(`evt.whatsapp.message.received.${encodeToken(instance)}`);
    assert.ok(event.type === 'whatsapp.message.received.v1');
    assert.deepEqual(
      [
        event.data.provider,
        event.data.messageId,
        event.data.chatId,
        event.data.pushName,
        event.data.text,
        event.data.timestamp,
      ],
      [
        'evolution',
        '3EB0B430B6F8C1D073A0',
        '5511999999999@s.whatsapp.net',
        'João',
        'Olá! Tudo bem? 😀',
        '2024-06-06T15:51:37.000Z',
      ],
    );
  });

  test("an image's media URL is Evolution's stored S3 object (mediaUrl) when present, else the Baileys CDN url", async () => {
    const instance = uniqueName('evo-');
    const image = (id: string, extra: Record<string, unknown>) => {
      const body = evolutionUpsert(instance, id, EVOLUTION_KEY);
      body.data.message = {
        imageMessage: {
          url: 'https://mmg.whatsapp.net/v/t62.7118-24/11111111_2222222222_n.enc?ccb=11-4',
          mimetype: 'image/jpeg',
          caption: 'la factura',
          fileLength: '48213',
        },
        ...extra,
      } as never;
      body.data.messageType = 'imageMessage';
      return JSON.stringify(body);
    };
    const s3 = 'https://minio.example.invalid/evolution/abc/5511999999999@s.whatsapp.net/imageMessage/1717_foto.jpg';
    assert.equal(
      (await post('/webhooks/evolution', image('3EB0S3', { mediaUrl: s3, base64: 'aGVsbG8=' }), {})).status,
      200,
    );
    const stored = await last(`evt.whatsapp.message.received.${encodeToken(instance)}`);
    assert.ok(stored.type === 'whatsapp.message.received.v1');
    assert.equal(stored.data.type, 'image');
    assert.equal(stored.data.media?.url, s3);
    assert.equal(stored.data.text, 'la factura');
    assert.ok(!JSON.stringify(stored.data).includes('aGVsbG8='), 'inline base64 is not copied into the event');
    assert.equal((await post('/webhooks/evolution', image('3EB0CDN', {}), {})).status, 200);
    const cdn = await last(`evt.whatsapp.message.received.${encodeToken(instance)}`);
    assert.ok(cdn.type === 'whatsapp.message.received.v1');
    assert.match(cdn.data.media?.url ?? '', /\.enc\?/);
  });

  test('the apikey header and the HS256 Bearer JWT authenticate too; a wrong key, a forged or expired JWT, or a non-JSON body without credentials is 401', async () => {
    const instance = uniqueName('evo-');
    const raw = JSON.stringify(evolutionUpsert(instance, 'H1', 'not-the-key'));
    assert.equal((await post('/webhooks/evolution', raw, { apikey: EVOLUTION_KEY })).status, 200);
    const now = Math.floor(Date.now() / 1000);
    const jwt = signHs256Jwt({ iat: now, exp: now + 600, app: 'evolution' }, EVOLUTION_KEY);
    assert.equal(
      (
        await post('/webhooks/evolution', JSON.stringify(evolutionUpsert(instance, 'J1', '')), {
          authorization: `Bearer ${jwt}`,
        })
      ).status,
      200,
    );
    assert.equal((await post('/webhooks/evolution', raw, {})).status, 401);
    assert.equal((await post('/webhooks/evolution', raw, { apikey: 'wrong' })).status, 401);
    assert.equal(
      (
        await post('/webhooks/evolution', raw, {
          authorization: `Bearer ${signHs256Jwt({ exp: now + 600 }, 'other-key')}`,
        })
      ).status,
      401,
    );
    assert.equal(
      (
        await post('/webhooks/evolution', raw, {
          authorization: `Bearer ${signHs256Jwt({ exp: now - 3600 }, EVOLUTION_KEY)}`,
        })
      ).status,
      401,
    );
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(`{"exp":${now + 600}}`).toString('base64url')}.`;
    assert.equal((await post('/webhooks/evolution', raw, { authorization: `Bearer ${none}` })).status, 401);
    assert.equal((await post('/webhooks/evolution', '{not json', {})).status, 401);
  });

  test('statuses, connection, QR and the webhook_by_events path suffix map to domain events', async () => {
    const instance = uniqueName('evo-');
    const send = (body: Record<string, unknown>, path = '/webhooks/evolution') =>
      post(
        path,
        JSON.stringify({ instance, apikey: EVOLUTION_KEY, date_time: '2024-06-06T12:52:00.000Z', ...body }),
        {},
      );
    assert.equal(
      (
        await send({
          event: 'messages.update',
          data: {
            messageId: 'cm1',
            keyId: 'BAE5',
            remoteJid: '5511999999999@s.whatsapp.net',
            fromMe: true,
            status: 'DELIVERY_ACK',
          },
        })
      ).status,
      200,
    );
    const status = await last(`evt.whatsapp.message.status.${encodeToken(instance)}`);
    assert.deepEqual(status.type === 'whatsapp.message.status.v1' && [status.data.messageId, status.data.status], [
      'BAE5',
      'delivered',
    ]);
    await send({
      event: 'connection.update',
      data: { instance, state: 'open', statusReason: 200, wuid: '5511888888888@s.whatsapp.net' },
    });
    const session = await last(`evt.whatsapp.session.status.${encodeToken(instance)}`);
    assert.deepEqual(session.type === 'whatsapp.session.status.v1' && [session.data.status, session.data.phone], [
      'connected',
      '5511888888888',
    ]);
    await send(
      {
        data: {
          qrcode: { instance, pairingCode: 'WZYEH1YY', code: '2@y8F3kd0Q8Jx', base64: 'data:image/png;base64,AAAA' },
        },
      },
      '/webhooks/evolution/qrcode-updated',
    );
    const qr = await last(`evt.whatsapp.session.qr.${encodeToken(instance)}`);
    assert.equal(qr.type === 'whatsapp.session.qr.v1' && qr.data.qr, '2@y8F3kd0Q8Jx');
    const fromPhone = await send({
      event: 'send.message',
      data: {
        key: { remoteJid: '5511999999999@s.whatsapp.net', fromMe: true, id: 'BAE6' },
        message: { conversation: 'desde el teléfono' },
        messageTimestamp: 1717689200,
      },
    });
    assert.equal(fromPhone.status, 200);
    assert.equal((await last(`evt.whatsapp.message.sent.${encodeToken(instance)}`)).type, 'whatsapp.message.sent.v1');
    const unknown = (await (await send({ event: 'presence.update', data: { id: 'x' } })).json()) as {
      ignored: { type: string }[];
    };
    assert.equal(unknown.ignored[0]!.type, 'presence.update');
  });
});

const wahaHeaders = (raw: string, secret = WAHA_SECRET) => ({
  'x-webhook-hmac': createHmac('sha512', secret).update(raw).digest('hex'),
  'x-webhook-hmac-algorithm': 'sha512',
  'x-webhook-request-id': uniqueName('req_'),
  'x-webhook-timestamp': String(Date.now()),
});

describe('gateway - WAHA', () => {
  test('message, message.ack and session.status envelopes, verified by X-Webhook-Hmac (SHA-512), map to domain events', async () => {
    const session = uniqueName('waha-');
    const message = {
      id: `evt_${uniqueName('')}`,
      timestamp: 1667561485123,
      session,
      metadata: { 'user.id': '123' },
      engine: 'NOWEB',
      event: 'message',
      payload: {
        id: 'false_11111111111@c.us_AAAAAAAAAAAAAAAAAAAA',
        timestamp: 1667561485,
        from: '11111111111@c.us',
        fromMe: false,
        to: '22222222222@c.us',
        body: 'Hi there! 👋',
        hasMedia: false,
        ack: 1,
        ackName: 'SERVER',
        _data: { pushName: 'Ana' },
      },
      me: { id: '22222222222@c.us', pushName: 'Tienda' },
    };
    const raw = JSON.stringify(message);
    assert.equal((await post('/webhooks/waha', raw, wahaHeaders(raw))).status, 200);
    assert.equal(
      ((await (await post('/webhooks/waha', raw, wahaHeaders(raw))).json()) as { accepted: { duplicate: boolean }[] })
        .accepted[0]!.duplicate,
      true,
    );
    const received = await last(`evt.whatsapp.message.received.${encodeToken(session)}`);
    assert.ok(received.type === 'whatsapp.message.received.v1');
    assert.deepEqual(
      [
        received.data.provider,
        received.data.messageId,
        received.data.chatId,
        received.data.text,
        received.data.pushName,
        received.data.timestamp,
      ],
      ['waha', 'AAAAAAAAAAAAAAAAAAAA', '11111111111@s.whatsapp.net', 'Hi there! 👋', 'Ana', '2022-11-04T11:31:25.000Z'],
    );
    const ack = JSON.stringify({
      id: `evt_${uniqueName('')}`,
      timestamp: 1667561500000,
      session,
      engine: 'NOWEB',
      event: 'message.ack',
      payload: {
        id: 'true_11111111111@c.us_BBBB',
        from: '22222222222@c.us',
        to: '11111111111@c.us',
        fromMe: true,
        ack: 3,
        ackName: 'READ',
      },
    });
    assert.equal((await post('/webhooks/waha', ack, wahaHeaders(ack))).status, 200);
    const status = await last(`evt.whatsapp.message.status.${encodeToken(session)}`);
    assert.deepEqual(
      status.type === 'whatsapp.message.status.v1' && [status.data.messageId, status.data.status, status.data.chatId],
      ['BBBB', 'read', '11111111111@s.whatsapp.net'],
    );
    const working = JSON.stringify({
      id: `evt_${uniqueName('')}`,
      timestamp: 1667561600000,
      session,
      engine: 'NOWEB',
      event: 'session.status',
      payload: { status: 'WORKING' },
    });
    assert.equal((await post('/webhooks/waha', working, wahaHeaders(working))).status, 200);
    const state = await last(`evt.whatsapp.session.status.${encodeToken(session)}`);
    assert.equal(state.type === 'whatsapp.session.status.v1' && state.data.status, 'connected');
  });

  test('a wrong secret, a tampered body or a missing X-Webhook-Hmac is 401; an envelope without session is 400', async () => {
    const raw = JSON.stringify({
      id: 'evt_1',
      timestamp: 1,
      session: 'default',
      event: 'message',
      payload: { id: 'false_1@c.us_X', from: '1@c.us', body: 'x' },
    });
    assert.equal((await post('/webhooks/waha', raw, wahaHeaders(raw, 'other'))).status, 401);
    assert.equal((await post('/webhooks/waha', raw.replace('"x"', '"y"'), wahaHeaders(raw))).status, 401);
    assert.equal((await post('/webhooks/waha', raw, {})).status, 401);
    const sha256Only = { 'x-webhook-hmac': createHmac('sha256', WAHA_SECRET).update(raw).digest('hex') };
    assert.equal((await post('/webhooks/waha', raw, sha256Only)).status, 401);
    const noSession = JSON.stringify({ id: 'evt_2', event: 'message', payload: {} });
    const response = await post('/webhooks/waha', noSession, wahaHeaders(noSession));
    assert.equal(response.status, 400);
    assert.equal(((await response.json()) as { errors: { path: string }[] }).errors[0]!.path, 'session');
  });
});

describe('gateway - messages sent from the session', () => {
  test('WAHA message.any with fromMe and Evolution send.message carry the message (text, fromMe), not a status', async () => {
    const session = uniqueName('waha-');
    const any = JSON.stringify({
      id: `evt_${uniqueName('')}`,
      timestamp: 1667561700000,
      session,
      engine: 'NOWEB',
      event: 'message.any',
      payload: {
        id: 'true_11111111111@c.us_CCCC',
        timestamp: 1667561700,
        from: '22222222222@c.us',
        fromMe: true,
        to: '11111111111@c.us',
        body: 'Escrito en el teléfono',
        hasMedia: false,
      },
    });
    assert.equal((await post('/webhooks/waha', any, wahaHeaders(any))).status, 200);
    const waha = await last(`evt.whatsapp.message.sent.${encodeToken(session)}`);
    assert.deepEqual(
      waha.type === 'whatsapp.message.sent.v1' && [
        waha.data.messageId,
        waha.data.chatId,
        waha.data.fromMe,
        waha.data.text,
      ],
      ['CCCC', '11111111111@s.whatsapp.net', true, 'Escrito en el teléfono'],
    );

    const instance = uniqueName('evo-');
    const raw = JSON.stringify({
      event: 'send.message',
      instance,
      data: {
        key: { remoteJid: '5511999999999@s.whatsapp.net', fromMe: true, id: 'BAE7' },
        message: { extendedTextMessage: { text: 'enviado desde la sesión' } },
        messageTimestamp: 1717689300,
        status: 'PENDING',
      },
      date_time: '2024-06-06T12:55:00.000Z',
      apikey: EVOLUTION_KEY,
    });
    assert.equal((await post('/webhooks/evolution', raw, {})).status, 200);
    const evolution = await last(`evt.whatsapp.message.sent.${encodeToken(instance)}`);
    assert.deepEqual(
      evolution.type === 'whatsapp.message.sent.v1' && [
        evolution.data.messageId,
        evolution.data.chatId,
        evolution.data.fromMe,
        evolution.data.text,
      ],
      ['BAE7', '5511999999999@s.whatsapp.net', true, 'enviado desde la sesión'],
    );
  });
});
