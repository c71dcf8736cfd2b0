import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { TEST_SAMPLE_SECRETS, useTestGateway } from './testing.js';
import { paths, replaceAt } from './mutate.js';
import { sampleBody, sampleSecrets, signSample } from './samples.js';
import { providers } from './webhooks/providers.js';

const gw = useTestGateway();

const SECRETS = TEST_SAMPLE_SECRETS;
const RUNS = Number(process.env.FUZZ_RUNS ?? 150);

const post = (sample: { path: string; headers: Record<string, string>; body: string }) =>
  fetch(`${gw.url}${sample.path}`, { method: 'POST', headers: sample.headers, body: sample.body });

describe('gateway - property-based', () => {
  for (const {
    name: provider,
    sample: { signsBody },
  } of providers) {
    test(`${provider}: correctly signed bodies with any value anywhere reach the parser and answer 200 or 400, never 5xx`, async () => {
      const base = sampleBody(provider, 1);
      const allPaths = paths(base);
      await fc.assert(
        fc.asyncProperty(fc.nat(), fc.jsonValue({ maxDepth: 3 }), async (at, value) => {
          const mutated = replaceAt(base, allPaths[at % allPaths.length]!, value);
          const response = await post(signSample(provider, mutated, SECRETS));
          const body = (await response.json()) as { requestId?: string };
          assert.ok(
            [200, 400].includes(response.status),
            `${response.status} for ${JSON.stringify(mutated).slice(0, 300)}`,
          );
          assert.ok(body.requestId);
        }),
        { numRuns: RUNS },
      );
    });

    test(`${provider}: a signed delivery with any byte changed, or signed with another secret, is never accepted`, async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.nat(),
          fc.integer({ min: 1, max: 255 }),
          fc.boolean(),
          async (position, delta, otherSecret) => {
            const sample = signSample(
              provider,
              sampleBody(provider, position),
              otherSecret ? sampleSecrets(() => 'x-other') : SECRETS,
            );
            let body = sample.body;
            if (!otherSecret) {
              const bytes = Buffer.from(body);
              const i = position % bytes.length;
              bytes[i] = (bytes[i]! + delta) % 256;
              body = bytes.toString('latin1');
            }
            const response = await fetch(`${gw.url}${sample.path}`, {
              method: 'POST',
              headers: sample.headers,
              body: Buffer.from(body, otherSecret ? 'utf8' : 'latin1'),
            });
            await response.arrayBuffer();
            // A provider whose signature does not cover the body (Kissflow's Bearer secret, Evolution's JWT):
            // only its header credential is checked, so a changed body is a different delivery, never a forged one.
            if (!signsBody && !otherSecret) assert.ok([200, 400].includes(response.status), String(response.status));
            else assert.equal(response.status, 401);
          },
        ),
        { numRuns: RUNS },
      );
    });
  }

  test('any signature header value that is not the right one is refused', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('x-webhook-signature', 'x-hub-signature-256', 'x-webhook-hmac', 'webhook-signature'),
        fc.string({ maxLength: 200 }),
        async (header, value) => {
          const path = {
            'x-webhook-signature': '/webhooks/inboxhub',
            'webhook-signature': '/webhooks/inboxhub',
            'x-hub-signature-256': '/webhooks/whatsapp-cloud',
            'x-webhook-hmac': '/webhooks/waha',
          }[header];
          const headers: Record<string, string> = {
            'content-type': 'application/json',
            [header]: value.replace(/[\r\n]/g, ''),
          };
          if (header === 'webhook-signature')
            Object.assign(headers, {
              'webhook-id': 'msg_1',
              'webhook-timestamp': String(Math.floor(Date.now() / 1000)),
            });
          const response = await fetch(`${gw.url}${path}`, {
            method: 'POST',
            headers,
            body: '{"event":"message.received"}',
          });
          await response.arrayBuffer();
          assert.equal(response.status, 401);
        },
      ),
      { numRuns: RUNS },
    );
  });
});
