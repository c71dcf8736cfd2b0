import type { MediaFailureCode, MessageContent, WhatsAppProvider } from '@puente/contracts';
import { retryAfterMs } from '@puente/runtime';

/** One message's media, as the content event described it: what a provider is asked to download. */
export interface MediaItem {
  session: string;
  provider: WhatsAppProvider;
  messageId: string;
  chatId: string;
  fromMe: boolean;
  media: NonNullable<MessageContent['media']>;
}

/** The bytes a provider handed over, with what it said about them. */
export interface DownloadedMedia {
  bytes: Buffer;
  mimeType?: string | undefined;
  fileName?: string | undefined;
}

/** Downloads a message's media from one provider (`cloudApiMedia.ts`, `inboxHubMedia.ts`, ...). */
export interface MediaSource {
  readonly provider: WhatsAppProvider;
  /**
   * The media's bytes, never more than `maxBytes`. Throws {@link MediaUnavailableError} when the media
   * cannot be had (expired, refused, too large) and {@link MediaTransientError} when it may work later.
   */
  download(item: MediaItem, limits: { maxBytes: number }): Promise<DownloadedMedia>;
}

/** The media cannot be downloaded, now or later: the message ends `unavailable` with this code. */
export class MediaUnavailableError extends Error {
  override readonly name = 'MediaUnavailableError';
  constructor(
    readonly code: MediaFailureCode,
    message: string,
  ) {
    super(message);
  }
}

/** A failure that may pass (timeout, connection error, 5xx, 429): the download is tried again later. */
export class MediaTransientError extends Error {
  override readonly name = 'MediaTransientError';
  constructor(
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/** What one HTTP call answered: the bytes only for a 2xx (any other body is dropped unread, beyond a short error text). */
export interface Fetched {
  status: number;
  headers: Headers;
  bytes?: Buffer;
  /** The start of a non-2xx body, for error messages. */
  error?: string;
}

/** Where a URL points, without its path and query (which may carry signed tokens): safe for messages. */
export function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return 'an unreadable URL';
  }
}

/**
 * A URL worth downloading as the media itself: http(s), and not WhatsApp's CDN, whose files
 * (`mmg.whatsapp.net/….enc`, what Baileys-shaped messages carry) are encrypted with the message's media
 * key and useless as they are.
 */
export function isPlainMediaUrl(url: string | undefined): url is string {
  if (!url) return false;
  try {
    const parsed = new URL(url);
    return (
      (parsed.protocol === 'https:' || parsed.protocol === 'http:') &&
      !/(^|\.)whatsapp\.net$/i.test(parsed.hostname) &&
      !parsed.pathname.endsWith('.enc')
    );
  } catch {
    return false;
  }
}

/** True when `url` is on `base`'s origin (scheme, host and port): only then may `base`'s credentials go with it. */
export function sameOrigin(url: string, base: string): boolean {
  try {
    return new URL(url).origin === new URL(base).origin;
  } catch {
    return false;
  }
}

/**
 * One request whose answer is read as bytes, at most `maxBytes` of them: a declared or actual length
 * over it is `TOO_LARGE` (the rest is not read). A timeout or a connection error is transient. The
 * request's headers never appear in what is thrown.
 */
export async function fetchBytes(
  url: string,
  init: {
    method?: string;
    headers?: Record<string, string>;
    body?: unknown;
    maxBytes: number;
    timeoutMs: number;
    /** Redirects followed before the last answer is taken as it is (default 3). */
    maxRedirects?: number;
    /** Runs before each request, redirects included; what it throws is thrown as it is (a refused target). */
    beforeRequest?: (target: URL) => Promise<void>;
  },
): Promise<Fetched> {
  const signal = AbortSignal.timeout(init.timeoutMs);
  let response: Response;
  let target = url;
  let headers = init.headers ?? {};
  // Redirects are followed here, not by fetch: credentials must not follow one to another origin.
  for (let redirects = 0; ; redirects++) {
    await init.beforeRequest?.(new URL(target));
    try {
      response = await fetch(target, {
        method: init.method ?? 'GET',
        headers: {
          ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
          ...headers,
        },
        ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
        redirect: 'manual',
        signal,
      });
    } catch (error) {
      throw unreachable(error, target, init.timeoutMs);
    }
    const location = response.headers.get('location');
    if (response.status < 300 || response.status >= 400 || !location || redirects >= (init.maxRedirects ?? 3)) break;
    await response.body?.cancel().catch(() => undefined);
    const next = new URL(location, target).toString();
    if (!sameOrigin(next, target)) headers = {};
    target = next;
  }
  if (response.status < 200 || response.status >= 300) {
    const error = await response
      .text()
      .then((text) => text.slice(0, 300))
      .catch(() => '');
    return { status: response.status, headers: response.headers, error };
  }
  const declared = Number(response.headers.get('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > init.maxBytes) {
    await response.body?.cancel().catch(() => undefined);
    throw tooLarge(declared, init.maxBytes);
  }
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    for await (const chunk of response.body ?? []) {
      length += (chunk as Uint8Array).byteLength;
      if (length > init.maxBytes) {
        await response.body?.cancel().catch(() => undefined);
        throw tooLarge(length, init.maxBytes);
      }
      chunks.push(Buffer.from(chunk as Uint8Array));
    }
  } catch (error) {
    if (error instanceof MediaUnavailableError) throw error;
    throw unreachable(error, url, init.timeoutMs);
  }
  return { status: response.status, headers: response.headers, bytes: Buffer.concat(chunks, length) };
}

/** A JSON answer read through {@link fetchBytes} (small: provider metadata), or undefined when it is not JSON. */
export function jsonOf(fetched: Fetched): unknown {
  return parseJson(fetched.bytes?.toString('utf8'));
}

/** A text read as JSON (an error body), or undefined when it is not JSON. */
export function parseJson(text: string | undefined): unknown {
  try {
    return JSON.parse(text ?? '');
  } catch {
    return undefined;
  }
}

/** The transient failure a status means (429, 408, 5xx), or undefined for a status that is an answer. */
export function transientStatus(fetched: Fetched, what: string): MediaTransientError | undefined {
  const { status } = fetched;
  if (status !== 429 && status !== 408 && status < 500) return undefined;
  return new MediaTransientError(
    `${what} answered ${status}${fetched.error ? `: ${fetched.error.slice(0, 120)}` : ''}`,
    retryAfterMs(fetched.headers.get('retry-after')),
  );
}

/** A non-2xx answer that is neither transient nor a known expiry: the provider refused the download. */
export function refused(fetched: Fetched, what: string): MediaUnavailableError {
  return new MediaUnavailableError(
    'REFUSED',
    `${what} refused the download (${fetched.status})${fetched.error ? `: ${fetched.error.slice(0, 120)}` : ''}`,
  );
}

function tooLarge(bytes: number, maxBytes: number): MediaUnavailableError {
  return new MediaUnavailableError(
    'TOO_LARGE',
    `the media is ${bytes} bytes or more, over MEDIA_MAX_BYTES (${maxBytes})`,
  );
}

function unreachable(error: unknown, url: string, timeoutMs: number): MediaTransientError {
  const name = (error as Error)?.name;
  return new MediaTransientError(
    name === 'TimeoutError' || name === 'AbortError'
      ? `${originOf(url)} did not answer within ${timeoutMs} ms`
      : `${originOf(url)} could not be reached: ${(error as Error)?.message ?? String(error)}`,
  );
}

/** A path template (`{session}`, `{chat}`, `{message}`) with the item's values filled in, URL-encoded. */
export function fillPath(template: string, values: Record<string, string>): string {
  return Object.entries(values).reduce(
    (path, [name, value]) => path.replaceAll(`{${name}}`, encodeURIComponent(value)),
    template,
  );
}
