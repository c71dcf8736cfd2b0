import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { z } from 'zod';
import { decodeEvent } from '@puente/contracts';
import { HttpError } from '@puente/runtime';
import type { Normalized, WebhookRequest } from './webhooks/delivery.js';
import { normalizeKissflow, verifyKissflow } from './webhooks/kissflow/kissflow.js';
import { DEFAULT_INBOXHUB_SCHEME, normalizeInboxHub, verifyInboxHub } from './webhooks/inboxhub/inboxhub.js';
import { normalizeEvolution, verifyEvolution } from './webhooks/evolution/evolution.js';
import { normalizeWaha, verifyWaha } from './webhooks/waha/waha.js';
import { normalizeWhatsAppCloud, verifyMetaSignature } from './webhooks/whatsapp-cloud/whatsappCloud.js';
import { paths, replaceAt } from './mutate.js';
import { SampleProviders, sampleBody, signSample, type SampleProvider, type SampleSecrets } from './samples.js';

/**
 * Every provider's verifier and parser, in process, at volume: 100k generated cases per run by default
 * (`FUZZ_CASES`), most of them correctly signed so they reach the parser. The HTTP-level properties in
 * fuzz.int.test.ts cover the same paths through a real server at lower volume.
 */
const TOTAL = Number(process.env.FUZZ_CASES ?? 100_000);
const PER_PROVIDER = Math.floor(TOTAL / SampleProviders.length);
const SECRETS = { kissflow: 'fuzz-kissflow-secret', inboxhub: 'fuzz-inboxhub-secret', evolution: 'fuzz-evolution-secret', waha: 'fuzz-waha-secret', 'whatsapp-cloud': 'fuzz-meta-app-secret' } satisfies SampleSecrets;
const OTHER = { kissflow: 'x-other', inboxhub: 'x-other', evolution: 'x-other', waha: 'x-other', 'whatsapp-cloud': 'x-other' } satisfies SampleSecrets;

const now = new Date();
const endpoints: Record<SampleProvider, { verify: (r: WebhookRequest) => unknown; normalize: (r: WebhookRequest, verified: unknown) => Normalized }> = {
  kissflow: { verify: (r) => verifyKissflow(r, [SECRETS.kissflow]), normalize: (r) => normalizeKissflow(r) },
  inboxhub: { verify: (r) => verifyInboxHub(r, [SECRETS.inboxhub], DEFAULT_INBOXHUB_SCHEME, now), normalize: (r, v) => normalizeInboxHub(r, (v as { deliveryId?: string }).deliveryId) },
  evolution: { verify: (r) => verifyEvolution(r, [SECRETS.evolution], now), normalize: (r) => normalizeEvolution(r) },
  waha: { verify: (r) => verifyWaha(r, [SECRETS.waha]), normalize: (r) => normalizeWaha(r) },
  'whatsapp-cloud': { verify: (r) => verifyMetaSignature(r, [SECRETS['whatsapp-cloud']]), normalize: (r) => normalizeWhatsAppCloud(r) },
};

const request = (provider: SampleProvider, sample: { path: string; headers: Record<string, string> }, body: Buffer): WebhookRequest => ({
  provider, params: provider === 'kissflow' ? { dataset: decodeURIComponent(sample.path.split('/').at(-1)!) } : {}, headers: sample.headers, body, receivedAt: now,
});

/** A verified body: events that validate against the contracts, or a clear 4xx; never another failure. */
async function parse(provider: SampleProvider, r: WebhookRequest): Promise<'events' | 'rejected'> {
  const endpoint = endpoints[provider];
  const verified = await endpoint.verify(r);
  let normalized: Normalized;
  try {
    normalized = endpoint.normalize(r, verified);
  } catch (error) {
    if (error instanceof HttpError && error.status >= 400 && error.status < 500) return 'rejected';
    if (error instanceof z.ZodError) return 'rejected';
    throw new Error(`${provider}: the parser failed with ${(error as Error).name}: ${(error as Error).message} for ${r.body.toString('utf8').slice(0, 300)}`);
  }
  for (const { event, msgId } of normalized.events) {
    assert.ok(msgId.length > 0 && msgId.length <= 256, `${provider}: a usable message id`);
    decodeEvent(Buffer.from(JSON.stringify(event))); // throws unless the event is valid under its schema
  }
  return 'events';
}

describe(`gateway verifiers and parsers: ${TOTAL.toLocaleString('en')} generated cases`, () => {
  for (const provider of SampleProviders) {
    test(`${provider}: signed bodies with any value anywhere, or any bytes at all, parse to valid events or a 4xx; changed or wrongly signed ones are refused`, async () => {
      const base = sampleBody(provider, 1, now);
      const allPaths = paths(base);
      const outcomes = { events: 0, rejected: 0, forged: 0 };
      // 70%: a valid delivery with one value replaced by any JSON value, correctly signed.
      await fc.assert(fc.asyncProperty(fc.nat(), fc.jsonValue({ maxDepth: 3 }), async (at, value) => {
        const mutated = replaceAt(base, allPaths[at % allPaths.length]!, value);
        const sample = signSample(provider, mutated, SECRETS, { now });
        outcomes[await parse(provider, request(provider, sample, Buffer.from(sample.body, 'utf8')))]++;
      }), { numRuns: Math.floor(PER_PROVIDER * 0.7) });
      // 15%: any bytes, correctly signed (Meta signs what it sends; Inbox Hub and WAHA sign the raw body).
      await fc.assert(fc.asyncProperty(fc.oneof(fc.string({ unit: 'binary' }), fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b).toString('latin1'))), async (text) => {
        const sample = signSample(provider, null, SECRETS, { now });
        const body = Buffer.from(text, 'latin1');
        const resigned = provider === 'kissflow' || provider === 'evolution' ? sample : signRaw(provider, body);
        outcomes[await parse(provider, request(provider, resigned, body))]++;
      }), { numRuns: Math.floor(PER_PROVIDER * 0.15) });
      // 15%: a byte changed after signing, or another secret: never accepted (Kissflow and Evolution
      // cannot sign bodies, so for them only the wrong secret is a forgery).
      await fc.assert(fc.asyncProperty(fc.nat(), fc.integer({ min: 1, max: 255 }), fc.boolean(), async (position, delta, otherSecret) => {
        const sample = signSample(provider, sampleBody(provider, position, now), otherSecret ? OTHER : SECRETS, { now });
        const bytes = Buffer.from(sample.body, 'utf8');
        if (!otherSecret) bytes[position % bytes.length] = (bytes[position % bytes.length]! + delta) % 256;
        if (!otherSecret && (provider === 'kissflow' || provider === 'evolution')) return;
        await assert.rejects(async () => endpoints[provider].verify(request(provider, sample, bytes)), (error: unknown) => error instanceof HttpError && error.status === 401);
        outcomes.forged++;
      }), { numRuns: Math.floor(PER_PROVIDER * 0.15) });
      assert.ok(outcomes.events > 0 && outcomes.rejected > 0, `both outcomes reached: ${JSON.stringify(outcomes)}`);
    });
  }
});

/** The provider's signature over exact bytes (signSample signs a JSON value). */
function signRaw(provider: SampleProvider, body: Buffer): { path: string; headers: Record<string, string> } {
  const probe = signSample(provider, null, SECRETS, { now });
  switch (provider) {
    case 'inboxhub':
      return { path: probe.path, headers: { ...probe.headers, 'x-webhook-signature': `sha256=${createHmac('sha256', SECRETS.inboxhub).update(body).digest('hex')}` } };
    case 'waha':
      return { path: probe.path, headers: { ...probe.headers, 'x-webhook-hmac': createHmac('sha512', SECRETS.waha).update(body).digest('hex') } };
    case 'whatsapp-cloud':
      return { path: probe.path, headers: { ...probe.headers, 'x-hub-signature-256': `sha256=${createHmac('sha256', SECRETS['whatsapp-cloud']).update(body).digest('hex')}` } };
    default:
      return probe;
  }
}
