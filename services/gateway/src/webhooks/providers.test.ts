import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DevSecrets, RouteTable } from '@puente/runtime';
import { GatewaySecrets } from '../config.js';
import { providers } from './providers.js';

test("gateway - the development secrets libs/runtime keeps for npm start are the descriptors' own", () => {
  // libs/stack prints DevSecrets and cannot import the gateway, so it keeps a copy; it must not drift.
  for (const [name, value] of Object.entries(GatewaySecrets))
    assert.equal(DevSecrets[name as keyof typeof DevSecrets], value, name);
});

test('gateway - route paths match the requests the providers and the command API were routed by', () => {
  // The paths as the descriptors declare them, and the command API's, in the gateway's route table.
  const paths = [...new Set(providers.flatMap((provider) => provider.routes.map((route) => route.path)))];
  assert.deepEqual(paths, [
    '/webhooks/kissflow/:dataset',
    '/webhooks/inboxhub',
    '/webhooks/evolution/:event([a-z0-9-]+)?',
    '/webhooks/waha',
    '/webhooks/whatsapp-cloud',
  ]);
  const table = new RouteTable(
    [...paths, '/api/whatsapp/:session/messages', '/api/whatsapp/:session/chats/:chat/read'].map((path) => ({
      method: 'POST',
      path,
      handler: () => undefined,
    })),
  );
  const params = (path: string) => {
    const found = table.match('POST', path);
    return found?.handler ? found.params : undefined;
  };
  assert.deepEqual(params('/webhooks/kissflow/DS_Documentos%20Cliente'), { dataset: 'DS_Documentos Cliente' });
  assert.equal(params('/webhooks/kissflow'), undefined);
  assert.equal(params('/webhooks/kissflow/a/b'), undefined);
  assert.deepEqual(params('/webhooks/evolution'), {});
  assert.deepEqual(params('/webhooks/evolution/messages-upsert'), { event: 'messages-upsert' });
  assert.equal(params('/webhooks/evolution/MESSAGES_UPSERT'), undefined);
  assert.deepEqual(params('/webhooks/whatsapp-cloud'), {});
  assert.equal(params('/webhooks/whatsapp-cloud/x'), undefined);
  assert.deepEqual(params('/api/whatsapp/ventas/chats/34612345678%40s.whatsapp.net/read'), {
    session: 'ventas',
    chat: '34612345678@s.whatsapp.net',
  });
  assert.equal(params('/api/whatsapp/ventas/chats//read'), undefined);
});
