import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { at, chat, ev, evolveAll, received, S, status } from '../testing/given.js';

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
});
