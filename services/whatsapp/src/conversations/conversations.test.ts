import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { DomainEvent } from '@puente/contracts';
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

describe('whatsapp projections - conversations', () => {
  test('mark-read resets the unread count; an older message arriving afterwards does not count; imports never count', () => {
    const markRead = ev('whatsapp.command.sent.v1', {
      session: S,
      commandId: 'c-read',
      kind: 'mark_read',
      chatId: chat,
      at: at(10),
    });
    const state = evolveAll([received('M1', 1), received('M2', 2), markRead, received('M0', 0), received('M11', 11)]);
    assert.equal(state.conversations.get(`${S}:${chat}`)!.unreadCount, 1);
    const imported = ev('whatsapp.message.imported.v1', {
      session: S,
      provider: 'inboxhub',
      messageId: 'H1',
      chatId: chat,
      fromMe: false,
      type: 'text',
      text: 'viejo',
      timestamp: at(12),
    });
    evolveAll(
      [
        imported,
        ev('whatsapp.chat.imported.v1', {
          session: S,
          provider: 'inboxhub',
          chatId: chat,
          name: 'Juan',
          unreadCount: 4,
          timestamp: at(13),
        }),
      ],
      state,
      10,
    );
    const conversation = state.conversations.get(`${S}:${chat}`)!;
    assert.equal(
      conversation.unreadCount,
      4,
      "the provider's count from the sync; the imported message itself adds nothing",
    );
    assert.equal(conversation.name, 'Juan');
    assert.equal(state.messages.get(`${S}:H1`)!.imported, true);
  });
  test('group chats: the conversation is the group, the sender a contact with its push name', () => {
    const group = '120363025246125486@g.us';
    const state = evolveAll([
      received('G1', 1, { chatId: group, from: '34699999999:12@s.whatsapp.net', pushName: 'Ana' }),
    ]);
    const conversation = state.conversations.get(`${S}:${group}`)!;
    assert.equal(conversation.kind, 'group');
    assert.equal(conversation.phone, undefined);
    assert.equal(state.messages.get(`${S}:G1`)!.from, '34699999999@s.whatsapp.net', 'device suffix dropped');
    assert.equal(state.contacts.get(`${S}:34699999999@s.whatsapp.net`)!.pushName, 'Ana');
  });
  test('@lid chats keep their phone alternative when the provider tells it; JIDs are normalized', () => {
    const state = evolveAll([
      received('L1', 1, { chatId: '228139525189761@LID', chatAlt: '34677777777@c.us', from: '228139525189761@lid' }),
    ]);
    const conversation = state.conversations.get(`${S}:228139525189761@lid`)!;
    assert.equal(conversation.kind, 'lid');
    assert.equal(conversation.alt, '34677777777@s.whatsapp.net');
    assert.equal(conversation.phone, '34677777777');
    const contact = evolveAll([
      ev('whatsapp.contact.updated.v1', {
        session: S,
        provider: 'waha',
        jid: '228139525189761@lid',
        phone: '+34677777777',
        name: 'María',
        timestamp: at(1),
      }),
    ]).contacts.get(`${S}:228139525189761@lid`)!;
    assert.deepEqual(
      [contact.kind, contact.lid, contact.phone, contact.name],
      ['lid', '228139525189761@lid', '34677777777', 'María'],
    );
  });
  test('the last message of a send: pending with its agent, then sent under the provider id, then only forward', () => {
    const requested = ev('whatsapp.message.send_requested.v1', {
      session: S,
      provider: 'cloud-api',
      commandId: 'cmd-9',
      chatId: chat,
      type: 'text',
      text: 'Su pedido está listo',
      requestedAt: at(5),
      sentBy: 'ana',
    });
    const state = evolveAll([received('IN1', 1), requested]);
    const last = () => state.conversations.get(`${S}:${chat}`)!.lastMessage!;
    assert.deepEqual(
      [last().messageId, last().status, last().sentBy, last().fromMe],
      ['cmd-9', 'pending', 'ana', true],
    );
    evolveAll(
      [
        ev('whatsapp.command.sent.v1', {
          session: S,
          commandId: 'cmd-9',
          kind: 'send_message',
          providerMessageId: 'wamid.FAKE9',
          chatId: chat,
          message: { type: 'text', text: 'Su pedido está listo', requestedAt: at(5), sentBy: 'ana' },
          at: at(6),
        }),
      ],
      state,
      3,
    );
    assert.deepEqual([last().messageId, last().status, last().sentBy], ['wamid.FAKE9', 'sent', 'ana']);
    evolveAll([status('wamid.FAKE9', 'read', 8)], state, 4);
    assert.equal(last().status, 'read');
    evolveAll([status('wamid.FAKE9', 'delivered', 7), status('wamid.FAKE9', 'sent', 6)], state, 5);
    assert.equal(last().status, 'read', 'late statuses never move it back');
    assert.equal(last().status, state.messages.get(`${S}:wamid.FAKE9`)!.status);
  });
  test("the last message's status follows wa_messages: failed is terminal unless delivery is proven", () => {
    const failedSend = evolveAll([
      sendRequested('cmd-f', 'hola', 1),
      ev('whatsapp.command.failed.v1', {
        session: S,
        commandId: 'cmd-f',
        kind: 'send_message',
        error: { code: '131026', message: 'Message undeliverable' },
        at: at(2),
      }),
    ]);
    assert.deepEqual(
      [
        failedSend.conversations.get(`${S}:${chat}`)!.lastMessage?.messageId,
        failedSend.conversations.get(`${S}:${chat}`)!.lastMessage?.status,
      ],
      ['cmd-f', 'failed'],
      'a failure without chatId in the event still reaches the conversation (through the message)',
    );
    const typed = ev('whatsapp.message.sent.v1', {
      session: S,
      provider: 'cloud-api',
      messageId: 'wamid.FAKE1',
      chatId: chat,
      fromMe: true,
      type: 'text',
      text: 'ya va',
      timestamp: at(3),
    });
    const lastOf = (events: DomainEvent[]) => evolveAll(events).conversations.get(`${S}:${chat}`)!.lastMessage!.status;
    assert.equal(lastOf([typed]), 'sent');
    assert.equal(lastOf([typed, status('wamid.FAKE1', 'failed', 4), status('wamid.FAKE1', 'sent', 5)]), 'failed');
    assert.equal(
      lastOf([typed, status('wamid.FAKE1', 'failed', 4), status('wamid.FAKE1', 'delivered', 6)]),
      'delivered',
    );
    assert.equal(
      lastOf([received('IN1', 1), typed, status('wamid.FAKE1', 'read', 4), received('IN2', 9)]),
      undefined,
      'an incoming last message has no status',
    );
  });
  test('a status without its chat, before its message: the conversation shows it once the message arrives', () => {
    const early = ev('whatsapp.message.status.v1', {
      session: S,
      provider: 'cloud-api',
      messageId: 'wamid.FAKE2',
      status: 'delivered',
      timestamp: at(4),
    });
    const typed = ev('whatsapp.message.sent.v1', {
      session: S,
      provider: 'cloud-api',
      messageId: 'wamid.FAKE2',
      chatId: chat,
      fromMe: true,
      type: 'text',
      text: 'listo',
      timestamp: at(3),
    });
    const state = sameInEveryOrder([
      received('IN1', 1, { provider: 'cloud-api' }),
      early,
      typed,
      status('wamid.FAKE2', 'read', 5),
    ]);
    assert.deepEqual(state.conversations.get(`${S}:${chat}`)!.lastMessage?.status, 'read');
    const onlyEarly = evolveAll([received('IN1', 1), early, typed]);
    assert.equal(onlyEarly.conversations.get(`${S}:${chat}`)!.lastMessage?.status, 'delivered');
  });
  test('lastInboundAt is the newest incoming message, live or imported; outgoing ones leave it', () => {
    const out = ev('whatsapp.message.sent.v1', {
      session: S,
      provider: 'inboxhub',
      messageId: 'wamid.FAKE3',
      chatId: chat,
      fromMe: true,
      type: 'text',
      text: 'gracias',
      timestamp: at(20),
    });
    const imported = ev('whatsapp.message.imported.v1', {
      session: S,
      provider: 'inboxhub',
      messageId: 'H7',
      chatId: chat,
      fromMe: false,
      type: 'text',
      text: 'viejo',
      timestamp: at(7),
    });
    const state = sameInEveryOrder([
      received('IN5', 5),
      out,
      imported,
      received('IN2', 2),
      sendRequested('c', 'x', 30),
    ]);
    assert.equal(state.conversations.get(`${S}:${chat}`)!.lastInboundAt, at(7));
    assert.equal(evolveAll([out]).conversations.get(`${S}:${chat}`)!.lastInboundAt, undefined);
  });
  test('a batch of sends and statuses in every order ends in one conversation', () => {
    const requested = ev('whatsapp.message.send_requested.v1', {
      session: S,
      provider: 'cloud-api',
      commandId: 'cmd-o',
      chatId: chat,
      type: 'text',
      text: 'hola',
      requestedAt: at(2),
      sentBy: 'luis',
    });
    const accepted = ev('whatsapp.command.sent.v1', {
      session: S,
      commandId: 'cmd-o',
      kind: 'send_message',
      providerMessageId: 'wamid.FAKE4',
      chatId: chat,
      message: { type: 'text', text: 'hola', requestedAt: at(2), sentBy: 'luis' },
      at: at(3),
    });
    const webhook = ev('whatsapp.message.sent.v1', {
      session: S,
      provider: 'cloud-api',
      messageId: 'wamid.FAKE4',
      chatId: chat,
      fromMe: true,
      type: 'text',
      text: 'hola',
      timestamp: at(3),
    });
    const orders = [
      [received('IN1', 1), requested, accepted, webhook, status('wamid.FAKE4', 'delivered', 4)],
      [received('IN1', 1), requested, webhook, accepted, status('wamid.FAKE4', 'delivered', 4)],
      [received('IN1', 1), requested, status('wamid.FAKE4', 'delivered', 4), webhook, accepted],
    ];
    const [first, ...rest] = orders.map((order) => plain(evolveAll(order)).conversations);
    for (const other of rest) assert.deepEqual(other, first);
    const last = (first![`${S}:${chat}`] as { lastMessage: Record<string, unknown> }).lastMessage;
    assert.deepEqual([last.messageId, last.status, last.sentBy], ['wamid.FAKE4', 'delivered', 'luis']);
  });
});
