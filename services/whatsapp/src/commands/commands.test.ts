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
