import { z } from 'zod';
import {
  ProviderError,
  requestJson,
  retryAfterMs,
  withRetries,
  type HttpOptions,
  type JsonResponse,
} from '@puente/runtime';
import type { WhatsAppConfig } from '../config.js';

/**
 * Inbox Hub's REST API as Puente uses it (docs/whatsapp.md, "Inbox Hub API"): JWT login with
 * email and password, every call with the JWT and `X-API-Key`; pages of contacts and chats; a chat's
 * messages newest first with a cursor; send, mark read, webhook registration.
 */
export interface InboxHubConfig extends HttpOptions {
  url: string;
  apiKey: string;
  email: string;
  password: string;
}

export const InboxHubContact = z
  .object({
    id: z.string().min(1),
    lid: z.string().optional(),
    phoneNumber: z.string().optional(),
    name: z.string().optional(),
    notify: z.string().optional(),
    verifiedName: z.string().optional(),
  })
  .loose();
export const InboxHubChat = z
  .object({
    id: z.string().min(1),
    name: z.string().optional(),
    unreadCount: z.number().int().nonnegative().optional(),
    archived: z.boolean().optional(),
    conversationTimestamp: z.number().optional(),
  })
  .loose();
/** A message in Baileys' `WAMessage` shape. */
export const InboxHubMessage = z
  .object({
    key: z
      .object({
        id: z.string().min(1),
        remoteJid: z.string().min(1),
        fromMe: z.boolean().optional(),
        participant: z.string().optional(),
        remoteJidAlt: z.string().optional(),
      })
      .loose(),
    message: z.record(z.string(), z.unknown()).nullish(),
    messageTimestamp: z.union([z.number(), z.string()]),
    pushName: z.string().optional(),
    status: z.union([z.number(), z.string()]).optional(),
  })
  .loose();
export type InboxHubContact = z.infer<typeof InboxHubContact>;
export type InboxHubChat = z.infer<typeof InboxHubChat>;
export type InboxHubMessage = z.infer<typeof InboxHubMessage>;

const Page = <T extends z.ZodType>(item: T) =>
  z.object({
    data: z.array(item),
    page: z.number().int(),
    limit: z.number().int(),
    total: z.number().int().nonnegative(),
  });
const MessagePage = z.object({ data: z.array(InboxHubMessage), nextCursor: z.string().nullish() });
const Login = z.object({ token: z.string().min(1), expiresIn: z.number().positive().optional() });
const Sent = z.object({ key: z.object({ id: z.string().min(1) }).loose() }).loose();

export interface SendInput {
  to: string;
  text?: string;
  media?: { type: 'image' | 'video' | 'audio' | 'document' | 'sticker'; url: string; fileName?: string };
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

  contacts(session: string, page: number, limit: number) {
    return this.read(
      `/sessions/${encodeURIComponent(session)}/contacts?page=${page}&limit=${limit}`,
      Page(InboxHubContact),
    );
  }

  chats(session: string, page: number, limit: number) {
    return this.read(`/sessions/${encodeURIComponent(session)}/chats?page=${page}&limit=${limit}`, Page(InboxHubChat));
  }

  /** A chat's messages, newest first; `cursor` from the previous page. */
  messages(session: string, chatId: string, limit: number, cursor?: string) {
    const query = `limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    return this.read(
      `/sessions/${encodeURIComponent(session)}/chats/${encodeURIComponent(chatId)}/messages?${query}`,
      MessagePage,
    );
  }

  /**
   * Sends once (never retried here: the caller decides what an unknown result means). Returns the
   * provider's message id. Once Inbox Hub answered 2xx the message may have left, so a 2xx whose body
   * cannot be read is `unknown` (reconciled from the webhooks), never `rejected`.
   */
  async send(session: string, input: SendInput): Promise<string> {
    const response = this.check(await this.call('POST', `/sessions/${encodeURIComponent(session)}/messages`, input));
    const parsed = Sent.safeParse(response.body);
    if (!parsed.success)
      throw new ProviderError(
        'unknown',
        'BAD_RESPONSE',
        `Inbox Hub accepted the send (${response.status}) but its answer has no readable message id`,
        response.status,
      );
    return parsed.data.key.id;
  }

  async markRead(session: string, chatId: string): Promise<void> {
    await withRetries(this.config, async () =>
      this.check(
        await this.call(
          'POST',
          `/sessions/${encodeURIComponent(session)}/chats/${encodeURIComponent(chatId)}/read`,
          {},
        ),
      ),
    );
  }

  /** Points the session's webhook at `url`, signed with `secret`, for `events`. */
  async registerWebhook(
    session: string,
    webhook: { url: string; secret: string; events: readonly string[] },
  ): Promise<{ url: string; events: string[] }> {
    const response = await withRetries(this.config, () =>
      this.call('PUT', `/sessions/${encodeURIComponent(session)}/webhook`, webhook),
    );
    return this.parse(response, z.object({ url: z.string(), events: z.array(z.string()) }).loose());
  }

  /** The session's webhook (without its secret), or null when none is registered. */
  async webhook(session: string): Promise<{ url: string; events: string[] } | null> {
    const response = await withRetries(this.config, () =>
      this.call('GET', `/sessions/${encodeURIComponent(session)}/webhook`),
    );
    if (response.status === 404) return null;
    return this.parse(response, z.object({ url: z.string(), events: z.array(z.string()) }).loose());
  }

  /** Removes the session's webhook. */
  async deleteWebhook(session: string): Promise<void> {
    await withRetries(this.config, async () =>
      this.check(await this.call('DELETE', `/sessions/${encodeURIComponent(session)}/webhook`)),
    );
  }

  private read<T extends z.ZodType>(path: string, schema: T): Promise<z.infer<T>> {
    return withRetries(this.config, async () => this.parse(await this.call('GET', path), schema));
  }

  /** One authenticated call; an expired or revoked JWT is renewed once. */
  private async call(method: string, path: string, body?: unknown): Promise<JsonResponse> {
    for (let attempt = 0; ; attempt++) {
      const token = await this.bearer();
      const response = await requestJson(
        `${this.config.url.replace(/\/$/, '')}${path}`,
        {
          method,
          headers: { authorization: `Bearer ${token}`, 'x-api-key': this.config.apiKey },
          ...(body !== undefined ? { body } : {}),
        },
        this.config.timeoutMs,
      );
      if (response.status === 401 && attempt === 0) {
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
            `${this.config.url.replace(/\/$/, '')}/auth/login`,
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
        const login = this.parse(response, Login);
        this.token = { value: login.token, expiresAt: Date.now() + (login.expiresIn ?? 3600) * 1000 };
        return login.token;
      } finally {
        this.login = undefined;
      }
    })();
    return this.login;
  }

  private parse<T extends z.ZodType>(response: JsonResponse, schema: T): z.infer<T> {
    this.check(response);
    const parsed = schema.safeParse(response.body);
    if (!parsed.success)
      throw new ProviderError(
        'rejected',
        'BAD_RESPONSE',
        `Inbox Hub answered ${response.status} with an unexpected body: ${parsed.error.issues[0]?.path.join('.')} ${parsed.error.issues[0]?.message}`,
        response.status,
      );
    return parsed.data;
  }

  /** Throws the classified error for a non-2xx answer. */
  private check(response: JsonResponse): JsonResponse {
    const { status } = response;
    if (status >= 200 && status < 300) return response;
    const message =
      typeof response.body === 'object' && response.body && 'error' in response.body
        ? String((response.body as { error: unknown }).error)
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
  });
}
