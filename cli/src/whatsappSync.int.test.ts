import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { uniqueName } from '@puente/bus/testing';
import { FakeEvolution, FakeWaha } from '@puente/whatsapp/testing';
import { UsageError } from './sendSample.js';
import { whatsappSync } from './whatsapp.js';

let waha: FakeWaha;
let evolution: FakeEvolution;
before(async () => {
  waha = await new FakeWaha().start();
  evolution = await new FakeEvolution().start();
});
after(async () => {
  await waha.stop();
  await evolution.stop();
});

describe('puente whatsapp sync --provider', () => {
  test("reads the WAHA session's contacts, chats and messages and reports what it imported", async () => {
    const session = uniqueName('cli-waha-');
    waha.sessions.set(session, 'WORKING');
    waha.history.set(session, {
      contacts: ['34611111111', '34622222222', '34633333333'].map((n) => ({ id: `${n}@c.us`, name: n })),
      chats: [{ id: '34611111111@s.whatsapp.net' }, { id: '120363000000000000@g.us', name: 'Group' }],
      messages: {
        '34611111111@c.us': [
          { id: 'false_34611111111@c.us_A1', timestamp: 1_700_000_002, from: '34611111111@c.us', body: 'hi' },
          { id: 'true_34611111111@c.us_A2', timestamp: 1_700_000_001, fromMe: true, body: 'hello' },
        ],
        '120363000000000000@g.us': [
          {
            id: 'false_120363000000000000@g.us_B1_34622222222@c.us',
            timestamp: 1_700_000_003,
            participant: '34622222222@c.us',
            body: 'group',
          },
        ],
      },
    });
    const lines: string[] = [];
    const env = { ...process.env, WAHA_API_URL: waha.url, WAHA_API_KEY: waha.apiKey };
    const state = await whatsappSync(['--session', session, '--provider', 'waha'], env, (l) => lines.push(l), false);
    assert.equal(state.phase, 'completed');
    assert.equal(state.provider, 'waha');
    assert.deepEqual(state.counts, { contacts: 3, chats: 2, messages: 3 });
    assert.match(lines.at(-1) ?? '', /3 contacts, 2 chats, 3 messages imported/);
  });

  test('--provider evolution reads the instance through findContacts, findChats and findMessages', async () => {
    const instance = uniqueName('cli-evolution-');
    evolution.instances.add(instance);
    const chat = '34611111111@s.whatsapp.net';
    evolution.history.set(instance, {
      contacts: [{ remoteJid: chat, pushName: 'Ana' }],
      chats: [{ id: null, remoteJid: chat, pushName: 'Ana', unreadCount: 1 }],
      messages: [1, 2, 3].map((i) => ({
        key: { remoteJid: chat, fromMe: false, id: `E${i}` },
        message: { conversation: `hi ${i}` },
        messageTimestamp: 1_700_000_000 + i,
      })),
    });
    const env = { ...process.env, EVOLUTION_API_URL: evolution.url, EVOLUTION_API_KEY: evolution.apiKey };
    const state = await whatsappSync(['--session', instance, '--provider', 'evolution'], env, () => undefined, false);
    assert.deepEqual([state.phase, state.provider], ['completed', 'evolution']);
    assert.deepEqual(state.counts, { contacts: 1, chats: 1, messages: 3 });
    assert.deepEqual(
      [...new Set(evolution.requests.filter((r) => r.path.endsWith(`/${instance}`)).map((r) => r.path.split('/')[2]))],
      ['findContacts', 'findChats', 'findMessages'],
    );
  });

  test('an unknown provider is a usage error', async () => {
    await assert.rejects(
      whatsappSync(['--session', 's', '--provider', 'cloud-api'], { ...process.env }, () => undefined, false),
      UsageError,
    );
  });
});
