import type { ChannelRouteDescriptor, TokenClaims } from '@puente/contracts';

/** A route's fields that only the senders of a document's session see. */
export type SendersOnly = NonNullable<ChannelRouteDescriptor['sendersOnly']>;

/** Whether a token may send from a session: its `send` claim names the session or `*`. */
export function maySendFrom(claims: Pick<TokenClaims, 'send'>, session: string): boolean {
  return claims.send?.some((allowed) => allowed === '*' || allowed === session) === true;
}

/**
 * The session a document's senders-only fields belong to, when it carries any of them; undefined when
 * it has none (the common case: nothing to hide, the document goes to everyone as is).
 */
export function guardedSession(spec: SendersOnly, doc: Record<string, unknown>): string | undefined {
  if (!spec.fields.some((field) => field in doc)) return undefined;
  return String(doc[spec.sessionField]);
}

/** The document without its senders-only fields. */
export function withoutSendersOnly<D extends Record<string, unknown>>(spec: SendersOnly, doc: D): D {
  const copy: Record<string, unknown> = { ...doc };
  for (const field of spec.fields) delete copy[field];
  return copy as D;
}

/**
 * What a token sees of a route's documents: each document as stored, or without the fields the route
 * keeps for the senders of the document's session when the token may not send from it.
 */
export function viewFor(
  spec: SendersOnly | undefined,
  claims: Pick<TokenClaims, 'send'>,
): <D extends Record<string, unknown>>(doc: D) => D {
  if (spec === undefined) return (doc) => doc;
  return (doc) => {
    const session = guardedSession(spec, doc);
    return session === undefined || maySendFrom(claims, session) ? doc : withoutSendersOnly(spec, doc);
  };
}
