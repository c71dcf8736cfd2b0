import { createHmac } from 'node:crypto';
import { safeEqual } from './auth.js';

/**
 * The key bytes of a secret: a `whsec_<base64>` secret is used as Standard Webhooks prescribes (the
 * decoded bytes); any other secret is its UTF-8 bytes. The same rule holds for every scheme.
 */
export function secretBytes(secret: string): Buffer {
  return secret.startsWith('whsec_') ? Buffer.from(secret.slice('whsec_'.length), 'base64') : Buffer.from(secret, 'utf8');
}

export function hmac(algorithm: 'sha1' | 'sha256' | 'sha512', secret: string, body: Buffer | string): Buffer {
  return createHmac(algorithm, secretBytes(secret)).update(body).digest();
}

/** True when `given` (already decoded) equals the HMAC of `body` under any of the secrets; all are checked. */
export function hmacMatchesAny(algorithm: 'sha1' | 'sha256' | 'sha512', secrets: readonly string[], body: Buffer | string, given: Buffer): boolean {
  let matched = false;
  for (const secret of secrets) matched = safeEqual(hmac(algorithm, secret, body), given) || matched;
  return matched;
}

/** Decodes hex strictly (even length, hex digits only); undefined when it is not hex. */
export function strictHex(value: string): Buffer | undefined {
  return /^(?:[0-9a-fA-F]{2})+$/.test(value) ? Buffer.from(value, 'hex') : undefined;
}
