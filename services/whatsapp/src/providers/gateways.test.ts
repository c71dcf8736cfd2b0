import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ProviderError } from '@puente/runtime';
import { FakeEvolution, FakeWaha } from '../testing/index.js';
import { EvolutionClient, evolutionFrom } from './evolution.js';
import { WahaClient, wahaChatId, wahaFrom } from './waha.js';

const kindOf = async (call: Promise<unknown>): Promise<string> => {
  try {
    await call;
    return 'ok';
  } catch (error) {
    assert.ok(error instanceof ProviderError, String(error));
    return `${error.kind}:${error.code}`;
  }
};

describe('Evolution API client', () => {
  let fake: FakeEvolution;
  let client: EvolutionClient;
  before(async () => {
    fake = await new FakeEvolution({ instances: ['shop'], notOnWhatsApp: ['34600000000'] }).start();
    client = new EvolutionClient({ apiUrl: fake.url, apiKey: fake.apiKey, timeoutMs: 2_000 });
  });
  after(() => fake.stop());

  test('text and media sends use sendText and sendMedia with the apikey header and return key.id', async () => {
    const text = await client.send('shop', { to: '34612345678@s.whatsapp.net', text: 'hola' });
    const image = await client.send('shop', {
      to: '120363040000000000@g.us',
      text: 'foto',
      media: { type: 'image', url: 'https://files.example.test/a.jpg' },
    });
    const voice = await client.send('shop', {
      to: '34612345678@s.whatsapp.net',
      text: 'ignored',
      media: { type: 'audio', url: 'https://files.example.test/v.ogg' },
    });
    assert.deepEqual(
      fake.sends.map((s) => [s.path, s.body, s.messageId]),
      [
        ['/message/sendText/shop', { number: '34612345678@s.whatsapp.net', text: 'hola' }, text],
        [
          '/message/sendMedia/shop',
          {
            number: '120363040000000000@g.us',
            mediatype: 'image',
            media: 'https://files.example.test/a.jpg',
            caption: 'foto',
          },
          image,
        ],
        [
          '/message/sendMedia/shop',
          { number: '34612345678@s.whatsapp.net', mediatype: 'audio', media: 'https://files.example.test/v.ogg' },
          voice,
        ],
      ],
    );
    assert.ok(fake.requests.every((r) => r.apiKey === fake.apiKey));
  });

  test('mark read sends the newest inbound keys; nothing is called without one', async () => {
    await client.markRead('shop', '34612345678@s.whatsapp.net', ['A2', 'A1']);
    await client.markRead('shop', '34612345678@s.whatsapp.net', []);
    assert.deepEqual(fake.reads, [
      { instance: 'shop', id: 'A2', fromMe: false, remoteJid: '34612345678@s.whatsapp.net' },
      { instance: 'shop', id: 'A1', fromMe: false, remoteJid: '34612345678@s.whatsapp.net' },
    ]);
    assert.equal(fake.requests.filter((r) => r.path.startsWith('/chat/')).length, 1);
  });

  test('refusals are classified: unknown instance and number not on WhatsApp rejected, key refused auth, unreadable 2xx unknown', async () => {
    const sends = fake.sends.length;
    assert.equal(await kindOf(client.send('nope', { to: '34612345678@s.whatsapp.net', text: 'x' })), 'rejected:404');
    assert.equal(await kindOf(client.send('shop', { to: '34600000000@s.whatsapp.net', text: 'x' })), 'rejected:400');
    assert.equal(await kindOf(client.send('shop', { to: '34612345678@s.whatsapp.net', text: ' ' })), 'rejected:400');
    assert.equal(
      await kindOf(
        client.send('shop', {
          to: '34612345678@s.whatsapp.net',
          media: { type: 'sticker', url: 'https://x.test/s.webp' },
        }),
      ),
      'rejected:UNSUPPORTED_MEDIA',
    );
    const wrongKey = new EvolutionClient({ apiUrl: fake.url, apiKey: 'wrong', timeoutMs: 2_000 });
    assert.equal(await kindOf(wrongKey.send('shop', { to: '34612345678@s.whatsapp.net', text: 'x' })), 'auth:401');
    assert.equal(fake.sends.length, sends);
    fake.garbleSendAnswers = true;
    try {
      assert.equal(
        await kindOf(client.send('shop', { to: '34612345678@s.whatsapp.net', text: 'x' })),
        'unknown:BAD_RESPONSE',
      );
    } finally {
      fake.garbleSendAnswers = false;
    }
    assert.equal(fake.sends.length, sends + 1);
  });

  test('unconfigured, the reason names the variables', () => {
    assert.match(String(evolutionFrom({ WHATSAPP_TIMEOUT_MS: 1_000 })), /EVOLUTION_API_URL and EVOLUTION_API_KEY/);
  });
});

describe('WAHA client', () => {
  for (const engine of ['NOWEB', 'WEBJS'] as const)
    test(`${engine}: sends with X-Api-Key to the per-type endpoint and reads the message id of its answer`, async () => {
      const fake = await new FakeWaha({ engine, sessions: { default: 'WORKING', down: 'STOPPED' } }).start();
      try {
        const client = new WahaClient({ apiUrl: fake.url, apiKey: fake.apiKey, timeoutMs: 2_000 });
        const ids = [
          await client.send('default', { to: '34612345678@s.whatsapp.net', text: 'hola' }),
          await client.send('default', {
            to: '120363040000000000@g.us',
            text: 'foto',
            media: { type: 'image', url: 'https://files.example.test/a.jpg' },
          }),
          await client.send('default', {
            to: '34612345678@s.whatsapp.net',
            media: { type: 'document', url: 'https://files.example.test/x', fileName: 'factura.pdf' },
          }),
          await client.send('default', {
            to: '34612345678@s.whatsapp.net',
            media: { type: 'audio', url: 'https://f.test/v.ogg' },
          }),
          await client.send('default', {
            to: '34612345678@s.whatsapp.net',
            media: { type: 'video', url: 'https://f.test/v.mp4' },
          }),
        ];
        assert.deepEqual(
          ids,
          fake.sends.map((s) => s.messageId),
        );
        assert.deepEqual(
          fake.sends.map((s) => [s.path, s.body]),
          [
            ['/api/sendText', { session: 'default', chatId: '34612345678@c.us', text: 'hola' }],
            [
              '/api/sendImage',
              {
                session: 'default',
                chatId: '120363040000000000@g.us',
                file: { mimetype: 'image/jpeg', url: 'https://files.example.test/a.jpg' },
                caption: 'foto',
              },
            ],
            [
              '/api/sendFile',
              {
                session: 'default',
                chatId: '34612345678@c.us',
                file: { mimetype: 'application/pdf', url: 'https://files.example.test/x', filename: 'factura.pdf' },
              },
            ],
            [
              '/api/sendVoice',
              {
                session: 'default',
                chatId: '34612345678@c.us',
                file: { mimetype: 'audio/ogg; codecs=opus', url: 'https://f.test/v.ogg' },
              },
            ],
            [
              '/api/sendVideo',
              {
                session: 'default',
                chatId: '34612345678@c.us',
                file: { mimetype: 'video/mp4', url: 'https://f.test/v.mp4' },
              },
            ],
          ],
        );
        assert.ok(fake.requests.every((r) => r.apiKey === fake.apiKey));
        await client.markRead('default', '34612345678@s.whatsapp.net', ['B2', 'B1']);
        assert.deepEqual(fake.seen, [
          { session: 'default', chatId: '34612345678@c.us', messageId: 'false_34612345678@c.us_B2' },
        ]);

        const sends = fake.sends.length;
        assert.equal(
          await kindOf(client.send('ghost', { to: '34612345678@s.whatsapp.net', text: 'x' })),
          'rejected:404',
        );
        assert.equal(
          await kindOf(client.send('down', { to: '34612345678@s.whatsapp.net', text: 'x' })),
          'rejected:422',
        );
        const wrongKey = new WahaClient({ apiUrl: fake.url, apiKey: 'wrong', timeoutMs: 2_000 });
        assert.equal(
          await kindOf(wrongKey.send('default', { to: '34612345678@s.whatsapp.net', text: 'x' })),
          'auth:401',
        );
        assert.equal(fake.sends.length, sends);
        fake.garbleSendAnswers = true;
        assert.equal(
          await kindOf(client.send('default', { to: '34612345678@s.whatsapp.net', text: 'x' })),
          'unknown:BAD_RESPONSE',
        );
        assert.equal(fake.sends.length, sends + 1);
      } finally {
        await fake.stop();
      }
    });

  test('chat ids and the unconfigured reason', () => {
    assert.equal(wahaChatId('34612345678@s.whatsapp.net'), '34612345678@c.us');
    assert.equal(wahaChatId('120363040000000000@g.us'), '120363040000000000@g.us');
    assert.match(String(wahaFrom({ WHATSAPP_TIMEOUT_MS: 1_000 })), /WAHA_API_URL and WAHA_API_KEY/);
  });
});
