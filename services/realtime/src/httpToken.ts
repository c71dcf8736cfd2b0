import type { IncomingMessage } from 'node:http';
import { ErrorCodes, type TokenClaims } from '@puente/contracts';
import { verifyAccessToken, type TokenRevocations } from '@puente/runtime';
import { refused } from './refused.js';

/**
 * The claims of the token an HTTP read carries (`Authorization: Bearer`, or `?token=` for apps that
 * cannot set headers); a missing, bad or revoked one is refused as `unauthorized`.
 */
export async function readerClaims(
  req: IncomingMessage,
  url: URL,
  secrets: readonly string[],
  revocations: TokenRevocations,
  /** Routes added after `/api/<channel>` take the header only: a token in a URL ends up in logs and traces. */
  options: { fromUrl: boolean } = { fromUrl: true },
): Promise<TokenClaims> {
  const header = req.headers.authorization;
  const token = header?.startsWith('Bearer ')
    ? header.slice(7).trim()
    : options.fromUrl
      ? (url.searchParams.get('token') ?? undefined)
      : undefined;
  const verified = token
    ? await verifyAccessToken(token, secrets, revocations)
    : {
        ok: false as const,
        reason: options.fromUrl
          ? 'no token: Authorization: Bearer <token> or ?token='
          : 'no token: Authorization: Bearer <token> (this route never reads a token from the URL)',
      };
  if (!verified.ok) throw refused(ErrorCodes.unauthorized, verified.reason);
  return verified.claims;
}
