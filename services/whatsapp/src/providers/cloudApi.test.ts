import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProviderError, requestJson, retryAfterMs } from '@puente/runtime';
import { FakeGraph, outgoingMediaOf } from '../testing/index.js';
import { checkCloudMedia, CloudApiClient } from './cloudApi.js';

test('cloud api - message bodies for text, uploaded media (by id), templates and username (BSUID) recipients', () => {
  assert.deepEqual(CloudApiClient.body({ to: '34612345678@s.whatsapp.net', text: 'hola' }), {
    messaging_product: 'whatsapp',
    recipient_type: 'individual',
    to: '34612345678',
    type: 'text',
    text: { body: 'hola', preview_url: false },
  });
  assert.deepEqual(
    CloudApiClient.body(
      { to: '+34612345678', text: 'factura' },
      { type: 'document', id: '1037543291543636', fileName: 'f.pdf' },
    ),
    {
      messaging_product: 'whatsapp',
      recipient_type: 'individual',
      to: '34612345678',
      type: 'document',
      document: { id: '1037543291543636', caption: 'factura', filename: 'f.pdf' },
    },
  );
  assert.deepEqual(CloudApiClient.body({ to: '34612345678', template: { name: 'order_ready', language: 'es' } }), {
    messaging_product: 'whatsapp',
    recipient_type: 'individual',
    to: '34612345678',
    type: 'template',
    template: { name: 'order_ready', language: { code: 'es' } },
  });
  assert.equal(CloudApiClient.body({ to: 'US.13491208655302741918', text: 'hi' }).recipient, 'US.13491208655302741918');
  assert.equal(retryAfterMs('2'), 2000);
  assert.equal(retryAfterMs(null), undefined);
  assert.ok((retryAfterMs(new Date(Date.now() + 5_000).toUTCString()) ?? 0) > 3_000);
});

test('cloud api - media outside Meta types and sizes is refused before upload; an upload is sent by its id', async () => {
  const refusal = (media: Parameters<typeof checkCloudMedia>[0]) => {
    try {
      checkCloudMedia(media);
      return 'ok';
    } catch (error) {
      assert.ok(error instanceof ProviderError);
      return `${error.kind}:${error.code}`;
    }
  };
  const mb = 1024 * 1024;
  assert.equal(refusal({ type: 'image', mimeType: 'image/png', data: Buffer.alloc(5 * mb) }), 'ok');
  assert.equal(refusal({ type: 'image', mimeType: 'image/png', data: Buffer.alloc(5 * mb + 1) }), 'rejected:TOO_LARGE');
  assert.equal(refusal({ type: 'image', mimeType: 'image/gif', data: Buffer.alloc(10) }), 'rejected:UNSUPPORTED_MEDIA');
  assert.equal(refusal({ type: 'audio', mimeType: 'audio/ogg', data: Buffer.alloc(10) }), 'rejected:UNSUPPORTED_MEDIA');
  assert.equal(refusal({ type: 'audio', mimeType: 'audio/ogg; codecs=opus', data: Buffer.alloc(10) }), 'ok');
  assert.equal(
    refusal({ type: 'sticker', mimeType: 'image/webp', data: Buffer.alloc(500 * 1024 + 1) }),
    'rejected:TOO_LARGE',
  );
  assert.equal(
    refusal({ type: 'document', mimeType: 'application/pdf', data: Buffer.alloc(100 * mb + 1) }),
    'rejected:TOO_LARGE',
  );

  const graph = await new FakeGraph().start();
  try {
    const client = new CloudApiClient({ graphUrl: graph.url, accessToken: graph.accessToken, timeoutMs: 2_000 });
    const number = '106540352242922';
    const pdf = outgoingMediaOf('document', Buffer.from('%PDF-1.4 factura'), 'application/pdf', 'f.pdf');
    const wamid = await client.send(number, { to: '34612345678', text: 'factura', media: pdf });
    const sent = graph.sends.find((s) => s.wamid === wamid)!;
    const document = sent.body.document as { id: string; caption: string; filename: string };
    assert.deepEqual([document.caption, document.filename], ['factura', 'f.pdf']);
    assert.deepEqual(graph.uploads.get(document.id), {
      phoneNumberId: number,
      bytes: pdf.data,
      mimeType: 'application/pdf',
      fileName: 'f.pdf',
    });
    // Meta refuses a send naming a media id it never gave out.
    const unknown = await requestJson(
      `${graph.url}/${number}/messages`,
      {
        method: 'POST',
        headers: { authorization: `Bearer ${graph.accessToken}` },
        body: CloudApiClient.body({ to: '34612345678' }, { type: 'image', id: '999' }),
      },
      2_000,
    );
    assert.equal(unknown.status, 400);
    const wrongToken = new CloudApiClient({ graphUrl: graph.url, accessToken: 'nope', timeoutMs: 2_000 });
    await assert.rejects(
      wrongToken.send(number, { to: '34612345678', media: pdf }),
      (e: unknown) => e instanceof ProviderError && e.kind === 'auth',
    );
    assert.equal(graph.sends.length, 1);
  } finally {
    await graph.stop();
  }
});
