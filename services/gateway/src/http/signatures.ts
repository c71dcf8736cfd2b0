import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import { secretBytes } from '@puente/runtime';
import { digestEqual } from './auth.js';

/** The key bytes of a secret (a `whsec_` secret is Standard Webhooks' base64 key): one rule for every scheme and the Evolution JWT. */
export { secretBytes };

const keys = new Map<string, KeyObject>();

/** The HMAC key of a secret, made once per secret (a new KeyObject per request costs more than the HMAC of a small body). */
export function secretKey(secret: string): KeyObject {
  let key = keys.get(secret);
  if (!key) {
    key = createSecretKey(secretBytes(secret));
    keys.set(secret, key);
  }
  return key;
}

export function hmac(algorithm: 'sha1' | 'sha256' | 'sha512', secret: string, body: Buffer | string): Buffer {
  return createHmac(algorithm, secretKey(secret)).update(body).digest();
}

/** True when `given` (already decoded) equals the HMAC of `body` under any of the secrets; all are checked. */
export function hmacMatchesAny(
  algorithm: 'sha1' | 'sha256' | 'sha512',
  secrets: readonly string[],
  body: Buffer | string,
  given: Buffer,
): boolean {
  let matched = false;
  for (const secret of secrets) matched = digestEqual(hmac(algorithm, secret, body), given) || matched;
  return matched;
}

/** Decodes hex strictly (even length, hex digits only); undefined when it is not hex. */
export function strictHex(value: string): Buffer | undefined {
  return /^(?:[0-9a-fA-F]{2})+$/.test(value) ? Buffer.from(value, 'hex') : undefined;
}
