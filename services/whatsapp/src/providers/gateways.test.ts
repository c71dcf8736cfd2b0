import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ProviderError } from '@puente/runtime';
import { FakeEvolution, FakeWaha, outgoingMediaOf } from '../testing/index.js';
import { EvolutionClient, evolutionFrom } from './evolution.js';
import { WahaClient, wahaChatId, wahaFrom } from './waha.js';

const JPEG = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3, 4, 0xff, 0xd9]);
const OGG = Buffer.from('OggS fake opus voice note');
const PDF = Buffer.from('%PDF-1.4 factura 42');
const MP4 = Buffer.from('....ftypisom fake video');
const b64 = (bytes: Buffer) => bytes.toString('base64');

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

  test('text, media (base64 through sendMedia) and voice (sendWhatsAppAudio) with the apikey header return key.id', async () => {
    const text = await client.send('shop', { to: '34612345678@s.whatsapp.net', text: 'hola' });
    const image = await client.send('shop', {
      to: '120363040000000000@g.us',
      text: 'foto',
      media: outgoingMediaOf('image', JPEG, 'image/jpeg'),
    });
    const voice = await client.send('shop', {
      to: '34612345678@s.whatsapp.net',
      text: 'ignored',
      media: outgoingMediaOf('audio', OGG, 'audio/ogg; codecs=opus'),
    });
    const document = await client.send('shop', {
      to: '34612345678@s.whatsapp.net',
      media: outgoingMediaOf('document', PDF, 'application/pdf'),
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
            mimetype: 'image/jpeg',
            media: b64(JPEG),
            caption: 'foto',
          },
          image,
        ],
        ['/message/sendWhatsAppAudio/shop', { number: '34612345678@s.whatsapp.net', audio: b64(OGG) }, voice],
        [
          '/message/sendMedia/shop',
          {
            number: '34612345678@s.whatsapp.net',
            mediatype: 'document',
            mimetype: 'application/pdf',
            media: b64(PDF),
            fileName: `document-${outgoingMediaOf('document', PDF, 'application/pdf').hash.slice(0, 12)}`,
          },
          document,
        ],
      ],
    );
    assert.deepEqual(
      [image, voice, document].map((id) => fake.files.get(id)?.bytes),
      [JPEG, OGG, PDF],
      'the gateway got the same bytes',
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
          media: outgoingMediaOf('sticker', Buffer.from('RIFF....WEBP'), 'image/webp'),
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
            media: outgoingMediaOf('image', JPEG, 'image/jpeg'),
          }),
          await client.send('default', {
            to: '34612345678@s.whatsapp.net',
            media: outgoingMediaOf('document', PDF, 'application/pdf', 'factura.pdf'),
          }),
          await client.send('default', {
            to: '34612345678@s.whatsapp.net',
            media: outgoingMediaOf('audio', OGG, 'audio/ogg; codecs=opus'),
          }),
          await client.send('default', {
            to: '34612345678@s.whatsapp.net',
            media: outgoingMediaOf('video', MP4, 'video/mp4'),
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
                file: { mimetype: 'image/jpeg', data: b64(JPEG) },
                caption: 'foto',
              },
            ],
            [
              '/api/sendFile',
              {
                session: 'default',
                chatId: '34612345678@c.us',
                file: { mimetype: 'application/pdf', filename: 'factura.pdf', data: b64(PDF) },
              },
            ],
            [
              '/api/sendVoice',
              {
                session: 'default',
                chatId: '34612345678@c.us',
                file: { mimetype: 'audio/ogg; codecs=opus', data: b64(OGG) },
              },
            ],
            [
              '/api/sendVideo',
              {
                session: 'default',
                chatId: '34612345678@c.us',
                file: { mimetype: 'video/mp4', data: b64(MP4) },
              },
            ],
          ],
        );
        assert.deepEqual(
          ids.slice(1).map((id) => fake.files.get(id)?.bytes),
          [JPEG, PDF, OGG, MP4],
          'WAHA got the same bytes',
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
