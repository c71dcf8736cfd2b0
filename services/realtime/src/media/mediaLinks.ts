import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { MAX_MEDIA_LINK_TTL_S } from '../config.js';

/**
 * The HKDF `info` that makes a link key: a key of its own, so a link signature is never something a
 * JWT secret signed, and a leaked link says nothing about the JWT secret.
 */
const LINK_KEY_LABEL = 'puente realtime media link v1';
const SIGNATURE = /^[A-Za-z0-9_-]{43}$/;
const UNIX_SECONDS = /^\d{1,12}$/;

/** A signed link to a stored media item: a path with its query, and when it stops working. */
export interface MediaLink {
  url: string;
  expiresAt: Date;
}

/** A link's check: when it expires (seconds since the epoch), or why it is refused (safe to tell). */
export type MediaLinkCheck = { ok: true; expires: number } | { ok: false; reason: string };

/** A link's path: the session and message id, each one encoded path segment. */
export function mediaPath(session: string, messageId: string): string {
  return `/media/${encodeURIComponent(session)}/${encodeURIComponent(messageId)}`;
}

/**
 * Short-lived signed links to stored media, for `<img>`, `<audio>` and `<video>`, which cannot send an
 * `Authorization` header (and a token must never go into a URL, where logs and `Referer` keep it).
 * The signature is HMAC-SHA256 over session, message id and expiry with a key derived (HKDF-SHA256) from
 * each configured JWT secret: links are signed with the first, and any of them verifies, so a secret
 * rotation keeps issued links working until they expire.
 */
export class MediaLinks {
  private readonly keys: readonly Buffer[];

  constructor(
    secrets: readonly string[],
    private readonly ttlSeconds: number,
  ) {
    if (secrets.length === 0) throw new Error('media links need at least one secret');
    this.keys = secrets.map((secret) =>
      Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), Buffer.alloc(0), LINK_KEY_LABEL, 32)),
    );
  }

  /** A link to the message's media that works until now + the configured lifetime. */
  sign(session: string, messageId: string, now = Date.now()): MediaLink {
    const expires = Math.floor(now / 1000) + this.ttlSeconds;
    const signature = signatureOf(this.keys[0]!, session, messageId, expires);
    return {
      url: `${mediaPath(session, messageId)}?expires=${expires}&signature=${signature}`,
      expiresAt: new Date(expires * 1000),
    };
  }

  /**
   * Checks a link's `expires` and `signature` for this session and message: refused when either is
   * missing or malformed, when it has expired, when it claims to live longer than any link may, or when
   * no configured secret's key signed exactly these values.
   */
  verify(session: string, messageId: string, query: URLSearchParams, now = Date.now()): MediaLinkCheck {
    const expiresText = query.get('expires');
    const signature = query.get('signature');
    if (expiresText === null || signature === null)
      return { ok: false, reason: 'a signed link needs expires and signature' };
    if (!UNIX_SECONDS.test(expiresText) || !SIGNATURE.test(signature))
      return { ok: false, reason: 'malformed signed link' };
    const expires = Number(expiresText);
    const nowSeconds = now / 1000;
    if (expires <= nowSeconds) return { ok: false, reason: 'the link has expired' };
    if (expires > nowSeconds + MAX_MEDIA_LINK_TTL_S) return { ok: false, reason: 'bad signature' };
    const given = Buffer.from(signature, 'base64url');
    const signed = this.keys.some((key) =>
      timingSafeEqual(given, Buffer.from(signatureOf(key, session, messageId, expires), 'base64url')),
    );
    return signed ? { ok: true, expires } : { ok: false, reason: 'bad signature' };
  }
}

/** The signature of one link: the signed values JSON-encoded, so no session or id can run into the next. */
function signatureOf(key: Buffer, session: string, messageId: string, expires: number): string {
  return createHmac('sha256', key)
    .update(JSON.stringify([session, messageId, expires]))
    .digest('base64url');
}
