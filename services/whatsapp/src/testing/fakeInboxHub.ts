import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  INBOXHUB_EVENTS,
  type BaileysWAMessage,
  type InboxHubChat,
  type InboxHubContact,
} from '../providers/inboxhubApiTypes.js';
import { readJson, strictBase64, type ReceivedFile } from './fakeHttp.js';
import { FakeMediaFiles } from './fakeMedia.js';

/**
 * A fake Inbox Hub REST API for tests (the real one is a SaaS we cannot reach), speaking the shapes its
 * users printed (../shared/reference/inboxhub-api.md) and Puente's defaults for the paths they did not
 * (docs/providers/inboxhub.md). It enforces what the client must cope with: login with e-mail,
 * password and `X-API-Key`; JWTs that expire; `Authorization: Bearer` and `X-API-Key` on every call
 * except the per-session webhook `PUT` (the key alone, as printed); page and limit bounds; a per-key
 * request rate answered 429 with `Retry-After`; 409 "Session not connected". Answers come in the
 * printed `{"success": true, "data": ...}` envelope. Sends are recorded and, when a webhook is
 * registered, reported back to it as `message.sent` deliveries signed HMAC-SHA256, hex.
 *
 * Shapes chosen where nothing was printed:
 * - login `POST /api/auth/login` `{email, password}` answers `{"success": true, "data": {"token", "expiresIn"}}`;
 * - a chat's messages answer `{"success": true, "data": {"messages": [...], "total", "page"}}` (the
 *   envelope of contacts), newest first, each in Baileys' native `WAMessage` shape (Inbox Hub runs
 *   Baileys and hands its messages on; `messageShape: 'webhook'` answers a webhook's `data` shape
 *   instead, the other shape the client accepts);
 * - a media send is `{to, message (caption), type, media: {data (base64), mimetype, fileName?}}`, the file
 *   kept in `files` by message id;
 * - a webhook's `media.url` is `/files/<token>` on the API's origin (Bearer and key, like every call),
 *   410 once its time (`mediaUrlTtlMs`) passed; the download path `GET /api/sessions/{session}/messages/
 *   {message}/media` (INBOXHUB_MEDIA_PATH's default) serves the file while Inbox Hub keeps it, 404 after;
 * - the session list answers `data.sessions[]` of `{id (DB id), sessionId, status, webhookUrl}`, and
 *   `GET /api/webhooks` lists the account's webhooks as `data.webhooks[]` (without secrets).
 */
export interface FakeInboxHubOptions {
  email?: string;
  password?: string;
  apiKey?: string;
  tokenTtlSeconds?: number;
  /** Requests per second per API key before 429 (default 200). */
  rateLimitPerSecond?: number;
  maxPageSize?: number;
  /** The shape of listed chat messages (default `baileys`). */
  messageShape?: 'baileys' | 'webhook';
  /** How long a webhook's media URL works before it answers 410. */
  mediaUrlTtlMs?: number;
}

interface FakeSession {
  /** The session's DB id (a number, as Inbox Hub's). */
  dbId: number;
  connected: boolean;
  contacts: InboxHubContact[];
  chats: InboxHubChat[];
  /** Per chat, newest first. */
  messages: Map<string, BaileysWAMessage[]>;
  webhook?: { url: string; secret: string; events: string[] };
}

export interface FakeSend {
  session: string;
  body: Record<string, unknown>;
  messageId: string;
  at: number;
}

/** One request as it arrived, for assertions on exact requests. */
export interface FakeRequest {
  method: string;
  path: string;
  authorization?: string | undefined;
  apiKey?: string | undefined;
  body: unknown;
}

export interface FakeAccountWebhook {
  id: number;
  name: string;
  url: string;
  method: string;
  events: string[];
  secret?: string | undefined;
}

export class FakeInboxHub {
  readonly email: string;
  readonly password: string;
  readonly apiKey: string;
  readonly sessions = new Map<string, FakeSession>();
  readonly accountWebhooks: FakeAccountWebhook[] = [];
  readonly sends: FakeSend[] = [];
  /** The files sent with media sends, by message id. */
  readonly files = new Map<string, ReceivedFile>();
  readonly reads: { session: string; chatId: string }[] = [];
  /** Session-scoped requests answered, as `METHOD /rest-of-path` (chat ids as `:chat`), for assertions. */
  readonly calls: string[] = [];
  /** Every request, with its auth headers and body. */
  readonly requests: FakeRequest[] = [];
  /** The media URLs webhooks carry (`/files/<token>`, Bearer and key required; 410 once expired). */
  readonly mediaFiles: FakeMediaFiles;
  /** Media Inbox Hub keeps per `<session>:<message id>`, served by the download path (404 once forgotten). */
  private readonly media = new Map<string, { bytes: Buffer; mimeType: string; fileName?: string | undefined }>();
  /** While set, a send is recorded (the message leaves) but its answer is held back: the caller never learns the result. */
  holdSendAnswers = false;
  /** While set, a send is recorded (the message leaves) and answered 200 with a body that is not JSON (as a proxy's error page would be). */
  garbleSendAnswers = false;
  private nextDbId = 1;
  private readonly tokens = new Map<string, number>();
  private readonly window = new Map<string, { second: number; count: number }>();
  private readonly server = createServer((req, res) => void this.handle(req, res));
  private readonly held: ServerResponse[] = [];
  /** The API base (`{base}` of the reference); every path starts with `/api`. */
  url = '';

  constructor(private readonly options: FakeInboxHubOptions = {}) {
    this.email = options.email ?? 'ops@example.test';
    this.password = options.password ?? 'fake-password-not-real';
    this.apiKey = options.apiKey ?? 'fake-inboxhub-api-key';
    this.mediaFiles = new FakeMediaFiles(options.mediaUrlTtlMs ?? 3_600_000);
  }

  /** Media of a message Inbox Hub received: the `media.url` its webhook carries (on its own origin). */
  addMedia(session: string, messageId: string, file: { bytes: Buffer; mimeType: string; fileName?: string }): string {
    this.media.set(`${session}:${messageId}`, file);
    return `${this.url}/files/${this.mediaFiles.add(file)}`;
  }

  /** Inbox Hub no longer has the message's media: its download path answers 404. */
  forgetMedia(session: string, messageId: string): void {
    this.media.delete(`${session}:${messageId}`);
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    for (const res of this.held.splice(0)) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Invalidates every JWT issued so far (as a key rotation or a server restart would): the next call is answered 401. */
  revokeTokens(): void {
    this.tokens.clear();
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
      phone: `3460${String(1_000_000 + i)}`,
      isUser: true,
      isGroup: false,
    }));
    const chats = Array.from({ length: counts.chats }, (_, i) => {
      const isGroup = i % 5 === 4;
      return {
        chatId: isGroup ? `1203630${String(10_000 + i)}@g.us` : `3460${String(1_000_000 + i)}@s.whatsapp.net`,
        name: `Chat ${i}`,
        lastMessage: {
          content: `Mensaje ${counts.messagesPerChat} del chat ${i} 👋`,
          timestamp: new Date((base + counts.chats - i) * 1000).toISOString(),
          fromMe: false,
        },
        unreadCount: i % 3,
        isGroup,
      };
    });
    const messages = new Map(
      chats.map((chat, c) => [
        chat.chatId,
        Array.from({ length: counts.messagesPerChat }, (_, m) => ({
          key: {
            id: `3EB0${String(c).padStart(4, '0')}${String(counts.messagesPerChat - m).padStart(6, '0')}`,
            remoteJid: chat.chatId,
            fromMe: m % 4 === 0,
            ...(chat.isGroup ? { participant: '34699999999@s.whatsapp.net' } : {}),
          },
          message: { conversation: `Mensaje ${counts.messagesPerChat - m} del chat ${c} 👋` },
          messageTimestamp: base - c * 1000 - m,
          pushName: 'Cliente',
        })),
      ]),
    );
    const state: FakeSession = { dbId: this.nextDbId++, connected, contacts, chats, messages };
    this.sessions.set(session, state);
    return state;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const path = url.pathname;
    const body = await readJson(req);
    const send = (status: number, value: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(value));
    };
    const ok = (data: unknown, status = 200) => send(status, { success: true, data });
    const error = (status: number, message: string, headers: Record<string, string> = {}) =>
      send(status, { success: false, error: message }, headers);
    this.requests.push({
      method: req.method ?? 'GET',
      path: `${path}${url.search}`,
      authorization: req.headers.authorization,
      apiKey: header(req, 'x-api-key'),
      body,
    });
    if (header(req, 'x-api-key') !== this.apiKey) return error(401, 'Authentication failed');
    if (!this.withinRate()) return error(429, 'too many requests', { 'retry-after': '1' });
    if (req.method === 'POST' && path === '/api/auth/login') {
      const { email, password } = (body ?? {}) as { email?: unknown; password?: unknown };
      if (email !== this.email || password !== this.password) return error(401, 'Authentication failed');
      const ttl = this.options.tokenTtlSeconds ?? 3600;
      const token = jwt({ sub: email, exp: Math.floor(Date.now() / 1000) + ttl });
      this.tokens.set(token, Date.now() + ttl * 1000);
      return ok({ token, expiresIn: ttl });
    }
    // The per-session webhook: the DB id, the key alone (printed so).
    const sessionHook = /^\/api\/sessions\/([^/]+)\/webhook$/.exec(path);
    if (req.method === 'PUT' && sessionHook) {
      const session = [...this.sessions.values()].find((s) => String(s.dbId) === decodeURIComponent(sessionHook[1]!));
      if (!session) return error(404, `no session with DB id ${sessionHook[1]}`);
      const hook = (body ?? {}) as { webhookUrl?: unknown; webhookSecret?: unknown };
      if (typeof hook.webhookUrl !== 'string' || !acceptedUrl(hook.webhookUrl))
        return error(400, 'webhookUrl must be an HTTPS URL');
      if (hook.webhookSecret !== undefined && typeof hook.webhookSecret !== 'string')
        return error(400, 'webhookSecret must be a string');
      session.webhook = {
        url: hook.webhookUrl,
        secret: typeof hook.webhookSecret === 'string' ? hook.webhookSecret : '',
        events: [...INBOXHUB_EVENTS],
      };
      return ok({ id: session.dbId, webhookUrl: hook.webhookUrl });
    }
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const expires = token ? this.tokens.get(token) : undefined;
    if (!expires || expires < Date.now()) return error(401, 'Authentication failed');
    const file = /^\/files\/([0-9a-f]+)$/.exec(path);
    if (req.method === 'GET' && file) {
      this.mediaFiles.serve(res, file[1]!, 410);
      return;
    }
    const page = Number(url.searchParams.get('page') ?? 1);
    const limit = Number(url.searchParams.get('limit') ?? 20);
    if (
      !Number.isInteger(page) ||
      page < 1 ||
      !Number.isInteger(limit) ||
      limit < 1 ||
      limit > (this.options.maxPageSize ?? 100)
    )
      return error(400, `page must be >= 1 and limit between 1 and ${this.options.maxPageSize ?? 100}`);
    const slice = <T>(items: T[]) => items.slice((page - 1) * limit, page * limit);
    if (req.method === 'GET' && path === '/api/sessions') {
      const status = url.searchParams.get('status');
      const all = [...this.sessions.entries()]
        .map(([sessionId, s]) => ({
          id: s.dbId,
          sessionId,
          status: s.connected ? 'connected' : 'disconnected',
          webhookUrl: s.webhook?.url ?? null,
        }))
        .filter((s) => !status || s.status === status);
      return ok({ sessions: slice(all), total: all.length, page });
    }
    if (path === '/api/webhooks') {
      if (req.method === 'GET')
        return ok({ webhooks: this.accountWebhooks.map(({ secret: _secret, ...hook }) => hook) });
      if (req.method === 'POST') {
        const hook = (body ?? {}) as Record<string, unknown>;
        if (
          typeof hook.name !== 'string' ||
          typeof hook.url !== 'string' ||
          !acceptedUrl(hook.url) ||
          hook.method !== 'POST' ||
          !Array.isArray(hook.events) ||
          hook.events.length === 0 ||
          !hook.events.every((e) => (INBOXHUB_EVENTS as readonly unknown[]).includes(e)) ||
          (hook.secret !== undefined && typeof hook.secret !== 'string')
        )
          return error(400, 'name, an HTTPS url, method POST and known events are required');
        const created: FakeAccountWebhook = {
          id: this.accountWebhooks.length + 1,
          name: hook.name,
          url: hook.url,
          method: 'POST',
          events: hook.events as string[],
          secret: hook.secret as string | undefined,
        };
        this.accountWebhooks.push(created);
        const { secret: _secret, ...shown } = created;
        return ok(shown, 201);
      }
    }
    const match = /^\/api\/sessions\/([^/]+)(\/.*)$/.exec(path);
    if (!match) return error(404, 'not found');
    const sessionId = decodeURIComponent(match[1]!);
    const rest = match[2]!;
    const session = this.sessions.get(sessionId);
    if (!session) return error(404, `unknown session ${sessionId}`);
    this.calls.push(`${req.method} ${rest.replace(/\/chats\/[^/]+\//, '/chats/:chat/')}`);
    if (req.method === 'GET' && rest === '/contacts') {
      const search = url.searchParams.get('search')?.toLowerCase();
      const all = search
        ? session.contacts.filter((c) => `${c.name ?? ''} ${c.phone ?? ''} ${c.id}`.toLowerCase().includes(search))
        : session.contacts;
      return ok({ contacts: slice(all), total: all.length, page });
    }
    if (req.method === 'GET' && rest === '/chats') return ok({ chats: slice(session.chats) });
    const chatMessages = /^\/chats\/([^/]+)\/messages$/.exec(rest);
    if (req.method === 'GET' && chatMessages) {
      const all = session.messages.get(decodeURIComponent(chatMessages[1]!)) ?? [];
      const messages = slice(all).map((m) => (this.options.messageShape === 'webhook' ? webhookShape(m) : m));
      return ok({ messages, total: all.length, page });
    }
    if (req.method === 'POST' && rest === '/messages/send') {
      if (!session.connected) return error(409, 'Session not connected');
      const input = (body ?? {}) as Record<string, unknown>;
      const type = input.type ?? 'text';
      const to = input.to;
      if (typeof to !== 'string' || !/^(\d{6,20}|[\d-]+@g\.us|\d+@lid)$/.test(to))
        return error(400, 'to must be the phone number in digits (or a group JID)');
      if (
        type === 'text'
          ? typeof input.message !== 'string' || input.message === ''
          : !MEDIA_SEND_TYPES.has(String(type))
      )
        return error(400, 'message (text) and a known type are required');
      const file = type !== 'text' ? inlineFile(input.media) : undefined;
      if (type !== 'text' && !file) return error(400, 'media.data (base64) and media.mimetype are required for media');
      const messageId = `3EB0${randomBytes(8).toString('hex').toUpperCase()}`;
      if (file) this.files.set(messageId, file);
      const jid = to.includes('@') ? to : `${to}@s.whatsapp.net`;
      this.sends.push({ session: sessionId, body: input, messageId, at: Date.now() });
      const timestamp = new Date().toISOString();
      void this.notify(sessionId, 'message.sent', {
        messageId,
        chatId: jid,
        fromMe: true,
        type: String(type),
        content: input.message,
        timestamp,
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
      return send(200, {
        success: true,
        message: 'Mensaje enviado exitosamente',
        data: { messageId, to, status: 'sent', timestamp },
      });
    }
    const download = /^\/messages\/([^/]+)\/media$/.exec(rest);
    if (req.method === 'GET' && download) {
      const kept = this.media.get(`${sessionId}:${decodeURIComponent(download[1]!)}`);
      if (!kept) return error(404, 'media not found');
      this.mediaFiles.serve(res, this.mediaFiles.add(kept), 404);
      return;
    }
    const read = /^\/chats\/([^/]+)\/read$/.exec(rest);
    if (req.method === 'POST' && read) {
      this.reads.push({ session: sessionId, chatId: decodeURIComponent(read[1]!) });
      return ok({ chatId: decodeURIComponent(read[1]!) });
    }
    return error(404, 'not found');
  }

  /**
   * Delivers a canonical Inbox Hub webhook for the session to its webhook (if registered for this
   * event) and to each account webhook registered for it; the first delivery's status.
   */
  async notify(session: string, event: string, data: Record<string, unknown>): Promise<number | undefined> {
    const hook = this.sessions.get(session)?.webhook;
    const targets = [
      ...(hook && (hook.events.includes(event) || hook.events.includes('*')) ? [hook] : []),
      ...this.accountWebhooks
        .filter((h) => h.events.includes(event))
        .map((h) => ({ url: h.url, secret: h.secret ?? '' })),
    ];
    let first: number | undefined;
    for (const target of targets) {
      const status = await deliver(target, event, session, data);
      first ??= status;
    }
    return first;
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

const MEDIA_SEND_TYPES = new Set(['image', 'video', 'audio', 'document', 'sticker']);

async function deliver(
  target: { url: string; secret: string },
  event: string,
  session: string,
  data: Record<string, unknown>,
): Promise<number | undefined> {
  const raw = JSON.stringify({ event, sessionId: session, timestamp: new Date().toISOString(), data });
  const signature = createHmac('sha256', target.secret).update(raw).digest('hex');
  try {
    const response = await fetch(target.url, {
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

/** Inbox Hub requires HTTPS; the fake also takes plain HTTP to a loopback address (tests' own servers). */
function acceptedUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (
      url.protocol === 'https:' || (url.protocol === 'http:' && /^(127\.0\.0\.1|localhost|\[::1\])$/.test(url.hostname))
    );
  } catch {
    return false;
  }
}

const header = (req: IncomingMessage, name: string): string | undefined => {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
};

/** A Baileys message as a webhook's `data` would carry it. */
function webhookShape(m: BaileysWAMessage): Record<string, unknown> {
  const text = typeof m.message?.conversation === 'string' ? m.message.conversation : undefined;
  return {
    messageId: m.key.id,
    chatId: m.key.remoteJid,
    fromMe: m.key.fromMe === true,
    ...(m.key.participant ? { from: m.key.participant } : {}),
    ...(m.pushName ? { pushName: m.pushName } : {}),
    type: 'text',
    ...(text !== undefined ? { content: text } : {}),
    timestamp: new Date(Number(m.messageTimestamp) * 1000).toISOString(),
  };
}

/** A media send's `media: {data, mimetype, fileName?}` (the chosen shape), decoded; undefined when malformed. */
function inlineFile(media: unknown): ReceivedFile | undefined {
  const fields = (media ?? {}) as Record<string, unknown>;
  const bytes = strictBase64(fields.data);
  const mimetype = typeof fields.mimetype === 'string' && fields.mimetype !== '' ? fields.mimetype : undefined;
  if (!bytes || !mimetype) return undefined;
  return { bytes, mimetype, ...(typeof fields.fileName === 'string' ? { fileName: fields.fileName } : {}) };
}
