import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeQuery } from '../bitrix/query.js';

/**
 * A fake Bitrix24 portal plus its OAuth token server, for tests and benchmarks (the real one is a SaaS
 * we cannot run). It behaves as `../shared/reference/bitrix24-rest.md` describes, limits and errors
 * included:
 * - `/oauth/token/`: `authorization_code` (codes from `issueCode()`, valid 30 s, once) and
 *   `refresh_token` grants; refresh tokens rotate (a used one answers `invalid_grant`); access tokens
 *   live 1 hour on the fake's clock (`advance(ms)`), or until `expireAccessTokens()`.
 * - `/rest/<method>[.json]` with `auth` (body or query) and `/rest/<user>/<code>/<method>[.json]` for
 *   the inbound webhook; 401 `expired_token` / `NO_AUTH_FOUND`.
 * - A leaky bucket per portal that counts every REST request (a batch is one): over `burst` it
 *   answers 503 `QUERY_LIMIT_EXCEEDED` (a refused request is not counted).
 * - `batch` (≤ 50 sub-calls, in order, `$result[key]` / `$result[key][FIELD]` substitution, `halt`,
 *   HTTP 200 with `result_error`), `crm.company.*` with multi-value field semantics, `crm.status.*`,
 *   and the `catalog.*` methods bitrix-sync uses.
 * Where the real portal's exact answer is not documented (the error code for a missing catalog
 * argument, the answer of `catalog.price.modify`), the fake's choice is noted beside it.
 */
export interface FakeBitrix24Options {
  /** The portal's request bucket (default burst 50, 2/s, the cloud's non-Enterprise plans). */
  bucket?: { burst: number; drainPerSecond: number };
  clientId?: string;
  clientSecret?: string;
  /** The inbound webhook the portal accepts (default user 1 with an obviously fake code). */
  webhook?: { userId: number | string; code: string };
  memberId?: string;
}

/** A request the fake answered: when (its clock), which method, how many batch sub-calls, and `ok` or the error code. */
export interface FakeRequest {
  at: number;
  method: string;
  commands: number;
  outcome: string;
  /** The methods of a batch's sub-calls, in order (empty for other requests). */
  subCalls?: string[];
}

/** An error the fake answers instead of running the next matching request(s). */
export interface InjectedError {
  status: number;
  error: string;
  description?: string;
  /** Only requests of this method (default: any). */
  method?: string;
  /** `time.operating_reset_at` this far in the future (for `OPERATION_TIME_LIMIT`). */
  operatingResetInMs?: number;
  /** How many requests get it (default 1). */
  times?: number;
  /**
   * Answer a batch sub-call instead of a whole request: the batch still answers 200, with this error in
   * `result_error` for the matching sub-call (of `method`, and for which `match` of its params holds).
   */
  subCall?: boolean;
  match?: (params: Record<string, unknown>) => boolean;
}

type Row = Record<string, unknown>;
type MultiEntry = { ID: string; VALUE_TYPE: string; VALUE: string; TYPE_ID: string };

class FakeError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly description: string,
  ) {
    super(description);
  }
}

const MULTI = ['PHONE', 'EMAIL', 'WEB', 'IM'] as const;
const COMPANY_FIELDS = new Set([
  'TITLE',
  'COMPANY_TYPE',
  'INDUSTRY',
  'EMPLOYEES',
  'CURRENCY_ID',
  'REVENUE',
  'OPENED',
  'ASSIGNED_BY_ID',
  'COMMENTS',
  'IS_MY_COMPANY',
  'ORIGINATOR_ID',
  'ORIGIN_ID',
  'ORIGIN_VERSION',
  'ADDRESS',
  'BANKING_DETAILS',
  'CREATED_BY_ID',
  'MODIFY_BY_ID',
  'UTM_SOURCE',
  'UTM_MEDIUM',
  'UTM_CAMPAIGN',
  'UTM_CONTENT',
  'UTM_TERM',
  'CONTACT_ID',
]);
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;
const PAGE = 50;
const CATALOG_IBLOCK = 14;
const OFFERS_IBLOCK = 15;

export class FakeBitrix24 {
  readonly clientId: string;
  readonly clientSecret: string;
  readonly memberId: string;
  readonly webhook: { userId: string; code: string };
  /** Companies by ID, as stored (multi-value fields as arrays of `{ID, VALUE_TYPE, VALUE, TYPE_ID}`). */
  readonly companies = new Map<number, Row>();
  readonly statuses: Row[] = [];
  readonly sections = new Map<number, Row>();
  readonly products = new Map<number, Row>();
  readonly prices = new Map<number, Row>();
  readonly priceTypes: Row[] = [
    { id: 1, name: 'BASE', base: 'Y', sort: 100, xmlId: 'BASE' },
    { id: 2, name: 'WHOLESALE', base: 'N', sort: 200, xmlId: 'WHOLESALE' },
  ];
  readonly catalogs: Row[] = [
    {
      id: CATALOG_IBLOCK,
      iblockId: CATALOG_IBLOCK,
      iblockTypeId: 'CRM_PRODUCT_CATALOG',
      name: 'CRM product catalog',
      productIblockId: null,
      skuPropertyId: null,
      subscription: 'N',
      vatId: null,
      yandexExport: 'N',
    },
    {
      id: OFFERS_IBLOCK,
      iblockId: OFFERS_IBLOCK,
      iblockTypeId: 'CRM_PRODUCT_CATALOG',
      name: 'CRM product catalog (offers)',
      productIblockId: CATALOG_IBLOCK,
      skuPropertyId: 99,
      subscription: 'N',
      vatId: null,
      yandexExport: 'N',
    },
  ];
  /** Every REST request answered (OAuth token requests are not REST requests). */
  readonly requests: FakeRequest[] = [];
  readonly counters = { limitErrors: 0, refreshCalls: 0, codeExchanges: 0, restRequests: 0 };
  /** Errors to answer instead of running the next requests (first match wins). */
  readonly injected: InjectedError[] = [];
  /** Delays every REST answer by this long. */
  latencyMs = 0;
  url = '';

  private offset = 0;
  private bucketLevel = 0;
  private bucketAt = Date.now();
  private readonly bucket: { burst: number; drainPerSecond: number };
  private readonly codes = new Map<string, { expiresAt: number }>();
  private readonly accessTokens = new Map<string, { expiresAt: number }>();
  private readonly refreshTokens = new Set<string>();
  private nextId = { company: 1, multi: 1, status: 1, section: 1, product: 1, price: 1 };
  private readonly server = createServer((req, res) => void this.handle(req, res));

  constructor(options: FakeBitrix24Options = {}) {
    this.clientId = options.clientId ?? 'local.fake0000000000.00000000';
    this.clientSecret = options.clientSecret ?? 'fake-client-secret-not-real-0000000000';
    this.memberId = options.memberId ?? 'fakememberid0000000000000000000000';
    this.webhook = {
      userId: String(options.webhook?.userId ?? 1),
      code: options.webhook?.code ?? 'fakewebhookcode00000',
    };
    this.bucket = options.bucket ?? { burst: 50, drainPerSecond: 2 };
    this.seedStatuses();
  }

  async start(port = 0): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(port, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** The variables that point Puente at this fake: an OAuth app (default) or the inbound webhook. */
  env(mode: 'oauth' | 'webhook' = 'oauth'): Record<string, string> {
    if (mode === 'webhook') return { BITRIX_WEBHOOK_URL: this.webhookUrl() };
    return {
      BITRIX_PORTAL_URL: this.url,
      BITRIX_CLIENT_ID: this.clientId,
      BITRIX_CLIENT_SECRET: this.clientSecret,
      BITRIX_OAUTH_URL: this.url,
    };
  }

  webhookUrl(): string {
    return `${this.url}/rest/${this.webhook.userId}/${this.webhook.code}/`;
  }

  /** The fake's clock: real time plus whatever `advance` added. */
  now(): number {
    return Date.now() + this.offset;
  }

  /** Moves the fake's clock forward (tokens and codes expire, the bucket drains). */
  advance(ms: number): void {
    this.offset += ms;
  }

  /** An authorization code as the portal's redirect carries it: valid for 30 s, once. */
  issueCode(): string {
    const code = `fake-code-${randomBytes(8).toString('hex')}`;
    this.codes.set(code, { expiresAt: this.now() + 30_000 });
    return code;
  }

  /** Tokens as `authorization_code` would issue them, without the round trip (for fixtures). */
  issueTokens(): { access_token: string; refresh_token: string } {
    return this.newTokens();
  }

  /** Every access token issued so far expires now (the next call with one answers `expired_token`). */
  expireAccessTokens(): void {
    for (const token of this.accessTokens.values()) token.expiresAt = Math.min(token.expiresAt, this.now() - 1);
  }

  /** Answers the next `times` requests (of `method`) with this error. */
  inject(error: InjectedError): void {
    this.injected.push({ times: 1, ...error });
  }

  /** Requests whose outcome was `QUERY_LIMIT_EXCEEDED`. */
  get limitErrors(): number {
    return this.counters.limitErrors;
  }

  /** `refresh_token` grants the token server received (successful or not). */
  get refreshCalls(): number {
    return this.counters.refreshCalls;
  }

  /** The bucket's level now (for assertions). */
  bucketLevelNow(): number {
    return Math.max(0, this.bucketLevel - ((this.now() - this.bucketAt) / 1000) * this.bucket.drainPerSecond);
  }

  // ---------------------------------------------------------------- HTTP

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const raw = await new Promise<string>((resolve) => {
      let text = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (text += chunk));
      req.on('end', () => resolve(text));
    });
    const send = (status: number, body: unknown) => {
      const text = JSON.stringify(body);
      res.writeHead(status, {
        'content-type': 'application/json; charset=utf-8',
        'content-length': Buffer.byteLength(text),
      });
      res.end(text);
    };
    if (url.pathname === '/oauth/token' || url.pathname === '/oauth/token/') {
      const params = {
        ...Object.fromEntries(url.searchParams),
        ...(raw && !raw.trimStart().startsWith('{') ? (decodeQuery(raw) as Record<string, string>) : {}),
      };
      const [status, body] = this.token(params);
      return send(status, body);
    }
    if (!url.pathname.startsWith('/rest/')) return send(404, { error: 'NOT_FOUND', error_description: 'Not found' });
    if (this.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, this.latencyMs));
    let params: Row = decodeQuery(url.search.slice(1));
    try {
      if (raw) {
        const type = String(req.headers['content-type'] ?? '');
        params = { ...params, ...(type.includes('json') ? (JSON.parse(raw) as Row) : decodeQuery(raw)) };
      }
    } catch {
      return send(400, { error: 'INVALID_REQUEST', error_description: 'Malformed JSON body' });
    }
    const [status, body, log] = this.rest(url.pathname, params);
    this.requests.push(log);
    send(status, body);
  }

  private token(params: Record<string, string>): [number, unknown] {
    if (params.client_id !== this.clientId || params.client_secret !== this.clientSecret) {
      return [401, { error: 'invalid_client', error_description: 'Invalid client credentials' }];
    }
    if (params.grant_type === 'authorization_code') {
      this.counters.codeExchanges++;
      const code = this.codes.get(params.code ?? '');
      this.codes.delete(params.code ?? '');
      if (!code || code.expiresAt < this.now())
        return [400, { error: 'invalid_grant', error_description: 'Invalid authorization code' }];
      return [200, this.tokenAnswer(this.newTokens())];
    }
    if (params.grant_type === 'refresh_token') {
      this.counters.refreshCalls++;
      if (!this.refreshTokens.delete(params.refresh_token ?? ''))
        return [400, { error: 'invalid_grant', error_description: 'Invalid refresh token' }];
      return [200, this.tokenAnswer(this.newTokens())];
    }
    return [400, { error: 'invalid_request', error_description: 'Unsupported grant_type' }];
  }

  private newTokens(): { access_token: string; refresh_token: string } {
    const access = `fake-access-${randomBytes(12).toString('hex')}`;
    const refresh = `fake-refresh-${randomBytes(12).toString('hex')}`;
    this.accessTokens.set(access, { expiresAt: this.now() + 3_600_000 });
    this.refreshTokens.add(refresh);
    return { access_token: access, refresh_token: refresh };
  }

  private tokenAnswer(tokens: { access_token: string; refresh_token: string }): Row {
    return {
      ...tokens,
      expires: Math.floor(this.now() / 1000) + 3600,
      expires_in: 3600,
      scope: 'crm,catalog',
      domain: 'oauth.bitrix.info',
      server_endpoint: `${this.url}/rest/`,
      status: 'L',
      client_endpoint: `${this.url}/rest/`,
      member_id: this.memberId,
      user_id: 1,
    };
  }

  private rest(pathname: string, params: Row): [number, unknown, FakeRequest] {
    const started = this.now();
    const parts = pathname.split('/').filter(Boolean).map(decodeURIComponent);
    const methodPart = parts.at(-1) ?? '';
    const method = methodPart.replace(/\.json$/i, '').toLowerCase();
    const commands = method === 'batch' ? Object.keys((params.cmd as Row | undefined) ?? {}).length : 0;
    const subCalls =
      method === 'batch'
        ? Object.values((params.cmd as Row | undefined) ?? {}).map((c) =>
            String(c)
              .split('?')[0]!
              .replace(/\.json$/i, '')
              .toLowerCase(),
          )
        : [];
    const answer = (status: number, body: unknown, outcome: string): [number, unknown, FakeRequest] => [
      status,
      body,
      { at: started, method, commands, outcome, subCalls },
    ];
    const error = (status: number, code: string, description: string, extra: Row = {}) =>
      answer(status, { error: code, error_description: description, ...extra }, code || 'error');
    this.counters.restRequests++;

    // The rate limit counts every request to the portal, whoever sends it.
    const level = this.bucketLevelNow();
    if (level + 1 > this.bucket.burst) {
      this.counters.limitErrors++;
      return error(503, 'QUERY_LIMIT_EXCEEDED', 'Too many requests');
    }
    this.bucketLevel = level + 1;
    this.bucketAt = this.now();

    if (parts.length === 4) {
      if (parts[1] !== this.webhook.userId || parts[2] !== this.webhook.code)
        return error(401, 'NO_AUTH_FOUND', 'Wrong authorization data');
    } else if (parts.length === 2) {
      const auth = typeof params.auth === 'string' ? params.auth : undefined;
      const token = auth ? this.accessTokens.get(auth) : undefined;
      if (!token) return error(401, 'NO_AUTH_FOUND', 'Wrong authorization data');
      if (token.expiresAt < this.now()) return error(401, 'expired_token', 'The access token provided has expired.');
    } else {
      return error(404, 'ERROR_METHOD_NOT_FOUND', 'Method not found!');
    }
    delete params.auth;

    const injected = this.injected.find((e) => !e.subCall && (!e.method || e.method.toLowerCase() === method));
    if (injected) {
      if (--injected.times! <= 0) this.injected.splice(this.injected.indexOf(injected), 1);
      const time =
        injected.operatingResetInMs !== undefined ? { time: this.time(started, injected.operatingResetInMs) } : {};
      return error(injected.status, injected.error, injected.description ?? injected.error, time);
    }

    try {
      if (method === 'batch') return answer(200, { result: this.batch(params), time: this.time(started) }, 'ok');
      const reply = this.run(method, params);
      return answer(
        200,
        {
          result: reply.result,
          ...(reply.total !== undefined ? { total: reply.total } : {}),
          ...(reply.next !== undefined ? { next: reply.next } : {}),
          time: this.time(started),
        },
        'ok',
      );
    } catch (e) {
      if (e instanceof FakeError) return error(e.status, e.code, e.description);
      return error(500, 'INTERNAL_SERVER_ERROR', 'Internal server error');
    }
  }

  private time(started: number, operatingResetInMs = 0): Row {
    const finish = this.now();
    return {
      start: started / 1000,
      finish: finish / 1000,
      duration: (finish - started) / 1000,
      processing: (finish - started) / 1000,
      date_start: new Date(started).toISOString(),
      date_finish: new Date(finish).toISOString(),
      operating: 0,
      operating_reset_at: Math.floor((finish + operatingResetInMs) / 1000) + (operatingResetInMs ? 0 : 600),
    };
  }

  // ---------------------------------------------------------------- batch

  private batch(params: Row): Row {
    const cmd = params.cmd;
    if (!cmd || typeof cmd !== 'object') throw new FakeError(400, 'INVALID_ARG_VALUE', 'cmd is required');
    const entries = Object.entries(cmd as Row);
    if (entries.length > 50) throw new FakeError(400, 'ERROR_BATCH_LENGTH_EXCEEDED', 'Max batch length exceeded');
    const parsed = entries.map(([key, value]) => {
      const text = String(value);
      const q = text.indexOf('?');
      return {
        key,
        method: (q < 0 ? text : text.slice(0, q)).replace(/\.json$/i, '').toLowerCase(),
        query: q < 0 ? '' : text.slice(q + 1),
      };
    });
    if (parsed.some((c) => c.method === 'batch'))
      throw new FakeError(405, 'ERROR_BATCH_METHOD_NOT_ALLOWED', 'Method is not allowed for batch usage');
    const halt = ['1', 'true', 'Y'].includes(String(params.halt ?? '0'));
    const result: Row = {};
    const errors: Row = {};
    const total: Row = {};
    const next: Row = {};
    const times: Row = {};
    for (const { key, method, query } of parsed) {
      const started = this.now();
      const subParams = this.substitute(decodeQuery(query), result) as Row;
      try {
        const injected = this.injected.find(
          (e) => e.subCall && (!e.method || e.method.toLowerCase() === method) && (!e.match || e.match(subParams)),
        );
        if (injected) {
          if (--injected.times! <= 0) this.injected.splice(this.injected.indexOf(injected), 1);
          throw new FakeError(injected.status, injected.error, injected.description ?? injected.error);
        }
        const reply = this.run(method, subParams);
        result[key] = reply.result;
        if (reply.total !== undefined) total[key] = reply.total;
        if (reply.next !== undefined) next[key] = reply.next;
      } catch (e) {
        errors[key] =
          e instanceof FakeError
            ? { error: e.code, error_description: e.description }
            : { error: 'INTERNAL_SERVER_ERROR', error_description: 'Internal server error' };
        times[key] = this.time(started);
        if (halt) break;
        continue;
      }
      times[key] = this.time(started);
    }
    // PHP serializes an empty array as [] rather than {}.
    const php = (value: Row) => (Object.keys(value).length === 0 ? [] : value);
    return {
      result: php(result),
      result_error: php(errors),
      result_total: php(total),
      result_next: php(next),
      result_time: php(times),
    };
  }

  /** Replaces `$result[key]` and `$result[key][FIELD]` in every string value with earlier results. */
  private substitute(value: unknown, results: Row): unknown {
    if (Array.isArray(value)) return value.map((v) => this.substitute(v, results));
    if (value && typeof value === 'object')
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, this.substitute(v, results)]));
    if (typeof value !== 'string' || !value.includes('$result')) return value;
    const pattern = /\$result((?:\[[^\]]+\])+)/g;
    const lookup = (path: string): unknown => {
      let node: unknown = results;
      for (const m of path.matchAll(/\[([^\]]+)\]/g))
        node = node && typeof node === 'object' ? (node as Row)[m[1]!] : undefined;
      return node;
    };
    const whole = /^\$result((?:\[[^\]]+\])+)$/.exec(value);
    if (whole) {
      const found = lookup(whole[1]!);
      return found === undefined ? value : found;
    }
    return value.replace(pattern, (match, path: string) => {
      const found = lookup(path);
      return found === undefined || typeof found === 'object' ? match : String(found);
    });
  }

  // ---------------------------------------------------------------- methods

  private run(method: string, params: Row): { result: unknown; total?: number; next?: number } {
    switch (method) {
      case 'crm.company.add':
        return { result: this.companyAdd(fieldsOf(params)) };
      case 'crm.company.update':
        return { result: this.companyUpdate(idOf(params), fieldsOf(params)) };
      case 'crm.company.get':
        return { result: this.companyRead(this.company(idOf(params)), undefined) };
      case 'crm.company.delete': {
        const id = idOf(params);
        this.company(id);
        this.companies.delete(id);
        return { result: true };
      }
      case 'crm.company.list': {
        const rows = filterRows([...this.companies.values()], objectOf(params.filter ?? params.FILTER), 'ID');
        const page = paginate(sortRows(rows, objectOf(params.order ?? params.ORDER), 'ID'), params.start);
        const select = listOf(params.select ?? params.SELECT);
        return {
          ...page,
          result: page.result.map((row) => this.companyRead(row, select.length > 0 ? select : ['*', 'UF_*'])),
        };
      }
      case 'crm.status.list': {
        const rows = filterRows(this.statuses, objectOf(params.filter ?? params.FILTER), 'ID');
        const order = objectOf(params.order ?? params.ORDER);
        const sorted = sortRows(rows, Object.keys(order).length > 0 ? order : { SORT: 'ASC' }, 'ID');
        return paginate(sorted, params.start);
      }
      case 'crm.status.add': {
        const fields = fieldsOf(params);
        for (const name of ['ENTITY_ID', 'STATUS_ID', 'NAME'])
          if (!fields[name]) throw new FakeError(400, 'ERROR_CORE', `Required field ${name} is empty`);
        if (this.statuses.some((s) => s.ENTITY_ID === fields.ENTITY_ID && s.STATUS_ID === fields.STATUS_ID))
          throw new FakeError(400, 'ERROR_CORE', 'The status with this STATUS_ID already exists');
        const id = this.nextId.status++;
        this.statuses.push({
          ID: String(id),
          ENTITY_ID: String(fields.ENTITY_ID),
          STATUS_ID: String(fields.STATUS_ID),
          NAME: String(fields.NAME),
          NAME_INIT: '',
          SORT: String(fields.SORT ?? 500),
          SYSTEM: 'N',
          CATEGORY_ID: null,
          COLOR: fields.COLOR ?? null,
          SEMANTICS: fields.SEMANTICS ?? null,
          EXTRA: [],
        });
        return { result: id };
      }
      case 'catalog.catalog.list':
        return { result: { catalogs: this.catalogs }, total: this.catalogs.length };
      case 'catalog.section.add':
        return { result: { section: this.sectionAdd(fieldsOf(params)) } };
      case 'catalog.section.list': {
        const filter = objectOf(params.filter);
        this.requireIblock(filter.iblockId, 'filter');
        const page = paginate(
          sortRows(filterRows([...this.sections.values()], filter, 'id'), objectOf(params.order), 'id'),
          params.start,
        );
        return { ...page, result: { sections: page.result.map((row) => pick(row, listOf(params.select))) } };
      }
      case 'catalog.product.add':
        return { result: { element: this.productWrite(undefined, fieldsOf(params)) } };
      case 'catalog.product.update':
        return { result: { element: this.productWrite(idOf(params), fieldsOf(params)) } };
      case 'catalog.product.get':
        return { result: { product: this.product(idOf(params)) } };
      case 'catalog.product.list': {
        const select = listOf(params.select);
        if (!select.includes('id') || !select.includes('iblockId'))
          throw new FakeError(400, 'ERROR_ARGUMENT', 'Required select fields: id, iblockId');
        const filter = objectOf(params.filter);
        this.requireIblock(filter.iblockId, 'filter');
        const page = paginate(
          sortRows(filterRows([...this.products.values()], filter, 'id'), objectOf(params.order), 'id'),
          params.start,
        );
        return { ...page, result: { products: page.result.map((row) => pick(row, select)) } };
      }
      case 'catalog.pricetype.list':
        return { result: { priceTypes: this.priceTypes }, total: this.priceTypes.length };
      case 'catalog.price.list': {
        const page = paginate(
          sortRows(filterRows([...this.prices.values()], objectOf(params.filter), 'id'), objectOf(params.order), 'id'),
          params.start,
        );
        return { ...page, result: { prices: page.result.map((row) => pick(row, listOf(params.select))) } };
      }
      case 'catalog.price.add':
        return { result: { price: this.priceAdd(fieldsOf(params)) } };
      case 'catalog.price.update': {
        const price = this.prices.get(idOf(params));
        if (!price) throw new FakeError(400, 'ERROR_NOT_FOUND', 'Price not found');
        const fields = fieldsOf(params);
        if (fields.price !== undefined) price.price = money(fields.price);
        if (fields.currency !== undefined) price.currency = String(fields.currency);
        return { result: { price } };
      }
      case 'catalog.price.modify':
        return { result: { prices: this.priceModify(fieldsOf(params)) } };
      default:
        throw new FakeError(404, 'ERROR_METHOD_NOT_FOUND', 'Method not found!');
    }
  }

  private company(id: number): Row {
    const company = this.companies.get(id);
    if (!company) throw new FakeError(400, '', 'Not found');
    return company;
  }

  private companyAdd(fields: Row): number {
    if (!fields.TITLE || String(fields.TITLE).trim() === '')
      throw new FakeError(400, 'ERROR_CORE', 'Required fields are not filled: Company name');
    validateMulti(fields);
    const id = this.nextId.company++;
    const now = new Date(this.now()).toISOString();
    const company: Row = {
      ID: String(id),
      COMPANY_TYPE: 'CUSTOMER',
      INDUSTRY: 'IT',
      EMPLOYEES: 'EMPLOYEES_1',
      OPENED: 'Y',
      CURRENCY_ID: 'USD',
      DATE_CREATE: now,
      DATE_MODIFY: now,
    };
    this.applyFields(company, fields);
    this.companies.set(id, company);
    return id;
  }

  private companyUpdate(id: number, fields: Row): boolean {
    const company = this.company(id);
    if ('TITLE' in fields && String(fields.TITLE ?? '').trim() === '')
      throw new FakeError(400, 'ERROR_CORE', 'Required fields are not filled: Company name');
    validateMulti(fields);
    this.applyFields(company, fields);
    company.DATE_MODIFY = new Date(this.now()).toISOString();
    return true;
  }

  /** Unknown keys are ignored, as Bitrix does; multi-value fields follow the add/change/delete-by-ID rules. */
  private applyFields(company: Row, fields: Row): void {
    for (const [key, value] of Object.entries(fields)) {
      if ((MULTI as readonly string[]).includes(key)) {
        const current = (company[key] as MultiEntry[] | undefined) ?? [];
        const entries = Array.isArray(value) ? value : value && typeof value === 'object' ? Object.values(value) : [];
        for (const item of entries as Row[]) {
          if (!item || typeof item !== 'object') continue;
          const id = item.ID === undefined || item.ID === '' ? undefined : String(item.ID);
          if (id !== undefined) {
            const at = current.findIndex((e) => e.ID === id);
            if (at < 0) continue; // an ID of another entity: Bitrix ignores it
            if (item.DELETE === 'Y' || !('VALUE' in item) || String(item.VALUE ?? '') === '') current.splice(at, 1);
            else
              current[at] = {
                ...current[at]!,
                VALUE: String(item.VALUE),
                ...(item.VALUE_TYPE ? { VALUE_TYPE: String(item.VALUE_TYPE) } : {}),
              };
          } else if (String(item.VALUE ?? '') !== '') {
            current.push({
              ID: String(this.nextId.multi++),
              VALUE_TYPE: String(item.VALUE_TYPE ?? 'WORK'),
              VALUE: String(item.VALUE),
              TYPE_ID: key,
            });
          }
        }
        if (current.length > 0) company[key] = current;
        else delete company[key];
      } else if (COMPANY_FIELDS.has(key) || key.startsWith('UF_CRM_')) {
        company[key] = value === null || value === undefined ? null : typeof value === 'object' ? value : String(value);
      }
    }
  }

  /** A company as `get` (no select: every field) or `list` (select) answers it. */
  private companyRead(company: Row, select: string[] | undefined): Row {
    const out: Row = {};
    for (const [key, value] of Object.entries(company)) {
      const multi = (MULTI as readonly string[]).includes(key);
      const uf = key.startsWith('UF_');
      const wanted =
        !select ||
        key === 'ID' ||
        select.includes(key) ||
        (!multi && !uf && select.includes('*')) ||
        (uf && select.includes('UF_*'));
      if (wanted) out[key] = multi ? (value as MultiEntry[]).map((e) => ({ ...e })) : value;
    }
    if (!select) {
      out.HAS_PHONE = company.PHONE ? 'Y' : 'N';
      out.HAS_EMAIL = company.EMAIL ? 'Y' : 'N';
    }
    return out;
  }

  private requireIblock(value: unknown, where: string): number {
    if (value === undefined || value === '')
      throw new FakeError(400, 'ERROR_ARGUMENT', `Required ${where} field: iblockId`);
    const id = Number(value);
    if (!this.catalogs.some((c) => c.iblockId === id))
      throw new FakeError(400, 'ERROR_ARGUMENT', `iblockId ${String(value)} is not a product catalog`);
    return id;
  }

  private sectionAdd(fields: Row): Row {
    const iblockId = this.requireIblock(fields.iblockId, 'fields');
    if (!fields.name) throw new FakeError(400, 'ERROR_ARGUMENT', 'Required fields: name');
    const parent =
      fields.iblockSectionId === undefined || fields.iblockSectionId === '' || fields.iblockSectionId === null
        ? null
        : Number(fields.iblockSectionId);
    if (parent !== null && !this.sections.has(parent))
      throw new FakeError(400, 'ERROR_ARGUMENT', `Section ${parent} not found`);
    const id = this.nextId.section++;
    const section: Row = {
      id,
      iblockId,
      iblockSectionId: parent,
      name: String(fields.name),
      xmlId: fields.xmlId === undefined ? String(id) : String(fields.xmlId),
      code: fields.code ?? null,
      sort: Number(fields.sort ?? 500),
      active: fields.active === 'N' ? 'N' : 'Y',
      description: fields.description ?? null,
      descriptionType: fields.descriptionType ?? 'text',
    };
    this.sections.set(id, section);
    return section;
  }

  private product(id: number): Row {
    const product = this.products.get(id);
    if (!product) throw new FakeError(400, 'ERROR_NOT_FOUND', 'Product not found');
    return product;
  }

  private productWrite(id: number | undefined, fields: Row): Row {
    let product: Row;
    if (id === undefined) {
      const iblockId = this.requireIblock(fields.iblockId, 'fields');
      if (!fields.name) throw new FakeError(400, 'ERROR_ARGUMENT', 'Required fields: name');
      const newId = this.nextId.product++;
      product = {
        id: newId,
        iblockId,
        name: '',
        active: 'Y',
        xmlId: String(newId),
        code: null,
        iblockSectionId: null,
        sort: 500,
        vatIncluded: 'N',
        purchasingPrice: null,
        purchasingCurrency: null,
        quantity: 0,
        type: 1,
      };
      this.products.set(newId, product);
    } else {
      product = this.product(id);
      if ('name' in fields && !fields.name) throw new FakeError(400, 'ERROR_ARGUMENT', 'Required fields: name');
    }
    for (const [key, value] of Object.entries(fields)) {
      if (key === 'iblockId' || key === 'id') continue;
      if (key === 'iblockSectionId') {
        const section = value === null || value === '' ? null : Number(value);
        if (section !== null && !this.sections.has(section))
          throw new FakeError(400, 'ERROR_ARGUMENT', `Section ${String(value)} not found`);
        product.iblockSectionId = section;
      } else if (key === 'active') product.active = value === 'N' || value === false ? 'N' : 'Y';
      else product[key] = value;
    }
    return product;
  }

  private priceAdd(fields: Row): Row {
    for (const name of ['productId', 'catalogGroupId', 'price', 'currency'])
      if (fields[name] === undefined || fields[name] === '')
        throw new FakeError(400, 'ERROR_ARGUMENT', `Required fields: ${name}`);
    const productId = Number(fields.productId);
    const group = Number(fields.catalogGroupId);
    this.product(productId);
    if (!this.priceTypes.some((t) => t.id === group))
      throw new FakeError(400, 'ERROR_ARGUMENT', `Price type ${group} not found`);
    if (
      [...this.prices.values()].some(
        (p) => p.productId === productId && p.catalogGroupId === group && p.quantityFrom === null,
      )
    ) {
      throw new FakeError(400, 'ERROR_ARGUMENT', 'A price of this type already exists for the product');
    }
    const id = this.nextId.price++;
    const price: Row = {
      id,
      productId,
      catalogGroupId: group,
      price: money(fields.price),
      currency: String(fields.currency),
      quantityFrom: null,
      quantityTo: null,
      extraId: null,
      timestampX: new Date(this.now()).toISOString(),
    };
    this.prices.set(id, price);
    return price;
  }

  /** Sets every price of a product: entries with `id` change, without create; unlisted ones are deleted. The answer's shape is the fake's choice. */
  private priceModify(fields: Row): Row[] {
    const product = objectOf(fields.product);
    const productId = Number(product.id);
    this.product(productId);
    const wanted = (Array.isArray(product.prices) ? product.prices : Object.values(objectOf(product.prices))) as Row[];
    const keep = new Set<number>();
    for (const entry of wanted) {
      if (entry.id !== undefined && entry.id !== '') {
        const price = this.prices.get(Number(entry.id));
        if (!price || price.productId !== productId)
          throw new FakeError(400, 'ERROR_NOT_FOUND', `Price ${String(entry.id)} not found`);
        Object.assign(price, {
          catalogGroupId: Number(entry.catalogGroupId ?? price.catalogGroupId),
          price: money(entry.price),
          currency: String(entry.currency ?? price.currency),
        });
        keep.add(price.id as number);
      } else {
        const id = this.nextId.price++;
        this.prices.set(id, {
          id,
          productId,
          catalogGroupId: Number(entry.catalogGroupId),
          price: money(entry.price),
          currency: String(entry.currency),
          quantityFrom: null,
          quantityTo: null,
          extraId: null,
          timestampX: new Date(this.now()).toISOString(),
        });
        keep.add(id);
      }
    }
    for (const [id, price] of this.prices) if (price.productId === productId && !keep.has(id)) this.prices.delete(id);
    return [...this.prices.values()].filter((p) => p.productId === productId);
  }

  private seedStatuses(): void {
    const add = (entity: string, items: [string, string][]) => {
      items.forEach(([statusId, name], index) => {
        this.statuses.push({
          ID: String(this.nextId.status++),
          ENTITY_ID: entity,
          STATUS_ID: statusId,
          NAME: name,
          NAME_INIT: name,
          SORT: String((index + 1) * 10),
          SYSTEM: 'Y',
          CATEGORY_ID: null,
          COLOR: null,
          SEMANTICS: null,
          EXTRA: [],
        });
      });
    };
    add('COMPANY_TYPE', [
      ['CUSTOMER', 'Client'],
      ['SUPPLIER', 'Supplier'],
      ['COMPETITOR', 'Competitor'],
      ['PARTNER', 'Partner'],
      ['OTHER', 'Other'],
    ]);
    add('INDUSTRY', [
      ['IT', 'Information Technology'],
      ['TELECOM', 'Telecommunication'],
      ['MANUFACTURING', 'Manufacturing'],
      ['BANKING', 'Banking Services'],
      ['CONSULTING', 'Consulting'],
      ['FINANCE', 'Finance'],
      ['GOVERNMENT', 'Government'],
      ['DELIVERY', 'Delivery'],
      ['ENTERTAINMENT', 'Entertainment'],
      ['NOTPROFIT', 'Non-profit'],
      ['OTHER', 'Other'],
    ]);
    add('EMPLOYEES', [
      ['EMPLOYEES_1', 'less than 50'],
      ['EMPLOYEES_2', '50-250'],
      ['EMPLOYEES_3', '250-500'],
      ['EMPLOYEES_4', 'over 500'],
    ]);
  }
}

// ---------------------------------------------------------------- helpers

function objectOf(value: unknown): Row {
  return value && typeof value === 'object' && !Array.isArray(value) ? (value as Row) : {};
}

function listOf(value: unknown): string[] {
  if (Array.isArray(value)) return value.map(String);
  if (value && typeof value === 'object') return Object.values(value).map(String);
  return typeof value === 'string' && value ? [value] : [];
}

/** Docs use both `fields` and `FIELDS`. */
function fieldsOf(params: Row): Row {
  return objectOf(params.fields ?? params.FIELDS);
}

function idOf(params: Row): number {
  const id = Number(params.id ?? params.ID);
  if (!Number.isInteger(id) || id <= 0) throw new FakeError(400, 'ERROR_CORE', 'ID is not defined or invalid');
  return id;
}

function money(value: unknown): number {
  const n = Number(value);
  if (!Number.isFinite(n)) throw new FakeError(400, 'ERROR_ARGUMENT', `Invalid price ${String(value)}`);
  return n;
}

function validateMulti(fields: Row): void {
  const emails = fields.EMAIL;
  const entries = Array.isArray(emails) ? emails : emails && typeof emails === 'object' ? Object.values(emails) : [];
  for (const item of entries as Row[]) {
    const value = item && typeof item === 'object' ? item.VALUE : undefined;
    if (value === undefined || value === '' || item.DELETE === 'Y') continue;
    if (!EMAIL.test(String(value)))
      throw new FakeError(400, 'ERROR_CORE', `Invalid e-mail address: ${String(value).slice(0, 100)}`);
  }
}

function pick(row: Row, select: string[]): Row {
  if (select.length === 0 || select.includes('*')) return { ...row };
  return Object.fromEntries(select.filter((k) => k in row).map((k) => [k, row[k]]));
}

function same(have: unknown, want: unknown): boolean {
  if (Array.isArray(have)) return have.some((e) => same(e && typeof e === 'object' ? (e as Row).VALUE : e, want));
  return String(have ?? '') === String(want ?? '');
}

function compare(have: unknown, want: unknown): number {
  const a = Number(have);
  const b = Number(want);
  if (have !== null && have !== '' && Number.isFinite(a) && Number.isFinite(b)) return a - b;
  return String(have ?? '').localeCompare(String(want ?? ''));
}

/** Bitrix list filters: `=` (default), `!`/`!=`, `@` (IN), `!@`, `>`, `>=`, `<`, `<=`, `%` (substring). */
function filterRows(rows: Row[], filter: Row, _idKey: string): Row[] {
  const tests = Object.entries(filter).map(([rawKey, want]) => {
    const m = /^(>=|<=|!@|!=|!%|@|>|<|=|!|%)?(.+)$/.exec(rawKey)!;
    const op = m[1] ?? '=';
    const field = m[2]!;
    const set = () =>
      (Array.isArray(want)
        ? want
        : want && typeof want === 'object'
          ? Object.values(want)
          : String(want).split(',')
      ).map(String);
    return (row: Row): boolean => {
      const have = row[field];
      switch (op) {
        case '=':
          return Array.isArray(want) ? set().some((w) => same(have, w)) : same(have, want);
        case '!':
        case '!=':
          return !same(have, want);
        case '@':
          return set().some((w) => same(have, w));
        case '!@':
          return !set().some((w) => same(have, w));
        case '>':
          return compare(have, want) > 0;
        case '>=':
          return compare(have, want) >= 0;
        case '<':
          return compare(have, want) < 0;
        case '<=':
          return compare(have, want) <= 0;
        case '%':
          return String(have ?? '')
            .toLowerCase()
            .includes(String(want).toLowerCase());
        case '!%':
          return !String(have ?? '')
            .toLowerCase()
            .includes(String(want).toLowerCase());
        default:
          return false;
      }
    };
  });
  return rows.filter((row) => tests.every((test) => test(row)));
}

function sortRows(rows: Row[], order: Row, idKey: string): Row[] {
  const entries = Object.entries(order);
  const keys = entries.length > 0 ? entries : [[idKey, 'ASC']];
  return [...rows].sort((a, b) => {
    for (const [key, direction] of keys) {
      const c = compare(a[key as string], b[key as string]);
      if (c !== 0) return String(direction).toUpperCase() === 'DESC' ? -c : c;
    }
    return 0;
  });
}

/** 50 rows from `start`; `start: -1` skips the count (no `total`, no `next`), for keyset paging. */
function paginate(rows: Row[], startParam: unknown): { result: Row[]; total?: number; next?: number } {
  const start = Number(startParam ?? 0);
  if (start === -1) return { result: rows.slice(0, PAGE) };
  const from = Number.isInteger(start) && start > 0 ? start : 0;
  const result = rows.slice(from, from + PAGE);
  return { result, total: rows.length, ...(from + PAGE < rows.length ? { next: from + PAGE } : {}) };
}
