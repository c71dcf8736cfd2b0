import { createHmac, timingSafeEqual } from 'node:crypto';
import { RealtimeTokenClaims } from '@puente/contracts';

const b64 = (value: string | Buffer) => Buffer.from(value).toString('base64url');
const HEADER = b64(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));

/** Mints an HS256 read token: `sub`, `channels` (patterns), `exp` = now + ttl. */
export function signToken(claims: { sub: string; channels: readonly string[] }, secret: string, ttlSeconds = 3600, now = Date.now()): string {
  const payload = b64(JSON.stringify({ sub: claims.sub, channels: [...claims.channels], iat: Math.floor(now / 1000), exp: Math.floor(now / 1000) + ttlSeconds }));
  return `${HEADER}.${payload}.${createHmac('sha256', secret).update(`${HEADER}.${payload}`).digest('base64url')}`;
}

export type Verified = { ok: true; claims: RealtimeTokenClaims } | { ok: false; reason: string };

/**
 * Verifies an HS256 JWT against any of the secrets (several during a rotation): the header must say
 * HS256 (no `none`, no other algorithm), the signature must match, the claims must have `sub`,
 * `channels` and an `exp` still in the future.
 */
export function verifyToken(token: string, secrets: readonly string[], now = Date.now()): Verified {
  const parts = token.split('.');
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]*$/.test(p))) return { ok: false, reason: 'not a JWT' };
  const [header, payload, signature] = parts as [string, string, string];
  let alg: unknown;
  try {
    alg = (JSON.parse(Buffer.from(header, 'base64url').toString('utf8')) as { alg?: unknown }).alg;
  } catch {
    return { ok: false, reason: 'not a JWT' };
  }
  if (alg !== 'HS256') return { ok: false, reason: 'only HS256 tokens are accepted' };
  const given = Buffer.from(signature, 'base64url');
  const matches = secrets.some((secret) => {
    const expected = createHmac('sha256', secret).update(`${header}.${payload}`).digest();
    return expected.length === given.length && timingSafeEqual(expected, given);
  });
  if (!matches) return { ok: false, reason: 'bad signature' };
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    return { ok: false, reason: 'unreadable claims' };
  }
  const claims = RealtimeTokenClaims.safeParse(raw);
  if (!claims.success) return { ok: false, reason: `claims: ${claims.error.issues[0]!.path.join('.') || '(claims)'} ${claims.error.issues[0]!.message}` };
  if (claims.data.exp * 1000 <= now) return { ok: false, reason: 'token expired' };
  return { ok: true, claims: claims.data };
}
