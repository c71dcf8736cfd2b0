import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A fake of Meta's Graph API send endpoint (`POST /{phone-number-id}/messages`). It enforces the
 * access token (error 190, 401), known phone number ids (error 100), the message body's required
 * fields (error 100, 400), and a per-number throughput limit answered with error 130429, the way Meta
 * answers, so the sender's classification and rate limiting are tested against real error shapes.
 */
export interface FakeGraphOptions {
  accessToken?: string;
  phoneNumberIds?: string[];
  /** Messages per second per phone number (Cloud API default 80). */
  throughputPerSecond?: number;
}

export interface GraphSend {
  phoneNumberId: string;
  body: Record<string, unknown>;
  wamid: string;
  at: number;
}

const TYPES = new Set(['text', 'image', 'video', 'audio', 'document', 'sticker', 'template', 'reaction', 'location', 'interactive', 'contacts']);

export class FakeGraph {
  readonly accessToken: string;
  readonly sends: GraphSend[] = [];
  readonly reads: { phoneNumberId: string; messageId: string }[] = [];
  rateLimited = 0;
  private readonly numbers: Set<string>;
  private readonly window = new Map<string, { second: number; count: number }>();
  private readonly server = createServer((req, res) => void this.handle(req, res));
  url = '';

  constructor(private readonly options: FakeGraphOptions = {}) {
    this.accessToken = options.accessToken ?? 'fake-graph-access-token';
    this.numbers = new Set(options.phoneNumberIds ?? ['106540352242922']);
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
      res.end(JSON.stringify({ error: { message, type: code === 190 ? 'OAuthException' : 'OAuthException', code, ...extra, fbtrace_id: randomBytes(8).toString('base64url') } }));
    };
    if (req.headers.authorization !== `Bearer ${this.accessToken}`) return fail(401, 190, 'Error validating access token: Invalid OAuth access token.');
    const match = /^\/v\d+\.\d+\/([^/]+)\/messages$/.exec(new URL(req.url ?? '/', 'http://fake').pathname);
    if (req.method !== 'POST' || !match) return fail(400, 100, 'Unknown path components', { error_subcode: 2500 });
    const phoneNumberId = decodeURIComponent(match[1]!);
    if (!this.numbers.has(phoneNumberId)) return fail(400, 100, `Unsupported post request. Object with ID '${phoneNumberId}' does not exist`, { error_subcode: 33 });
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
    } catch {
      return fail(400, 100, 'Invalid JSON payload');
    }
    if (body.messaging_product !== 'whatsapp') return fail(400, 100, '(#100) The parameter messaging_product is required.');
    if (body.status === 'read') {
      if (typeof body.message_id !== 'string') return fail(400, 100, '(#100) The parameter message_id is required.');
      this.reads.push({ phoneNumberId, messageId: body.message_id });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ success: true }));
      return;
    }
    if (typeof body.to !== 'string' && typeof body.recipient !== 'string') return fail(400, 100, '(#100) The parameter to is required.');
    const type = typeof body.type === 'string' ? body.type : 'text';
    if (!TYPES.has(type)) return fail(400, 100, `(#100) Param type must be one of {${[...TYPES].join(', ')}}`);
    const content = body[type] as Record<string, unknown> | undefined;
    if (type === 'text' && (typeof content?.body !== 'string' || content.body.length === 0 || content.body.length > 4096)) return fail(400, 100, '(#100) Param text[\'body\'] is required and must be at most 4096 characters');
    if (['image', 'video', 'audio', 'document', 'sticker'].includes(type) && typeof content?.link !== 'string' && typeof content?.id !== 'string') return fail(400, 100, `(#100) Param ${type}['link'] or ${type}['id'] is required`);
    if (type === 'template' && (typeof content?.name !== 'string' || typeof (content.language as { code?: unknown } | undefined)?.code !== 'string')) return fail(400, 100, '(#100) Param template[\'name\'] and template[\'language\'][\'code\'] are required');
    if (!this.withinThroughput(phoneNumberId)) {
      this.rateLimited++;
      return fail(400, 130429, '(#130429) Rate limit hit', { error_data: { messaging_product: 'whatsapp', details: 'Cloud API message throughput has been reached.' } });
    }
    const wamid = `wamid.${randomBytes(18).toString('base64url')}`;
    this.sends.push({ phoneNumberId, body, wamid, at: Date.now() });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ messaging_product: 'whatsapp', contacts: [{ input: body.to ?? body.recipient, wa_id: body.to ?? body.recipient }], messages: [{ id: wamid }] }));
  }

  private withinThroughput(phoneNumberId: string): boolean {
    const second = Math.floor(Date.now() / 1000);
    const entry = this.window.get(phoneNumberId);
    if (!entry || entry.second !== second) {
      this.window.set(phoneNumberId, { second, count: 1 });
      return true;
    }
    entry.count++;
    return entry.count <= (this.options.throughputPerSecond ?? 80);
  }
}
