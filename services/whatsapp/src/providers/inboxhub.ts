import type { z } from 'zod';
import {
  ProviderError,
  requestJson,
  retryAfterMs,
  withRetries,
  type HttpOptions,
  type JsonResponse,
} from '@puente/runtime';
import { MessageType, toIsoTime, type MessageContent } from '@puente/contracts';
import type { WhatsAppConfig } from '../config.js';
import type { OutgoingMedia } from '../commands/outgoingMedia.js';
import { baileysMessage } from '../sync/baileysMessage.js';
import {
  BaileysWAMessage,
  InboxHubAccountWebhook,
  InboxHubChat,
  InboxHubContact,
  InboxHubLogin,
  InboxHubSent,
  InboxHubSession,
  InboxHubWebhookMessage,
  listIn,
  numberIn,
  unwrap,
} from './inboxhubApiTypes.js';

/**
 * The paths of the calls Inbox Hub's users did not print, as templates: `{session}` is the string
 * session id, `{chat}` the chat JID (both URL-encoded). Defaults in config.ts, documented in
 * docs/providers/inboxhub.md. The webhook paths were printed and are fixed.
 */
export interface InboxHubPaths {
  login: string;
  sessions: string;
  contacts: string;
  chats: string;
  messages: string;
  send: string;
  markRead: string;
  accountWebhooks: string;
}

/**
 * Inbox Hub's REST API as its users documented it (../shared/reference/inboxhub-api.md,
 * docs/providers/inboxhub.md): JWT login with e-mail and password, then `Authorization: Bearer` and
 * `X-API-Key` on every call (re-login once on 401); contacts, chats and a chat's messages by
 * `page`/`limit`; send `{to, message, type}`; mark a chat read.
 */
export interface InboxHubConfig extends HttpOptions {
  url: string;
  apiKey: string;
  email: string;
  password: string;
  paths: InboxHubPaths;
}

export { InboxHubChat, InboxHubContact };

/** A chat message read back from Inbox Hub, in either shape it may come in, normalized for an `imported` event. */
export interface InboxHubMessage extends Pick<
  MessageContent,
  | 'messageId'
  | 'chatId'
  | 'chatAlt'
  | 'from'
  | 'fromMe'
  | 'pushName'
  | 'type'
  | 'text'
  | 'media'
  | 'location'
  | 'reaction'
  | 'quotedMessageId'
> {
  timestamp: string;
}

export interface SendInput {
  to: string;
  text?: string;
  /** Sent inline (base64) in Puente's chosen shape (docs/providers/inboxhub.md). */
  media?: OutgoingMedia;
}

/** One page of a list, with what the answer says about the whole list. */
export interface InboxHubPage<T> {
  items: T[];
  /** How many items the answer held, those skipped as unreadable included (what tells a short, last page). */
  received: number;
  total?: number | undefined;
}

export class InboxHubClient {
  private token: { value: string; expiresAt: number } | undefined;
  private login: Promise<string> | undefined;

  constructor(private readonly config: InboxHubConfig) {}

  /** Says which variables are missing, or undefined when the client can be built. */
  static missing(env: {
    INBOXHUB_API_URL?: string | undefined;
    INBOXHUB_API_KEY?: string | undefined;
    INBOXHUB_EMAIL?: string | undefined;
    INBOXHUB_PASSWORD?: string | undefined;
  }): string | undefined {
    const names = (['INBOXHUB_API_URL', 'INBOXHUB_API_KEY', 'INBOXHUB_EMAIL', 'INBOXHUB_PASSWORD'] as const).filter(
      (name) => !env[name],
    );
    return names.length > 0 ? `Inbox Hub API not configured: set ${names.join(', ')}` : undefined;
  }

  /** A page of the session's contacts (`data.contacts`), optionally filtered by `search`. */
  async contacts(
    session: string,
    page: number,
    limit: number,
    search?: string,
  ): Promise<InboxHubPage<InboxHubContact>> {
    const query = `page=${page}&limit=${limit}${search ? `&search=${encodeURIComponent(search)}` : ''}`;
    const body = await this.read(`${this.path('contacts', session)}?${query}`);
    const items = this.list(body, 'contacts', InboxHubContact);
    return { items, received: items.length, total: numberIn(body, 'total') };
  }

  /** A page of the session's chats (`data.chats`), each with `lastMessage` and `unreadCount`. */
  async chats(session: string, page: number, limit: number): Promise<InboxHubPage<InboxHubChat>> {
    const body = await this.read(`${this.path('chats', session)}?page=${page}&limit=${limit}`);
    const items = this.list(body, 'chats', InboxHubChat);
    return { items, received: items.length, total: numberIn(body, 'total') };
  }

  /**
   * A page of a chat's messages, newest first, by `page`/`limit`. The answer was never printed:
   * `data.messages` (like contacts and chats) or a bare list, each message in Baileys' native shape
   * or in a webhook's `data` shape; a message without an id, chat or time is skipped.
   */
  async messages(session: string, chatId: string, page: number, limit: number): Promise<InboxHubPage<InboxHubMessage>> {
    const body = await this.read(`${this.path('messages', session, chatId)}?page=${page}&limit=${limit}`);
    const raw = listIn(body, 'messages');
    if (!raw) throw this.badResponse(200, 'messages: not a list');
    return {
      items: raw.flatMap((m) => toMessage(m, chatId) ?? []),
      received: raw.length,
      total: numberIn(body, 'total'),
    };
  }

  /**
   * Sends once (never retried here: the caller decides what an unknown result means): `{to, message,
   * type}`, `to` in digits for a person (the group or `@lid` JID otherwise). Returns the provider's
   * message id. Once Inbox Hub answered 2xx the message may have left, so a 2xx whose body cannot be
   * read is `unknown` (reconciled from the webhooks), never `rejected`.
   */
  async send(session: string, input: SendInput): Promise<string> {
    const response = this.check(await this.call('POST', this.path('send', session), InboxHubClient.sendBody(input)));
    const sent = InboxHubSent.safeParse(unwrap(response.body));
    const id = sent.success ? (sent.data.messageId ?? sent.data.key?.id ?? sent.data.id) : undefined;
    if (!id)
      throw new ProviderError(
        'unknown',
        'BAD_RESPONSE',
        `Inbox Hub accepted the send (${response.status}) but its answer has no readable message id`,
        response.status,
      );
    return id;
  }

  /**
   * The body Inbox Hub takes for one message. Printed: `to`, `message`, `type`. Not printed, Puente's
   * choice (docs/providers/inboxhub.md): media inline as `media: {data (base64), mimetype, fileName?}`,
   * the caption in `message`.
   */
  static sendBody(input: SendInput): Record<string, unknown> {
    const to = /@s\.whatsapp\.net$|@c\.us$/.test(input.to) ? input.to.replace(/@.*$/, '') : input.to.replace(/^\+/, '');
    if (input.media)
      return {
        to,
        message: input.text ?? '',
        type: input.media.type,
        media: {
          data: input.media.data.toString('base64'),
          mimetype: input.media.mimeType,
          ...(input.media.fileName ? { fileName: input.media.fileName } : {}),
        },
      };
    return { to, message: input.text ?? '', type: 'text' };
  }

  /** Marks the chat read (safe to repeat, so retried). */
  async markRead(session: string, chatId: string): Promise<void> {
    await withRetries(this.config, async () =>
      this.check(await this.call('POST', this.path('markRead', session, chatId), {})),
    );
  }

  /** The sessions of the account (`page`, `limit`; the path and the answer were not printed). */
  async sessions(page = 1, limit = 100): Promise<InboxHubSession[]> {
    const body = await this.read(`${this.config.paths.sessions}?page=${page}&limit=${limit}`);
    return this.list(body, 'sessions', InboxHubSession);
  }

  /**
   * The session's DB id and current webhook URL, looked up from its string id through the session
   * list (`id`/`dbId` the number, `sessionId`/`session_id`/`name` the string), or undefined.
   */
  async session(session: string): Promise<{ dbId: string; webhookUrl?: string | undefined } | undefined> {
    // Pages until an empty one: a server that caps `limit` below what was asked still gets read to the end.
    for (let page = 1; page <= 100; page++) {
      const sessions = await this.sessions(page, 50);
      const found = sessions.find((s) => (s.sessionId ?? s.session_id ?? s.name) === session);
      const dbId = found ? (found.dbId ?? found.id) : undefined;
      if (found && dbId !== undefined)
        return { dbId: String(dbId), ...(found.webhookUrl ? { webhookUrl: found.webhookUrl } : {}) };
      if (sessions.length === 0) return undefined;
    }
    return undefined;
  }

  /** The session's webhook URL as the session list tells it, or null when it tells none. */
  async webhook(session: string): Promise<{ url: string } | null> {
    const found = await this.session(session);
    return found?.webhookUrl ? { url: found.webhookUrl } : null;
  }

  /**
   * Points a session's webhook at `webhookUrl` (printed exactly: `PUT /api/sessions/{session DB id}/webhook`
   * with `X-API-Key` alone and `{webhookUrl, webhookSecret}`). Setting the same value again is harmless.
   */
  async setSessionWebhook(dbId: string, webhook: { webhookUrl: string; webhookSecret: string }): Promise<void> {
    await withRetries(this.config, async () =>
      this.check(
        await this.call('PUT', `/api/sessions/${encodeURIComponent(dbId)}/webhook`, webhook, { bearer: false }),
      ),
    );
  }

  /**
   * The account's webhooks, or undefined when Inbox Hub has no such listing (listing was not printed:
   * `GET` on the account webhooks path, answered 404 or 405 where it does not exist).
   */
  async accountWebhooks(): Promise<InboxHubAccountWebhook[] | undefined> {
    const response = await withRetries(this.config, () => this.call('GET', this.config.paths.accountWebhooks));
    if (response.status === 404 || response.status === 405) return undefined;
    this.check(response);
    return this.list(response.body, 'webhooks', InboxHubAccountWebhook);
  }

  /** Creates an account-wide webhook (printed exactly: `POST /api/webhooks`, Bearer and key, `{name, url, method, events, secret}`). */
  async createAccountWebhook(webhook: {
    name: string;
    url: string;
    method: 'POST';
    events: readonly string[];
    secret: string;
  }): Promise<void> {
    // A create is not repeated on a lost answer: a second one would be a duplicate webhook.
    this.check(await this.call('POST', this.config.paths.accountWebhooks, webhook));
  }

  /** The API's base URL (`INBOXHUB_API_URL`): the one origin its credentials may be sent to. */
  get apiUrl(): string {
    return this.config.url;
  }

  /**
   * The headers of an authenticated call (`X-API-Key` and `Authorization: Bearer <JWT>`), for downloads
   * from Inbox Hub's own origin only; `renew` logs in again first (the JWT was refused).
   */
  async credentials(renew = false): Promise<Record<string, string>> {
    if (renew) this.token = undefined;
    return { 'x-api-key': this.config.apiKey, authorization: `Bearer ${await this.bearer()}` };
  }

  /** `{session}` and `{chat}` filled into the configured template. */
  private path(name: 'contacts' | 'chats' | 'messages' | 'send' | 'markRead', session: string, chat = ''): string {
    return this.config.paths[name]
      .replaceAll('{session}', encodeURIComponent(session))
      .replaceAll('{chat}', encodeURIComponent(chat));
  }

  private read(path: string): Promise<unknown> {
    return withRetries(this.config, async () => this.check(await this.call('GET', path)).body);
  }

  /** The items of the list under `key`, each checked against `schema`; a list that is not there is a bad answer. */
  private list<T extends z.ZodType>(body: unknown, key: string, schema: T): z.infer<T>[] {
    const raw = listIn(body, key);
    if (!raw) throw this.badResponse(200, `${key}: not a list`);
    return raw.map((item, i) => {
      const parsed = schema.safeParse(item);
      if (!parsed.success)
        throw this.badResponse(
          200,
          `${key}.${i}.${parsed.error.issues[0]?.path.join('.')} ${parsed.error.issues[0]?.message}`,
        );
      return parsed.data as z.infer<T>;
    });
  }

  private badResponse(status: number, detail: string): ProviderError {
    return new ProviderError(
      'rejected',
      'BAD_RESPONSE',
      `Inbox Hub answered ${status} with an unexpected body: ${detail}`,
      status,
    );
  }

  /**
   * One call with `X-API-Key` and (unless `bearer: false`, as the per-session webhook `PUT` is
   * printed) `Authorization: Bearer <JWT>`; a 401 renews the JWT and retries once.
   */
  private async call(
    method: string,
    path: string,
    body?: unknown,
    options: { bearer?: boolean } = {},
  ): Promise<JsonResponse> {
    const withBearer = options.bearer !== false;
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { 'x-api-key': this.config.apiKey };
      if (withBearer) headers.authorization = `Bearer ${await this.bearer()}`;
      const response = await requestJson(
        `${this.config.url.replace(/\/$/, '')}${path}`,
        { method, headers, ...(body !== undefined ? { body } : {}) },
        this.config.timeoutMs,
      );
      if (response.status === 401 && withBearer && attempt === 0) {
        this.token = undefined;
        continue;
      }
      return response;
    }
  }

  private async bearer(): Promise<string> {
    if (this.token && this.token.expiresAt > Date.now() + 5_000) return this.token.value;
    this.login ??= (async () => {
      try {
        const response = await withRetries(this.config, () =>
          requestJson(
            `${this.config.url.replace(/\/$/, '')}${this.config.paths.login}`,
            {
              method: 'POST',
              headers: { 'x-api-key': this.config.apiKey },
              body: { email: this.config.email, password: this.config.password },
            },
            this.config.timeoutMs,
          ).then((r) => (r.status === 429 || r.status >= 500 ? this.check(r) : r)),
        );
        if (response.status === 401 || response.status === 403)
          throw new ProviderError(
            'auth',
            'LOGIN_REFUSED',
            `Inbox Hub refused the login (${response.status}): check INBOXHUB_EMAIL, INBOXHUB_PASSWORD and INBOXHUB_API_KEY`,
            response.status,
          );
        this.check(response);
        const login = InboxHubLogin.safeParse(unwrap(response.body));
        const token = login.success
          ? (login.data.token ?? login.data.accessToken ?? login.data.access_token ?? login.data.jwt)
          : undefined;
        if (!token || !login.success) throw this.badResponse(response.status, 'login: no token');
        const seconds = login.data.expiresIn ?? login.data.expires_in ?? jwtLifetime(token) ?? 3600;
        this.token = { value: token, expiresAt: Date.now() + seconds * 1000 };
        return token;
      } finally {
        this.login = undefined;
      }
    })();
    return this.login;
  }

  /** Throws the classified error for a non-2xx answer. */
  private check(response: JsonResponse): JsonResponse {
    const { status } = response;
    if (status >= 200 && status < 300) return response;
    const body = typeof response.body === 'object' && response.body ? (response.body as Record<string, unknown>) : {};
    const said = body.error ?? body.message;
    const message =
      typeof said === 'string'
        ? said
        : typeof said === 'object' && said && 'message' in said
          ? String((said as { message: unknown }).message)
          : `HTTP ${status}`;
    if (status === 429)
      throw new ProviderError(
        'rate_limited',
        'RATE_LIMITED',
        `Inbox Hub rate limit: ${message}`,
        status,
        retryAfterMs(response.headers.get('retry-after')),
      );
    if (status === 401 || status === 403)
      throw new ProviderError(
        'auth',
        'UNAUTHORIZED',
        `Inbox Hub refused the credentials (${status}): ${message}`,
        status,
      );
    if (status >= 500)
      throw new ProviderError('unknown', `HTTP_${status}`, `Inbox Hub failed (${status}): ${message}`, status);
    throw new ProviderError(
      'rejected',
      status === 409 ? 'SESSION_NOT_CONNECTED' : `HTTP_${status}`,
      `Inbox Hub rejected the request (${status}): ${message}`,
      status,
    );
  }
}

/** The Inbox Hub client from configuration, or why there is none. */
export function inboxHubFrom(config: WhatsAppConfig): InboxHubClient | string {
  const missing = InboxHubClient.missing(config);
  if (missing) return missing;
  return new InboxHubClient({
    url: config.INBOXHUB_API_URL!,
    apiKey: config.INBOXHUB_API_KEY!,
    email: config.INBOXHUB_EMAIL!,
    password: config.INBOXHUB_PASSWORD!,
    timeoutMs: config.INBOXHUB_TIMEOUT_MS,
    retries: config.INBOXHUB_RETRIES,
    paths: {
      login: config.INBOXHUB_LOGIN_PATH,
      sessions: config.INBOXHUB_SESSIONS_PATH,
      contacts: config.INBOXHUB_CONTACTS_PATH,
      chats: config.INBOXHUB_CHATS_PATH,
      messages: config.INBOXHUB_MESSAGES_PATH,
      send: config.INBOXHUB_SEND_PATH,
      markRead: config.INBOXHUB_READ_PATH,
      accountWebhooks: config.INBOXHUB_ACCOUNT_WEBHOOKS_PATH,
    },
  });
}

/** The seconds until a JWT's `exp`, when its payload can be read. */
function jwtLifetime(token: string): number | undefined {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as {
      exp?: unknown;
    };
    return typeof payload.exp === 'number' ? Math.max(1, payload.exp - Date.now() / 1000) : undefined;
  } catch {
    return undefined;
  }
}

const MEDIA_TYPES = new Set(['image', 'video', 'audio', 'voice', 'document', 'sticker']);

/** A listed message in Baileys' shape or a webhook's `data` shape, normalized; undefined when it lacks an id or a time. */
function toMessage(raw: unknown, chatId: string): InboxHubMessage | undefined {
  const baileys = BaileysWAMessage.safeParse(raw);
  if (baileys.success) return baileysMessage(baileys.data);
  const hook = InboxHubWebhookMessage.safeParse(raw);
  if (!hook.success) return undefined;
  const m = hook.data;
  const messageId = m.messageId ?? m.message_id;
  const timestamp = toIsoTime(m.timestamp);
  if (!messageId || !timestamp) return undefined;
  const fromMe = m.fromMe ?? m.from_me ?? false;
  const chat = m.chatId ?? m.chat_id ?? chatId;
  const text = m.content ?? m.text ?? m.body ?? m.caption ?? undefined;
  const typed = MessageType.safeParse(m.type ?? 'text');
  const type = typed.success ? typed.data : 'unsupported';
  const url = m.media?.url ?? m.mediaUrl;
  const mimeType = m.media?.mimeType ?? m.media?.mimetype;
  const fileName = m.media?.fileName ?? m.media?.filename;
  const pushName = m.pushName ?? m.push_name;
  return {
    messageId,
    chatId: chat,
    ...(m.chatAlt ? { chatAlt: m.chatAlt } : {}),
    ...(m.from ? { from: m.from } : fromMe ? {} : { from: chat }),
    fromMe,
    ...(pushName ? { pushName } : {}),
    type,
    ...(text ? { text } : {}),
    ...(MEDIA_TYPES.has(type)
      ? {
          media: {
            ...(url ? { url } : {}),
            ...(mimeType ? { mimeType } : {}),
            ...(fileName ? { fileName } : {}),
            ...(text && type !== 'audio' && type !== 'voice' ? { caption: text } : {}),
          },
        }
      : {}),
    timestamp,
  };
}
