import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A fake Kissflow dataset API for tests and benchmarks (the real one is a SaaS we cannot reach). It
 * enforces what the client must cope with (`../shared/reference/kissflow.md`): `X-Access-Key-Id` and
 * `X-Access-Key-Secret` on every call (401 otherwise), the account id in the path, 1-based
 * `page_number` and a bounded `page_size` (400 otherwise), 403 for datasets the key may not read, 404
 * for unknown datasets, views and rows, and a per-key request rate answered 429 with `Retry-After`.
 * Its list can leave `_modified_at` out, as Kissflow's list endpoints may; the row endpoint has it.
 */
export interface FakeKissflowOptions {
  accountId?: string;
  accessKeyId?: string;
  accessKeySecret?: string;
  /** Requests per second per access key before 429 (default 100). */
  rateLimitPerSecond?: number;
  /** Largest `page_size` accepted (default 1000). */
  maxPageSize?: number;
  /** Whether list pages carry `_modified_at` (default true). */
  listIncludesModifiedAt?: boolean;
}

export type FakeRow = Record<string, unknown> & { _id: string; _modified_at: string };

export class FakeKissflow {
  readonly accountId: string;
  readonly accessKeyId: string;
  readonly accessKeySecret: string;
  readonly datasets = new Map<string, Map<string, FakeRow>>();
  /** `<dataset>/<view>` → which rows the view shows. */
  readonly views = new Map<string, (row: FakeRow) => boolean>();
  readonly forbidden = new Set<string>();
  /** Requests answered, as `<status> <kind> <page or row id>` (kind: list, view, row), for assertions. */
  readonly calls: string[] = [];
  /** Rows the list and view endpoints leave out (as offset paging does when rows move between pages); the row endpoint still has them. */
  readonly hiddenFromList = new Set<string>();
  /** The next this many requests answer 503 without `Retry-After` (an outage). */
  failNext = 0;
  /** The next requests answered 429 with `Retry-After: 1` whatever the rate (a key at its limit). */
  rateLimitNext = 0;
  listIncludesModifiedAt: boolean;
  /** Delays every answer by this long (to make a run slow enough to interrupt). */
  latencyMs = 0;
  private readonly window = new Map<string, { second: number; count: number }>();
  private readonly server = createServer((req, res) => void this.handle(req, res));
  url = '';

  constructor(private readonly options: FakeKissflowOptions = {}) {
    this.accountId = options.accountId ?? 'AcFakeAccount01';
    this.accessKeyId = options.accessKeyId ?? 'fake-access-key-id';
    this.accessKeySecret = options.accessKeySecret ?? 'fake-access-key-secret-not-real';
    this.listIncludesModifiedAt = options.listIncludesModifiedAt ?? true;
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

  /** The variables that point Puente at this fake. */
  env(): Record<string, string> {
    return {
      KISSFLOW_BASE_URL: this.url,
      KISSFLOW_ACCOUNT_ID: this.accountId,
      KISSFLOW_ACCESS_KEY_ID: this.accessKeyId,
      KISSFLOW_ACCESS_KEY_SECRET: this.accessKeySecret,
    };
  }

  /** Creates or edits a row; `_modified_at` is now (second resolution, as Kissflow's) unless given. */
  put(dataset: string, row: Record<string, unknown> & { _id: string }): FakeRow {
    const rows = this.datasets.get(dataset) ?? new Map<string, FakeRow>();
    this.datasets.set(dataset, rows);
    const now = new Date(Math.floor(Date.now() / 1000) * 1000).toISOString().replace('.000Z', 'Z');
    const stored: FakeRow = {
      _created_at: rows.get(row._id)?._created_at ?? now,
      ...row,
      _modified_at: (row._modified_at as string | undefined) ?? now,
    };
    rows.set(row._id, stored);
    return stored;
  }

  remove(dataset: string, rowId: string): boolean {
    return this.datasets.get(dataset)?.delete(rowId) ?? false;
  }

  /** `count` rows `<prefix>00001`... with a few typical columns, all modified at `modifiedAt`. */
  seed(dataset: string, count: number, options: { prefix?: string; modifiedAt?: string } = {}): void {
    const modifiedAt = options.modifiedAt ?? '2025-10-15T10:30:00Z';
    for (let i = 1; i <= count; i++) {
      const id = `${options.prefix ?? 'Row'}${String(i).padStart(5, '0')}`;
      this.put(dataset, {
        _id: id,
        Name: `Documento ${i}`,
        _modified_at: modifiedAt,
        Cliente: { _id: `Cli${i % 97}`, Name: `Cliente ${i % 97}` },
        Monto: (i * 37.5) % 10_000,
        Fecha_Emision: '2025-10-01',
        Estado: i % 3 === 0 ? 'Aprobado' : 'Pendiente',
        _created_by: { _id: 'UsrFake01', Name: 'Ana Pérez', Kind: 'User' },
      });
    }
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, this.latencyMs));
    const url = new URL(req.url ?? '/', 'http://fake');
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    const kind = parts.at(-1) === 'list' ? (parts.includes('view') ? 'view' : 'list') : 'row';
    const answer = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      this.calls.push(
        `${status} ${kind} ${kind === 'row' ? (parts.at(-1) ?? '') : (url.searchParams.get('page_number') ?? '')}`,
      );
      const text = JSON.stringify(body);
      res.writeHead(status, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(text),
        ...headers,
      });
      res.end(text);
    };
    if (req.method !== 'GET') return answer(405, { message: 'method not allowed' }, { allow: 'GET' });
    if (
      req.headers['x-access-key-id'] !== this.accessKeyId ||
      req.headers['x-access-key-secret'] !== this.accessKeySecret
    ) {
      return answer(401, { message: 'Invalid or missing access key' });
    }
    const second = Math.floor(Date.now() / 1000);
    const window = this.window.get(this.accessKeyId);
    if (window && window.second === second) window.count++;
    else this.window.set(this.accessKeyId, { second, count: 1 });
    const limited = this.rateLimitNext > 0;
    if (limited) this.rateLimitNext--;
    if (limited || (this.window.get(this.accessKeyId)?.count ?? 0) > (this.options.rateLimitPerSecond ?? 100))
      return answer(429, { message: 'Too many requests' }, { 'retry-after': '1' });
    if (this.failNext > 0) {
      this.failNext--;
      return answer(503, { message: 'Service unavailable' });
    }

    // /dataset/2/<account>/<dataset>/list | /dataset/2/<account>/<dataset>/view/<view>/list | /dataset/2/<account>/<dataset>/<row>
    if (parts[0] !== 'dataset' || parts[1] !== '2' || parts.length < 4) return answer(404, { message: 'Not found' });
    if (parts[2] !== this.accountId) return answer(404, { message: 'Account not found' });
    const dataset = parts[3]!;
    if (this.forbidden.has(dataset))
      return answer(403, { message: 'You do not have permission to access this dataset' });
    const rows = this.datasets.get(dataset);
    if (!rows) return answer(404, { message: `Dataset ${dataset} not found` });
    if (kind === 'row') {
      if (parts.length !== 5) return answer(404, { message: 'Not found' });
      const row = rows.get(parts[4]!);
      return row ? answer(200, row) : answer(404, { message: 'Item not found' });
    }
    let all = [...rows.values()].filter((row) => !this.hiddenFromList.has(row._id));
    if (kind === 'view') {
      if (parts.length !== 7 || parts[4] !== 'view') return answer(404, { message: 'Not found' });
      const filter = this.views.get(`${dataset}/${parts[5]!}`);
      if (!filter) return answer(404, { message: `View ${parts[5]!} not found` });
      all = all.filter(filter);
    } else if (parts.length !== 5) return answer(404, { message: 'Not found' });
    const page = Number(url.searchParams.get('page_number') ?? '1');
    const size = Number(url.searchParams.get('page_size') ?? '10');
    const max = this.options.maxPageSize ?? 1000;
    if (!Number.isInteger(page) || page < 1) return answer(400, { message: 'page_number must be a positive integer' });
    if (!Number.isInteger(size) || size < 1 || size > max)
      return answer(400, { message: `page_size must be between 1 and ${max}` });
    const data = all.slice((page - 1) * size, page * size).map((row) => {
      if (this.listIncludesModifiedAt) return row;
      const { _modified_at: _, ...rest } = row;
      return rest;
    });
    return answer(200, { Data: data, TotalCount: all.length });
  }
}
