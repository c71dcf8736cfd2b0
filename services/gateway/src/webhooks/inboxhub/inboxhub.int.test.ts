import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { decodeEvent, encodeToken, StreamNames, type DomainEvent } from '@puente/contracts';
import type { Bus } from '@puente/bus';
import { connectTestBus, uniqueName } from '@puente/bus/testing';
import { startTestGateway } from '../../testing.js';

let bus: Bus;
let gateway: { url: string; close: () => Promise<void> };
let custom: { url: string; close: () => Promise<void> };
before(async () => {
  bus = await connectTestBus();
  gateway = await startTestGateway(bus);
  custom = await startTestGateway(bus, {
    settings: { inboxhub: { header: 'x-signature', algorithm: 'sha512', encoding: 'base64', prefix: '' } },
  });
});
after(async () => {
  await gateway.close();
  await custom.close();
  await bus.close();
});

const SECRET = 'test-inboxhub-secret';
const WHSEC = 'whsec_dGVzdC1zdGFuZGFyZC13ZWJob29rcy1rZXktMDAx';
const hmacHeader = (raw: string, secret = SECRET) => ({
  'x-webhook-signature': `sha256=${createHmac('sha256', secret).update(raw).digest('hex')}`,
});
const post = (raw: string, headers: Record<string, string>, base = gateway.url) =>
  fetch(`${base}/webhooks/inboxhub`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: raw,
  });
const signed = (body: unknown) => {
  const raw = JSON.stringify(body);
  return post(raw, hmacHeader(raw));
};

async function last(subject: string): Promise<DomainEvent> {
  return decodeEvent((await bus.jsm.streams.getMessage(StreamNames.EVENTS, { last_by_subj: subject })).data);
}

describe('gateway - Inbox Hub', () => {
  test('the canonical message.received becomes whatsapp.message.received.v1; the same delivery again is a duplicate', async () => {
    const session = uniqueName('ventas-');
    const body = {
      event: 'message.received',
      sessionId: session,
      timestamp: '2025-10-15T10:30:00.000Z',
      data: {
        messageId: '3EB0C767D26A1B2E5F8A',
        chatId: '34612345678@s.whatsapp.net',
        from: '34612345678@s.whatsapp.net',
        fromMe: false,
        pushName: 'Juan Pérez',
        type: 'text',
        content: 'Hola, ¿cómo estás? 👋',
        timestamp: '2025-10-15T10:30:00.000Z',
      },
    };
    const first = await signed(body);
    assert.equal(first.status, 200);
    const again = (await (await signed(body)).json()) as { accepted: { duplicate: boolean }[] };
    assert.equal(again.accepted[0]!.duplicate, true);
    const event = await last(`evt.whatsapp.message.received.${encodeToken(session)}`);
    assert.equal(event.type, 'whatsapp.message.received.v1');
    if (event.type === 'whatsapp.message.received.v1') {
      assert.deepEqual(
        [
          event.data.messageId,
          event.data.chatId,
          event.data.text,
          event.data.pushName,
          event.data.provider,
          event.data.timestamp,
        ],
        [
          '3EB0C767D26A1B2E5F8A',
          '34612345678@s.whatsapp.net',
          'Hola, ¿cómo estás? 👋',
          'Juan Pérez',
          'inboxhub',
          '2025-10-15T10:30:00.000Z',
        ],
      );
    }
  });

  test("snake_case aliases and Baileys' native message shape are accepted; a message from this account is message.sent", async () => {
    const session = uniqueName('ventas-');
    assert.equal(
      (
        await signed({
          event: 'message.received',
          session_id: session,
          data: {
            message_id: 'A1',
            chat_id: '120363025246125486@g.us',
            from: '34699999999@s.whatsapp.net',
            content: 'en el grupo',
          },
        })
      ).status,
      200,
    );
    const aliased = await last(`evt.whatsapp.message.received.${encodeToken(session)}`);
    assert.equal(aliased.type === 'whatsapp.message.received.v1' && aliased.data.chatId, '120363025246125486@g.us');
    const native = {
      event: 'messages.upsert',
      sessionId: session,
      data: {
        key: { remoteJid: '34612345678@s.whatsapp.net', fromMe: true, id: 'BAE5F1' },
        message: { extendedTextMessage: { text: 'Su pedido está listo ✅', contextInfo: { stanzaId: 'A0' } } },
        messageTimestamp: 1760524200,
        pushName: 'Tienda',
      },
    };
    assert.equal((await signed(native)).status, 200);
    const sent = await last(`evt.whatsapp.message.sent.${encodeToken(session)}`);
    assert.equal(sent.type, 'whatsapp.message.sent.v1');
    if (sent.type === 'whatsapp.message.sent.v1') {
      assert.deepEqual(
        [sent.data.messageId, sent.data.fromMe, sent.data.text, sent.data.quotedMessageId, sent.data.timestamp],
        ['BAE5F1', true, 'Su pedido está listo ✅', 'A0', '2025-10-15T10:30:00.000Z'],
      );
    }
    assert.equal(
      (
        await signed({
          event: 'messages.upsert',
          sessionId: session,
          data: {
            key: { remoteJid: '34612345678@s.whatsapp.net', fromMe: false, id: 'IMG1' },
            message: { ephemeralMessage: { message: { imageMessage: { mimetype: 'image/jpeg', caption: 'foto' } } } },
            messageTimestamp: '1760524200',
          },
        })
      ).status,
      200,
    );
    const image = await last(`evt.whatsapp.message.received.${encodeToken(session)}`);
    assert.deepEqual(
      image.type === 'whatsapp.message.received.v1' && [image.data.type, image.data.text, image.data.media?.mimeType],
      ['image', 'foto', 'image/jpeg'],
    );
  });

  test('media as a nested media object, as flat mediaUrl/mimetype/fileName (camel or snake case) or as a URL string', async () => {
    const session = uniqueName('ih-');
    const shapes: [string, Record<string, unknown>][] = [
      ['M1', { media: { url: 'https://cdn.example.invalid/m1.pdf', mimeType: 'application/pdf', filename: 'a.pdf' } }],
      ['M2', { mediaUrl: 'https://cdn.example.invalid/m2.pdf', mimetype: 'application/pdf', fileName: 'a.pdf' }],
      ['M3', { media_url: 'https://cdn.example.invalid/m3.pdf', mime_type: 'application/pdf', file_name: 'a.pdf' }],
      ['M4', { media: 'https://cdn.example.invalid/m4.pdf', mimetype: 'application/pdf', fileName: 'a.pdf' }],
    ];
    for (const [id, media] of shapes) {
      const body = {
        event: 'message.received',
        sessionId: session,
        timestamp: '2025-10-15T10:30:00.000Z',
        data: { messageId: id, chatId: '34612345678@s.whatsapp.net', fromMe: false, type: 'document', ...media },
      };
      assert.equal((await signed(body)).status, 200);
      const event = await last(`evt.whatsapp.message.received.${encodeToken(session)}`);
      assert.ok(event.type === 'whatsapp.message.received.v1');
      assert.deepEqual(
        [event.data.messageId, event.data.type, event.data.media],
        [
          id,
          'document',
          {
            url: `https://cdn.example.invalid/${id.toLowerCase()}.pdf`,
            mimeType: 'application/pdf',
            fileName: 'a.pdf',
          },
        ],
      );
    }
  });

  test('message.sent with content is the message (fromMe, once per message); without content it stays a status', async () => {
    const session = uniqueName('ventas-');
    const typed = {
      event: 'message.sent',
      sessionId: session,
      timestamp: '2025-10-15T10:45:00.000Z',
      data: {
        message_id: '3EB0C767D26A1B2E5F8A',
        phone_number: '34612345678',
        type: 'text',
        content: 'Escrito en el teléfono 📱',
        timestamp: '2025-10-15T10:45:00.000Z',
      },
    };
    const first = (await (await signed(typed)).json()) as { accepted: { duplicate: boolean }[] };
    assert.equal(first.accepted[0]!.duplicate, false);
    const again = (await (await signed(typed)).json()) as { accepted: { duplicate: boolean }[] };
    assert.equal(again.accepted[0]!.duplicate, true);
    const sent = await last(`evt.whatsapp.message.sent.${encodeToken(session)}`);
    assert.equal(sent.type, 'whatsapp.message.sent.v1');
    if (sent.type === 'whatsapp.message.sent.v1')
      assert.deepEqual(
        [sent.data.messageId, sent.data.chatId, sent.data.fromMe, sent.data.type, sent.data.text, sent.data.timestamp],
        [
          '3EB0C767D26A1B2E5F8A',
          '34612345678@s.whatsapp.net',
          true,
          'text',
          'Escrito en el teléfono 📱',
          '2025-10-15T10:45:00.000Z',
        ],
      );

    const media = {
      event: 'message.sent',
      sessionId: session,
      data: {
        messageId: 'IMG2',
        chatId: '34612345678@s.whatsapp.net',
        type: 'image',
        media: { url: 'https://media.example.invalid/img2.jpg', mimetype: 'image/jpeg' },
      },
    };
    assert.equal((await signed(media)).status, 200);
    const image = await last(`evt.whatsapp.message.sent.${encodeToken(session)}`);
    assert.deepEqual(
      image.type === 'whatsapp.message.sent.v1' && [image.data.messageId, image.data.type, image.data.media?.mimeType],
      ['IMG2', 'image', 'image/jpeg'],
    );
    const native = {
      event: 'message.sent',
      sessionId: session,
      data: {
        key: { remoteJid: '34612345678@s.whatsapp.net', fromMe: true, id: 'LOC1' },
        message: { locationMessage: { degreesLatitude: 40.4168, degreesLongitude: -3.7038, name: 'Tienda' } },
      },
    };
    assert.equal((await signed(native)).status, 200);
    const location = await last(`evt.whatsapp.message.sent.${encodeToken(session)}`);
    assert.deepEqual(
      location.type === 'whatsapp.message.sent.v1' && [
        location.data.messageId,
        location.data.type,
        location.data.location?.latitude,
      ],
      ['LOC1', 'location', 40.4168],
    );

    const bare = {
      event: 'message.sent',
      sessionId: session,
      data: { message_id: 'M9', phone_number: '34612345678', status: 'sent' },
    };
    const bareAnswer = (await (await signed(bare)).json()) as { accepted: unknown[] };
    assert.equal(bareAnswer.accepted.length, 1);
    const status = await last(`evt.whatsapp.message.status.${encodeToken(session)}`);
    assert.deepEqual(
      status.type === 'whatsapp.message.status.v1' && [status.data.messageId, status.data.status, status.data.chatId],
      ['M9', 'sent', '34612345678@s.whatsapp.net'],
    );
    assert.equal((await last(`evt.whatsapp.message.sent.${encodeToken(session)}`)).id, location.id);
  });

  test('a message with message_id and phone_number but no chat id is accepted; its chat is the number as a JID', async () => {
    const session = uniqueName('ventas-');
    const answer = await signed({
      event: 'message.received',
      sessionId: session,
      data: { message_id: 'PN1', phone_number: '+34612345678', content: 'hola' },
    });
    assert.equal(answer.status, 200);
    const received = await last(`evt.whatsapp.message.received.${encodeToken(session)}`);
    assert.deepEqual(
      received.type === 'whatsapp.message.received.v1' && [
        received.data.messageId,
        received.data.chatId,
        received.data.from,
        received.data.text,
      ],
      ['PN1', '34612345678@s.whatsapp.net', '34612345678@s.whatsapp.net', 'hola'],
    );
    const neither = await signed({
      event: 'message.received',
      sessionId: session,
      data: { message_id: 'PN2', content: 'x' },
    });
    assert.equal(neither.status, 400);
  });

  test('statuses, session, contact and chat events map to their domain events; an unknown event is 200 with ignored', async () => {
    const session = uniqueName('ventas-');
    const t = '2025-10-15T10:31:00.000Z';
    const send = async (event: string, data: Record<string, unknown>) =>
      (await signed({ event, sessionId: session, timestamp: t, data })).json() as Promise<{
        accepted: unknown[];
        ignored?: { type: string }[];
      }>;
    await send('message.delivered', {
      messageId: 'M1',
      chatId: '34612345678@s.whatsapp.net',
      status: 'delivered',
      timestamp: t,
    });
    await send('message.failed', {
      messageId: 'M2',
      chatId: '34612345678@s.whatsapp.net',
      status: 'failed',
      timestamp: t,
      error: 'not on WhatsApp',
    });
    const failed = await last(`evt.whatsapp.message.status.${encodeToken(session)}`);
    assert.deepEqual(
      failed.type === 'whatsapp.message.status.v1' && [
        failed.data.messageId,
        failed.data.status,
        failed.data.error?.message,
      ],
      ['M2', 'failed', 'not on WhatsApp'],
    );
    await send('session.connected', { status: 'connected', phone: '34612345678' });
    const status = await last(`evt.whatsapp.session.status.${encodeToken(session)}`);
    assert.deepEqual(status.type === 'whatsapp.session.status.v1' && [status.data.status, status.data.phone], [
      'connected',
      '34612345678',
    ]);
    await send('session.qr', { status: 'qr', qr: '2@y8F3kd0Q8Jx,dGVzdA==' });
    const qr = await last(`evt.whatsapp.session.qr.${encodeToken(session)}`);
    assert.equal(qr.type === 'whatsapp.session.qr.v1' && qr.data.qr, '2@y8F3kd0Q8Jx,dGVzdA==');
    await send('contact.updated', { jid: '228139525189761@lid', name: 'María López', phone: '34677777777' });
    const contact = await last(`evt.whatsapp.contact.updated.${encodeToken(session)}`);
    assert.deepEqual(contact.type === 'whatsapp.contact.updated.v1' && [contact.data.jid, contact.data.name], [
      '228139525189761@lid',
      'María López',
    ]);
    await send('chat.archived', { chatId: '34612345678@s.whatsapp.net' });
    assert.equal((await last(`evt.whatsapp.chat.archived.${encodeToken(session)}`)).type, 'whatsapp.chat.archived.v1');
    const unknown = await send('presence.update', { chatId: 'x', presence: 'composing' });
    assert.deepEqual([unknown.accepted.length, unknown.ignored?.[0]?.type], [0, 'presence.update']);
    const rawCount = (await bus.jsm.streams.info(StreamNames.WEBHOOKS_RAW, { subjects_filter: 'raw.inboxhub' })).state
      .messages;
    assert.ok(rawCount >= 7);
  });

  test('Standard Webhooks deliveries signed by the official standardwebhooks client are accepted; rotation lists, stale timestamps and forgeries are not', async () => {
    const session = uniqueName('ventas-');
    const raw = JSON.stringify({
      event: 'message.received',
      sessionId: session,
      data: { messageId: 'SW1', chatId: '34612345678@s.whatsapp.net', content: 'firmado 🔏' },
    });
    const id = `msg_${uniqueName('')}`;
    const now = new Date();
    const signature = new Webhook(WHSEC).sign(id, now, raw);
    const headers = {
      'webhook-id': id,
      'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
      'webhook-signature': signature,
    };
    assert.equal((await post(raw, headers)).status, 200);
    assert.equal(
      (await post(raw, { ...headers, 'webhook-signature': `v1,${Buffer.alloc(32).toString('base64')} ${signature}` }))
        .status,
      200,
      'one valid entry among several passes',
    );
    const stale = new Date(now.getTime() - 6 * 60_000);
    assert.equal(
      (
        await post(raw, {
          'webhook-id': id,
          'webhook-timestamp': String(Math.floor(stale.getTime() / 1000)),
          'webhook-signature': new Webhook(WHSEC).sign(id, stale, raw),
        })
      ).status,
      401,
    );
    assert.equal((await post(raw.replace('firmado', 'forjado'), headers)).status, 401);
    assert.equal(
      (
        await post(raw, {
          ...headers,
          'webhook-signature': new Webhook('whsec_b3RoZXIta2V5LW90aGVyLWtleS1vdGhlcg==').sign(id, now, raw),
        })
      ).status,
      401,
    );
    assert.equal(
      (await post(raw, { 'webhook-id': id, 'webhook-timestamp': headers['webhook-timestamp'] })).status,
      401,
    );
    const event = await last(`evt.whatsapp.message.received.${encodeToken(session)}`);
    assert.equal(event.type === 'whatsapp.message.received.v1' && event.data.text, 'firmado 🔏');
  });

  test('the HMAC scheme is configurable (header, algorithm, encoding, prefix); wrong or missing signatures are 401 before parsing', async () => {
    const session = uniqueName('ventas-');
    const raw = JSON.stringify({
      event: 'message.received',
      sessionId: session,
      data: { messageId: 'C1', chatId: '34612345678@s.whatsapp.net', content: 'sha512' },
    });
    const sha512 = createHmac('sha512', SECRET).update(raw).digest('base64');
    assert.equal((await post(raw, { 'x-signature': sha512 }, custom.url)).status, 200);
    assert.equal(
      (await post(raw, hmacHeader(raw), custom.url)).status,
      401,
      'the default header means nothing to a gateway configured otherwise',
    );
    assert.equal((await post('{broken', hmacHeader('{broken', 'wrong'))).status, 401);
    assert.equal((await post('{broken', {})).status, 401);
    assert.equal((await post('{broken', hmacHeader('{broken'))).status, 400);
    const noSession = JSON.stringify({ event: 'message.received', data: { messageId: 'X', chatId: 'y' } });
    const problem = (await (await post(noSession, hmacHeader(noSession))).json()) as { errors: { path: string }[] };
    assert.equal(problem.errors[0]!.path, 'sessionId');
  });
});
