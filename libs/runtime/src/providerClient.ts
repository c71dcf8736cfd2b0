/**
 * HTTP calls to a provider with a timeout, and errors classified by what they mean for a send:
 * `rejected` (the provider refused it: not sent, do not retry), `rate_limited` (refused for now: not
 * sent, retry after `retryAfterMs`), `auth` (credentials refused), `unknown` (timeout, connection
 * lost, 5xx: it may or may not have happened).
 */
export type ProviderErrorKind = 'rejected' | 'rate_limited' | 'auth' | 'unknown';

export class ProviderError extends Error {
  constructor(
    readonly kind: ProviderErrorKind,
    readonly code: string,
    message: string,
    readonly status?: number,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

export interface HttpOptions {
  timeoutMs: number;
  /** Extra attempts for calls that are safe to repeat (reads), after `unknown` or `rate_limited` errors. */
  retries: number;
  /** First retry delay; doubles per attempt unless the provider says `Retry-After`. */
  retryDelayMs?: number;
}

/** `Retry-After` in seconds or as an HTTP date; undefined when absent or unreadable. */
export function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

export interface JsonResponse {
  status: number;
  headers: Headers;
  body: unknown;
}

/** One request; never throws for an HTTP status (the caller classifies), only for a transport failure (as `unknown`). */
export async function requestJson(
  url: string,
  init: { method: string; headers?: Record<string, string>; body?: unknown },
  timeoutMs: number,
): Promise<JsonResponse> {
  let response: Response;
  try {
    response = await fetch(url, {
      method: init.method,
      headers: {
        accept: 'application/json',
        ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...init.headers,
      },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    const timedOut = (error as Error).name === 'TimeoutError' || (error as Error).name === 'AbortError';
    throw new ProviderError(
      'unknown',
      timedOut ? 'TIMEOUT' : 'NETWORK',
      timedOut ? `no answer within ${timeoutMs} ms` : `request failed: ${(error as Error).message}`,
    );
  }
  const text = await response.text().catch(() => '');
  let body: unknown = undefined;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = text;
  }
  return { status: response.status, headers: response.headers, body };
}

/** Retries `call` on `unknown` and `rate_limited` errors (for reads only: a write must not be repeated). */
export async function withRetries<T>(options: HttpOptions, call: () => Promise<T>): Promise<T> {
  let delay = options.retryDelayMs ?? 500;
  for (let attempt = 0; ; attempt++) {
    try {
      return await call();
    } catch (error) {
      const retryable = error instanceof ProviderError && (error.kind === 'unknown' || error.kind === 'rate_limited');
      if (!retryable || attempt >= options.retries) throw error;
      await new Promise((resolve) => setTimeout(resolve, error.retryAfterMs ?? delay));
      delay *= 2;
    }
  }
}
