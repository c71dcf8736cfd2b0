import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CloudApiClient } from './cloudApi.js';
import { retryAfterMs } from '@puente/runtime';

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
