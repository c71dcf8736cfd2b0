import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  at,
  chat,
  ev,
  evolveAll,
  plain,
  received,
  S,
  sameInEveryOrder,
  sendRequested,
  status,
} from '../testing/given.js';

describe('whatsapp projections - messages', () => {
  test('a status before its message makes a placeholder that the message completes, counted once', () => {
    const state = evolveAll([status('IN9', 'read', 5)]);
    assert.equal(state.messages.get(`${S}:IN9`)!.placeholder, true);
    evolveAll([received('IN9', 4)], state, 2);
    const doc = state.messages.get(`${S}:IN9`)!;
    assert.equal(doc.placeholder, undefined);
    assert.equal(doc.text, 'hola IN9');
    assert.equal(doc.status, 'read');
    assert.equal(state.conversations.get(`${S}:${chat}`)!.unreadCount, 1);
  });
  test('status only moves forward; failed is terminal unless delivery is proven; Meta may skip delivered', () => {
    assert.equal(
      evolveAll([status('A', 'read', 2), status('A', 'delivered', 1), status('A', 'sent', 0)]).messages.get(`${S}:A`)!
        .status,
      'read',
    );
    assert.equal(
      evolveAll([status('B', 'failed', 1), status('B', 'sent', 2)]).messages.get(`${S}:B`)!.status,
      'failed',
    );
    assert.equal(
      evolveAll([status('C', 'failed', 1), status('C', 'delivered', 2)]).messages.get(`${S}:C`)!.status,
      'delivered',
    );
    assert.equal(evolveAll([status('D', 'sent', 1), status('D', 'read', 3)]).messages.get(`${S}:D`)!.status, 'read');
  });
  test('a send is pending, then one provider document reaches the highest status whichever arrives first', () => {
    const requested = ev('whatsapp.message.send_requested.v1', {
      session: S,
      provider: 'inboxhub',
      commandId: 'cmd-1',
      chatId: chat,
      type: 'text',
      text: 'Su pedido está listo ✅',
      requestedAt: at(1),
    });
    const pending = evolveAll([requested]);
    assert.equal(pending.messages.get(`${S}:cmd-1`)!.status, 'pending');
    assert.equal(pending.commands.get('cmd-1')!.status, 'queued');
    const accepted = ev('whatsapp.command.sent.v1', {
      session: S,
      commandId: 'cmd-1',
      kind: 'send_message',
      providerMessageId: 'WAMID1',
      chatId: chat,
      message: { type: 'text', text: 'Su pedido está listo ✅', requestedAt: at(1) },
      at: at(2),
    });
    const delivered = status('WAMID1', 'delivered', 3);
    for (const order of [
      [requested, accepted, delivered],
      [requested, delivered, accepted],
    ]) {
      const state = evolveAll(order);
      const doc = state.messages.get(`${S}:WAMID1`)!;
      assert.deepEqual(
        [doc.status, doc.text, doc.commandId, doc.direction, doc.placeholder],
        ['delivered', 'Su pedido está listo ✅', 'cmd-1', 'out', undefined],
      );
      const tombstone = state.messages.get(`${S}:cmd-1`)!;
      assert.deepEqual([tombstone._deleted, tombstone.aliasOf], [true, `${S}:WAMID1`]);
      assert.deepEqual(
        [state.commands.get('cmd-1')!.status, state.commands.get('cmd-1')!.providerMessageId],
        ['sent', 'WAMID1'],
      );
      assert.equal(state.conversations.get(`${S}:${chat}`)!.lastMessage?.messageId, 'WAMID1');
    }
  });
  test('a message.sent webhook for a send of this service is the same one document, before or after the answer', () => {
    const requested = sendRequested('cmd-2', 'Le esperamos mañana', 1);
    const accepted = ev('whatsapp.command.sent.v1', {
      session: S,
      commandId: 'cmd-2',
      kind: 'send_message',
      providerMessageId: '3EB0SENT',
      chatId: chat,
      message: { type: 'text', text: 'Le esperamos mañana', requestedAt: at(1) },
      at: at(2),
    });
    const webhook = ev('whatsapp.message.sent.v1', {
      session: S,
      provider: 'inboxhub',
      messageId: '3EB0SENT',
      chatId: '34612345678',
      fromMe: true,
      type: 'text',
      text: 'Le esperamos mañana',
      timestamp: at(2),
    });
    const connected = ev('whatsapp.session.status.v1', {
      session: S,
      provider: 'inboxhub',
      status: 'connected',
      timestamp: at(0),
    });
    const orders = [
      [connected, requested, accepted, webhook],
      [connected, requested, webhook, accepted],
    ];
    const [answerFirst, webhookFirst] = orders.map((order) => plain(evolveAll(order)));
    assert.deepEqual(
      [webhookFirst!.messages, webhookFirst!.conversations, webhookFirst!.sessions],
      [answerFirst!.messages, answerFirst!.conversations, answerFirst!.sessions],
    );
    assert.deepEqual(
      evolveAll(orders[0]!).sessions.get(S)?.counters,
      { messagesIn: 0, messagesOut: 1 },
      'the send counted once',
    );
    for (const order of orders) {
      const state = evolveAll(order);
      const live = [...state.messages.values()].filter((doc) => !doc._deleted);
      assert.deepEqual(
        live.map((doc) => [doc.messageId, doc.direction, doc.status, doc.text, doc.commandId, doc.chatId]),
        [['3EB0SENT', 'out', 'sent', 'Le esperamos mañana', 'cmd-2', chat]],
      );
      assert.equal(state.messages.get(`${S}:cmd-2`)!.aliasOf, `${S}:3EB0SENT`);
      assert.equal(state.commands.get('cmd-2')!.status, 'sent');
      evolveAll([status('3EB0SENT', 'read', 4)], state, 10);
      assert.deepEqual(
        [state.messages.get(`${S}:3EB0SENT`)!.status, state.messages.get(`${S}:3EB0SENT`)!.text],
        ['read', 'Le esperamos mañana'],
      );
    }
  });
  test('a message typed on the phone (message.sent) is an out message, at least sent, whatever comes first', () => {
    const typed = ev('whatsapp.message.sent.v1', {
      session: S,
      provider: 'inboxhub',
      messageId: 'PHONE1',
      chatId: chat,
      fromMe: true,
      type: 'text',
      text: 'Escrito en el teléfono',
      timestamp: at(1),
    });
    const alone = evolveAll([typed]).messages.get(`${S}:PHONE1`)!;
    assert.deepEqual(
      [alone.direction, alone.status, alone.text, alone.placeholder],
      ['out', 'sent', 'Escrito en el teléfono', undefined],
    );
    for (const order of [
      [typed, status('PHONE1', 'delivered', 2)],
      [status('PHONE1', 'delivered', 2), typed],
    ]) {
      const doc = evolveAll(order).messages.get(`${S}:PHONE1`)!;
      assert.deepEqual(
        [doc.direction, doc.status, doc.text, doc.placeholder],
        ['out', 'delivered', 'Escrito en el teléfono', undefined],
      );
    }
  });
});

describe('whatsapp projections - media of a message', () => {
  const HASH = 'a'.repeat(64);
  const image = (id: string, minute: number) =>
    received(id, minute, {
      type: 'image',
      text: 'mira',
      media: { url: 'https://files.example.test/1.jpg', mimeType: 'image/jpeg', caption: 'mira' },
    });
  const stored = (id: string, minute: number) =>
    ev('whatsapp.media.stored.v1', {
      session: S,
      provider: 'inboxhub',
      messageId: id,
      chatId: chat,
      hash: HASH,
      bytes: 1234,
      mimeType: 'image/jpeg',
      fileName: 'foto.jpg',
      timestamp: at(minute),
    });
  const failed = (id: string, code: 'EXPIRED' | 'BUDGET', minute: number) =>
    ev('whatsapp.media.failed.v1', {
      session: S,
      provider: 'inboxhub',
      messageId: id,
      chatId: chat,
      code,
      message: `media ${code}`,
      timestamp: at(minute),
    });

  test('given an image, when its media is stored, then the message shows it stored with hash, bytes and type', () => {
    const state = evolveAll([image('M1', 1), stored('M1', 2)]);
    assert.deepEqual(state.messages.get(`${S}:M1`)!.media, {
      url: 'https://files.example.test/1.jpg',
      mimeType: 'image/jpeg',
      caption: 'mira',
      state: 'stored',
      hash: HASH,
      bytes: 1234,
      fileName: 'foto.jpg',
    });
  });
  test('content and media outcomes in every order end in one state: stored wins over unavailable', () => {
    const state = sameInEveryOrder([image('M2', 1), failed('M2', 'BUDGET', 2), stored('M2', 3)]);
    const doc = state.messages.get(`${S}:M2`)!;
    assert.equal(doc.media?.state, 'stored');
    assert.equal(doc.media?.error, undefined);
    assert.equal(doc.placeholder, undefined);
    assert.equal(doc.text, 'mira');
    assert.equal(state.conversations.get(`${S}:${chat}`)!.unreadCount, 1);
  });
  test('a media event before its message is kept: the message that follows shows it', () => {
    const state = evolveAll([failed('M3', 'EXPIRED', 2)]);
    assert.equal(state.messages.get(`${S}:M3`)!.placeholder, true);
    evolveAll([image('M3', 1)], state, 2);
    const doc = state.messages.get(`${S}:M3`)!;
    assert.equal(doc.placeholder, undefined);
    assert.deepEqual(doc.media?.error, { code: 'EXPIRED', message: 'media EXPIRED' });
    assert.equal(doc.media?.state, 'unavailable');
    assert.equal(doc.media?.url, 'https://files.example.test/1.jpg');
  });
  test('a duplicate media outcome, even much later, changes nothing', () => {
    const once = evolveAll([image('M4', 1), stored('M4', 2)]);
    const snapshot = structuredClone(once);
    assert.deepEqual(evolveAll([stored('M4', 2), failed('M4', 'EXPIRED', 9)], once, 1_000_000), snapshot);
  });
  test('media Puente already holds (a send by hash) is stored from the start', () => {
    const state = evolveAll([
      ev('whatsapp.message.send_requested.v1', {
        session: S,
        provider: 'inboxhub',
        commandId: 'CMD-M5',
        chatId: chat,
        type: 'document',
        media: { hash: HASH, mimeType: 'application/pdf', fileName: 'a.pdf' },
        requestedAt: at(1),
      }),
    ]);
    assert.equal(state.messages.get(`${S}:CMD-M5`)!.media?.state, 'stored');
  });
});
