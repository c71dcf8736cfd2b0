import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FakeMediaFiles } from './fakeMedia.js';

/**
 * A fake of Meta's Graph API send endpoint (`POST /{phone-number-id}/messages`) and media upload
 * (`POST /{phone-number-id}/media`, multipart, the Cloud API's per-type MIME types and sizes; a send
 * naming a media id it never gave out is refused). It enforces the
 * access token (error 190, 401), known phone number ids (error 100), the message body's required
 * fields (error 100, 400), and a per-number throughput limit answered with error 130429, the way Meta
 * answers, so the sender's classification and rate limiting are tested against real error shapes.
 * Media: `GET /{media-id}` (bearer) answers `{url, mime_type, sha256, file_size, id}` with a download URL
 * (its own path, as Meta's lookaside host; bearer required) that expires after `mediaUrlTtlMs` (404
 * then); an id removed with `expireMedia` is Graph's unknown object (400, code 100, subcode 33).
 * Templates: `GET /{waba-id}/message_templates` lists `templates` as Meta does: `fields=` picks the
 * fields (`id` always), `status=` filters, `limit` (default 25) pages with cursor paging
 * (`paging.cursors.before/after`, `paging.next` only while a page follows); an unknown WABA or a
 * cursor it never gave out is refused (400, code 100).
 */
export interface FakeGraphOptions {
  accessToken?: string;
  /** The Meta app whose webhook subscription is managed (`/{app-id}/subscriptions`, app token `<id>|<secret>`). */
  appId?: string;
  appSecret?: string;
  /** The WhatsApp Business Account (`/{waba-id}/subscribed_apps`). */
  wabaId?: string;
  phoneNumberIds?: string[];
  /** Messages per second per phone number (Cloud API default 80). */
  throughputPerSecond?: number;
  /** How long a media download URL works (Meta: about five minutes). */
  mediaUrlTtlMs?: number;
}

/** A file uploaded to `/{phone-number-id}/media`, by the media id the upload answered. */
export interface GraphUpload {
  phoneNumberId: string;
  bytes: Buffer;
  mimeType: string;
  fileName: string;
}

const MB = 1024 * 1024;
/** Meta's "Supported media types": what an upload may be, by MIME type (without parameters), and its largest size. */
const UPLOAD_LIMITS: Record<string, number> = {
  'audio/aac': 16 * MB,
  'audio/amr': 16 * MB,
  'audio/mpeg': 16 * MB,
  'audio/mp4': 16 * MB,
  'audio/ogg': 16 * MB,
  'text/plain': 100 * MB,
  'application/pdf': 100 * MB,
  'application/msword': 100 * MB,
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document': 100 * MB,
  'application/vnd.ms-excel': 100 * MB,
  'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet': 100 * MB,
  'application/vnd.ms-powerpoint': 100 * MB,
  'application/vnd.openxmlformats-officedocument.presentationml.presentation': 100 * MB,
  'image/jpeg': 5 * MB,
  'image/png': 5 * MB,
  'image/webp': 500 * 1024,
  'video/3gpp': 16 * MB,
  'video/3gp': 16 * MB,
  'video/mp4': 16 * MB,
};

/** A message template as Meta lists it (`GET /{waba-id}/message_templates`). */
export interface GraphTemplate {
  id: string;
  name: string;
  language: string;
  status:
    | 'APPROVED'
    | 'IN_APPEAL'
    | 'PENDING'
    | 'REJECTED'
    | 'PENDING_DELETION'
    | 'DELETED'
    | 'DISABLED'
    | 'PAUSED'
    | 'LIMIT_EXCEEDED';
  category: 'MARKETING' | 'UTILITY' | 'AUTHENTICATION';
  components: Record<string, unknown>[];
}

/** The fields Graph answers for a template when `fields=` is not given (Meta's sample response). */
const TEMPLATE_DEFAULT_FIELDS = ['name', 'components', 'language', 'status', 'category', 'id'] as const;

export interface GraphSend {
  phoneNumberId: string;
  body: Record<string, unknown>;
  wamid: string;
  at: number;
}

const TYPES = new Set([
  'text',
  'image',
  'video',
  'audio',
  'document',
  'sticker',
  'template',
  'reaction',
  'location',
  'interactive',
  'contacts',
]);

export class FakeGraph {
  readonly accessToken: string;
  readonly appId: string;
  readonly appSecret: string;
  readonly wabaId: string;
  /** The app's `whatsapp_business_account` subscription, as Meta keeps it. */
  subscription: { callbackUrl: string; verifyToken: string; fields: string[] } | undefined;
  /** Apps subscribed to the WABA. */
  readonly wabaApps = new Set<string>();
  readonly sends: GraphSend[] = [];
  /** Uploaded media by id; a send's `{type: {id}}` must name one of these. */
  readonly uploads = new Map<string, GraphUpload>();
  readonly reads: { phoneNumberId: string; messageId: string }[] = [];
  /** The WABA's message templates, in Meta's order (a test adds, removes or changes them). */
  templates: GraphTemplate[] = [];
  /** Each `message_templates` request's query (`fields`, `limit`, `after`, `status`...). */
  readonly templateListings: URLSearchParams[] = [];
  rateLimited = 0;
  /** Download URLs handed out by `GET /{media-id}`: a test expires them, or makes the next downloads fail. */
  readonly mediaFiles: FakeMediaFiles;
  /** Media ids Meta keeps (`addMedia`); an id removed with `expireMedia` is answered as Meta answers an unknown object. */
  private readonly media = new Map<string, { bytes: Buffer; mimeType: string; fileName?: string | undefined }>();
  /** Sends still to be refused for throughput whatever the clock says (`refuseForThroughput`). */
  private refusals = 0;
  private readonly numbers: Set<string>;
  private readonly window = new Map<string, { second: number; count: number }>();
  private readonly server = createServer((req, res) => void this.handle(req, res));
  url = '';

  constructor(private readonly options: FakeGraphOptions = {}) {
    this.accessToken = options.accessToken ?? 'fake-graph-access-token';
    this.appId = options.appId ?? '1234567890123456';
    this.appSecret = options.appSecret ?? 'fake-meta-app-secret';
    this.wabaId = options.wabaId ?? '102290129340398';
    this.numbers = new Set(options.phoneNumberIds ?? ['106540352242922']);
    this.mediaFiles = new FakeMediaFiles(options.mediaUrlTtlMs ?? 300_000);
  }

  /** Media Meta now keeps for an incoming message: its media id, as a webhook would carry it. */
  addMedia(bytes: Buffer, mimeType: string, fileName?: string): string {
    const id = String(1_000_000_000_000_000 + this.media.size + Math.floor(Math.random() * 1_000_000));
    this.media.set(id, { bytes, mimeType, fileName });
    return id;
  }

  /** Meta no longer has this media (its retention passed): its id is an unknown object. */
  expireMedia(id: string): void {
    this.media.delete(id);
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v21.0`;
    return this;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const fail = (status: number, code: number, message: string, extra: Record<string, unknown> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          error: {
            message,
            type: code === 190 ? 'OAuthException' : 'OAuthException',
            code,
            ...extra,
            fbtrace_id: randomBytes(8).toString('base64url'),
          },
        }),
      );
    };
    const url = new URL(req.url ?? '/', 'http://fake');
    const subscriptions = /^\/v\d+\.\d+\/([^/]+)\/subscriptions$/.exec(url.pathname);
    if (subscriptions)
      return this.subscriptions(
        req.method ?? 'GET',
        decodeURIComponent(subscriptions[1]!),
        url.searchParams,
        res,
        fail,
      );
    if (req.headers.authorization !== `Bearer ${this.accessToken}`)
      return fail(401, 190, 'Error validating access token: Invalid OAuth access token.');
    // Media: the download URL (its own path, as Meta's lookaside host serves it) and `GET /{media-id}`.
    if (req.method === 'GET' && url.pathname === '/whatsapp_business/attachments/') {
      this.mediaFiles.serve(res, url.searchParams.get('hash') ?? '', 404);
      return;
    }
    const mediaId = /^\/v\d+\.\d+\/(\d+)$/.exec(url.pathname);
    if (req.method === 'GET' && mediaId) {
      const id = mediaId[1]!;
      const media = this.media.get(id);
      if (!media)
        return fail(
          400,
          100,
          `Unsupported get request. Object with ID '${id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation.`,
          { error_subcode: 33 },
        );
      const token = this.mediaFiles.add(media);
      const origin = new URL(this.url).origin;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          messaging_product: 'whatsapp',
          url: `${origin}/whatsapp_business/attachments/?mid=${id}&ext=${Math.floor(Date.now() / 1000)}&hash=${token}`,
          mime_type: media.mimeType,
          sha256: createHash('sha256').update(media.bytes).digest('hex'),
          file_size: media.bytes.length,
          id,
        }),
      );
      return;
    }
    const apps = /^\/v\d+\.\d+\/([^/]+)\/subscribed_apps$/.exec(url.pathname);
    if (apps) {
      if (decodeURIComponent(apps[1]!) !== this.wabaId)
        return fail(400, 100, `Unsupported request. Object with ID '${apps[1]}' does not exist`, { error_subcode: 33 });
      if (req.method === 'POST') this.wabaApps.add(this.appId);
      if (req.method === 'DELETE') this.wabaApps.delete(this.appId);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify(
          req.method === 'GET'
            ? {
                data: [...this.wabaApps].map((id) => ({ whatsapp_business_api_data: { id, name: 'Puente test app' } })),
              }
            : { success: true },
        ),
      );
      return;
    }
    const listing = /^\/v\d+\.\d+\/([^/]+)\/message_templates$/.exec(url.pathname);
    if (req.method === 'GET' && listing) return this.listTemplates(decodeURIComponent(listing[1]!), url, res, fail);
    const upload = /^\/v\d+\.\d+\/([^/]+)\/media$/.exec(url.pathname);
    if (req.method === 'POST' && upload)
      return this.upload(decodeURIComponent(upload[1]!), req.headers['content-type'], Buffer.concat(chunks), res, fail);
    const match = /^\/v\d+\.\d+\/([^/]+)\/messages$/.exec(new URL(req.url ?? '/', 'http://fake').pathname);
    if (req.method !== 'POST' || !match) return fail(400, 100, 'Unknown path components', { error_subcode: 2500 });
    const phoneNumberId = decodeURIComponent(match[1]!);
    if (!this.numbers.has(phoneNumberId))
      return fail(400, 100, `Unsupported post request. Object with ID '${phoneNumberId}' does not exist`, {
        error_subcode: 33,
      });
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
    } catch {
      return fail(400, 100, 'Invalid JSON payload');
    }
    if (body.messaging_product !== 'whatsapp')
      return fail(400, 100, '(#100) The parameter messaging_product is required.');
    if (body.status === 'read') {
      if (typeof body.message_id !== 'string') return fail(400, 100, '(#100) The parameter message_id is required.');
      this.reads.push({ phoneNumberId, messageId: body.message_id });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ success: true }));
      return;
    }
    if (typeof body.to !== 'string' && typeof body.recipient !== 'string')
      return fail(400, 100, '(#100) The parameter to is required.');
    const type = typeof body.type === 'string' ? body.type : 'text';
    if (!TYPES.has(type)) return fail(400, 100, `(#100) Param type must be one of {${[...TYPES].join(', ')}}`);
    const content = body[type] as Record<string, unknown> | undefined;
    if (
      type === 'text' &&
      (typeof content?.body !== 'string' || content.body.length === 0 || content.body.length > 4096)
    )
      return fail(400, 100, "(#100) Param text['body'] is required and must be at most 4096 characters");
    if (
      ['image', 'video', 'audio', 'document', 'sticker'].includes(type) &&
      typeof content?.link !== 'string' &&
      typeof content?.id !== 'string'
    )
      return fail(400, 100, `(#100) Param ${type}['link'] or ${type}['id'] is required`);
    const sentMediaId = typeof content?.id === 'string' ? content.id : undefined;
    if (sentMediaId !== undefined && this.uploads.get(sentMediaId)?.phoneNumberId !== phoneNumberId)
      return fail(400, 100, `(#100) Invalid parameter: ${type}['id'] ${sentMediaId} is not a media id of this number`);
    if (
      type === 'template' &&
      (typeof content?.name !== 'string' ||
        typeof (content.language as { code?: unknown } | undefined)?.code !== 'string')
    )
      return fail(400, 100, "(#100) Param template['name'] and template['language']['code'] are required");
    // One reading of the clock for the throughput window and the send's `at`: read twice, a send admitted
    // at the end of one second could be recorded in the next, beside that second's own full quota.
    const now = Date.now();
    const refused = this.refusals > 0;
    if (refused) this.refusals--;
    if (refused || !this.withinThroughput(phoneNumberId, now)) {
      this.rateLimited++;
      return fail(400, 130429, '(#130429) Rate limit hit', {
        error_data: { messaging_product: 'whatsapp', details: 'Cloud API message throughput has been reached.' },
      });
    }
    const wamid = `wamid.${randomBytes(18).toString('base64url')}`;
    this.sends.push({ phoneNumberId, body, wamid, at: now });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        messaging_product: 'whatsapp',
        contacts: [{ input: body.to ?? body.recipient, wa_id: body.to ?? body.recipient }],
        messages: [{ id: wamid }],
      }),
    );
  }

  /**
   * `/{app-id}/subscriptions`: the app access token (`<id>|<secret>`) is required (190 otherwise); a
   * POST makes Meta's verification request to the callback first (`hub.mode=subscribe`,
   * `hub.verify_token`, `hub.challenge`) and fails with (#2200) unless the challenge comes back.
   */
  private listTemplates(
    wabaId: string,
    url: URL,
    res: ServerResponse,
    fail: (status: number, code: number, message: string, extra?: Record<string, unknown>) => void,
  ): void {
    this.templateListings.push(url.searchParams);
    if (wabaId !== this.wabaId)
      return fail(400, 100, `Unsupported get request. Object with ID '${wabaId}' does not exist`, {
        error_subcode: 33,
      });
    const q = url.searchParams;
    const statuses = q
      .get('status')
      ?.split(',')
      .map((v) => v.trim().toUpperCase());
    const all = this.templates.filter((t) => !statuses || statuses.includes(t.status));
    const limit = Number(q.get('limit') ?? 25);
    if (!Number.isInteger(limit) || limit < 1) return fail(400, 100, '(#100) Param limit must be a positive integer');
    const cursor = (index: number) => Buffer.from(`tpl:${index}`).toString('base64url');
    let start = 0;
    const after = q.get('after');
    if (after !== null) {
      const decoded = /^tpl:(\d+)$/.exec(Buffer.from(after, 'base64url').toString('utf8'));
      if (!decoded) return fail(400, 100, '(#100) Invalid parameter: after cursor');
      start = Number(decoded[1]) + 1;
    }
    const page = all.slice(start, start + limit);
    const fields = q
      .get('fields')
      ?.split(',')
      .map((f) => f.trim()) ?? [...TEMPLATE_DEFAULT_FIELDS];
    const data = page.map((t) =>
      Object.fromEntries(
        [...new Set([...fields, 'id'])].flatMap((f) => (f in t ? [[f, t[f as keyof GraphTemplate]]] : [])),
      ),
    );
    const body: Record<string, unknown> = { data };
    if (page.length > 0) {
      const last = start + page.length - 1;
      const next = new URL(url.pathname + url.search, this.url);
      next.searchParams.set('after', cursor(last));
      body.paging = {
        cursors: { before: cursor(start), after: cursor(last) },
        ...(last < all.length - 1 ? { next: next.toString() } : {}),
      };
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  private async subscriptions(
    method: string,
    appId: string,
    params: URLSearchParams,
    res: ServerResponse,
    fail: (status: number, code: number, message: string) => void,
  ): Promise<void> {
    if (params.get('access_token') !== `${this.appId}|${this.appSecret}`)
      return fail(400, 190, 'Invalid OAuth access token - Cannot parse access token');
    if (appId !== this.appId) return fail(400, 100, `Unsupported request. Object with ID '${appId}' does not exist`);
    const ok = (body: unknown) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (method === 'GET') {
      return ok({
        data: this.subscription
          ? [
              {
                object: 'whatsapp_business_account',
                callback_url: this.subscription.callbackUrl,
                active: true,
                fields: this.subscription.fields.map((name) => ({ name, version: 'v21.0' })),
              },
            ]
          : [],
      });
    }
    if (method === 'DELETE') {
      this.subscription = undefined;
      return ok({ success: true });
    }
    if (method !== 'POST') return fail(400, 100, 'Unsupported method');
    const callbackUrl = params.get('callback_url') ?? '';
    const verifyToken = params.get('verify_token') ?? '';
    const fields = (params.get('fields') ?? '').split(',').filter(Boolean);
    if (params.get('object') !== 'whatsapp_business_account')
      return fail(
        400,
        100,
        '(#100) Param object must be one of {user, page, permissions, payments, whatsapp_business_account, ...}',
      );
    if (!/^https?:\/\//.test(callbackUrl) || !verifyToken || fields.length === 0)
      return fail(400, 100, '(#100) callback_url, verify_token and fields are required');
    const challenge = randomBytes(6).toString('hex');
    let echoed = '';
    try {
      const verify = new URL(callbackUrl);
      verify.search = new URLSearchParams({
        'hub.mode': 'subscribe',
        'hub.verify_token': verifyToken,
        'hub.challenge': challenge,
      }).toString();
      const answer = await fetch(verify, { signal: AbortSignal.timeout(5_000) });
      echoed = answer.ok ? (await answer.text()).trim() : '';
    } catch {
      echoed = '';
    }
    if (echoed !== challenge)
      return fail(
        400,
        2200,
        '(#2200) Callback verification failed with the following errors: HTTP Status Code = 403; HTTP Message = Forbidden',
      );
    this.subscription = { callbackUrl, verifyToken, fields };
    return ok({ success: true });
  }

  /**
   * `POST /{phone-number-id}/media`: multipart with `messaging_product=whatsapp`, `type` (the MIME type) and
   * `file`; a MIME type outside Meta's list or a file over its type's size is refused (#100), an empty or
   * missing file too. Answers `{id}` and keeps the bytes.
   */
  private async upload(
    phoneNumberId: string,
    contentType: string | undefined,
    raw: Buffer,
    res: ServerResponse,
    fail: (status: number, code: number, message: string) => void,
  ): Promise<void> {
    if (!this.numbers.has(phoneNumberId))
      return fail(400, 100, `Unsupported post request. Object with ID '${phoneNumberId}' does not exist`);
    let form: FormData;
    try {
      if (!contentType?.startsWith('multipart/form-data')) throw new Error('not multipart');
      form = await new Request('http://fake/', {
        method: 'POST',
        headers: { 'content-type': contentType },
        body: raw,
      }).formData();
    } catch {
      return fail(400, 100, '(#100) The request must be multipart/form-data');
    }
    if (form.get('messaging_product') !== 'whatsapp')
      return fail(400, 100, '(#100) The parameter messaging_product is required.');
    const file = form.get('file');
    const type = form.get('type');
    if (typeof type !== 'string' || !(file instanceof Blob) || file.size === 0)
      return fail(400, 100, '(#100) The parameters file and type are required.');
    const mime = type.split(';')[0]!.trim().toLowerCase();
    const max = UPLOAD_LIMITS[mime];
    if (max === undefined)
      return fail(
        400,
        100,
        `(#100) Param file must be a file with one of the following types: ${Object.keys(UPLOAD_LIMITS).join(', ')}. Received file of type '${type}'.`,
      );
    if (file.size > max)
      return fail(
        400,
        131053,
        `(#131053) Media upload error: ${mime} files must be at most ${max} bytes, this one has ${file.size}`,
      );
    const id = String(1_000_000_000_000_000n + BigInt(this.uploads.size + 1) * 7919n);
    this.uploads.set(id, {
      phoneNumberId,
      bytes: Buffer.from(await file.arrayBuffer()),
      mimeType: type,
      fileName: file instanceof File ? file.name : 'blob',
    });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ id }));
  }

  /**
   * Refuses the next `count` sends with Meta's throughput error (130429), as a number at its limit does:
   * a test of the sender's retries then does not depend on how many sends the machine fits in a second.
   */
  refuseForThroughput(count: number): void {
    this.refusals += count;
  }

  private withinThroughput(phoneNumberId: string, now: number): boolean {
    const second = Math.floor(now / 1000);
    const entry = this.window.get(phoneNumberId);
    if (!entry || entry.second !== second) {
      this.window.set(phoneNumberId, { second, count: 1 });
      return true;
    }
    entry.count++;
    return entry.count <= (this.options.throughputPerSecond ?? 80);
  }
}
