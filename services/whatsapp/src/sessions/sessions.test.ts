import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { at, ev, evolveAll, S } from '../testing/given.js';

describe('whatsapp projections - sessions', () => {
  test('sessions: status, QR cleared by a later connection, sync progress and last sync time', () => {
    const state = evolveAll([
      ev('whatsapp.session.qr.v1', { session: S, provider: 'inboxhub', qr: '2@abc', timestamp: at(1) }),
      ev('whatsapp.session.status.v1', {
        session: S,
        provider: 'inboxhub',
        status: 'connected',
        phone: '34600000000',
        timestamp: at(2),
      }),
      ev('whatsapp.session.sync.v1', {
        session: S,
        provider: 'inboxhub',
        syncId: 's1',
        phase: 'started',
        counts: { contacts: 0, chats: 0, messages: 0 },
        timestamp: at(3),
      }),
      ev('whatsapp.session.sync.v1', {
        session: S,
        provider: 'inboxhub',
        syncId: 's1',
        phase: 'completed',
        counts: { contacts: 3, chats: 2, messages: 9 },
        timestamp: at(4),
      }),
    ]);
    const session = state.sessions.get(S)!;
    assert.deepEqual(
      [session.status, session.qr, session.phone, session.lastSyncAt, session.sync?.counts.messages],
      ['connected', undefined, '34600000000', at(4), 9],
    );
  });
});
