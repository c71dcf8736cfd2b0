import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { InboxHubChat, InboxHubContact, InboxHubMessage } from '../providers/inboxhub.js';

/**
 * A fake Inbox Hub REST API for tests (the real one is a SaaS we cannot reach). It enforces what the
 * client must cope with: login with email, password and `X-API-Key`; JWTs that expire; the API key on
 * every call; page and limit bounds; a per-key request rate answered 429 with `Retry-After`; 409 for a
 * session that is not connected. Sends are recorded and, when a webhook is registered, reported back
 * to it as `message.sent` deliveries signed the way Inbox Hub signs them (HMAC-SHA256, hex).
 */
export interface FakeInboxHubOptions {
  email?: string;
  password?: string;
  apiKey?: string;
  tokenTtlSeconds?: number;
  /** Requests per second per API key before 429 (default 200). */
  rateLimitPerSecond?: number;
  maxPageSize?: number;
}

interface FakeSession {
  connected: boolean;
  contacts: InboxHubContact[];
  chats: InboxHubChat[];
  /** Per chat, newest first. */
  messages: Map<string, InboxHubMessage[]>;
  webhook?: { url: string; secret: string; events: string[] };
}

export interface FakeSend {
  session: string;
  body: Record<string, unknown>;
  messageId: string;
  at: number;
}

export class FakeInboxHub {
  readonly email: string;
  readonly password: string;
  readonly apiKey: string;
  readonly sessions = new Map<string, FakeSession>();
  readonly sends: FakeSend[] = [];
  readonly reads: { session: string; chatId: string }[] = [];
  /** Requests answered, by path kind, for assertions. */
  readonly calls: string[] = [];
  /** While set, a send is recorded (the message leaves) but its answer is held back: the caller never learns the result. */
  holdSendAnswers = false;
  /** While set, a send is recorded (the message leaves) and answered 200 with a body that is not JSON (as a proxy's error page would be). */
  garbleSendAnswers = false;
  private readonly tokens = new Map<string, number>();
  private readonly window = new Map<string, { second: number; count: number }>();
  private readonly server = createServer((req, res) => void this.handle(req, res));
  private readonly held: ServerResponse[] = [];
  url = '';

  constructor(private readonly options: FakeInboxHubOptions = {}) {
    this.email = options.email ?? 'ops@example.test';
    this.password = options.password ?? 'fake-password-not-real';
    this.apiKey = options.apiKey ?? 'fake-inboxhub-api-key';
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/api`;
    return this;
  }

  async stop(): Promise<void> {
    for (const res of this.held.splice(0)) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Adds a session with generated contacts, chats and messages (message ids unique per chat). */
  seed(
    session: string,
    counts: { contacts: number; chats: number; messagesPerChat: number },
    connected = true,
  ): FakeSession {
    const base = Math.floor(Date.UTC(2026, 10, 1) / 1000);
    const contacts = Array.from({ length: counts.contacts }, (_, i) => ({
      id: `3460${String(1_000_000 + i)}@s.whatsapp.net`,
      name: `Contacto ${i} ✨`,
      notify: `C${i}`,
    }));
    const chats = Array.from({ length: counts.chats }, (_, i) => ({
      id: i % 5 === 4 ? `1203630${String(10_000 + i)}@g.us` : `3460${String(1_000_000 + i)}@s.whatsapp.net`,
      name: `Chat ${i}`,
      unreadCount: i % 3,
      archived: i % 7 === 6,
      conversationTimestamp: base + counts.chats - i,
    }));
    const messages = new Map(
      chats.map((chat, c) => [
        chat.id,
        Array.from({ length: counts.messagesPerChat }, (_, m) => ({
          key: {
            id: `3EB0${String(c).padStart(4, '0')}${String(counts.messagesPerChat - m).padStart(6, '0')}`,
            remoteJid: chat.id,
            fromMe: m % 4 === 0,
            ...(chat.id.endsWith('@g.us') ? { participant: '34699999999@s.whatsapp.net' } : {}),
          },
          message: { conversation: `Mensaje ${counts.messagesPerChat - m} del chat ${c} 👋` },
          messageTimestamp: base - c * 1000 - m,
          pushName: 'Cliente',
        })),
      ]),
    );
    const state: FakeSession = { connected, contacts, chats, messages };
    this.sessions.set(session, state);
    return state;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const path = url.pathname.replace(/^\/api/, '');
    const body = await readJson(req);
    const send = (status: number, value: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(value));
    };
    if (req.headers['x-api-key'] !== this.apiKey) return send(401, { error: 'invalid API key' });
    if (!this.withinRate()) return send(429, { error: 'too many requests' }, { 'retry-after': '1' });
    if (req.method === 'POST' && path === '/auth/login') {
      const { email, password } = (body ?? {}) as { email?: unknown; password?: unknown };
      if (email !== this.email || password !== this.password) return send(401, { error: 'invalid email or password' });
      const token = jwt({ sub: email, exp: Math.floor(Date.now() / 1000) + (this.options.tokenTtlSeconds ?? 3600) });
      this.tokens.set(token, Date.now() + (this.options.tokenTtlSeconds ?? 3600) * 1000);
      return send(200, { token, expiresIn: this.options.tokenTtlSeconds ?? 3600 });
    }
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const expires = token ? this.tokens.get(token) : undefined;
    if (!expires || expires < Date.now()) return send(401, { error: 'token expired or invalid' });
    const match = /^\/sessions\/([^/]+)(\/.*)$/.exec(path);
    if (!match) return send(404, { error: 'not found' });
    const sessionId = decodeURIComponent(match[1]!);
    const rest = match[2]!;
    const session = this.sessions.get(sessionId);
    if (!session) return send(404, { error: `unknown session ${sessionId}` });
    this.calls.push(`${req.method} ${rest.replace(/\/chats\/[^/]+\//, '/chats/:chat/')}`);
    const page = Number(url.searchParams.get('page') ?? 1);
    const limit = Number(url.searchParams.get('limit') ?? 20);
    if (
      !Number.isInteger(page) ||
      page < 1 ||
      !Number.isInteger(limit) ||
      limit < 1 ||
      limit > (this.options.maxPageSize ?? 100)
    )
      return send(400, { error: `page must be >= 1 and limit between 1 and ${this.options.maxPageSize ?? 100}` });
    const paged = <T>(items: T[]) => ({
      data: items.slice((page - 1) * limit, page * limit),
      page,
      limit,
      total: items.length,
    });
    if (req.method === 'GET' && rest === '/contacts') return send(200, paged(session.contacts));
    if (req.method === 'GET' && rest === '/chats') return send(200, paged(session.chats));
    const chatMessages = /^\/chats\/([^/]+)\/messages$/.exec(rest);
    if (req.method === 'GET' && chatMessages) {
      const all = session.messages.get(decodeURIComponent(chatMessages[1]!)) ?? [];
      const offset = Number(
        url.searchParams.get('cursor') ? Buffer.from(url.searchParams.get('cursor')!, 'base64url').toString() : 0,
      );
      const data = all.slice(offset, offset + limit);
      return send(200, {
        data,
        nextCursor: offset + limit < all.length ? Buffer.from(String(offset + limit)).toString('base64url') : null,
      });
    }
    if (req.method === 'POST' && rest === '/messages') {
      if (!session.connected) return send(409, { error: 'session is not connected' });
      const input = (body ?? {}) as Record<string, unknown>;
      if (typeof input.to !== 'string' || (typeof input.text !== 'string' && typeof input.media !== 'object'))
        return send(400, { error: 'to and text or media are required' });
      const messageId = `3EB0${randomBytes(8).toString('hex').toUpperCase()}`;
      const jid = input.to.includes('@') ? input.to : `${input.to.replace(/^\+/, '')}@s.whatsapp.net`;
      this.sends.push({ session: sessionId, body: input, messageId, at: Date.now() });
      void this.notify(sessionId, 'message.sent', {
        messageId,
        chatId: jid,
        fromMe: true,
        type: 'text',
        content: input.text,
        timestamp: new Date().toISOString(),
      });
      if (this.holdSendAnswers) {
        this.held.push(res);
        return;
      }
      if (this.garbleSendAnswers) {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end('<html><body>OK</body></html>');
        return;
      }
      return send(201, {
        key: { id: messageId, remoteJid: jid, fromMe: true },
        status: 'PENDING',
        messageTimestamp: Math.floor(Date.now() / 1000),
      });
    }
    const read = /^\/chats\/([^/]+)\/read$/.exec(rest);
    if (req.method === 'POST' && read) {
      this.reads.push({ session: sessionId, chatId: decodeURIComponent(read[1]!) });
      return send(200, { ok: true });
    }
    if (req.method === 'PUT' && rest === '/webhook') {
      const hook = (body ?? {}) as { url?: unknown; secret?: unknown; events?: unknown };
      if (
        typeof hook.url !== 'string' ||
        !/^https?:\/\//.test(hook.url) ||
        typeof hook.secret !== 'string' ||
        hook.secret.length < 8 ||
        !Array.isArray(hook.events)
      )
        return send(400, { error: 'url (http or https), secret (8+ characters) and events are required' });
      session.webhook = { url: hook.url, secret: hook.secret, events: hook.events.map(String) };
      return send(200, { url: hook.url, events: session.webhook.events });
    }
    if (req.method === 'GET' && rest === '/webhook') {
      return session.webhook
        ? send(200, { url: session.webhook.url, events: session.webhook.events })
        : send(404, { error: 'no webhook registered' });
    }
    if (req.method === 'DELETE' && rest === '/webhook') {
      delete session.webhook;
      return send(200, { ok: true });
    }
    return send(404, { error: 'not found' });
  }

  /** Delivers a canonical Inbox Hub webhook for the session, if it registered one for this event. */
  async notify(session: string, event: string, data: Record<string, unknown>): Promise<number | undefined> {
    const hook = this.sessions.get(session)?.webhook;
    if (!hook || !(hook.events.includes(event) || hook.events.includes('*'))) return undefined;
    const raw = JSON.stringify({ event, sessionId: session, timestamp: new Date().toISOString(), data });
    const signature = createHmac('sha256', hook.secret).update(raw).digest('hex');
    try {
      const response = await fetch(hook.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-webhook-event': event,
          'x-webhook-signature': `sha256=${signature}`,
          'x-webhook-delivery-id': randomUUID(),
        },
        body: raw,
      });
      return response.status;
    } catch {
      return undefined;
    }
  }

  private withinRate(): boolean {
    const second = Math.floor(Date.now() / 1000);
    const entry = this.window.get(this.apiKey);
    if (!entry || entry.second !== second) {
      this.window.set(this.apiKey, { second, count: 1 });
      return true;
    }
    entry.count++;
    return entry.count <= (this.options.rateLimitPerSecond ?? 200);
  }
}

function jwt(payload: Record<string, unknown>): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const unsigned = `${part({ alg: 'HS256', typ: 'JWT' })}.${part({ ...payload, jti: randomUUID() })}`;
  return `${unsigned}.${createHmac('sha256', 'fake-inboxhub-signing-key').update(unsigned).digest('base64url')}`;
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  if (chunks.length === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    return undefined;
  }
}
