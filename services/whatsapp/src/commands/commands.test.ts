import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { at, chat, ev, evolveAll, S } from '../testing/given.js';

describe('whatsapp projections - commands', () => {
  test('a lost send result is unknown, and becomes sent when reconciled; failed commands fail their message', () => {
    const requested = ev('whatsapp.message.send_requested.v1', {
      session: S,
      provider: 'inboxhub',
      commandId: 'cmd-2',
      chatId: chat,
      type: 'text',
      text: 'x',
      requestedAt: at(1),
    });
    const unknown = ev('whatsapp.command.unknown.v1', {
      session: S,
      commandId: 'cmd-2',
      kind: 'send_message',
      error: { code: 'RESULT_LOST', message: 'lost' },
      at: at(2),
    });
    const state = evolveAll([requested, unknown]);
    assert.equal(state.commands.get('cmd-2')!.status, 'unknown');
    assert.equal(state.messages.get(`${S}:cmd-2`)!.status, 'pending');
    evolveAll(
      [
        ev('whatsapp.command.sent.v1', {
          session: S,
          commandId: 'cmd-2',
          kind: 'send_message',
          providerMessageId: 'W2',
          chatId: chat,
          reconciled: true,
          at: at(3),
        }),
      ],
      state,
      3,
    );
    assert.equal(state.commands.get('cmd-2')!.status, 'sent');
    const failed = evolveAll([
      requested,
      ev('whatsapp.command.failed.v1', {
        session: S,
        commandId: 'cmd-2',
        kind: 'send_message',
        error: { code: '131047', message: 're-engagement' },
        at: at(2),
      }),
    ]);
    assert.deepEqual(
      [failed.messages.get(`${S}:cmd-2`)!.status, failed.commands.get('cmd-2')!.status],
      ['failed', 'failed'],
    );
  });
});

describe('whatsapp projections - who sent a message', () => {
  test('given a send requested by agent ana, when the provider accepts it and its webhook arrives in any order, then the pending message, the provider message and the command all name ana', () => {
    const requested = ev('whatsapp.message.send_requested.v1', {
      session: S,
      provider: 'inboxhub',
      commandId: 'cmd-ana',
      chatId: chat,
      type: 'text',
      text: 'Hola, soy Ana',
      sentBy: 'ana',
      requestedAt: at(1),
    });
    const pending = evolveAll([requested]);
    assert.equal(pending.messages.get(`${S}:cmd-ana`)!.sentBy, 'ana');
    assert.equal(pending.commands.get('cmd-ana')!.sentBy, 'ana');
    const accepted = ev('whatsapp.command.sent.v1', {
      session: S,
      commandId: 'cmd-ana',
      kind: 'send_message',
      providerMessageId: 'W-ANA',
      chatId: chat,
      message: { type: 'text', text: 'Hola, soy Ana', sentBy: 'ana', requestedAt: at(1) },
      at: at(2),
    });
    const webhook = ev('whatsapp.message.sent.v1', {
      session: S,
      provider: 'inboxhub',
      messageId: 'W-ANA',
      chatId: chat,
      fromMe: true,
      type: 'text',
      text: 'Hola, soy Ana',
      timestamp: at(2),
    });
    for (const order of [
      [requested, accepted, webhook],
      [requested, webhook, accepted],
      [webhook, requested, accepted],
    ]) {
      const state = evolveAll(order);
      const doc = state.messages.get(`${S}:W-ANA`)!;
      assert.deepEqual([doc.sentBy, doc.commandId, doc.status], ['ana', 'cmd-ana', 'sent']);
      assert.equal(state.commands.get('cmd-ana')!.sentBy, 'ana');
    }
  });

  test('given a send through an API token (no sentBy), then no document names an agent', () => {
    const state = evolveAll([
      ev('whatsapp.message.send_requested.v1', {
        session: S,
        provider: 'inboxhub',
        commandId: 'cmd-api',
        chatId: chat,
        type: 'text',
        text: 'x',
        requestedAt: at(1),
      }),
    ]);
    assert.equal('sentBy' in state.messages.get(`${S}:cmd-api`)!, false);
    assert.equal('sentBy' in state.commands.get('cmd-api')!, false);
  });
});
