import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import type { Bus } from '@puente/bus';
import { connectTestBus, uniqueName } from '@puente/bus/testing';
import { MediaStore } from '@puente/media';
import { testDatabase } from '@puente/projection/testing';
import { signToken } from '@puente/runtime';
import { startTestRealtime, TEST_REALTIME_SECRET } from '../testing.js';
import { catalogue } from './catalogue.js';
import { INBOX_CSP } from './inboxRoutes.js';

const UPLOAD_CAP = 4096;

let bus: Bus;
let database: Awaited<ReturnType<typeof testDatabase>>;
let rt: Awaited<ReturnType<typeof startTestRealtime>>;
let store: MediaStore;

before(async () => {
  bus = await connectTestBus();
  database = await testDatabase();
  store = new MediaStore(database.db, { maxItemBytes: UPLOAD_CAP, budgetBytes: 1 << 20 });
  rt = await startTestRealtime(bus, database.db, { REALTIME_UPLOAD_MAX_BYTES: String(UPLOAD_CAP) }, undefined, {
    uploads: store,
  });
});
after(async () => {
  await rt.close();
  await database.drop();
  await bus.close();
});

/** Every module the page loads, from its entry, following `import ... from '...'` (static and dynamic). */
async function moduleGraph(entry: string): Promise<Map<string, { status: number; headers: Headers; text: string }>> {
  const seen = new Map<string, { status: number; headers: Headers; text: string }>();
  const queue = [entry];
  while (queue.length > 0) {
    const path = queue.shift()!;
    if (seen.has(path)) continue;
    const answer = await fetch(`${rt.url}${path}`);
    const text = await answer.text();
    seen.set(path, { status: answer.status, headers: answer.headers, text });
    for (const match of text.matchAll(/\b(?:from|import)\s*\(?\s*(['"])([^'"]+)\1/g))
      queue.push(new URL(match[2]!, `http://x${path}`).pathname);
  }
  return seen;
}

describe('the inbox page and its assets', () => {
  test('GET /inbox: the HTML with the CSP, nosniff, no-cache, Spanish text from the catalogue, no inline script or style', async () => {
    for (const path of ['/inbox', '/inbox/']) {
      const answer = await fetch(`${rt.url}${path}`);
      assert.equal(answer.status, 200);
      assert.equal(answer.headers.get('content-security-policy'), INBOX_CSP);
      assert.match(INBOX_CSP, /script-src 'self';.*frame-ancestors 'none'/);
      assert.equal(answer.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(answer.headers.get('cache-control'), 'no-cache');
      assert.match(answer.headers.get('content-type') ?? '', /^text\/html/);
      const html = await answer.text();
      assert.match(html, /<html lang="es">/);
      assert.ok(html.includes(catalogue.es['signin.title']));
      assert.doesNotMatch(html, /<style|style=|<script(?![^>]*\bsrc=)/, 'no inline style or script');
      assert.doesNotMatch(html, /\bon[a-z]+=/, 'no inline handlers');
    }
  });

  test('the modules and stylesheet are content-hashed, cached for a year, carry the CSP, and import nothing by bare name', async () => {
    const html = await (await fetch(`${rt.url}/inbox`)).text();
    const entry = /<script type="module" src="([^"]+)"/.exec(html)?.[1];
    const css = /<link rel="stylesheet" href="([^"]+)"/.exec(html)?.[1];
    assert.match(entry ?? '', /^\/inbox\/[0-9a-f]{16}\/page\/main\.js$/);
    const graph = await moduleGraph(entry!);
    const paths = [...graph.keys()];
    for (const name of ['page/main.js', 'page/thread.js', 'catalogue.js', 'vendor/realtime-client.js', 'vendor/uqr.js'])
      assert.ok(
        paths.some((p) => p.endsWith(`/${name}`)),
        `${name} is loaded (${paths.join(', ')})`,
      );
    for (const [path, { status, headers, text }] of [
      ...graph,
      [
        css!,
        await fetch(`${rt.url}${css}`).then(async (r) => ({
          status: r.status,
          headers: r.headers,
          text: await r.text(),
        })),
      ] as const,
    ]) {
      assert.equal(status, 200, path);
      assert.equal(headers.get('content-security-policy'), INBOX_CSP, path);
      assert.equal(headers.get('x-content-type-options'), 'nosniff', path);
      assert.equal(headers.get('cache-control'), 'public, max-age=31536000, immutable', path);
      assert.match(headers.get('content-type') ?? '', path.endsWith('.css') ? /^text\/css/ : /^text\/javascript/, path);
      assert.doesNotMatch(text, /sourceMappingURL/, path);
    }
    // The page never writes markup from data.
    for (const [path, { text }] of graph)
      if (path.includes('/page/')) assert.doesNotMatch(text, /innerHTML|outerHTML|insertAdjacentHTML/, path);
  });

  test('an asset under another hash, or none, is 404 (with the CSP); HEAD works', async () => {
    const stale = await fetch(`${rt.url}/inbox/0123456789abcdef/page/main.js`);
    assert.equal(stale.status, 404);
    assert.equal(stale.headers.get('content-security-policy'), INBOX_CSP);
    assert.equal(stale.headers.get('cache-control'), 'no-store');
    const html = await (await fetch(`${rt.url}/inbox`)).text();
    const base = /href="(\/inbox\/[0-9a-f]{16}\/)inbox\.css"/.exec(html)![1]!;
    assert.equal((await fetch(`${rt.url}${base}page/nothing.js`)).status, 404);
    assert.equal((await fetch(`${rt.url}${base}inbox.css`, { method: 'HEAD' })).status, 200);
  });

  test('the catalogue has the same keys in both languages, none empty', () => {
    const es = Object.keys(catalogue.es).sort();
    assert.deepEqual(Object.keys(catalogue.en).sort(), es);
    for (const language of ['es', 'en'] as const)
      for (const [key, text] of Object.entries(catalogue[language]))
        assert.ok(text.trim().length > 0, `${language} ${key}`);
  });
});

describe('POST /media/<session>: an inbox attachment into the media store', () => {
  const session = uniqueName('ventas-');
  const token = (send?: string[]) =>
    signToken({ sub: 'ana', channels: ['whatsapp.>'], ...(send ? { send } : {}) }, TEST_REALTIME_SECRET, 600);
  const upload = (bytes: Buffer, headers: Record<string, string>, query = '?name=factura%20mayo.pdf', to = session) =>
    fetch(`${rt.url}/media/${encodeURIComponent(to)}${query}`, {
      method: 'POST',
      headers,
      body: new Uint8Array(bytes),
    });

  test('a token with send rights for the session stores the file: 201 with its hash, the bytes are in the store', async () => {
    const bytes = randomBytes(3000);
    const answer = await upload(bytes, {
      authorization: `Bearer ${token([session])}`,
      'content-type': 'application/pdf',
    });
    assert.equal(answer.status, 201, await answer.clone().text());
    assert.equal(answer.headers.get('cache-control'), 'no-store');
    const body = (await answer.json()) as { hash: string; bytes: number; mimeType: string; fileName: string };
    assert.deepEqual(body, {
      hash: createHash('sha256').update(bytes).digest('hex'),
      bytes: 3000,
      mimeType: 'application/pdf',
      fileName: 'factura mayo.pdf',
    });
    const stored = await store.stat(body.hash);
    assert.ok(stored);
    assert.deepEqual(await store.bytes(stored), bytes);
    // No type given: the file name's; `*` may send from every session.
    const guessed = await upload(randomBytes(100), { authorization: `Bearer ${token(['*'])}` }, '?name=foto.jpg');
    assert.equal(guessed.status, 201);
    assert.equal(((await guessed.json()) as { mimeType: string }).mimeType, 'image/jpeg');
  });

  test('refused: no token 401, a token in the URL 401, no send rights (or for another session) 403, over the cap 413, empty 400', async () => {
    const bytes = randomBytes(100);
    assert.equal((await upload(bytes, {})).status, 401);
    assert.equal((await upload(bytes, {}, `?name=a.pdf&token=${token([session])}`)).status, 401);
    const reader = await upload(bytes, { authorization: `Bearer ${token()}` });
    assert.equal(reader.status, 403);
    assert.match(((await reader.json()) as { detail: string }).detail, /may not send from session/);
    assert.equal((await upload(bytes, { authorization: `Bearer ${token(['compras'])}` })).status, 403);
    const big = await upload(randomBytes(UPLOAD_CAP + 1), { authorization: `Bearer ${token([session])}` });
    assert.equal(big.status, 413);
    assert.equal((await upload(Buffer.alloc(0), { authorization: `Bearer ${token([session])}` })).status, 400);
    const expired = signToken({ sub: 'ana', channels: ['>'], send: [session] }, TEST_REALTIME_SECRET, -10);
    assert.equal((await upload(bytes, { authorization: `Bearer ${expired}` })).status, 401);
  });
});
