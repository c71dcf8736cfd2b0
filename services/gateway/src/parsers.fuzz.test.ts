import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { z } from 'zod';
import { decodeEvent } from '@puente/contracts';
import { HttpError, RouteTable } from '@puente/runtime';
import type { Normalized, WebhookRequest } from './webhooks/delivery.js';
import type { AnyProvider, SignedRequest, VerifyContext } from './webhooks/provider.js';
import { providers } from './webhooks/providers.js';
import { paths, replaceAt } from './mutate.js';
import { sampleBody, signSample, type SampleSecrets } from './samples.js';

/**
 * Every provider's verifier and parser, in process, at volume: 100k generated cases per run by default
 * (`FUZZ_CASES`), most of them correctly signed so they reach the parser. The HTTP-level properties in
 * fuzz.int.test.ts cover the same paths through a real server at lower volume. Everything comes from the
 * provider descriptors (verify, normalize, sample, signing), so a new provider is fuzzed as it is added.
 */
const TOTAL = Number(process.env.FUZZ_CASES ?? 100_000);
const PER_PROVIDER = Math.floor(TOTAL / providers.length);
const SECRETS: SampleSecrets = Object.fromEntries(
  providers.map((provider) => [provider.name, `fuzz-${provider.name}-secret`]),
);
const OTHER: SampleSecrets = Object.fromEntries(providers.map((provider) => [provider.name, 'x-other']));

const now = new Date();

/** The provider's verification with the fuzz value of its signing secret (its other secrets keep their test values). */
const verify = (provider: AnyProvider, r: WebhookRequest): unknown => {
  const context: VerifyContext<unknown> = {
    secret: (variable) =>
      variable === provider.secrets[0].variable
        ? [SECRETS[provider.name]!]
        : (provider.secrets.find((s) => s.variable === variable)?.test ?? []),
    settings: provider.settings?.defaults,
    now,
  };
  return provider.verify(r, context);
};

/** The path parameters of a signed sample's path, as the gateway's route table reads them (Kissflow's dataset). */
const routeTables = new Map<string, RouteTable>(
  providers.map((provider) => [
    provider.name,
    new RouteTable(
      provider.routes
        .filter((route) => route.method === 'POST')
        .map((route) => ({ method: 'POST', path: route.path, handler: () => undefined })),
    ),
  ]),
);
const paramsOf = (provider: AnyProvider, path: string): Record<string, string> => {
  const found = routeTables.get(provider.name)!.match('POST', path);
  assert.ok(found?.handler, `${provider.name}: its sample path ${path} is one of its routes`);
  return { ...found.params };
};

const request = (provider: AnyProvider, sample: SignedRequest, body: Buffer): WebhookRequest => ({
  provider: provider.name,
  params: paramsOf(provider, sample.path),
  headers: sample.headers,
  body,
  receivedAt: now,
});

/** A verified body: events that validate against the contracts, or a clear 4xx; never another failure. */
async function parse(provider: AnyProvider, r: WebhookRequest): Promise<'events' | 'rejected'> {
  const verified = await verify(provider, r);
  let normalized: Normalized;
  try {
    normalized = provider.normalize(r, verified);
  } catch (error) {
    if (error instanceof HttpError && error.status >= 400 && error.status < 500) return 'rejected';
    if (error instanceof z.ZodError) return 'rejected';
    throw new Error(
      `${provider.name}: the parser failed with ${(error as Error).name}: ${(error as Error).message} for ${r.body.toString('utf8').slice(0, 300)}`,
    );
  }
  for (const { event, msgId } of normalized.events) {
    assert.ok(msgId.length > 0 && msgId.length <= 256, `${provider.name}: a usable message id`);
    decodeEvent(Buffer.from(JSON.stringify(event))); // throws unless the event is valid under its schema
  }
  return 'events';
}

describe(`gateway verifiers and parsers: ${TOTAL.toLocaleString('en')} generated cases`, () => {
  for (const provider of providers) {
    const name = provider.name;
    test(`${name}: signed bodies with any value anywhere, or any bytes at all, parse to valid events or a 4xx; changed or wrongly signed ones are refused`, async () => {
      const base = sampleBody(name, 1, now);
      const allPaths = paths(base);
      const outcomes = { events: 0, rejected: 0, forged: 0 };
      // 70%: a valid delivery with one value replaced by any JSON value, correctly signed.
      await fc.assert(
        fc.asyncProperty(fc.nat(), fc.jsonValue({ maxDepth: 3 }), async (at, value) => {
          const mutated = replaceAt(base, allPaths[at % allPaths.length]!, value);
          const sample = signSample(name, mutated, SECRETS, { now });
          outcomes[await parse(provider, request(provider, sample, Buffer.from(sample.body, 'utf8')))]++;
        }),
        { numRuns: Math.floor(PER_PROVIDER * 0.7) },
      );
      // 15%: any bytes, signed as the provider signs exact bytes (a provider that cannot sign bodies sends its credential).
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            fc.string({ unit: 'binary' }),
            fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b).toString('latin1')),
          ),
          async (text) => {
            const body = Buffer.from(text, 'latin1');
            const signed = provider.sample.sign(body, SECRETS[name]!, { now, params: {} });
            outcomes[await parse(provider, request(provider, signed, body))]++;
          },
        ),
        { numRuns: Math.floor(PER_PROVIDER * 0.15) },
      );
      // 15%: a byte changed after signing, or another secret: never accepted (a provider that cannot sign
      // bodies, as Kissflow and Evolution, gets only the wrong secret as a forgery).
      await fc.assert(
        fc.asyncProperty(
          fc.nat(),
          fc.integer({ min: 1, max: 255 }),
          fc.boolean(),
          async (position, delta, otherSecret) => {
            const sample = signSample(name, sampleBody(name, position, now), otherSecret ? OTHER : SECRETS, { now });
            const bytes = Buffer.from(sample.body, 'utf8');
            if (!otherSecret) bytes[position % bytes.length] = (bytes[position % bytes.length]! + delta) % 256;
            if (!otherSecret && !provider.sample.signsBody) return;
            await assert.rejects(
              async () => verify(provider, request(provider, sample, bytes)),
              (error: unknown) => error instanceof HttpError && error.status === 401,
            );
            outcomes.forged++;
          },
        ),
        { numRuns: Math.floor(PER_PROVIDER * 0.15) },
      );
      assert.ok(outcomes.events > 0 && outcomes.rejected > 0, `both outcomes reached: ${JSON.stringify(outcomes)}`);
    });
  }
});
