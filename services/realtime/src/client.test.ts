import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Channels, encodeToken } from '@puente/contracts';
import { channels, encodeToken as clientEncodeToken } from '@puente/realtime-client';
import { signToken, verifyToken } from '@puente/runtime';
import { routeOf } from './routes.js';

describe('realtime - client package and tokens', () => {
  test('the client encodes ids and names channels exactly as the contracts do', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, unit: 'grapheme' }), (id) =>
        assert.equal(clientEncodeToken(id), encodeToken(id)),
      ),
      { numRuns: 2_000 },
    );
    const jid = '34612345678@s.whatsapp.net';
    assert.equal(channels.whatsappMessages('ventas', jid), Channels.whatsappMessages('ventas', jid));
    assert.equal(channels.kissflow('DS_Documentos_Cliente'), Channels.kissflow('DS_Documentos_Cliente'));
    assert.deepEqual(routeOf(channels.whatsappMessages('ventas', jid)), {
      collection: 'wa_messages',
      filter: { session: 'ventas', chatId: jid },
      timeField: 'timestamp',
    });
    assert.equal(routeOf('whatsapp.messages.ventas.bad token'), undefined);
  });

  test('every channel of DESIGN.md routes to its read model, derived from the routes in libs/contracts', () => {
    const jid = '34612345678@s.whatsapp.net';
    const cases: [string, ReturnType<typeof routeOf>][] = [
      [
        Channels.kissflow('DS_Documentos_Cliente'),
        { collection: 'kissflow_records', filter: { dataset: 'DS_Documentos_Cliente' } },
      ],
      [
        Channels.whatsappSessions(),
        { collection: 'wa_sessions', filter: {}, sendersOnly: { fields: ['qr'], sessionField: '_id' } },
      ],
      [Channels.whatsappContacts('ventas'), { collection: 'wa_contacts', filter: { session: 'ventas' } }],
      [Channels.whatsappConversations('ventas'), { collection: 'wa_conversations', filter: { session: 'ventas' } }],
      [
        Channels.whatsappMessages('ventas', jid),
        { collection: 'wa_messages', filter: { session: 'ventas', chatId: jid }, timeField: 'timestamp' },
      ],
      [Channels.bitrixLinks(), { collection: 'bitrix_links', filter: {} }],
      [Channels.commands('ventas'), { collection: 'commands', filter: { session: 'ventas' } }],
      ['whatsapp', undefined],
      ['whatsapp.other', undefined],
      ['whatsapp.sessions.x', undefined],
      ['kissflow.', undefined],
      ['whatsapp.conversations.a.b', undefined],
      ['whatsapp.messages.ventas', undefined],
      ['bitrix.links.x', undefined],
      ['a.b.c.d.e', undefined],
    ];
    for (const [channel, route] of cases) assert.deepEqual(routeOf(channel), route, channel);
    const extra = { channel: 'fixture.notes.<session>', collection: 'fixture_notes' };
    assert.equal(routeOf('fixture.notes.ventas'), undefined);
    assert.deepEqual(routeOf('fixture.notes.ventas', [extra]), {
      collection: 'fixture_notes',
      filter: { session: 'ventas' },
    });
  });

  test('tokens: signed, checked against every secret of a rotation, expiry and claims enforced', async () => {
    const token = signToken({ sub: 'ana', channels: ['whatsapp.>'] }, 'new-secret', 60);
    assert.equal((await verifyToken(token, ['new-secret'])).ok, true);
    assert.equal((await verifyToken(token, ['old-secret', 'new-secret'])).ok, true);
    assert.deepEqual(await verifyToken(token, ['other']), { ok: false, reason: 'bad signature' });
    assert.deepEqual(
      await verifyToken(signToken({ sub: 'ana', channels: ['>'] }, 's', 10, Date.now() - 20_000), ['s']),
      { ok: false, reason: 'token expired' },
    );
    assert.match(
      ((await verifyToken(signToken({ sub: 'ana', channels: [] }, 's'), ['s'])) as { reason: string }).reason,
      /channels/,
    );
    const [header, payload, signature] = token.split('.');
    assert.deepEqual(await verifyToken(`${header}.${payload}x.${signature}`, ['new-secret']), {
      ok: false,
      reason: 'bad signature',
    });
  });
});
