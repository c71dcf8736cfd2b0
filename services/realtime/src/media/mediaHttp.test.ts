import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { byteRangeOf, ifRangeHolds, noneMatchHits } from './byteRange.js';
import { MediaLinks, mediaPath } from './mediaLinks.js';
import { contentDisposition, servedContentType, servedInline } from './userContent.js';

const TAG = `"${'ab'.repeat(32)}"`;

describe('realtime media - byte ranges and validators', () => {
  test('one range is read as RFC 9110 says: a-b clamped, a-, -n, and unsatisfiable past the end', () => {
    assert.deepEqual(byteRangeOf(undefined, 100), { kind: 'whole' });
    assert.deepEqual(byteRangeOf('bytes=0-9', 100), { kind: 'partial', range: { start: 0, end: 9 } });
    assert.deepEqual(byteRangeOf('bytes=90-500', 100), { kind: 'partial', range: { start: 90, end: 99 } });
    assert.deepEqual(byteRangeOf('bytes=50-', 100), { kind: 'partial', range: { start: 50, end: 99 } });
    assert.deepEqual(byteRangeOf('bytes=-10', 100), { kind: 'partial', range: { start: 90, end: 99 } });
    assert.deepEqual(byteRangeOf('bytes=-1000', 100), { kind: 'partial', range: { start: 0, end: 99 } });
    assert.deepEqual(byteRangeOf('BYTES=5-5', 100), { kind: 'partial', range: { start: 5, end: 5 } });
    assert.deepEqual(byteRangeOf('bytes=100-', 100), { kind: 'unsatisfiable' });
    assert.deepEqual(byteRangeOf('bytes=100-200', 100), { kind: 'unsatisfiable' });
    assert.deepEqual(byteRangeOf('bytes=-0', 100), { kind: 'unsatisfiable' });
  });

  test('several ranges, other units and malformed headers answer the whole item', () => {
    for (const header of [
      'bytes=0-1,5-6',
      'bytes=0-1, -5',
      'items=0-5',
      'bytes=9-3',
      'bytes=x-',
      'bytes=',
      'bytes=1-2-3',
    ])
      assert.deepEqual(byteRangeOf(header, 100), { kind: 'whole' }, header);
  });

  test('every partial range lies inside the item and is never empty', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1e9 }),
        fc.option(fc.nat({ max: 2e9 })),
        fc.option(fc.nat({ max: 2e9 })),
        (length, first, last) => {
          const asked = byteRangeOf(`bytes=${first ?? ''}-${last ?? ''}`, length);
          if (asked.kind !== 'partial') return;
          assert.ok(asked.range.start >= 0 && asked.range.start <= asked.range.end && asked.range.end < length);
        },
      ),
      { numRuns: 2_000 },
    );
  });

  test('If-None-Match matches weakly and on *; If-Range only on the exact strong tag', () => {
    assert.equal(noneMatchHits(TAG, TAG), true);
    assert.equal(noneMatchHits(`"x", W/${TAG}`, TAG), true);
    assert.equal(noneMatchHits('*', TAG), true);
    assert.equal(noneMatchHits('"x"', TAG), false);
    assert.equal(noneMatchHits(undefined, TAG), false);
    assert.equal(ifRangeHolds(undefined, TAG), true);
    assert.equal(ifRangeHolds(TAG, TAG), true);
    assert.equal(ifRangeHolds(`W/${TAG}`, TAG), false);
    assert.equal(ifRangeHolds('Wed, 21 Oct 2015 07:28:00 GMT', TAG), false);
  });
});

describe('realtime media - user content headers', () => {
  test('only images, audio and video are shown in place, never SVG or anything HTML/XML', () => {
    for (const type of ['image/jpeg', 'image/webp', 'audio/ogg; codecs=opus', 'video/mp4', 'IMAGE/PNG'])
      assert.equal(servedInline(type), true, type);
    for (const type of [
      'image/svg+xml',
      'text/html',
      'application/pdf',
      'image/x-html',
      'application/xhtml+xml',
      'text/plain',
    ])
      assert.equal(servedInline(type), false, type);
  });

  test('a malformed stored MIME type is answered as application/octet-stream', () => {
    assert.equal(servedContentType('audio/ogg; codecs=opus'), 'audio/ogg; codecs=opus');
    for (const bad of [undefined, '', 'jpeg', 'text/html\r\nx-evil: 1', 'image/ jpeg', 'a/b/c'])
      assert.equal(servedContentType(bad), 'application/octet-stream', String(bad));
  });

  test('file names go out as RFC 6266 ASCII and RFC 8187 UTF-8 forms, without directories or quotes breaking out', () => {
    assert.equal(contentDisposition(true, undefined), 'inline');
    assert.equal(
      contentDisposition(false, 'report.pdf'),
      `attachment; filename="report.pdf"; filename*=UTF-8''report.pdf`,
    );
    assert.equal(
      contentDisposition(false, '../../etc/Año "1".html'),
      `attachment; filename="A_o _1_.html"; filename*=UTF-8''A%C3%B1o%20%221%22.html`,
    );
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (name) => {
        const header = contentDisposition(false, name);
        assert.match(header, /^attachment(; filename="[\x20-\x7e]*"; filename\*=UTF-8''[A-Za-z0-9!#$&+.^_`|~%-]+)?$/);
        assert.equal(/filename="[^"]*"[^;]/.test(header), false);
      }),
      { numRuns: 2_000 },
    );
  });
});

describe('realtime media - signed links', () => {
  const now = Date.UTC(2026, 0, 1);
  const query = (url: string) => new URL(url, 'http://x').searchParams;

  test('a link verifies for its own message until it expires, and under every secret of a rotation', () => {
    const old = new MediaLinks(['old-secret'], 300);
    const link = old.sign('ventas', 'true_346@c.us_3EB0', now);
    assert.equal(link.url.split('?')[0], mediaPath('ventas', 'true_346@c.us_3EB0'));
    assert.equal(link.expiresAt.getTime(), now + 300_000);
    assert.deepEqual(old.verify('ventas', 'true_346@c.us_3EB0', query(link.url), now + 299_000), {
      ok: true,
      expires: now / 1000 + 300,
    });
    const rotated = new MediaLinks(['new-secret', 'old-secret'], 300);
    assert.equal(rotated.verify('ventas', 'true_346@c.us_3EB0', query(link.url), now).ok, true);
    assert.equal(
      new MediaLinks(['new-secret'], 300).verify('ventas', 'true_346@c.us_3EB0', query(link.url), now).ok,
      false,
    );
  });

  test('an expired, altered, overlong or malformed link is refused', () => {
    const links = new MediaLinks(['secret'], 300);
    const link = query(links.sign('ventas', 'm1', now).url);
    assert.deepEqual(links.verify('ventas', 'm1', link, now + 300_000), { ok: false, reason: 'the link has expired' });
    assert.equal(links.verify('ventas', 'm2', link, now).ok, false);
    assert.equal(links.verify('compras', 'm1', link, now).ok, false);
    const later = new URLSearchParams(link);
    later.set('expires', String(Number(link.get('expires')) + 60));
    assert.equal(links.verify('ventas', 'm1', later, now).ok, false);
    const forever = query(new MediaLinks(['secret'], 3600).sign('ventas', 'm1', now + 3600_000).url);
    assert.equal(links.verify('ventas', 'm1', forever, now).ok, false, 'a link may not outlive the longest TTL');
    for (const bad of ['', 'expires=1', 'signature=abc', 'expires=x&signature=abc'])
      assert.equal(links.verify('ventas', 'm1', new URLSearchParams(bad), now).ok, false, bad);
  });

  test('the signed values cannot run into each other: session "a:b" + id "c" is not session "a" + id "b:c"', () => {
    const links = new MediaLinks(['secret'], 300);
    assert.equal(links.verify('a', 'b:c', query(links.sign('a:b', 'c', now).url), now).ok, false);
  });
});
