import { createHmac } from 'node:crypto';
import { safeEqual } from './auth.js';
import { secretBytes } from './signatures.js';

const b64url = (buffer: Buffer) => buffer.toString('base64url');

/**
 * Verifies an HS256 JWT against any of the secrets: the header must say HS256 (no `none`, no other
 * algorithm), the signature must match, and `exp` (when present) must not have passed (60 s skew).
 */
export function verifyHs256Jwt(token: string, secrets: readonly string[], now: Date): boolean {
  const parts = token.split('.');
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]*$/.test(p))) return false;
  const [headerPart, payloadPart, signaturePart] = parts as [string, string, string];
  let header: { alg?: unknown };
  let payload: { exp?: unknown; nbf?: unknown };
  try {
    header = JSON.parse(Buffer.from(headerPart, 'base64url').toString('utf8')) as { alg?: unknown };
    payload = JSON.parse(Buffer.from(payloadPart, 'base64url').toString('utf8')) as { exp?: unknown };
  } catch {
    return false;
  }
  if (header.alg !== 'HS256') return false;
  const seconds = now.getTime() / 1000;
  if (typeof payload.exp === 'number' && seconds > payload.exp + 60) return false;
  if (typeof payload.nbf === 'number' && seconds < payload.nbf - 60) return false;
  let matched = false;
  for (const secret of secrets) {
    const expected = b64url(createHmac('sha256', secretBytes(secret)).update(`${headerPart}.${payloadPart}`).digest());
    matched = safeEqual(expected, signaturePart) || matched;
  }
  return matched;
}

/** Signs an HS256 JWT (for `npx puente send-sample` and tests). */
export function signHs256Jwt(payload: Record<string, unknown>, secret: string): string {
  const header = b64url(Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })));
  const body = b64url(Buffer.from(JSON.stringify(payload)));
  return `${header}.${body}.${b64url(createHmac('sha256', secretBytes(secret)).update(`${header}.${body}`).digest())}`;
}
