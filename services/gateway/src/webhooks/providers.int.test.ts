import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeEvent, encodeToken, StreamNames } from '@puente/contracts';
import { uniqueName } from '@puente/bus/testing';
import { echoProvider, testSecrets, useTestGateway } from '../testing.js';
import { sampleBody, sampleSecrets, signSample } from '../samples.js';
import { listRawDeliveries, redeliver, renormalize } from './raw.js';
import { providers } from './providers.js';

// The built-in providers plus one defined only in a test fixture: nothing else knows it.
const list = [...providers, echoProvider];
const gw = useTestGateway({ providers: list });
const secrets = sampleSecrets((variable) => testSecrets(list)[variable]?.[0], list);

describe('gateway - a provider is one descriptor', () => {
  test('a fixture provider is routed, sampled, kept, replayable and listed', async () => {
    const board = uniqueName('board');
    // Sampled: the descriptor's sample, signed its way, is accepted; routed: its path reaches it.
    const sample = signSample('echo', sampleBody('echo', 1, new Date(), list), secrets, {
      params: { board },
      providers: list,
    });
    assert.equal(sample.path, `/webhooks/echo/${board}`);
    const response = await fetch(`${gw.url}${sample.path}`, {
      method: 'POST',
      headers: sample.headers,
      body: sample.body,
    });
    assert.equal(response.status, 200);
    const answer = (await response.json()) as { accepted: { id: string; duplicate: boolean }[]; requestId: string };
    assert.deepEqual(
      answer.accepted.map((a) => a.duplicate),
      [false],
    );
    const message = await gw.bus.jsm.streams.getMessage(StreamNames.EVENTS, {
      last_by_subj: `evt.kissflow.record.upserted.${encodeToken(`echo-${board}`)}`,
    });
    const event = decodeEvent(message.data);
    assert.equal(event.id, answer.accepted[0]!.id);
    assert.equal(event.source, 'urn:puente:gateway:echo');

    // Verified: a body signed with another secret is refused.
    const forged = signSample(
      'echo',
      sampleBody('echo', 2, new Date(), list),
      { echo: 'not-the-secret' },
      { params: { board }, providers: list },
    );
    assert.equal(
      (await fetch(`${gw.url}${forged.path}`, { method: 'POST', headers: forged.headers, body: forged.body })).status,
      401,
    );

    // Kept and replayable: its WEBHOOKS_RAW copy re-normalizes to the same delivery, and redelivering is a duplicate.
    const [raw] = (await listRawDeliveries(gw.bus, { provider: 'echo', params: { board } })).filter(
      (r) => r.requestId === answer.requestId,
    );
    assert.ok(raw, 'the delivery is kept under raw.echo');
    assert.equal(raw.body.toString('utf8'), sample.body);
    assert.throws(() => renormalize(raw), /no normalizer for provider echo/);
    assert.equal(renormalize(raw, list).events[0]!.event.type, 'kissflow.record.upserted.v1');
    assert.deepEqual(await redeliver(gw.bus, raw, list), {
      accepted: [{ id: answer.accepted[0]!.id, duplicate: true }],
    });

    // Listed: /readyz names it with its secret and last delivery, beside the built-in providers.
    const ready = (await (await fetch(`${gw.url}/readyz`)).json()) as {
      providers: Record<string, { secret: string; lastDeliveryAt: string | null }>;
    };
    assert.deepEqual(Object.keys(ready.providers), [
      'kissflow',
      'inboxhub',
      'evolution',
      'waha',
      'whatsapp-cloud',
      'echo',
    ]);
    assert.equal(ready.providers.echo!.secret, 'configured');
    assert.ok(ready.providers.echo!.lastDeliveryAt);
  });

  test("another method on a fixture provider's path answers 405 naming the one it accepts", async () => {
    const response = await fetch(`${gw.url}/webhooks/echo/x`, { method: 'GET' });
    assert.equal(response.status, 405);
    assert.equal(response.headers.get('allow'), 'POST');
  });
});

test('the copy kept in WEBHOOKS_RAW holds no credential: a configured secret and the apikey Evolution writes into its bodies are redacted, and it still re-normalizes to the same events', async () => {
  const evolutionSecret = testSecrets(list).EVOLUTION_WEBHOOK_SECRET![0]!;
  const instanceKey = 'B6D711FC-DE4D-4FD5-9365-44120E713976';
  for (const [name, apikey] of [
    ['body apikey is the configured secret', evolutionSecret],
    ['JWT sender, the body carries the instance key', instanceKey],
  ] as const) {
    const body = sampleBody('evolution', 7, new Date(), list) as Record<string, unknown>;
    const messageId = uniqueName('EVO');
    (body.data as { key: { id: string } }).key.id = messageId;
    const text = JSON.stringify({ ...body, apikey });
    const signed =
      apikey === evolutionSecret
        ? { path: '/webhooks/evolution', headers: { 'content-type': 'application/json' } }
        : signSample('evolution', text, secrets, { providers: list });
    const response = await fetch(`${gw.url}${signed.path}`, { method: 'POST', headers: signed.headers, body: text });
    assert.equal(response.status, 200, name);
    const { requestId } = (await response.json()) as { requestId: string };
    const [raw] = (await listRawDeliveries(gw.bus, { provider: 'evolution' })).filter((r) => r.requestId === requestId);
    assert.ok(raw, `${name}: kept`);
    const kept = raw.body.toString('utf8');
    assert.ok(!kept.includes(apikey), `${name}: the key is not in the kept body`);
    assert.ok(!JSON.stringify(raw.headers).includes(apikey), `${name}: nor in its headers`);
    assert.equal((JSON.parse(kept) as { apikey: string }).apikey, '[redacted]', name);
    // Everything else byte for byte.
    assert.equal(kept, text.replace(apikey, '[redacted]'), name);
    const again = renormalize(raw, list).events.map((e) => e.event.type);
    assert.ok(again.includes('whatsapp.message.received.v1'), `${name}: ${again.join(', ')}`);
  }
});
