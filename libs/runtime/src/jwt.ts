import { createHmac, randomUUID, webcrypto } from 'node:crypto';
import { compactVerify, errors } from 'jose';
import type { z } from 'zod';
import { TokenClaims } from '@puente/contracts';

/**
 * The key bytes of a secret: a `whsec_<base64>` secret is used as Standard Webhooks prescribes (the
 * decoded bytes); any other secret is its UTF-8 bytes.
 */
export function secretBytes(secret: string): Buffer {
  return secret.startsWith('whsec_')
    ? Buffer.from(secret.slice('whsec_'.length), 'base64')
    : Buffer.from(secret, 'utf8');
}

export interface JwtKeyOptions {
  /** Read a `whsec_<base64>` secret as Standard Webhooks' base64 key ({@link secretBytes}); otherwise every secret is its UTF-8 bytes. */
  standardWebhooksSecrets?: boolean;
}

export interface JwtVerifyOptions<Claims extends z.ZodType> extends JwtKeyOptions {
  /** Any of these may have signed the token (several during a rotation). */
  secrets: readonly string[];
  /** The claims the token must carry; what it parses to is what the caller gets. */
  claims: Claims;
  /** Seconds `exp` and `nbf` may be off (default 0). */
  clockSkewSeconds?: number;
  /** The clock, milliseconds since the epoch (tests pin it). */
  now?: number;
}

/** A verified token's claims, or why it was refused (a reason safe to tell the holder). */
export type JwtVerified<Claims> = { ok: true; claims: Claims } | { ok: false; reason: string };

const COMPACT = /^[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$/;
const HS256_ONLY = { algorithms: ['HS256'] };
type HmacKey = webcrypto.CryptoKey;
const keys = new Map<string, Promise<HmacKey>>();

/**
 * The HMAC key of a secret, imported once: jose imports raw key bytes anew on every call, which costs
 * about ten times the verification itself (300 µs against 25 µs here). Secrets come from configuration,
 * so the map stays small.
 */
function verifyKey(secret: string, standardWebhooks: boolean): Promise<HmacKey> {
  const id = `${standardWebhooks ? 'w' : 'u'}:${secret}`;
  let key = keys.get(id);
  if (!key) {
    const bytes = standardWebhooks ? secretBytes(secret) : Buffer.from(secret, 'utf8');
    key = webcrypto.subtle.importKey('raw', bytes, { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
    keys.set(id, key);
  }
  return key;
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Verifies an HS256 JWT with `jose` against any of the secrets: the header must say HS256 (`none` and
 * every other algorithm are refused), the signature must match, the claims must parse with the schema
 * given, and `exp` and `nbf`, where present as numbers, must hold within the clock skew. The schema
 * decides which claims are required (realtime's requires `exp`; the gateway's Evolution JWT does not).
 */
export async function verifyJwt<Claims extends z.ZodType>(
  token: string,
  options: JwtVerifyOptions<Claims>,
): Promise<JwtVerified<z.output<Claims>>> {
  if (!COMPACT.test(token)) return { ok: false, reason: 'not a JWT' };
  let payload: Uint8Array | undefined;
  for (const secret of options.secrets) {
    try {
      payload = (
        await compactVerify(token, await verifyKey(secret, options.standardWebhooksSecrets === true), HS256_ONLY)
      ).payload;
      break;
    } catch (error) {
      if (error instanceof errors.JWSSignatureVerificationFailed) continue;
      if (error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JOSENotSupported)
        return { ok: false, reason: 'only HS256 tokens are accepted' };
      return { ok: false, reason: 'not a JWT' };
    }
  }
  if (!payload) return { ok: false, reason: 'bad signature' };
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(payload).toString('utf8'));
  } catch {
    return { ok: false, reason: 'unreadable claims' };
  }
  const claims = options.claims.safeParse(raw);
  if (!claims.success) {
    const issue = claims.error.issues[0]!;
    return { ok: false, reason: `claims: ${issue.path.join('.') || '(claims)'} ${issue.message}` };
  }
  const now = options.now ?? Date.now();
  const skew = options.clockSkewSeconds ?? 0;
  const times = isObject(raw) ? raw : {};
  if (typeof times.exp === 'number' && now >= (times.exp + skew) * 1000) return { ok: false, reason: 'token expired' };
  if (typeof times.nbf === 'number' && now < (times.nbf - skew) * 1000)
    return { ok: false, reason: 'token not yet valid' };
  return { ok: true, claims: claims.data };
}

const HEADER = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');

/**
 * Signs an HS256 JWT. Synchronous on purpose (jose signs only asynchronously): test fixtures, the CLI
 * and the development dashboard link mint tokens inline; every token is verified by {@link verifyJwt}.
 */
export function signJwt(payload: Record<string, unknown>, secret: string, options: JwtKeyOptions = {}): string {
  const key = options.standardWebhooksSecrets ? secretBytes(secret) : Buffer.from(secret, 'utf8');
  const body = `${HEADER}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
  return `${body}.${createHmac('sha256', key).update(body).digest('base64url')}`;
}

/**
 * The claims a caller chooses when minting an access token; `iat` and `exp` come from the clock and the
 * ttl, `jti` is random unless given (a caller that must print or record the id passes its own).
 */
export type TokenGrant = Pick<TokenClaims, 'sub' | 'channels'> & Partial<Pick<TokenClaims, 'send' | 'roles' | 'jti'>>;

/** Mints an access token ({@link TokenClaims}): `sub`, `channels` (patterns), `send` and `roles` when given, `jti`, `iat`, `exp` = now + ttl. */
export function signToken(claims: TokenGrant, secret: string, ttlSeconds = 3600, now = Date.now()): string {
  const issuedAt = Math.floor(now / 1000);
  return signJwt(
    {
      sub: claims.sub,
      channels: [...claims.channels],
      ...(claims.send ? { send: [...claims.send] } : {}),
      ...(claims.roles ? { roles: [...claims.roles] } : {}),
      jti: claims.jti ?? randomUUID(),
      iat: issuedAt,
      exp: issuedAt + ttlSeconds,
    },
    secret,
  );
}

export type Verified = JwtVerified<TokenClaims>;

/** Verifies an access token (realtime's WebSocket and HTTP API): HS256 with any of the secrets, {@link TokenClaims}, no clock skew. */
export function verifyToken(token: string, secrets: readonly string[], now = Date.now()): Promise<Verified> {
  return verifyJwt(token, { secrets, claims: TokenClaims, now });
}

/**
 * The development dashboard's token (the link `npm start` prints and realtime's `/` carries when it runs
 * with the development secret): 12 hours, every channel, sending from every session, since the operator
 * pairing a phone on this machine needs the QR, which only senders see.
 */
export function devDashboardToken(secret: string): string {
  return signToken({ sub: 'dev-dashboard', channels: ['>'], send: ['*'] }, secret, 12 * 3600);
}
