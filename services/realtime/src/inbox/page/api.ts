import { obj, str } from './dom.js';

/** Where the page keeps its token: this tab only (sessionStorage), never a URL. */
export const TOKEN_KEY = 'puente.inbox.token';

/** What the page reads from its token's claims (for the interface only: the server checks them). */
export interface TokenInfo {
  token: string;
  sub: string;
  exp: number;
  send: string[];
}

/** The claims of a JWT (its middle part), or undefined for something that is not one. */
export function tokenInfo(token: string): TokenInfo | undefined {
  const part = token.split('.')[1];
  if (!part || token.split('.').length !== 3) return undefined;
  try {
    const bytes = Uint8Array.from(atob(part.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
    const claims = obj(JSON.parse(new TextDecoder().decode(bytes)));
    const sub = str(claims?.sub);
    const exp = claims?.exp;
    if (!sub || typeof exp !== 'number') return undefined;
    const send = Array.isArray(claims?.send) ? claims.send.filter((s): s is string => typeof s === 'string') : [];
    return { token, sub, exp, send };
  } catch {
    return undefined;
  }
}

export function maySend(info: TokenInfo, session: string): boolean {
  return info.send.includes('*') || info.send.includes(session);
}

/** A refused request: the HTTP status and the problem body's reason. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** What to do when the server says the token is no good (401): back to the sign-in form. */
let onUnauthorized: (reason: string) => void = () => undefined;
export function whenUnauthorized(handler: (reason: string) => void): void {
  onUnauthorized = handler;
}

async function reasonOf(answer: Response): Promise<string> {
  try {
    const body = obj(await answer.json());
    return str(body?.detail) ?? str(body?.message) ?? str(body?.title) ?? `HTTP ${answer.status}`;
  } catch {
    return `HTTP ${answer.status}`;
  }
}

/** A request to realtime's own origin with the token in `Authorization`; JSON back, or an ApiError. */
export async function call(
  token: string,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
  options: { signal?: AbortSignal; raw?: Blob; contentType?: string } = {},
): Promise<unknown> {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  let payload: BodyInit | undefined;
  if (options.raw) {
    payload = options.raw;
    headers['content-type'] = options.contentType || 'application/octet-stream';
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    headers['content-type'] = 'application/json';
  }
  const answer = await fetch(path, {
    method,
    headers,
    ...(payload !== undefined ? { body: payload } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
    credentials: 'omit',
    cache: 'no-store',
  });
  if (!answer.ok) {
    const reason = await reasonOf(answer);
    if (answer.status === 401) onUnauthorized(reason);
    throw new ApiError(answer.status, reason);
  }
  return answer.status === 204 ? undefined : answer.json();
}

const seg = encodeURIComponent;

export const paths = {
  send: (session: string) => `/commands/whatsapp/${seg(session)}/messages`,
  read: (session: string, chat: string) => `/commands/whatsapp/${seg(session)}/chats/${seg(chat)}/read`,
  sync: (session: string) => `/commands/whatsapp/${seg(session)}/sync`,
  search: (session: string, q: string) => `/api/search?session=${seg(session)}&q=${seg(q)}`,
  mediaLink: (session: string, messageId: string) => `/media/${seg(session)}/${seg(messageId)}/link`,
  upload: (session: string, fileName: string) => `/media/${seg(session)}?name=${seg(fileName)}`,
};
