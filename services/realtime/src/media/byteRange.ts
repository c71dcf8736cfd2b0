import type { ByteRange } from '@puente/media';

/** What a `Range` header asks of an item (RFC 9110 §14): all of it, one range of it, or nothing it has. */
export type RangeRequest = { kind: 'whole' } | { kind: 'partial'; range: ByteRange } | { kind: 'unsatisfiable' };

const WHOLE: RangeRequest = { kind: 'whole' };
const UNSATISFIABLE: RangeRequest = { kind: 'unsatisfiable' };
const BYTES = /^bytes=(.*)$/i;
const FROM_TO = /^(\d{1,16})-(\d{0,16})$/;
const SUFFIX = /^-(\d{1,16})$/;

/**
 * The byte range a `Range` header asks for, over an item of `length` bytes: `bytes=a-b` (`b` clamped to
 * the end), `bytes=a-`, `bytes=-n` (the last n). Several ranges answer the whole item (RFC 9110 lets a
 * server ignore `Range`, and one 200 is cheaper than a multipart answer nobody here needs); so do
 * another unit and a header that does not parse. A first byte at or past the end, or `-0`, is unsatisfiable.
 */
export function byteRangeOf(header: string | undefined, length: number): RangeRequest {
  if (header === undefined) return WHOLE;
  const set = BYTES.exec(header.trim());
  if (!set) return WHOLE;
  const specs = set[1]!
    .split(',')
    .map((spec) => spec.trim())
    .filter((spec) => spec !== '');
  if (specs.length !== 1) return WHOLE;
  const spec = specs[0]!;
  const fromTo = FROM_TO.exec(spec);
  if (fromTo) {
    const start = Number(fromTo[1]);
    const last = fromTo[2] === '' ? Infinity : Number(fromTo[2]);
    if (last < start) return WHOLE;
    if (start >= length) return UNSATISFIABLE;
    return { kind: 'partial', range: { start, end: Math.min(last, length - 1) } };
  }
  const suffix = SUFFIX.exec(spec);
  if (!suffix) return WHOLE;
  const count = Number(suffix[1]);
  if (count === 0 || length === 0) return UNSATISFIABLE;
  return { kind: 'partial', range: { start: Math.max(0, length - count), end: length - 1 } };
}

/** The entity tags of an `If-None-Match` or `If-Range` list, weak marks dropped. */
function entityTags(header: string): string[] {
  return header.split(',').map((tag) => tag.trim().replace(/^W\//, ''));
}

/** Whether `If-None-Match` names this entity tag (weak comparison) or is `*`: then the answer is 304. */
export function noneMatchHits(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header.trim() === '*' || entityTags(header).includes(etag);
}

/**
 * Whether a `Range` is to be honoured under `If-Range`: yes without one, or when it is exactly this
 * strong entity tag. A date (the media answers carry no `Last-Modified`) or another tag asks for the
 * whole, current item instead.
 */
export function ifRangeHolds(header: string | undefined, etag: string): boolean {
  return header === undefined || header.trim() === etag;
}
