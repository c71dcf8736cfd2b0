import { z } from 'zod';
import { ProviderError, requestJson, retryAfterMs, type JsonResponse } from '@puente/runtime';
import type { KissflowConfig } from './config.js';

export interface KissflowClientConfig {
  /** `https://<subdomain>.kissflow.com` (or `.eu`). */
  baseUrl: string;
  accountId: string;
  accessKeyId: string;
  accessKeySecret: string;
  timeoutMs: number;
  /** Extra attempts after a timeout, a lost connection or a 5xx. */
  retries: number;
  /** Attempts in a row answered 429 (each after the wait the answer asks for) before giving up. */
  rateLimitRetries?: number;
  /** First retry delay after an error without `Retry-After`; doubles per attempt (default 1 s). */
  retryDelayMs?: number;
}

/** A dataset row as the API returns it: at least its `_id`; `_modified_at` when the endpoint includes it. */
export const KissflowRow = z
  .object({ _id: z.union([z.string().min(1), z.number()]), _modified_at: z.string().nullish() })
  .loose();
export type KissflowRow = z.infer<typeof KissflowRow>;

/** Rows are in `Data` (some clients also see `data`, or a bare array). */
const ListBody = z.union([
  z.object({ Data: z.array(z.unknown()) }).loose(),
  z.object({ data: z.array(z.unknown()) }).loose(),
  z.array(z.unknown()),
]);

export interface ListPage {
  rows: KissflowRow[];
  /** Items of the page that were not rows (no `_id`): skipped, counted. */
  invalid: number;
  /** Items on the page as the API sent it, valid or not: a page shorter than asked is the last. */
  received: number;
  /** The dataset's (or view's) row count, when the answer says it (`TotalCount`). */
  total?: number;
}

/**
 * Kissflow's dataset REST API (`../shared/reference/kissflow.md`): `X-Access-Key-Id` and
 * `X-Access-Key-Secret` on every call, the account id in every path, 1-based `page_number` paging.
 * Reads are retried after timeouts and 5xx; a 429 (or 503 with `Retry-After`) pauses every call of
 * this client for the time asked (or a backoff). 401, 403 and 404 become one-line errors that say
 * what to check.
 */
export class KissflowClient {
  /** No call starts before this time (set by a 429). */
  private pausedUntil = 0;
  /** Calls answered 429 so far (for progress and benchmarks). */
  rateLimited = 0;

  constructor(private readonly config: KissflowClientConfig) {}

  /** Says which variables are missing, or undefined when the client can be built. */
  static missing(env: {
    KISSFLOW_BASE_URL?: string | undefined;
    KISSFLOW_ACCOUNT_ID?: string | undefined;
    KISSFLOW_ACCESS_KEY_ID?: string | undefined;
    KISSFLOW_ACCESS_KEY_SECRET?: string | undefined;
  }): string | undefined {
    const names = (
      ['KISSFLOW_BASE_URL', 'KISSFLOW_ACCOUNT_ID', 'KISSFLOW_ACCESS_KEY_ID', 'KISSFLOW_ACCESS_KEY_SECRET'] as const
    ).filter((name) => !env[name]);
    return names.length > 0 ? `Kissflow API not configured: set ${names.join(', ')}` : undefined;
  }

  /** One page (1-based) of a dataset, or of one of its views. */
  async list(dataset: string, page: number, pageSize: number, view?: string): Promise<ListPage> {
    const base = `/dataset/2/${enc(this.config.accountId)}/${enc(dataset)}`;
    const path = `${view ? `${base}/view/${enc(view)}` : base}/list?page_number=${page}&page_size=${pageSize}`;
    const what = view ? `view ${view} of dataset ${dataset}` : `dataset ${dataset}`;
    const response = await this.get(path, what);
    const parsed = ListBody.safeParse(response.body);
    if (!parsed.success)
      throw new ProviderError(
        'unknown',
        'BAD_RESPONSE',
        `Kissflow answered the list of ${what} without rows (expected {"Data": [...]})`,
        response.status,
      );
    const body = parsed.data as unknown[] | { Data?: unknown[]; data?: unknown[] };
    const items: unknown[] = Array.isArray(body) ? body : (body.Data ?? body.data ?? []);
    const rows: KissflowRow[] = [];
    for (const item of items) {
      const row = KissflowRow.safeParse(item);
      if (row.success) rows.push(row.data);
    }
    const total = Array.isArray(body) ? undefined : (body as { TotalCount?: unknown }).TotalCount;
    return {
      rows,
      invalid: items.length - rows.length,
      received: items.length,
      ...(typeof total === 'number' && total >= 0 ? { total } : {}),
    };
  }

  /** One row by id; null when Kissflow says it does not exist (404). */
  async row(dataset: string, rowId: string): Promise<KissflowRow | null> {
    const path = `/dataset/2/${enc(this.config.accountId)}/${enc(dataset)}/${enc(rowId)}`;
    const response = await this.get(path, `row ${rowId} of dataset ${dataset}`, true);
    if (response.status === 404) return null;
    const row = KissflowRow.safeParse(response.body);
    if (!row.success)
      throw new ProviderError(
        'unknown',
        'BAD_RESPONSE',
        `Kissflow answered row ${rowId} of dataset ${dataset} without its _id`,
        response.status,
      );
    return row.data;
  }

  private async get(path: string, what: string, notFoundIsAnswer = false): Promise<JsonResponse> {
    const { timeoutMs, retries } = this.config;
    const rateLimitRetries = this.config.rateLimitRetries ?? 30;
    let delay = this.config.retryDelayMs ?? 1_000;
    let failures = 0;
    let limited = 0;
    for (;;) {
      const wait = this.pausedUntil - Date.now();
      if (wait > 0) await sleep(wait);
      let response: JsonResponse;
      try {
        response = await requestJson(
          `${this.config.baseUrl.replace(/\/$/, '')}${path}`,
          {
            method: 'GET',
            headers: { 'x-access-key-id': this.config.accessKeyId, 'x-access-key-secret': this.config.accessKeySecret },
          },
          timeoutMs,
        );
      } catch (error) {
        if (++failures > retries) throw error;
        await sleep(delay);
        delay *= 2;
        continue;
      }
      const { status } = response;
      if (status >= 200 && status < 300) return response;
      if (status === 404 && notFoundIsAnswer) return response;
      const after = retryAfterMs(response.headers.get('retry-after'));
      if (status === 429 || (status === 503 && after !== undefined)) {
        this.rateLimited++;
        if (++limited > rateLimitRetries)
          throw new ProviderError(
            'rate_limited',
            'RATE_LIMITED',
            `Kissflow kept answering ${status} (rate limited) for ${what} after ${rateLimitRetries} waits`,
            status,
            after,
          );
        this.pausedUntil = Math.max(this.pausedUntil, Date.now() + (after ?? delay));
        if (after === undefined) delay *= 2;
        continue;
      }
      if (status === 401)
        throw new ProviderError(
          'auth',
          'UNAUTHORIZED',
          'Kissflow refused the access key (401): check KISSFLOW_ACCESS_KEY_ID and KISSFLOW_ACCESS_KEY_SECRET, and that the key is switched on',
          status,
        );
      if (status === 403)
        throw new ProviderError(
          'auth',
          'FORBIDDEN',
          `Kissflow denied access to ${what} (403): the access key's owner needs permission to read it`,
          status,
        );
      if (status === 404)
        throw new ProviderError(
          'rejected',
          'NOT_FOUND',
          `Kissflow has no ${what} in account ${this.config.accountId} (404): check the id and KISSFLOW_ACCOUNT_ID`,
          status,
        );
      if (status >= 500 || status === 408) {
        if (++failures > retries)
          throw new ProviderError(
            'unknown',
            `HTTP_${status}`,
            `Kissflow answered ${status} for ${what} after ${retries + 1} attempts`,
            status,
          );
        await sleep(after ?? delay);
        delay *= 2;
        continue;
      }
      throw new ProviderError(
        'rejected',
        `HTTP_${status}`,
        `Kissflow answered ${status} for ${what}: ${describeBody(response.body)}`,
        status,
      );
    }
  }
}

const enc = encodeURIComponent;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function describeBody(body: unknown): string {
  if (typeof body === 'string') return body.slice(0, 200);
  if (body && typeof body === 'object') {
    const message = (body as { message?: unknown; error?: unknown }).message ?? (body as { error?: unknown }).error;
    if (typeof message === 'string') return message.slice(0, 200);
  }
  return JSON.stringify(body ?? null).slice(0, 200);
}

/** The Kissflow client from configuration, or why there is none. */
export function kissflowFrom(config: KissflowConfig): KissflowClient | string {
  const missing = KissflowClient.missing(config);
  if (missing) return missing;
  return new KissflowClient({
    baseUrl: config.KISSFLOW_BASE_URL!,
    accountId: config.KISSFLOW_ACCOUNT_ID!,
    accessKeyId: config.KISSFLOW_ACCESS_KEY_ID!,
    accessKeySecret: config.KISSFLOW_ACCESS_KEY_SECRET!,
    timeoutMs: config.KISSFLOW_TIMEOUT_MS,
    retries: config.KISSFLOW_RETRIES,
  });
}
