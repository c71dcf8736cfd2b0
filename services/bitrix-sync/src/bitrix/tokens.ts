import { randomBytes } from 'node:crypto';
import type { KV, KvEntry } from 'nats';
import type { Logger } from 'pino';
import { z } from 'zod';
import { OAuthTokenResponse } from './bitrixApiTypes.js';
import { BitrixApiError, BitrixNotAuthorizedError, BitrixReauthRequiredError, scrub } from './errors.js';
import { systemClock, type Clock } from './limiter.js';

/** Name of the NATS key-value bucket that holds the OAuth tokens (never a file). */
export const TOKEN_BUCKET = 'bitrix_tokens';
/** Key of the token entry in that bucket. */
export const TOKEN_KEY = 'oauth';

/** The token entry as stored in the bucket. */
export const StoredTokens = z.object({
  accessToken: z.string().min(1),
  refreshToken: z.string().min(1),
  /** When the access token expires (ms since epoch), as the token server said. */
  expiresAt: z.number(),
  /** When this refresh token was issued (ms): an idle install refreshes before the refresh token dies. */
  obtainedAt: z.number(),
  /** `client_endpoint`: the portal's REST base, `https://<portal>/rest/`. */
  clientEndpoint: z.string().optional(),
  serverEndpoint: z.string().optional(),
  /** The portal's stable id (survives a domain rename). */
  memberId: z.string().optional(),
  scope: z.string().optional(),
  userId: z.number().optional(),
  /** A refresh in progress: the process that claimed it, until when the claim holds (ms). */
  refreshing: z.object({ owner: z.string(), until: z.number() }).optional(),
});
export type StoredTokens = z.infer<typeof StoredTokens>;

export interface BitrixTokenStoreOptions {
  /** The bucket (`bus.kv(TOKEN_BUCKET, {history: 1})`). */
  kv: KV;
  key?: string;
  /** `https://<portal>`: where the operator authorizes the app. */
  portalUrl?: string | undefined;
  /** The token server (`https://oauth.bitrix.info`). */
  oauthUrl: string;
  clientId: string;
  clientSecret: string;
  timeoutMs?: number;
  /** How long a refresh claim holds before another process may take it over (default 30 s). */
  claimTtlMs?: number;
  /** An idle install refreshes when the refresh token is older than this (default 25 days). */
  refreshTokenMaxAgeMs?: number;
  /** How often a process waiting for another's refresh looks again (default 100 ms). */
  pollMs?: number;
  logger?: Logger;
  clock?: Clock;
}

/**
 * Bitrix24 OAuth 2.0 tokens shared by every process of the install through one NATS key-value entry.
 *
 * Refresh tokens rotate: each refresh kills the previous one, so two processes refreshing at once would
 * leave one with a dead token (`invalid_grant`). Refreshes therefore go through the entry's revision:
 * a process first claims the entry (`refreshing: {owner, until}` written with `update` on the revision
 * it read), then refreshes, then writes the new tokens with `update` on the claim's revision. Whoever
 * loses the claim waits for the winner's tokens; a claim whose holder died expires and may be taken
 * over. Refreshing happens only when a call answered `expired_token` (or, for an idle install, when the
 * refresh token nears its end), never on a short timer: Bitrix asks apps not to.
 */
export class BitrixTokenStore {
  private readonly key: string;
  private readonly clock: Clock;
  private readonly owner = `${process.pid}-${randomBytes(4).toString('hex')}`;
  private cachedTokens: StoredTokens | undefined;
  /** Tokens this process has seen lately: scrubbed from every error message. */
  private readonly seen: string[] = [];
  private readonly inflight = new Map<string, Promise<StoredTokens>>();
  private get cached(): StoredTokens | undefined {
    return this.cachedTokens;
  }

  private set cached(tokens: StoredTokens | undefined) {
    this.cachedTokens = tokens;
    if (!tokens) return;
    for (const token of [tokens.accessToken, tokens.refreshToken])
      if (!this.seen.includes(token)) this.seen.push(token);
    this.seen.splice(0, Math.max(0, this.seen.length - 12));
  }

  /** The client secret and the tokens this process has held lately, to scrub from messages. */
  secrets(): string[] {
    return [this.options.clientSecret, ...this.seen];
  }

  /** Refreshes this process made against the token server (for tests and status). */
  refreshes = 0;

  constructor(private readonly options: BitrixTokenStoreOptions) {
    this.key = options.key ?? TOKEN_KEY;
    this.clock = options.clock ?? systemClock;
  }

  /**
   * The URL where a portal administrator authorizes the app; Bitrix24 then redirects to the app's
   * redirect URI with `code` (valid 30 s), `state`, `domain` and `member_id`.
   */
  static authorizeUrl(portalUrl: string, clientId: string, state: string): string {
    const url = new URL('/oauth/authorize/', portalUrl.replace(/\/+$/, '') + '/');
    url.searchParams.set('client_id', clientId);
    url.searchParams.set('state', state);
    return url.toString();
  }

  /** `authorizeUrl` for this store's portal and app. */
  authorizeUrl(state: string): string {
    if (!this.options.portalUrl)
      throw new BitrixApiError({
        code: 'NOT_CONFIGURED',
        description: 'BITRIX_PORTAL_URL is not set',
        method: 'oauth/authorize',
        retryable: false,
      });
    return BitrixTokenStore.authorizeUrl(this.options.portalUrl, this.options.clientId, state);
  }

  /**
   * Exchanges an authorization code (valid for 30 s after the redirect) for tokens and stores them,
   * replacing whatever was stored (a new authorization wins over everything).
   */
  async exchangeCode(code: string): Promise<StoredTokens> {
    const response = await this.tokenRequest({ grant_type: 'authorization_code', code });
    const tokens = this.fromResponse(response);
    await this.options.kv.put(this.key, encode(tokens));
    this.cached = tokens;
    return tokens;
  }

  /** The stored tokens (cached after the first read); throws `BitrixNotAuthorizedError` when there are none. */
  async current(): Promise<StoredTokens> {
    if (this.cached) return this.cached;
    const entry = await this.read();
    if (!entry) throw new BitrixNotAuthorizedError();
    this.cached = entry.tokens;
    return entry.tokens;
  }

  /** The tokens as stored now (not cached), or undefined. */
  async stored(): Promise<StoredTokens | undefined> {
    return (await this.read())?.tokens;
  }

  /**
   * Called after a REST call answered `expired_token`/`invalid_token` with `failedAccessToken`:
   * returns tokens to retry with. When the stored access token is already another one (another process
   * refreshed), that one is returned without asking the token server.
   */
  async refresh(failedAccessToken: string): Promise<StoredTokens> {
    // Callers of this process that failed with the same token share one refresh.
    const running = this.inflight.get(failedAccessToken);
    if (running) return running;
    const refresh = this.refreshShared(failedAccessToken).finally(() => this.inflight.delete(failedAccessToken));
    this.inflight.set(failedAccessToken, refresh);
    return refresh;
  }

  private async refreshShared(failedAccessToken: string): Promise<StoredTokens> {
    const claimTtl = this.options.claimTtlMs ?? 30_000;
    const deadline = this.clock.now() + claimTtl * 3;
    for (;;) {
      if (this.clock.now() > deadline)
        throw new BitrixApiError({
          code: 'REFRESH_TIMEOUT',
          description: 'another process holds the token refresh and did not finish',
          method: 'oauth/token',
          retryable: true,
        });
      const entry = await this.read();
      if (!entry) throw new BitrixNotAuthorizedError();
      const { tokens, revision } = entry;
      if (tokens.accessToken !== failedAccessToken) {
        this.cached = stripClaim(tokens);
        return this.cached;
      }
      const now = this.clock.now();
      if (tokens.refreshing && tokens.refreshing.owner !== this.owner && tokens.refreshing.until > now) {
        await this.clock.sleep(this.options.pollMs ?? 100);
        continue;
      }
      let claimRevision: number;
      try {
        claimRevision = await this.options.kv.update(
          this.key,
          encode({ ...tokens, refreshing: { owner: this.owner, until: now + claimTtl } }),
          revision,
        );
      } catch (error) {
        if (isWrongRevision(error)) continue;
        throw error;
      }
      return await this.refreshClaimed(stripClaim(tokens), claimRevision);
    }
  }

  /**
   * For an idle install: refreshes when the stored refresh token is older than the configured maximum
   * age (default 25 days; refresh tokens live 28 days on older portals, 180 on current ones). The service
   * calls this on a slow timer; returns true when it refreshed.
   */
  async refreshIfStale(): Promise<boolean> {
    const tokens = await this.stored();
    if (!tokens) return false;
    const maxAge = this.options.refreshTokenMaxAgeMs ?? 25 * 86_400_000;
    if (this.clock.now() - tokens.obtainedAt < maxAge) return false;
    this.options.logger?.info(
      { ageDays: Math.floor((this.clock.now() - tokens.obtainedAt) / 86_400_000) },
      'bitrix: refreshing an old refresh token of an idle install',
    );
    await this.refresh(tokens.accessToken);
    return true;
  }

  /** We hold the claim: refresh, then store the new tokens on the claim's revision. */
  private async refreshClaimed(old: StoredTokens, claimRevision: number): Promise<StoredTokens> {
    let response: OAuthTokenResponse;
    try {
      response = await this.tokenRequest({ grant_type: 'refresh_token', refresh_token: old.refreshToken });
    } catch (error) {
      // Give the claim back so others need not wait for it to expire; ignore a lost race.
      await this.options.kv.update(this.key, encode(old), claimRevision).catch(() => undefined);
      if (error instanceof BitrixReauthRequiredError) {
        // The refresh token may have been rotated by a process that took over our (expired) claim.
        const now = await this.stored();
        if (now && now.refreshToken !== old.refreshToken) return (this.cached = stripClaim(now));
      }
      throw error;
    }
    this.refreshes++;
    const fresh = this.fromResponse(response, old);
    let revision = claimRevision;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.options.kv.update(this.key, encode(fresh), revision);
        break;
      } catch (error) {
        if (!isWrongRevision(error) || attempt >= 5) throw error;
        // Our claim expired and someone touched the entry. The refresh token we just used is dead now, so
        // ours are the only live tokens, unless an operator authorized anew meanwhile.
        const entry = await this.read();
        if (!entry) throw error;
        if (entry.tokens.refreshToken !== old.refreshToken && !entry.tokens.refreshing)
          return (this.cached = entry.tokens);
        revision = entry.revision;
      }
    }
    this.cached = fresh;
    this.options.logger?.info({ memberId: fresh.memberId }, 'bitrix: access token refreshed');
    return fresh;
  }

  private async read(): Promise<{ tokens: StoredTokens; revision: number } | undefined> {
    const entry: KvEntry | null = await this.options.kv.get(this.key);
    if (!entry || entry.operation !== 'PUT' || entry.value.length === 0) return undefined;
    const parsed = StoredTokens.safeParse(entry.json());
    if (!parsed.success)
      throw new BitrixApiError({
        code: 'BAD_TOKEN_ENTRY',
        description: `the entry ${this.key} of bucket ${TOKEN_BUCKET} is not a token entry; authorize again`,
        method: 'oauth/token',
        retryable: false,
      });
    return { tokens: parsed.data, revision: entry.revision };
  }

  private fromResponse(response: OAuthTokenResponse, previous?: StoredTokens): StoredTokens {
    const now = this.clock.now();
    const expiresAt = response.expires ? response.expires * 1000 : now + (response.expires_in ?? 3600) * 1000;
    const endpoint = response.client_endpoint ?? previous?.clientEndpoint;
    const server = response.server_endpoint ?? previous?.serverEndpoint;
    const memberId = response.member_id ?? previous?.memberId;
    const scope = response.scope ?? previous?.scope;
    const userId = response.user_id ?? previous?.userId;
    return {
      accessToken: response.access_token,
      refreshToken: response.refresh_token,
      expiresAt,
      obtainedAt: now,
      ...(endpoint ? { clientEndpoint: endpoint } : {}),
      ...(server ? { serverEndpoint: server } : {}),
      ...(memberId ? { memberId } : {}),
      ...(scope ? { scope } : {}),
      ...(userId !== undefined ? { userId } : {}),
    };
  }

  /** One request to the token server (GET, as documented); errors never carry the secret or tokens. */
  private async tokenRequest(grant: Record<string, string>): Promise<OAuthTokenResponse> {
    const { oauthUrl, clientId, clientSecret } = this.options;
    const url = new URL('/oauth/token/', oauthUrl.replace(/\/+$/, '') + '/');
    for (const [k, v] of Object.entries({ ...grant, client_id: clientId, client_secret: clientSecret }))
      url.searchParams.set(k, v);
    const secrets = [clientSecret, ...Object.values(grant)];
    const fail = (code: string, description: string, status?: number, retryable = false) =>
      new BitrixApiError({ code, status, description: scrub(description, secrets), method: 'oauth/token', retryable });
    let response: Response;
    try {
      response = await fetch(url, {
        method: 'GET',
        headers: { accept: 'application/json' },
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 15_000),
      });
    } catch (error) {
      const timedOut = (error as Error).name === 'TimeoutError' || (error as Error).name === 'AbortError';
      throw fail(
        timedOut ? 'TIMEOUT' : 'NETWORK',
        timedOut ? 'the token server did not answer in time' : `cannot reach the token server ${url.origin}`,
        undefined,
        true,
      );
    }
    const text = await response.text().catch(() => '');
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    const error = z.object({ error: z.string(), error_description: z.string().optional() }).safeParse(body);
    if (error.success) {
      const description = scrub(error.data.error_description ?? '', secrets);
      if (error.data.error === 'invalid_grant') {
        if (grant.grant_type === 'authorization_code')
          throw fail(
            'invalid_grant',
            `the authorization code was refused (it is valid for 30 s and only once): run \`npx puente bitrix auth-url\` again${description ? ` (${description})` : ''}`,
            response.status,
          );
        throw new BitrixReauthRequiredError(description);
      }
      if (error.data.error === 'invalid_client')
        throw fail(
          'invalid_client',
          `the token server refused the app (check BITRIX_CLIENT_ID and BITRIX_CLIENT_SECRET, and that the app is installed in the portal)${description ? `: ${description}` : ''}`,
          response.status,
        );
      throw fail(error.data.error, description, response.status, response.status >= 500);
    }
    if (!response.ok)
      throw fail(
        `HTTP_${response.status}`,
        `the token server answered ${response.status}`,
        response.status,
        response.status >= 500,
      );
    const parsed = OAuthTokenResponse.safeParse(body);
    if (!parsed.success)
      throw fail('BAD_RESPONSE', 'the token server answered without access_token and refresh_token', response.status);
    return parsed.data;
  }
}

/**
 * For an idle install: checks the refresh token's age every `everyMs` (default 6 h) and refreshes it
 * before it dies. Returns a stop function.
 */
export function keepRefreshTokenAlive(
  store: BitrixTokenStore,
  options: { everyMs?: number; logger?: Logger } = {},
): () => void {
  const timer = setInterval(
    () => {
      store
        .refreshIfStale()
        .catch((error: unknown) =>
          options.logger?.warn(
            { err: { message: (error as Error).message } },
            'bitrix: could not refresh an old refresh token',
          ),
        );
    },
    options.everyMs ?? 6 * 3_600_000,
  );
  timer.unref();
  return () => clearInterval(timer);
}

function stripClaim(tokens: StoredTokens): StoredTokens {
  const { refreshing: _, ...rest } = tokens;
  return rest;
}

function encode(tokens: StoredTokens): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(tokens));
}

/** nats.js answers an `update` on a stale revision with "wrong last sequence". */
function isWrongRevision(error: unknown): boolean {
  return /wrong last sequence/i.test(String((error as Error)?.message ?? error));
}
