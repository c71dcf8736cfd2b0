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
): Promise<TokenClaims> {
  const header = req.headers.authorization;
  const token = header?.startsWith('Bearer ') ? header.slice(7).trim() : (url.searchParams.get('token') ?? undefined);
  const verified = token
    ? await verifyAccessToken(token, secrets, revocations)
    : { ok: false as const, reason: 'no token: Authorization: Bearer <token> or ?token=' };
  if (!verified.ok) throw refused(ErrorCodes.unauthorized, verified.reason);
  return verified.claims;
}
