import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createEvent, type DomainEvent, type EventData, type EventType } from '@puente/contracts';
import { evolveAll, type InMemoryState } from './index.js';

const ev = <T extends EventType>(type: T, data: EventData<T>): DomainEvent => createEvent(type, data, { source: 'urn:test' }) as DomainEvent;
const S = 'ventas';
const chat = '34612345678@s.whatsapp.net';
const at = (minute: number) => `2026-11-20T10:${String(minute).padStart(2, '0')}:00.000Z`;
const received = (id: string, minute: number, extra: Partial<EventData<'whatsapp.message.received.v1'>> = {}) =>
  ev('whatsapp.message.received.v1', { session: S, provider: 'inboxhub', messageId: id, chatId: chat, from: chat, fromMe: false, pushName: 'Juan', type: 'text', text: `hola ${id}`, timestamp: at(minute), ...extra });
const status = (id: string, value: 'sent' | 'delivered' | 'read' | 'failed', minute: number) => ev('whatsapp.message.status.v1', { session: S, provider: 'cloud-api', messageId: id, chatId: chat, status: value, timestamp: at(minute) });

/** Documents without what depends on stream positions (versions, first-content position). */
function plain(state: InMemoryState) {
  const strip = (m: Map<string, object>) => Object.fromEntries([...m].sort(([a], [b]) => a.localeCompare(b)).map(([k, d]) => {
    const { _v, firstContentAt, _counted, ...rest } = d as Record<string, unknown>;
    void _v;
    void firstContentAt;
    void _counted;
    return [k, rest];
  }));
  return { messages: strip(state.messages), conversations: strip(state.conversations), sessions: strip(state.sessions), contacts: strip(state.contacts), commands: strip(state.commands) };
}

function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]));
}

/** Every order of `events` ends in the state of the first order; returns that state. */
function sameInEveryOrder(events: readonly DomainEvent[]): InMemoryState {
  const reference = evolveAll(events);
  for (const order of permutations(events)) assert.deepEqual(plain(evolveAll(order)), plain(reference), `order ${order.map((e) => e.type.split('.').slice(1, 3).join('.')).join(', ')}`);
  return reference;
}

describe('whatsapp projections', () => {
  test('content, statuses and archive facts in every order end in one state', () => {
    const sent = ev('whatsapp.message.sent.v1', { session: S, provider: 'inboxhub', messageId: 'OUT1', chatId: chat, fromMe: true, type: 'text', text: 'gracias', timestamp: at(2) });
    const events = [received('IN1', 1), sent, status('OUT1', 'delivered', 3), status('OUT1', 'read', 4), ev('whatsapp.chat.archived.v1', { session: S, provider: 'inboxhub', chatId: chat, timestamp: at(5) }), ev('whatsapp.chat.unarchived.v1', { session: S, provider: 'inboxhub', chatId: chat, timestamp: at(6) })];
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
    const events = [received('IN1', 1), status('IN1', 'read', 2), ev('whatsapp.chat.archived.v1', { session: S, provider: 'inboxhub', chatId: chat, timestamp: at(3) })];
    const once = evolveAll(events);
    const snapshot = structuredClone(once);
    const twice = evolveAll(events, once, 1_000_000); // the same facts again, far later in the stream
    assert.deepEqual(twice, snapshot);
  });

  test('a batch delivered again at the same positions (its acknowledgement was lost) counts nothing twice', () => {
    const events = [received('IN1', 1), received('IN2', 2), ev('whatsapp.message.sent.v1', { session: S, provider: 'inboxhub', messageId: 'OUT1', chatId: chat, fromMe: true, type: 'text', text: 'ok', timestamp: at(3) })];
    const once = evolveAll(events);
    const snapshot = structuredClone(once);
    const again = evolveAll(events, once); // the same events at the same positions
    assert.deepEqual(again, snapshot);
    assert.equal(again.conversations.get(`${S}:${chat}`)!.unreadCount, 2);
    assert.deepEqual(again.sessions.get(S)!.counters, { messagesIn: 2, messagesOut: 1 });
  });

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
    assert.equal(evolveAll([status('A', 'read', 2), status('A', 'delivered', 1), status('A', 'sent', 0)]).messages.get(`${S}:A`)!.status, 'read');
    assert.equal(evolveAll([status('B', 'failed', 1), status('B', 'sent', 2)]).messages.get(`${S}:B`)!.status, 'failed');
    assert.equal(evolveAll([status('C', 'failed', 1), status('C', 'delivered', 2)]).messages.get(`${S}:C`)!.status, 'delivered');
    assert.equal(evolveAll([status('D', 'sent', 1), status('D', 'read', 3)]).messages.get(`${S}:D`)!.status, 'read');
  });

  test('mark-read resets the unread count; an older message arriving afterwards does not count; imports never count', () => {
    const markRead = ev('whatsapp.command.sent.v1', { session: S, commandId: 'c-read', kind: 'mark_read', chatId: chat, at: at(10) });
    const state = evolveAll([received('M1', 1), received('M2', 2), markRead, received('M0', 0), received('M11', 11)]);
    assert.equal(state.conversations.get(`${S}:${chat}`)!.unreadCount, 1);
    const imported = ev('whatsapp.message.imported.v1', { session: S, provider: 'inboxhub', messageId: 'H1', chatId: chat, fromMe: false, type: 'text', text: 'viejo', timestamp: at(12) });
    evolveAll([imported, ev('whatsapp.chat.imported.v1', { session: S, provider: 'inboxhub', chatId: chat, name: 'Juan', unreadCount: 4, timestamp: at(13) })], state, 10);
    const conversation = state.conversations.get(`${S}:${chat}`)!;
    assert.equal(conversation.unreadCount, 4, 'the provider\'s count from the sync; the imported message itself adds nothing');
    assert.equal(conversation.name, 'Juan');
    assert.equal(state.messages.get(`${S}:H1`)!.imported, true);
  });

  test('group chats: the conversation is the group, the sender a contact with its push name', () => {
    const group = '120363025246125486@g.us';
    const state = evolveAll([received('G1', 1, { chatId: group, from: '34699999999:12@s.whatsapp.net', pushName: 'Ana' })]);
    const conversation = state.conversations.get(`${S}:${group}`)!;
    assert.equal(conversation.kind, 'group');
    assert.equal(conversation.phone, undefined);
    assert.equal(state.messages.get(`${S}:G1`)!.from, '34699999999@s.whatsapp.net', 'device suffix dropped');
    assert.equal(state.contacts.get(`${S}:34699999999@s.whatsapp.net`)!.pushName, 'Ana');
  });

  test('@lid chats keep their phone alternative when the provider tells it; JIDs are normalized', () => {
    const state = evolveAll([received('L1', 1, { chatId: '228139525189761@LID', chatAlt: '34677777777@c.us', from: '228139525189761@lid' })]);
    const conversation = state.conversations.get(`${S}:228139525189761@lid`)!;
    assert.equal(conversation.kind, 'lid');
    assert.equal(conversation.alt, '34677777777@s.whatsapp.net');
    assert.equal(conversation.phone, '34677777777');
    const contact = evolveAll([ev('whatsapp.contact.updated.v1', { session: S, provider: 'waha', jid: '228139525189761@lid', phone: '+34677777777', name: 'María', timestamp: at(1) })]).contacts.get(`${S}:228139525189761@lid`)!;
    assert.deepEqual([contact.kind, contact.lid, contact.phone, contact.name], ['lid', '228139525189761@lid', '34677777777', 'María']);
  });

  test('a Cloud API contact known only by username (user_id) is keyed by its BSUID', () => {
    const state = evolveAll([ev('whatsapp.contact.updated.v1', { session: '106540352242922', provider: 'cloud-api', jid: 'US.13491208655302741918', name: 'Pat', timestamp: at(1) })]);
    const contact = state.contacts.get('106540352242922:US.13491208655302741918@bsuid')!;
    assert.deepEqual([contact.kind, contact.userId, contact.phone, contact.name], ['bsuid', 'US.13491208655302741918', undefined, 'Pat']);
  });

  test('a send is pending, then one provider document reaches the highest status whichever arrives first', () => {
    const requested = ev('whatsapp.message.send_requested.v1', { session: S, provider: 'inboxhub', commandId: 'cmd-1', chatId: chat, type: 'text', text: 'Su pedido está listo ✅', requestedAt: at(1) });
    const pending = evolveAll([requested]);
    assert.equal(pending.messages.get(`${S}:cmd-1`)!.status, 'pending');
    assert.equal(pending.commands.get('cmd-1')!.status, 'queued');
    const accepted = ev('whatsapp.command.sent.v1', { session: S, commandId: 'cmd-1', kind: 'send_message', providerMessageId: 'WAMID1', chatId: chat, message: { type: 'text', text: 'Su pedido está listo ✅', requestedAt: at(1) }, at: at(2) });
    const delivered = status('WAMID1', 'delivered', 3);
    for (const order of [[requested, accepted, delivered], [requested, delivered, accepted]]) {
      const state = evolveAll(order);
      const doc = state.messages.get(`${S}:WAMID1`)!;
      assert.deepEqual([doc.status, doc.text, doc.commandId, doc.direction, doc.placeholder], ['delivered', 'Su pedido está listo ✅', 'cmd-1', 'out', undefined]);
      const tombstone = state.messages.get(`${S}:cmd-1`)!;
      assert.deepEqual([tombstone._deleted, tombstone.aliasOf], [true, `${S}:WAMID1`]);
      assert.deepEqual([state.commands.get('cmd-1')!.status, state.commands.get('cmd-1')!.providerMessageId], ['sent', 'WAMID1']);
      assert.equal(state.conversations.get(`${S}:${chat}`)!.lastMessage?.messageId, 'WAMID1');
    }
  });

  test('a lost send result is unknown, and becomes sent when reconciled; failed commands fail their message', () => {
    const requested = ev('whatsapp.message.send_requested.v1', { session: S, provider: 'inboxhub', commandId: 'cmd-2', chatId: chat, type: 'text', text: 'x', requestedAt: at(1) });
    const unknown = ev('whatsapp.command.unknown.v1', { session: S, commandId: 'cmd-2', kind: 'send_message', error: { code: 'RESULT_LOST', message: 'lost' }, at: at(2) });
    const state = evolveAll([requested, unknown]);
    assert.equal(state.commands.get('cmd-2')!.status, 'unknown');
    assert.equal(state.messages.get(`${S}:cmd-2`)!.status, 'pending');
    evolveAll([ev('whatsapp.command.sent.v1', { session: S, commandId: 'cmd-2', kind: 'send_message', providerMessageId: 'W2', chatId: chat, reconciled: true, at: at(3) })], state, 3);
    assert.equal(state.commands.get('cmd-2')!.status, 'sent');
    const failed = evolveAll([requested, ev('whatsapp.command.failed.v1', { session: S, commandId: 'cmd-2', kind: 'send_message', error: { code: '131047', message: 're-engagement' }, at: at(2) })]);
    assert.deepEqual([failed.messages.get(`${S}:cmd-2`)!.status, failed.commands.get('cmd-2')!.status], ['failed', 'failed']);
  });

  test('sessions: status, QR cleared by a later connection, sync progress and last sync time', () => {
    const state = evolveAll([
      ev('whatsapp.session.qr.v1', { session: S, provider: 'inboxhub', qr: '2@abc', timestamp: at(1) }),
      ev('whatsapp.session.status.v1', { session: S, provider: 'inboxhub', status: 'connected', phone: '34600000000', timestamp: at(2) }),
      ev('whatsapp.session.sync.v1', { session: S, provider: 'inboxhub', syncId: 's1', phase: 'started', counts: { contacts: 0, chats: 0, messages: 0 }, timestamp: at(3) }),
      ev('whatsapp.session.sync.v1', { session: S, provider: 'inboxhub', syncId: 's1', phase: 'completed', counts: { contacts: 3, chats: 2, messages: 9 }, timestamp: at(4) }),
    ]);
    const session = state.sessions.get(S)!;
    assert.deepEqual([session.status, session.qr, session.phone, session.lastSyncAt, session.sync?.counts.messages], ['connected', undefined, '34600000000', at(4), 9]);
  });
});
