import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Consumers } from '@puente/contracts';
import { DefaultConsumers } from './consumers.js';
import { at, chat, ev, evolveAll, received, S, sameInEveryOrder, status } from './testing/given.js';

describe('whatsapp projections', () => {
  test('content, statuses and archive facts in every order end in one state', () => {
    const sent = ev('whatsapp.message.sent.v1', {
      session: S,
      provider: 'inboxhub',
      messageId: 'OUT1',
      chatId: chat,
      fromMe: true,
      type: 'text',
      text: 'gracias',
      timestamp: at(2),
    });
    const events = [
      received('IN1', 1),
      sent,
      status('OUT1', 'delivered', 3),
      status('OUT1', 'read', 4),
      ev('whatsapp.chat.archived.v1', { session: S, provider: 'inboxhub', chatId: chat, timestamp: at(5) }),
      ev('whatsapp.chat.unarchived.v1', { session: S, provider: 'inboxhub', chatId: chat, timestamp: at(6) }),
    ];
    const state = sameInEveryOrder(events);
    const out = state.messages.get(`${S}:OUT1`)!;
    assert.equal(out.status, 'read');
    assert.equal(out.text, 'gracias');
    assert.equal(out.placeholder, undefined);
    const conversation = state.conversations.get(`${S}:${chat}`)!;
    assert.equal(conversation.unreadCount, 1);
    assert.equal(conversation.archived, false);
    assert.equal(conversation.lastMessage?.messageId, 'OUT1');
    assert.deepEqual(state.sessions.get(S)!.counters, { messagesIn: 1, messagesOut: 1 });
  });
  test('duplicates change nothing, even days later (outside any duplicate window)', () => {
    const events = [
      received('IN1', 1),
      status('IN1', 'read', 2),
      ev('whatsapp.chat.archived.v1', { session: S, provider: 'inboxhub', chatId: chat, timestamp: at(3) }),
    ];
    const once = evolveAll(events);
    const snapshot = structuredClone(once);
    const twice = evolveAll(events, once, 1_000_000); // the same facts again, far later in the stream
    assert.deepEqual(twice, snapshot);
  });
  test('a batch delivered again at the same positions (its acknowledgement was lost) counts nothing twice', () => {
    const events = [
      received('IN1', 1),
      received('IN2', 2),
      ev('whatsapp.message.sent.v1', {
        session: S,
        provider: 'inboxhub',
        messageId: 'OUT1',
        chatId: chat,
        fromMe: true,
        type: 'text',
        text: 'ok',
        timestamp: at(3),
      }),
    ];
    const once = evolveAll(events);
    const snapshot = structuredClone(once);
    const again = evolveAll(events, once); // the same events at the same positions
    assert.deepEqual(again, snapshot);
    assert.equal(again.conversations.get(`${S}:${chat}`)!.unreadCount, 2);
    assert.deepEqual(again.sessions.get(S)!.counters, { messagesIn: 2, messagesOut: 1 });
  });
});

describe('whatsapp read models - wiring', () => {
  test("the read models' consumer, derived from what they handle, is the durable consumer users already have", () => {
    assert.deepEqual(DefaultConsumers.projections, Consumers.whatsappProjections);
  });
});
