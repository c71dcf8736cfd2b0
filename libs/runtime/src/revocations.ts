import { KvWatchInclude, type KV, type KvEntry } from 'nats';
import type { Bus } from '@puente/bus';
import { BucketNames, TokenRevocation, type TokenClaims } from '@puente/contracts';
import { verifyToken, type Verified } from './jwt.js';

/** The reason a revoked token is refused with (what the holder is told: sign in again). */
export const TOKEN_REVOKED = 'token revoked';

/** The bucket key of one token's revocation. KV keys allow `[-/_=.A-Za-z0-9]`, so ids outside that are base64url-encoded. */
function jtiKey(jti: string): string {
  return /^[-_A-Za-z0-9]+$/.test(jti) ? `jti.${jti}` : `jti.b64_${Buffer.from(jti).toString('base64url')}`;
}

/** The bucket key of a subject's revocation (a subject may hold any character). */
function subKey(sub: string): string {
  return `sub.${Buffer.from(sub).toString('base64url')}`;
}

export interface TokenRevocationsOptions {
  /** How long an answer read from the bucket is trusted (default 2 s): a revocation takes effect within it. */
  cacheMs?: number;
  /** The clock, milliseconds since the epoch (tests pin it). */
  now?: () => number;
}

interface Cached {
  value: TokenRevocation | null;
  readAt: number;
}

/**
 * The revocation list of access tokens, kept in the `puente_token_revocations` KV bucket
 * ({@link BucketNames}): `puente token revoke` writes it, every service that accepts access tokens asks
 * {@link TokenRevocations.isRevoked}. Answers are cached briefly so a busy WebSocket server does not read
 * the bucket per connection, yet a revocation holds within seconds everywhere.
 */
export class TokenRevocations {
  private bucket: Promise<KV> | undefined;
  private readonly cache = new Map<string, Cached>();
  private readonly cacheMs: number;
  private readonly now: () => number;

  /** The bucket is opened (and created when missing) on first use, so building a service stays synchronous. */
  constructor(
    private readonly bus: Bus,
    options: TokenRevocationsOptions = {},
  ) {
    this.cacheMs = options.cacheMs ?? 2_000;
    this.now = options.now ?? Date.now;
  }

  private kv(): Promise<KV> {
    this.bucket ??= this.bus.kv(BucketNames.tokenRevocations, { history: 1 }).catch((error: unknown) => {
      this.bucket = undefined;
      throw error;
    });
    return this.bucket;
  }

  private async read(key: string): Promise<TokenRevocation | null> {
    const now = this.now();
    const cached = this.cache.get(key);
    if (cached && now - cached.readAt < this.cacheMs) return cached.value;
    try {
      const entry = await (await this.kv()).get(key);
      const parsed = entry && entry.operation === 'PUT' ? TokenRevocation.safeParse(entry.json()) : undefined;
      const value = parsed?.success ? parsed.data : null;
      if (this.cache.size > 10_000) this.cache.clear();
      this.cache.set(key, { value, readAt: now });
      return value;
    } catch (error) {
      // The bus is away: the last answer read is better than refusing everyone (or letting revoked tokens in).
      if (cached) return cached.value;
      throw error;
    }
  }

  /**
   * Whether a token was revoked: by its `jti`, or by its subject with a `revokedAt` at or after its `iat`
   * (a token without `iat` predates revocation and counts as issued before). Rejects only when the
   * bucket cannot be read and nothing was read before.
   */
  async isRevoked(claims: Pick<TokenClaims, 'sub' | 'jti' | 'iat'>): Promise<boolean> {
    const [byId, bySubject] = await Promise.all([
      claims.jti ? this.read(jtiKey(claims.jti)) : null,
      this.read(subKey(claims.sub)),
    ]);
    if (byId) return true;
    return bySubject !== null && (claims.iat ?? 0) <= bySubject.revokedAt;
  }

  /**
   * Calls `revoked` for each revocation written from now on (by any process), with a test of whether it
   * covers a token's claims: what lets a server close the connections of a token revoked while they
   * were open. Returns the function that stops watching.
   */
  async watch(
    revoked: (covers: (claims: Pick<TokenClaims, 'sub' | 'jti' | 'iat'>) => boolean) => void,
  ): Promise<() => void> {
    const watcher = await (await this.kv()).watch({ include: KvWatchInclude.UpdatesOnly });
    void (async () => {
      for await (const entry of watcher) {
        const covers = coverageOf(entry);
        if (!covers) continue;
        this.cache.delete(entry.key);
        revoked(covers);
      }
    })().catch(() => undefined);
    return () => watcher.stop();
  }

  /** Revokes one token by its `jti`. */
  async revokeToken(jti: string, at = this.now()): Promise<void> {
    await this.write(jtiKey(jti), at);
  }

  /** Revokes every token of a subject issued up to now (seconds resolution: a token minted in the same second is revoked too). */
  async revokeSubject(sub: string, at = this.now()): Promise<void> {
    await this.write(subKey(sub), at);
  }

  private async write(key: string, at: number): Promise<void> {
    const value: TokenRevocation = { revokedAt: Math.floor(at / 1000) };
    await (await this.kv()).put(key, JSON.stringify(value));
    this.cache.set(key, { value, readAt: this.now() });
  }
}

/**
 * Verifies an access token ({@link verifyToken}) and refuses it when revoked: the one check realtime
 * and the gateway's command API run. A revocation list that cannot be read refuses the token (with a
 * reason that says so) rather than letting a revoked one in.
 */
export async function verifyAccessToken(
  token: string,
  secrets: readonly string[],
  revocations: TokenRevocations,
  now = Date.now(),
): Promise<Verified> {
  const verified = await verifyToken(token, secrets, now);
  if (!verified.ok) return verified;
  try {
    if (await revocations.isRevoked(verified.claims)) return { ok: false, reason: TOKEN_REVOKED };
  } catch {
    return { ok: false, reason: 'the token revocation list cannot be read right now' };
  }
  return verified;
}

/** What a revocation entry covers: a token by its id, or a subject's tokens issued up to `revokedAt`. */
function coverageOf(entry: KvEntry): ((claims: Pick<TokenClaims, 'sub' | 'jti' | 'iat'>) => boolean) | undefined {
  if (entry.operation !== 'PUT') return undefined;
  const parsed = TokenRevocation.safeParse(entry.json());
  if (!parsed.success) return undefined;
  const { revokedAt } = parsed.data;
  if (entry.key.startsWith('jti.')) return (claims) => claims.jti !== undefined && jtiKey(claims.jti) === entry.key;
  if (entry.key.startsWith('sub.'))
    return (claims) => subKey(claims.sub) === entry.key && (claims.iat ?? 0) <= revokedAt;
  return undefined;
}
