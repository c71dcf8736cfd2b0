import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mediaTypeOf, sniffMimeType } from './sniff.js';

describe('media type of a kept file', () => {
  test("the provider's type wins, then the webhook's; a generic octet-stream names nothing", () => {
    const jpeg = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0]);
    assert.equal(mediaTypeOf(jpeg, 'image/png', 'image/gif'), 'image/png');
    assert.equal(mediaTypeOf(jpeg, undefined, 'image/gif'), 'image/gif');
    assert.equal(mediaTypeOf(jpeg, 'application/octet-stream', undefined), 'image/jpeg');
  });
  test('unnamed files are sniffed from a few signatures, else application/octet-stream', () => {
    assert.equal(sniffMimeType(Buffer.from('%PDF-1.7\n')), 'application/pdf');
    assert.equal(sniffMimeType(Buffer.from('OggS\0\x02')), 'audio/ogg');
    assert.equal(sniffMimeType(Buffer.from('RIFF\0\0\0\0WEBPVP8 ')), 'image/webp');
    assert.equal(sniffMimeType(Buffer.from('\0\0\0\x18ftypmp42')), 'video/mp4');
    assert.equal(sniffMimeType(Buffer.from('just some text')), 'application/octet-stream');
    assert.equal(sniffMimeType(Buffer.alloc(0)), 'application/octet-stream');
  });
});
