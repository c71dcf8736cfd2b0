import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { MediaCorruptError, MediaRejectedError, type MediaStore } from '@puente/media';
import { mimeOfFileName, type SendMessageV1 } from '@puente/contracts';
import { fetchBytes, MediaUnavailableError, type Fetched } from '../media/source.js';

/** The kinds of media a send carries. */
export type OutgoingMediaType = NonNullable<SendMessageV1['media']>['type'];

/**
 * A send's media with its bytes in hand (and in the media store): what every provider client uploads
 * or inlines. Obtained before any provider is called, so a file that cannot be had is never "sent".
 */
export interface OutgoingMedia {
  type: OutgoingMediaType;
  data: Buffer;
  /** What the sender named, else what the file's source said, else its extension's, else the type's usual one. */
  mimeType: string;
  fileName?: string | undefined;
  /** Its key in the media store. */
  hash: string;
}

/**
 * Why a send's media could not be had: `MEDIA_NOT_FOUND` (no stored item with that hash),
 * `MEDIA_CORRUPT` (stored, but its chunks are damaged), `MEDIA_UNAVAILABLE` (the URL could not be
 * fetched: refused scheme, network, timeout, a non-2xx answer), `TOO_LARGE`, `EMPTY`, `BUDGET` (the
 * store's own refusals). The send ends `failed` with this code; no provider was called.
 */
export type OutgoingMediaFailure =
  'MEDIA_NOT_FOUND' | 'MEDIA_CORRUPT' | 'MEDIA_UNAVAILABLE' | 'TOO_LARGE' | 'EMPTY' | 'BUDGET';

/** A send's media that could not be had. */
export class OutgoingMediaError extends Error {
  override readonly name = 'OutgoingMediaError';
  constructor(
    readonly code: OutgoingMediaFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** How a URL given to a send is fetched. */
export interface MediaFetchOptions {
  /** The whole download (answer and body) must finish within this. */
  timeoutMs: number;
  /**
   * Whether URLs whose host is (or resolves to) a loopback, private, link-local or otherwise
   * non-public address may be fetched, redirects included (MEDIA_FETCH_PRIVATE_NETWORKS). Denied by
   * default: a send's URL comes from whoever may send, and the service's network is not theirs.
   */
  privateNetworks?: 'allow' | 'deny';
}

/** Addresses a send's URL may not reach unless private networks are allowed (IANA special-purpose ranges). */
const NOT_PUBLIC = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  NOT_PUBLIC.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const)
  NOT_PUBLIC.addSubnet(net, prefix, 'ipv6');

function isPublicAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mapped) return !NOT_PUBLIC.check(mapped, 'ipv4');
  return !NOT_PUBLIC.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4');
}

/** Refuses a host that is, or resolves to, an address that is not public. */
async function checkPublicHost(hostname: string): Promise<void> {
  const host = hostname.replace(/^\[|\]$/g, '');
  const addresses = isIP(host) ? [{ address: host }] : await lookup(host, { all: true, verbatim: true });
  const inner = addresses.find((a) => !isPublicAddress(a.address));
  if (inner)
    throw new Error(
      `${hostname} is not on a public network (${inner.address}); MEDIA_FETCH_PRIVATE_NETWORKS=allow permits it`,
    );
}

/** The usual MIME type of each kind, for media nothing else names a type for. */
const MIME_BY_TYPE: Record<OutgoingMediaType, string> = {
  image: 'image/jpeg',
  video: 'video/mp4',
  audio: 'audio/ogg; codecs=opus',
  document: 'application/octet-stream',
  sticker: 'image/webp',
};

/** A source's MIME type is taken unless it is the generic one (which says nothing). */
const informative = (mime: string | null | undefined): string | undefined => {
  const value = mime?.trim();
  return value && !/^application\/octet-stream\b/i.test(value) && !/^binary\//i.test(value) ? value : undefined;
};

/**
 * The bytes of a send's media: a stored item by its hash, or a URL fetched here (http/https only, within
 * the timeout, never more than the store's item cap read) and kept in the store. Throws
 * {@link OutgoingMediaError}; anything else thrown is the store's own failure (a database error: retry).
 */
export async function obtainOutgoingMedia(
  store: MediaStore,
  media: NonNullable<SendMessageV1['media']>,
  options: MediaFetchOptions,
): Promise<OutgoingMedia> {
  if (media.hash !== undefined) {
    const stored = await store.stat(media.hash);
    if (!stored) throw new OutgoingMediaError('MEDIA_NOT_FOUND', `no stored media has the hash ${media.hash}`);
    let data: Buffer;
    try {
      data = await store.bytes(stored);
    } catch (error) {
      if (error instanceof MediaCorruptError)
        throw new OutgoingMediaError('MEDIA_CORRUPT', `the stored media ${media.hash} is damaged`, { cause: error });
      throw error;
    }
    const fileName = media.fileName ?? stored.fileName;
    return {
      type: media.type,
      data,
      mimeType: mimeOf(media.type, media.mimeType, stored.contentType, fileName),
      ...(fileName ? { fileName } : {}),
      hash: stored.hash,
    };
  }
  const url = media.url!;
  const maxBytes = store.options.maxItemBytes;
  const fetched = await download(url, maxBytes, options.timeoutMs, options.privateNetworks ?? 'deny');
  const fileName = media.fileName ?? fileNameOf(url);
  const mimeType = mimeOf(media.type, media.mimeType, fetched.contentType, fileName);
  try {
    const { media: stored } = await store.put(fetched.data, { contentType: mimeType, fileName });
    return { type: media.type, data: fetched.data, mimeType, ...(fileName ? { fileName } : {}), hash: stored.hash };
  } catch (error) {
    if (error instanceof MediaRejectedError)
      throw new OutgoingMediaError(error.code, `${urlWithoutSecrets(url)}: ${error.message}`, { cause: error });
    throw error;
  }
}

/** The media descriptor a send's events carry: the stored item, so the message shows its media as kept. */
export function outgoingDescriptor(
  media: OutgoingMedia,
  url?: string,
): { hash: string; bytes: number; mimeType: string; fileName?: string; url?: string } {
  return {
    hash: media.hash,
    bytes: media.data.length,
    mimeType: media.mimeType,
    ...(media.fileName ? { fileName: media.fileName } : {}),
    ...(url ? { url } : {}),
  };
}

function mimeOf(
  type: OutgoingMediaType,
  named: string | undefined,
  fromSource: string | null | undefined,
  fileName: string | undefined,
): string {
  return named ?? informative(fromSource) ?? (fileName && mimeOfFileName(fileName)) ?? MIME_BY_TYPE[type];
}

/** A URL's last path segment, when it looks like a file name. */
function fileNameOf(url: string): string | undefined {
  const last = new URL(url).pathname.split('/').pop();
  if (!last || !/\.[A-Za-z0-9]+$/.test(last)) return undefined;
  try {
    return decodeURIComponent(last);
  } catch {
    return last;
  }
}

/**
 * A URL as errors and events name it: without its query and fragment, which often carry a signature or token
 * (a pre-signed link), and without user info.
 */
export function urlWithoutSecrets(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  } catch {
    return '(not a URL)';
  }
}

async function download(
  url: string,
  maxBytes: number,
  timeoutMs: number,
  privateNetworks: 'allow' | 'deny',
): Promise<{ data: Buffer; contentType: string | null }> {
  const named = urlWithoutSecrets(url);
  const unavailable = (why: string, cause?: unknown) =>
    new OutgoingMediaError('MEDIA_UNAVAILABLE', `${named} could not be fetched: ${why}`, { cause });
  let got: Fetched;
  try {
    // The media worker's download (the cap while reading, redirects followed by hand), each hop checked
    // like the first: the scheme, and the host's network.
    got = await fetchBytes(url, {
      maxBytes,
      timeoutMs,
      maxRedirects: 5,
      beforeRequest: async (target) => {
        if (target.protocol !== 'http:' && target.protocol !== 'https:')
          throw new Error('only http and https are fetched');
        if (privateNetworks !== 'allow') await checkPublicHost(target.hostname);
      },
    });
  } catch (error) {
    if (error instanceof MediaUnavailableError && error.code === 'TOO_LARGE')
      throw new OutgoingMediaError('TOO_LARGE', `${named}: ${error.message}`, { cause: error });
    throw unavailable((error as Error).message, error);
  }
  if (!got.bytes) throw unavailable(`it answered ${got.status}`);
  return { data: got.bytes, contentType: got.headers.get('content-type') };
}
