import { metrics } from '@opentelemetry/api';
import type { Logger } from 'pino';
import { BatchResultWire, BitrixEnvelope, BitrixErrorBody, type BitrixSubError } from './bitrixApiTypes.js';
import { BitrixApiError, scrub } from './errors.js';
import { LeakyBucket, systemClock, type Clock, type LeakyBucketOptions } from './limiter.js';
import { encodeQuery } from './query.js';
import type { BitrixTokenStore } from './tokens.js';

/** How the client authenticates: an inbound webhook URL, or OAuth tokens from the shared store. */
export type BitrixAuth =
  | {
      kind: 'webhook';
      /** `https://<portal>/rest/<user id>/<code>/`: a secret (the code is in the path). */
      url: string;
    }
  | {
      kind: 'oauth';
      tokens: BitrixTokenStore;
      /** `https://<portal>`: the REST base when the stored tokens carry no `client_endpoint`. */
      portalUrl?: string | undefined;
    };

export interface BitrixClientOptions {
  auth: BitrixAuth;
  /** The rate limiter, or its settings (default burst 50, 2/s; Enterprise 250, 5/s). Share one per portal. */
  bucket?: LeakyBucket | LeakyBucketOptions;
  /** Per request (default 30 s; the cloud cuts requests at 60 s). */
  timeoutMs?: number;
  /** Extra attempts after a timeout, a lost connection or a 5xx (default 3). */
  retries?: number;
  /** First delay for those retries and for rate-limit backoff; doubles per attempt (default 500 ms). */
  retryDelayMs?: number;
  /** Attempts in a row answered `QUERY_LIMIT_EXCEEDED` before giving up (default 8). */
  limitRetries?: number;
  /** Longest single backoff after `QUERY_LIMIT_EXCEEDED` (default 30 s). */
  maxBackoffMs?: number;
  /** Pause after `OPERATION_TIME_LIMIT` when the answer has no `operating_reset_at` (default 60 s). */
  operatingFallbackMs?: number;
  /** Longest pause of a method after `OPERATION_TIME_LIMIT` (default 10 min, the budget's window). */
  maxOperatingPauseMs?: number;
  /** `OPERATION_TIME_LIMIT` answers in a row for one call before giving up (default 3). */
  operatingRetries?: number;
  clock?: Clock;
  logger?: Logger;
  /**
   * Called right before every request is sent (after any wait for the rate limit); throws when this
   * process may no longer write (the active replica's lease, its fencing check). Nothing is sent then.
   */
  fence?: () => Promise<void>;
}

/** A `batch` sub-call. Params are sent PHP-query-encoded; values may reference earlier results (`$result[add_1]`). */
export interface BatchCommand {
  method: string;
  params?: Record<string, unknown>;
}

/** What `batch` answers: each key's result, or its error (HTTP 200 either way). */
export interface BatchResult {
  result: Record<string, unknown>;
  errors: Record<string, BitrixSubError>;
  /** `total` of list sub-calls. */
  total: Record<string, unknown>;
  /** `next` of list sub-calls with more pages. */
  next: Record<string, unknown>;
}

/** Most sub-calls one `batch` takes (more answer `ERROR_BATCH_LENGTH_EXCEEDED`). */
export const MAX_BATCH = 50;
/** Rows per page of every `*.list` method (fixed by Bitrix). */
export const PAGE_SIZE = 50;

const meter = metrics.getMeter('puente-bitrix-sync');
/** Every HTTP request sent to Bitrix24, by method and outcome (`ok` or the error code). */
const requestCounter = meter.createCounter('puente_bitrix_requests', {
  description: 'HTTP requests sent to Bitrix24, by method and outcome',
});
/** Waits after QUERY_LIMIT_EXCEEDED or OPERATION_TIME_LIMIT. */
const backoffCounter = meter.createCounter('puente_bitrix_limit_backoffs', {
  description: 'Backoffs after QUERY_LIMIT_EXCEEDED or OPERATION_TIME_LIMIT, by code',
});

/** Codes that a later attempt cannot fix even though they come with a 5xx. */
const PERMANENT_5XX = new Set(['OVERLOAD_LIMIT', 'PORTAL_DELETED']);

/**
 * Bitrix24 REST client (`../shared/reference/bitrix24-rest.md`). Every request is a JSON POST to
 * `<base><method>.json`, through one leaky bucket shared by every caller of this client, so that a
 * burst of work never draws `QUERY_LIMIT_EXCEEDED` from a portal that counts the same bucket.
 *
 * It recovers on its own from: `QUERY_LIMIT_EXCEEDED` (503: marks the bucket full, backs off
 * exponentially), `OPERATION_TIME_LIMIT` (429: pauses that method until `time.operating_reset_at`),
 * timeouts, lost connections and 5xx (bounded retries; note that a repeated `*.add` whose first answer
 * was lost may create twice, so writers find before they create, by `ORIGIN_ID`), and `expired_token`
 * (refreshes once through the token store). Anything else throws `BitrixApiError`, whose message is one
 * line without tokens, the client secret or the webhook code.
 */
export class BitrixClient {
  readonly bucket: LeakyBucket;
  /** The shared token store, in OAuth mode (the service refreshes idle installs through it). */
  readonly tokens: BitrixTokenStore | undefined;
  /** Recoveries so far, for progress, status and tests. */
  readonly stats = { requests: 0, limitExceeded: 0, operatingPauses: 0, tokenRefreshes: 0, transportRetries: 0 };
  private readonly clock: Clock;
  /** Per method: no call starts before this time (after `OPERATION_TIME_LIMIT`). */
  private readonly pausedUntil = new Map<string, number>();
  private readonly webhookBase: string | undefined;
  private readonly webhookCode: string | undefined;

  constructor(private readonly options: BitrixClientOptions) {
    this.clock = options.clock ?? systemClock;
    this.bucket =
      options.bucket instanceof LeakyBucket
        ? options.bucket
        : new LeakyBucket({ burst: 50, drainPerSecond: 2, clock: this.clock, ...options.bucket });
    this.tokens = options.auth.kind === 'oauth' ? options.auth.tokens : undefined;
    if (options.auth.kind === 'webhook') {
      this.webhookBase = options.auth.url.replace(/\/*$/, '/');
      this.webhookCode = webhookCode(options.auth.url);
    }
  }

  /** Calls `method` and returns its `result`. */
  async call<T = unknown>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    return (await this.callEnvelope(method, params)).result as T;
  }

  /** Calls `method` and returns the whole answer (`result`, `total`, `next`, `time`). */
  async callEnvelope(method: string, params: Record<string, unknown> = {}): Promise<BitrixEnvelope> {
    if (!/^[A-Za-z0-9_.]+$/.test(method))
      throw new BitrixApiError({
        code: 'ERROR_METHOD_NOT_FOUND',
        description: 'a method name has only letters, digits, dots and underscores',
        method: method.slice(0, 60),
        retryable: false,
      });
    return this.request(method, params);
  }

  /**
   * Up to 50 sub-calls in one request (one unit of the rate limit), run in order by Bitrix. Sub-call
   * failures do not throw: they come back in `errors` beside the other results (with `halt`, Bitrix
   * stops at the first failure and the rest are in neither).
   */
  async batch(commands: Record<string, BatchCommand>, options: { halt?: boolean } = {}): Promise<BatchResult> {
    const keys = Object.keys(commands);
    if (keys.length > MAX_BATCH)
      throw new BitrixApiError({
        code: 'ERROR_BATCH_LENGTH_EXCEEDED',
        description: `${keys.length} commands in one batch; Bitrix24 takes at most ${MAX_BATCH}`,
        method: 'batch',
        retryable: false,
      });
    if (keys.length === 0) return { result: {}, errors: {}, total: {}, next: {} };
    const cmd: Record<string, string> = {};
    for (const key of keys) {
      const { method, params } = commands[key]!;
      if (!/^[A-Za-z0-9_.]+$/.test(method))
        throw new BitrixApiError({
          code: 'ERROR_METHOD_NOT_FOUND',
          description: `command ${key}: a method name has only letters, digits, dots and underscores`,
          method: 'batch',
          retryable: false,
        });
      const query = params ? encodeQuery(params) : '';
      cmd[key] = query ? `${method}?${query}` : method;
    }
    const envelope = await this.request('batch', { halt: options.halt ? 1 : 0, cmd });
    const parsed = BatchResultWire.safeParse(envelope.result);
    if (!parsed.success)
      throw new BitrixApiError({
        code: 'BAD_RESPONSE',
        description: 'batch answered without result.result',
        method: 'batch',
        retryable: false,
      });
    const errors: Record<string, BitrixSubError> = {};
    for (const [key, value] of Object.entries(keyed(parsed.data.result_error))) {
      errors[key] = { error: value.error, error_description: this.scrub(value.error_description) };
    }
    this.pauseFromSubCalls(commands, errors, keyed(parsed.data.result_time));
    return {
      result: keyed(parsed.data.result),
      errors,
      total: keyed(parsed.data.result_total),
      next: keyed(parsed.data.result_next),
    };
  }

  /**
   * Pages through a `*.list` method (`start`/`next`, 50 rows a page), yielding each page's items as
   * `pick` finds them in `result` (`(r) => r as Row[]` for CRM, `(r) => r.products` for the catalog).
   * With `start: -1` (no count, for keyset paging by `>ID`) Bitrix sends no `next`: one page is yielded.
   */
  async *list<T>(
    method: string,
    params: Record<string, unknown>,
    pick: (result: unknown) => T[],
  ): AsyncGenerator<T[], void, undefined> {
    let start = typeof params.start === 'number' ? params.start : 0;
    for (;;) {
      const envelope = await this.callEnvelope(method, { ...params, start });
      yield pick(envelope.result);
      if (start === -1 || typeof envelope.next !== 'number' || envelope.next <= start) return;
      start = envelope.next;
    }
  }

  private async request(method: string, params: Record<string, unknown>): Promise<BitrixEnvelope> {
    const retries = this.options.retries ?? 3;
    const baseDelay = this.options.retryDelayMs ?? 500;
    let failures = 0;
    let limited = 0;
    let operating = 0;
    // The attempt whose answer made us refresh. When the attempt right after it answers `expired_token`
    // too, the fresh tokens are refused and refreshing again would loop: that is an error. A token that
    // expires later, during a 5xx or limit back-off of the same call, is a new expiry and is refreshed once
    // more, as Bitrix asks (refresh once per `expired_token`, then retry); the bounded retry counters bound
    // the refreshes of one call.
    let attempt = 0;
    let refreshedAfter = -1;
    for (;;) {
      attempt++;
      const paused = (this.pausedUntil.get(method) ?? 0) - this.clock.now();
      if (paused > 0) await this.clock.sleep(paused);
      const target = await this.target(method);
      const body = target.accessToken ? { ...params, auth: target.accessToken } : params;
      let answer: { status: number; body: unknown };
      try {
        answer = await this.bucket.schedule(async () => {
          await this.options.fence?.();
          this.stats.requests++;
          return this.post(target.url, body);
        });
      } catch (error) {
        requestCounter.add(1, { method, outcome: error instanceof BitrixApiError ? error.code : 'TRANSPORT' });
        if (!(error instanceof BitrixApiError) || !error.retryable) throw error;
        if (++failures > retries)
          throw this.error(
            method,
            error.code,
            error.status,
            `${error.description} (after ${retries + 1} attempts)`,
            true,
            error,
          );
        this.stats.transportRetries++;
        await this.clock.sleep(backoff(baseDelay, failures));
        continue;
      }
      const { status } = answer;
      const failure = status >= 200 && status < 300 ? BitrixErrorBody.safeParse(answer.body) : undefined;
      if (status >= 200 && status < 300 && !failure?.success) {
        const envelope = BitrixEnvelope.safeParse(answer.body);
        if (envelope.success && 'result' in (answer.body as object)) {
          requestCounter.add(1, { method, outcome: 'ok' });
          return envelope.data;
        }
        throw this.error(method, 'BAD_RESPONSE', status, 'the answer has no result', false);
      }
      const parsed = BitrixErrorBody.safeParse(answer.body);
      const code = parsed.success ? parsed.data.error : `HTTP_${status}`;
      const description = parsed.success
        ? parsed.data.error_description
        : typeof answer.body === 'string'
          ? answer.body.slice(0, 200)
          : '';
      requestCounter.add(1, { method, outcome: code });
      if (code === 'QUERY_LIMIT_EXCEEDED' || code === 'OPERATION_TIME_LIMIT') backoffCounter.add(1, { method, code });
      if (code === 'QUERY_LIMIT_EXCEEDED') {
        // Someone else shares the bucket (same portal and IP), or our copy of it was off.
        this.bucket.markFull();
        this.stats.limitExceeded++;
        const limitRetries = this.options.limitRetries ?? 8;
        if (++limited > limitRetries)
          throw this.error(method, code, status, `${description} (still limited after ${limitRetries} backoffs)`, true);
        const wait = Math.min(this.options.maxBackoffMs ?? 30_000, backoff(Math.max(baseDelay, 1_000), limited));
        this.options.logger?.warn({ method, waitMs: wait }, 'bitrix: QUERY_LIMIT_EXCEEDED, backing off');
        await this.clock.sleep(wait);
        continue;
      }
      if (code === 'OPERATION_TIME_LIMIT') {
        this.stats.operatingPauses++;
        if (++operating > (this.options.operatingRetries ?? 3))
          throw this.error(method, code, status, description, true);
        const resetAt = operatingResetAt(answer.body);
        this.pause(method, resetAt);
        this.options.logger?.warn(
          { method, untilMs: this.pausedUntil.get(method) },
          'bitrix: OPERATION_TIME_LIMIT, pausing the method',
        );
        continue;
      }
      if ((code === 'expired_token' || code === 'invalid_token') && this.tokens && target.accessToken) {
        if (refreshedAfter === attempt - 1)
          throw this.error(method, code, status, `${description} (again right after a token refresh)`, false);
        refreshedAfter = attempt;
        this.stats.tokenRefreshes++;
        await this.tokens.refresh(target.accessToken);
        continue;
      }
      if ((status >= 500 && !PERMANENT_5XX.has(code)) || status === 408) {
        if (++failures > retries)
          throw this.error(method, code, status, `${description} (after ${retries + 1} attempts)`, true);
        this.stats.transportRetries++;
        await this.clock.sleep(backoff(baseDelay, failures));
        continue;
      }
      throw this.error(method, code, status, description, false);
    }
  }

  /** Where to send `method`, and the access token to send (OAuth). */
  private async target(method: string): Promise<{ url: string; accessToken?: string }> {
    if (this.options.auth.kind === 'webhook') return { url: `${this.webhookBase!}${method}.json` };
    const tokens = await this.options.auth.tokens.current();
    const base =
      tokens.clientEndpoint ??
      (this.options.auth.portalUrl ? `${this.options.auth.portalUrl.replace(/\/+$/, '')}/rest/` : undefined);
    if (!base)
      throw new BitrixApiError({
        code: 'NOT_CONFIGURED',
        description: 'no REST endpoint: the stored tokens have no client_endpoint and BITRIX_PORTAL_URL is not set',
        method,
        retryable: false,
      });
    return { url: `${base.replace(/\/*$/, '/')}${method}.json`, accessToken: tokens.accessToken };
  }

  private async post(url: string, body: unknown): Promise<{ status: number; body: unknown }> {
    const timeoutMs = this.options.timeoutMs ?? 30_000;
    let response: Response;
    let text: string;
    try {
      response = await fetch(url, {
        method: 'POST',
        headers: { accept: 'application/json', 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(timeoutMs),
      });
      text = await response.text();
    } catch (error) {
      const timedOut = (error as Error).name === 'TimeoutError' || (error as Error).name === 'AbortError';
      // The transport's own message may name the URL, which holds the webhook code: describe it ourselves.
      throw new BitrixApiError(
        {
          code: timedOut ? 'TIMEOUT' : 'NETWORK',
          description: timedOut ? `no answer within ${timeoutMs} ms` : `cannot reach ${new URL(url).host}`,
          method: '',
          retryable: true,
        },
        { cause: timedOut ? undefined : scrubbedCause(error, this.secrets()) },
      );
    }
    let parsed: unknown = undefined;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = text;
    }
    return { status: response.status, body: parsed };
  }

  private pause(method: string, resetAtMs: number | undefined): void {
    const now = this.clock.now();
    const max = this.options.maxOperatingPauseMs ?? 600_000;
    const wanted =
      resetAtMs !== undefined && resetAtMs > now ? resetAtMs - now : (this.options.operatingFallbackMs ?? 60_000);
    this.pausedUntil.set(method, now + Math.min(max, Math.max(1_000, wanted)));
  }

  /** A sub-call over its method's time budget pauses that method for later calls (not the whole batch). */
  private pauseFromSubCalls(
    commands: Record<string, BatchCommand>,
    errors: Record<string, BitrixSubError>,
    times: Record<string, { operating_reset_at?: number | undefined }>,
  ): void {
    for (const [key, error] of Object.entries(errors)) {
      const method = commands[key]?.method;
      if (error.error !== 'OPERATION_TIME_LIMIT' || !method) continue;
      const reset = times[key]?.operating_reset_at;
      this.pause(method, reset ? reset * 1000 : undefined);
    }
  }

  private secrets(): string[] {
    const out: string[] = [];
    if (this.webhookCode) out.push(this.webhookCode);
    if (this.tokens) out.push(...this.tokens.secrets());
    return out;
  }

  private scrub(text: string): string {
    return scrub(text, this.secrets());
  }

  private error(
    method: string,
    code: string,
    status: number | undefined,
    description: string,
    retryable: boolean,
    cause?: unknown,
  ): BitrixApiError {
    return new BitrixApiError(
      { code, status, description: this.scrub(description), method, retryable },
      cause === undefined ? undefined : { cause },
    );
  }
}

function keyed<T>(value: Record<string, T> | T[] | undefined): Record<string, T> {
  if (!value) return {};
  if (Array.isArray(value)) return Object.fromEntries(value.map((v, i) => [String(i), v]));
  return value;
}

function backoff(base: number, attempt: number): number {
  const exp = base * 2 ** Math.max(0, attempt - 1);
  // Jitter keeps several processes behind one IP from retrying in step.
  return Math.round(exp * (0.8 + Math.random() * 0.4));
}

function operatingResetAt(body: unknown): number | undefined {
  const time = (body as { time?: { operating_reset_at?: unknown } } | undefined)?.time;
  const at = time?.operating_reset_at;
  return typeof at === 'number' && at > 0 ? at * 1000 : undefined;
}

/** The secret code of a webhook URL (`/rest/<user>/<code>/`). */
export function webhookCode(url: string): string | undefined {
  try {
    const parts = new URL(url).pathname.split('/').filter(Boolean);
    const rest = parts.lastIndexOf('rest');
    return rest >= 0 ? parts[rest + 2] : undefined;
  } catch {
    return undefined;
  }
}

function scrubbedCause(error: unknown, secrets: string[]): Error {
  const cause = (error as { cause?: { message?: string } }).cause;
  return new Error(scrub(`${(error as Error).message}${cause?.message ? `: ${cause.message}` : ''}`, secrets));
}
