import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { request, type IncomingMessage } from 'node:http';
import type { Db } from 'mongodb';
import { Channels, Collections } from '@puente/contracts';
import type { Bus } from '@puente/bus';
import { connectTestBus, uniqueName } from '@puente/bus/testing';
import { contentHash, MediaStore, type ByteRange, type StoredMedia } from '@puente/media';
import { testDatabase } from '@puente/projection/testing';
import { startTestRealtime, TEST_REALTIME_SECRET } from '../testing.js';
import { MediaLinks, mediaPath } from './mediaLinks.js';

/** The real store, counting the chunks it hands out, so a test can see reading stop. */
class CountingMediaStore extends MediaStore {
  chunksRead = 0;
  override async *read(media: StoredMedia, range?: ByteRange): AsyncGenerator<Buffer> {
    for await (const chunk of super.read(media, range)) {
      this.chunksRead++;
      yield chunk;
    }
  }
}

const CHUNK = 64 * 1024;
const session = uniqueName('ventas');
const chatA = '34600000001@s.whatsapp.net';
const chatB = '34600000002@s.whatsapp.net';
const video = randomBytes(2 * 1024 * 1024 + 123);
const html = Buffer.from('<!doctype html><script>alert(document.cookie)</script>');

let bus: Bus;
let database: Awaited<ReturnType<typeof testDatabase>>;
let db: Db;
let store: CountingMediaStore;
let rt: Awaited<ReturnType<typeof startTestRealtime>>;

/** A `wa_messages` document as the projections leave it: the event's descriptor plus what the media consumer kept. */
async function message(id: string, chatId: string, media: Record<string, unknown> | undefined, extra = {}) {
  await db.collection(Collections.waMessages).insertOne({
    _id: `${session}:${id}` as never,
    session,
    messageId: id,
    chatId,
    direction: 'in',
    ...(media ? { media } : {}),
    ...extra,
  });
}

async function keep(id: string, chatId: string, bytes: Buffer, contentType: string, fileName?: string) {
  const { media } = await store.put(bytes, { contentType, ...(fileName ? { fileName } : {}) });
  await message(id, chatId, {
    type: 'document',
    url: 'https://mmg.whatsapp.net/expired',
    state: 'stored',
    hash: media.hash,
    bytes: media.length,
    mimeType: contentType,
    ...(fileName ? { fileName } : {}),
  });
  return media;
}

before(async () => {
  bus = await connectTestBus();
  database = await testDatabase();
  db = database.db;
  store = new CountingMediaStore(db, {
    maxItemBytes: 64 * 1024 * 1024,
    budgetBytes: 256 * 1024 * 1024,
    chunkBytes: CHUNK,
  });
  rt = await startTestRealtime(bus, db, {}, undefined, { media: store });
  await keep('m-video', chatA, video, 'video/mp4', 'clip.mp4');
  await keep('m-html', chatA, html, 'text/html', 'página "1".html');
  await keep('m-other-chat', chatB, Buffer.from('for chat B only'), 'image/png');
  await message('m-pending', chatA, { type: 'image', url: 'https://mmg.whatsapp.net/x', mimeType: 'image/jpeg' });
  await message('m-gone', chatA, {
    type: 'audio',
    state: 'unavailable',
    error: { code: 'EXPIRED', message: 'the provider no longer has this media' },
  });
  await message('m-text', chatA, undefined, { text: 'hola' });
  await keep('m-deleted', chatA, Buffer.from('deleted'), 'image/png');
  await db
    .collection(Collections.waMessages)
    .updateOne({ _id: `${session}:m-deleted` as never }, { $set: { _deleted: true } });
  await message('m-lost', chatA, {
    type: 'image',
    state: 'stored',
    hash: contentHash(Buffer.from('never stored')),
    bytes: 12,
    mimeType: 'image/png',
  });
});
after(async () => {
  await rt.close();
  await database.drop();
  await bus.close();
});

const chatAToken = () => rt.token([Channels.whatsappMessages(session, chatA)]);
const bearer = (token = chatAToken()) => ({ authorization: `Bearer ${token}` });
const get = (id: string, headers: Record<string, string> = bearer(), method = 'GET') =>
  fetch(`${rt.url}${mediaPath(session, id)}`, { method, headers });
const bytesOf = async (res: Response) => Buffer.from(await res.arrayBuffer());
async function linkFor(id: string, token = chatAToken()): Promise<{ url: string; expiresAt: string }> {
  const res = await fetch(`${rt.url}${mediaPath(session, id)}/link`, { method: 'POST', headers: bearer(token) });
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.json()) as { url: string; expiresAt: string };
}

describe('realtime - stored media', () => {
  test('GET answers the stored bytes, identical, with the headers of a safe, cacheable answer; HEAD the same head', async () => {
    const res = await get('m-video');
    assert.equal(res.status, 200);
    assert.ok((await bytesOf(res)).equals(video));
    assert.equal(res.headers.get('content-type'), 'video/mp4');
    assert.equal(res.headers.get('content-length'), String(video.length));
    assert.equal(res.headers.get('accept-ranges'), 'bytes');
    assert.equal(res.headers.get('etag'), `"${contentHash(video)}"`);
    assert.equal(res.headers.get('cache-control'), 'private');
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('content-security-policy'), "default-src 'none'; sandbox");
    assert.equal(res.headers.get('content-disposition'), `inline; filename="clip.mp4"; filename*=UTF-8''clip.mp4`);
    const head = await get('m-video', bearer(), 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(video.length));
    assert.equal(head.headers.get('etag'), res.headers.get('etag'));
    assert.equal((await bytesOf(head)).length, 0);
  });

  test('byte ranges: first, middle, last and the last 64 KB answer 206 with exactly those bytes', async () => {
    const length = video.length;
    const cases: [string, number, number][] = [
      ['bytes=0-99', 0, 99],
      [`bytes=${CHUNK - 10}-${3 * CHUNK + 10}`, CHUNK - 10, 3 * CHUNK + 10],
      [`bytes=${length - 100}-`, length - 100, length - 1],
      ['bytes=-65536', length - 65536, length - 1],
      [`bytes=${length - 5}-${length + 1000}`, length - 5, length - 1],
    ];
    for (const [range, start, end] of cases) {
      const res = await get('m-video', { ...bearer(), range });
      assert.equal(res.status, 206, range);
      assert.equal(res.headers.get('content-range'), `bytes ${start}-${end}/${length}`, range);
      assert.equal(res.headers.get('content-length'), String(end - start + 1), range);
      assert.ok((await bytesOf(res)).equals(video.subarray(start, end + 1)), range);
    }
  });

  test('an unsatisfiable range is 416 with the length; several ranges answer the whole item', async () => {
    const unsatisfiable = await get('m-video', { ...bearer(), range: `bytes=${video.length}-` });
    assert.equal(unsatisfiable.status, 416);
    assert.equal(unsatisfiable.headers.get('content-range'), `bytes */${video.length}`);
    assert.equal(((await unsatisfiable.json()) as { code: string }).code, 'range_not_satisfiable');
    const several = await get('m-video', { ...bearer(), range: 'bytes=0-9,100-109' });
    assert.equal(several.status, 200);
    assert.ok((await bytesOf(several)).equals(video));
  });

  test('If-None-Match with the ETag answers 304; If-Range with it honours the range, with another tag it does not', async () => {
    const etag = `"${contentHash(video)}"`;
    const cached = await get('m-video', { ...bearer(), 'if-none-match': etag });
    assert.equal(cached.status, 304);
    assert.equal(cached.headers.get('etag'), etag);
    assert.equal((await bytesOf(cached)).length, 0);
    const changed = await get('m-video', { ...bearer(), 'if-none-match': '"something-else"' });
    assert.equal(changed.status, 200);
    await changed.arrayBuffer();
    const same = await get('m-video', { ...bearer(), range: 'bytes=0-9', 'if-range': etag });
    assert.equal(same.status, 206);
    assert.ok((await bytesOf(same)).equals(video.subarray(0, 10)));
    const stale = await get('m-video', { ...bearer(), range: 'bytes=0-9', 'if-range': '"an-older-item"' });
    assert.equal(stale.status, 200);
    assert.equal((await bytesOf(stale)).length, video.length);
  });

  test('a token for the chat reads it; a token for another chat is 403; none, a bad one, or ?token= is 401', async () => {
    assert.equal((await get('m-other-chat')).status, 403);
    const other = await get('m-other-chat', bearer(rt.token([`whatsapp.messages.${session}.*`])));
    assert.equal(other.status, 200);
    assert.equal(await other.text(), 'for chat B only');
    const none = await get('m-video', {});
    assert.equal(none.status, 401);
    assert.equal(none.headers.get('content-type'), 'application/problem+json');
    assert.equal((await get('m-video', bearer('not-a-jwt'))).status, 401);
    const inUrl = await fetch(`${rt.url}${mediaPath(session, 'm-video')}?token=${chatAToken()}`);
    assert.equal(inUrl.status, 401);
    assert.match(((await inUrl.json()) as { detail: string }).detail, /never takes a token in the URL/);
    const link = await fetch(`${rt.url}${mediaPath(session, 'm-other-chat')}/link`, {
      method: 'POST',
      headers: bearer(),
    });
    assert.equal(link.status, 403, 'no link to a chat the token may not read');
  });

  test('a signed link works without a token, and is refused when expired, moved to another message, or signed under another secret', async () => {
    const link = await linkFor('m-video');
    assert.match(link.url, /^\/media\/[^?]+\/m-video\?expires=\d+&signature=[\w-]{43}$/);
    const expiresAt = Date.parse(link.expiresAt);
    assert.ok(Math.abs(expiresAt - (Date.now() + 300_000)) < 5_000, link.expiresAt);
    const res = await fetch(`${rt.url}${link.url}`);
    assert.equal(res.status, 200);
    assert.ok((await bytesOf(res)).equals(video));
    assert.match(res.headers.get('cache-control')!, /^private, max-age=(29\d|300)$/);
    const ranged = await fetch(`${rt.url}${link.url}`, { headers: { range: 'bytes=-10' } });
    assert.equal(ranged.status, 206);
    assert.ok((await bytesOf(ranged)).equals(video.subarray(-10)));

    const moved = link.url.replace('/m-video?', '/m-html?');
    assert.equal((await fetch(`${rt.url}${moved}`)).status, 403);
    const expired = new MediaLinks([TEST_REALTIME_SECRET], 300).sign(session, 'm-video', Date.now() - 301_000);
    const refused = await fetch(`${rt.url}${expired.url}`);
    assert.equal(refused.status, 403);
    assert.match(((await refused.json()) as { detail: string }).detail, /expired/);
    const foreign = new MediaLinks(['some-other-deployment-secret'], 300).sign(session, 'm-video');
    assert.equal((await fetch(`${rt.url}${foreign.url}`)).status, 403);
    // The link key is derived: the same values signed with the JWT secret itself are not a link.
    const expires = Math.floor(Date.now() / 1000) + 60;
    const raw = createHmac('sha256', TEST_REALTIME_SECRET)
      .update(JSON.stringify([session, 'm-video', expires]))
      .digest('base64url');
    const rawLink = `${mediaPath(session, 'm-video')}?expires=${expires}&signature=${raw}`;
    assert.equal((await fetch(`${rt.url}${rawLink}`)).status, 403);
  });

  test('unknown, deleted and media-less messages are 404; not kept yet is 404 media_not_stored with Retry-After; unavailable is 410', async () => {
    for (const id of ['m-nope', 'm-deleted', 'm-text']) assert.equal((await get(id)).status, 404, id);
    const pending = await get('m-pending');
    assert.equal(pending.status, 404);
    assert.equal(pending.headers.get('retry-after'), '5');
    assert.equal(((await pending.json()) as { code: string }).code, 'media_not_stored');
    const gone = await get('m-gone');
    assert.equal(gone.status, 410);
    const problem = (await gone.json()) as Record<string, unknown>;
    assert.equal(problem.code, 'media_unavailable');
    assert.deepEqual(problem.error, { code: 'EXPIRED', message: 'the provider no longer has this media' });
  });

  test('media the store lost is a 500, never some other bytes', async () => {
    const res = await get('m-lost');
    assert.equal(res.status, 500);
    assert.equal(res.headers.get('content-type'), 'application/problem+json');
  });

  test('HTML is a download under a sandbox CSP, with its name in RFC 6266/8187 form', async () => {
    const res = await get('m-html');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/html');
    assert.equal(
      res.headers.get('content-disposition'),
      `attachment; filename="p_gina _1_.html"; filename*=UTF-8''p%C3%A1gina%20%221%22.html`,
    );
    assert.equal(res.headers.get('content-security-policy'), "default-src 'none'; sandbox");
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.ok((await bytesOf(res)).equals(html));
  });

  test('a client that stops reading holds the store back, and one that goes away stops the reads', async (t) => {
    const big = randomBytes(12 * 1024 * 1024);
    await keep('m-big', chatA, big, 'video/mp4');
    const chunks = Math.ceil(big.length / CHUNK);
    const before = store.chunksRead;
    const req = request(`${rt.url}${mediaPath(session, 'm-big')}`, { headers: bearer() });
    try {
      const res = await new Promise<IncomingMessage>((resolve, reject) => {
        req.once('response', resolve);
        req.once('error', reject);
        req.end();
      });
      assert.equal(res.statusCode, 200);
      res.pause();
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const whilePaused = store.chunksRead - before;
      t.diagnostic(`chunks read for a paused client: ${whilePaused} of ${chunks}`);
      assert.ok(whilePaused < chunks, `read ${whilePaused} of ${chunks} chunks for a client that reads nothing`);
    } finally {
      req.destroy();
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
    const atClose = store.chunksRead - before;
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(store.chunksRead - before, atClose, 'reads went on after the client left');
    assert.ok(atClose < chunks, `read ${atClose} of ${chunks} chunks for a client that left`);
  });
});
