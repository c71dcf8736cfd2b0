import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { at, chat, ev, evolveAll, received, S } from '../testing/given.js';

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
});
