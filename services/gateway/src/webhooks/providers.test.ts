import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DevSecrets } from '@puente/runtime';
import { GatewaySecrets } from '../app.js';
import { compilePath } from '../router.js';

test('gateway - the development secrets libs/runtime keeps for npm start are the descriptors\' own', () => {
  // libs/stack prints DevSecrets and cannot import the gateway, so it keeps a copy; it must not drift.
  for (const [name, value] of Object.entries(GatewaySecrets)) assert.equal(DevSecrets[name as keyof typeof DevSecrets], value, name);
});

test('gateway - route paths compile to the patterns the providers were routed by', () => {
  assert.deepEqual(compilePath('/webhooks/kissflow/:dataset'), { path: /^\/webhooks\/kissflow\/([^/]+)$/, params: ['dataset'] });
  assert.deepEqual(compilePath('/webhooks/evolution/:event([a-z0-9-]+)?'), { path: /^\/webhooks\/evolution(?:\/([a-z0-9-]+))?$/, params: ['event'] });
  assert.deepEqual(compilePath('/webhooks/whatsapp-cloud'), { path: /^\/webhooks\/whatsapp-cloud$/, params: [] });
  assert.deepEqual(compilePath('/api/whatsapp/:session/chats/:chat/read'), { path: /^\/api\/whatsapp\/([^/]+)\/chats\/([^/]+)\/read$/, params: ['session', 'chat'] });
});
