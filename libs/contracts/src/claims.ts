import { z } from 'zod';

/** Token roles beyond reading: what later features check (nothing enforces them yet). */
export const TokenRoles = {
  /** The operator console: see and act on every session's health and queues. */
  operator: 'operator',
} as const;

/**
 * The claims of a Puente access token (an HS256 JWT signed with `REALTIME_JWT_SECRET`): the one
 * definition every service and tool reads. Realtime requires `sub`, `exp` and `channels` and checks
 * `channels` on every subscription and page. `send` is checked by the gateway's command API (send, mark
 * read, sync) and by realtime (a session's pairing QR only for its senders); `roles` is defined here so
 * the operator console does not invent its own, and is not enforced anywhere yet.
 */
export const TokenClaims = z.object({
  /** Who holds the token (a user, an agent, a tool). */
  sub: z.string().min(1),
  /** Expiry, seconds since the epoch; a WebSocket is closed when it passes. */
  exp: z.number().int().positive(),
  /** Channel patterns the holder may read: `*` matches one dot-separated segment, a trailing `>` the rest, as in NATS. */
  channels: z.array(z.string().min(1)).min(1),
  /** WhatsApp sessions the holder may send from: session names, or `*` for every session. */
  send: z.array(z.string().min(1)).optional(),
  /** Rights beyond reading and sending, such as `operator` ({@link TokenRoles}); unknown roles are kept, not refused. */
  roles: z.array(z.string().min(1)).optional(),
  /** The token's own id (random), what `puente token revoke <jti>` names; tokens minted before it existed have none. */
  jti: z.string().min(1).max(200).optional(),
  /** When the token was issued, seconds since the epoch: revoking a subject refuses its tokens issued up to then. */
  iat: z.number().int().nonnegative().optional(),
});
export type TokenClaims = z.infer<typeof TokenClaims>;

/** Key-value buckets shared between services and tools: the only place their names are spelled. */
export const BucketNames = {
  /**
   * Revoked access tokens: `jti.<jti>` for one token, `sub.<base64url(sub)>` for every token of a subject
   * issued up to a time ({@link TokenRevocation}). Written by `puente token revoke`, read by every service
   * that accepts access tokens.
   */
  tokenRevocations: 'puente_token_revocations',
} as const;

/** A revocation entry's value: when it was revoked (seconds since the epoch); a subject's tokens issued up to then are refused. */
export const TokenRevocation = z.object({
  revokedAt: z.number().int().nonnegative(),
});
export type TokenRevocation = z.infer<typeof TokenRevocation>;

/** The claims realtime reads (the same schema: {@link TokenClaims}). */
export const RealtimeTokenClaims = TokenClaims;
export type RealtimeTokenClaims = TokenClaims;
