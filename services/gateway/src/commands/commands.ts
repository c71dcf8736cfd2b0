import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { createEvent, MediaHash, type DomainEvent } from '@puente/contracts';
import { eventIdFor } from '@puente/bus';
import { verifyAccessToken, type TokenRevocations } from '@puente/runtime';
import { UnauthorizedError, ContractViolationError, ForbiddenError } from '../http/errors.js';
import { bearerToken, matchesAny } from '../http/auth.js';
import { contractViolation, parseJson, type NormalizedEvent } from '../webhooks/delivery.js';

/** Who a command comes from: an `API_TOKENS` holder (no `sentBy`), or an agent (its token's `sub`). */
export interface CommandCaller {
  sentBy?: string;
}

/** What {@link authorizeCommand} checks a bearer token against. */
export interface CommandAuth {
  /** `API_TOKENS`: full rights, no agent named. */
  apiTokens: readonly string[];
  /** `REALTIME_JWT_SECRET`: agents' access tokens, whose `send` claim names their sessions. */
  agentSecrets: readonly string[];
  revocations: TokenRevocations;
}

/**
 * The command API takes `Authorization: Bearer <one of API_TOKENS>`, or an agent's access token (HS256
 * with `REALTIME_JWT_SECRET`, not expired, not revoked) whose `send` claim names the session or `*`:
 * 401 when the token is none of these, 403 (naming the session) when the agent may not act on it.
 */
export async function authorizeCommand(
  authorization: string | string[] | undefined,
  session: string | undefined,
  auth: CommandAuth,
): Promise<CommandCaller> {
  const token = bearerToken(authorization);
  if (!token) throw new UnauthorizedError('missing API token: Authorization: Bearer <API token or access token>');
  if (matchesAny(token, auth.apiTokens)) return {};
  if (auth.agentSecrets.length === 0) throw new UnauthorizedError('missing or invalid API token');
  const verified = await verifyAccessToken(token, auth.agentSecrets, auth.revocations);
  if (!verified.ok)
    throw new UnauthorizedError(
      verified.reason === 'not a JWT' ? 'missing or invalid API token' : `access token refused: ${verified.reason}`,
    );
  const sessions = verified.claims.send ?? [];
  if (!session || !(sessions.includes('*') || sessions.includes(session)))
    throw new ForbiddenError(`the token of ${verified.claims.sub} may not send from session ${session ?? '(none)'}`, {
      session: session ?? null,
      sub: verified.claims.sub,
    });
  return { sentBy: verified.claims.sub };
}

const SendMessageBody = z
  .object({
    to: z.string().trim().min(1, 'required: a JID or phone number').max(128),
    /** The text, or a media item's caption. */
    text: z.string().min(1, 'must not be empty').max(4096, 'at most 4096 characters').optional(),
    /**
     * Media by URL (the whatsapp service fetches it), or a file already in the media store by its hash
     * (what the inbox uploads through realtime's `POST /media/<session>`), never both.
     */
    media: z
      .object({
        type: z.enum(['image', 'video', 'audio', 'document', 'sticker']),
        url: z.url({ protocol: /^https?$/ }).optional(),
        hash: MediaHash.optional(),
        mimeType: z.string().min(3).max(255).optional(),
        fileName: z.string().max(240).optional(),
      })
      .refine((m) => (m.url === undefined) !== (m.hash === undefined), {
        message: 'required: a url or the hash of a stored file, not both',
        path: ['url'],
      })
      .optional(),
    /** A Cloud API template (the only kind of message allowed outside the 24-hour window). */
    template: z
      .object({
        name: z.string().min(1).max(512),
        language: z.string().min(2).max(16),
        components: z.array(z.unknown()).max(20).optional(),
      })
      .optional(),
    idempotencyKey: z.string().min(1).max(200).optional(),
  })
  .refine((b) => b.text !== undefined || b.media !== undefined || b.template !== undefined, {
    message: 'required: the message text (or media, or a template)',
    path: ['text'],
  });

/** The body of a command whose only input is its path (mark read, sync now): empty, or an idempotency key. */
const KeyOnlyBody = z.object({ idempotencyKey: z.string().min(1).max(200).optional() }).optional();

function pathId(value: string | undefined, name: string): string {
  if (!value || value.length > 256)
    throw new ContractViolationError(`the ${name} in the path must have 1 to 256 characters`, [
      { path: name, message: 'invalid' },
    ]);
  return value;
}

/** The idempotency key of a {@link KeyOnlyBody} command (`what` names the request in the error). */
function idempotencyKeyOf(body: Buffer, what: string): string | undefined {
  const parsed = KeyOnlyBody.safeParse(body.length === 0 ? undefined : parseJson(body));
  if (!parsed.success) throw contractViolation(`invalid ${what} request`, parsed.error);
  return parsed.data?.idempotencyKey;
}

/**
 * A command's identity: from the caller's idempotency key when given (a retried request is the same
 * command, deduplicated by the stream and answered with the same id), otherwise new.
 */
function commandIdentity(
  kind: string,
  session: string,
  idempotencyKey: string | undefined,
): { commandId: string; msgId: string } {
  if (idempotencyKey) {
    const msgId = `cmd:${kind}:${session}:${idempotencyKey}`;
    return { commandId: eventIdFor(msgId), msgId };
  }
  const commandId = randomUUID();
  return { commandId, msgId: `cmd:${commandId}` };
}

export function sendMessageCommand(
  sessionParam: string | undefined,
  body: Buffer,
  now: Date,
  caller: CommandCaller = {},
): NormalizedEvent & { commandId: string } {
  const session = pathId(sessionParam, 'session');
  const parsed = SendMessageBody.safeParse(parseJson(body));
  if (!parsed.success) throw contractViolation('invalid send-message request', parsed.error);
  const { commandId, msgId } = commandIdentity('send_message', session, parsed.data.idempotencyKey);
  const event: DomainEvent = createEvent(
    'whatsapp.send_message.v1',
    {
      commandId,
      session,
      to: parsed.data.to,
      ...(parsed.data.text !== undefined ? { text: parsed.data.text } : {}),
      ...(parsed.data.media ? { media: parsed.data.media } : {}),
      ...(parsed.data.template ? { template: parsed.data.template } : {}),
      ...(parsed.data.idempotencyKey ? { idempotencyKey: parsed.data.idempotencyKey } : {}),
      ...(caller.sentBy ? { sentBy: caller.sentBy } : {}),
      requestedAt: now.toISOString(),
    },
    { source: 'urn:puente:gateway:api', id: commandId, time: now.toISOString() },
  );
  return { event, msgId, commandId };
}

/** "Sync now": `whatsapp.sync_session.v1`, with the agent who asked. */
export function syncSessionCommand(
  sessionParam: string | undefined,
  body: Buffer,
  now: Date,
  caller: CommandCaller = {},
): NormalizedEvent & { commandId: string } {
  const session = pathId(sessionParam, 'session');
  const { commandId, msgId } = commandIdentity('sync_session', session, idempotencyKeyOf(body, 'sync'));
  const event: DomainEvent = createEvent(
    'whatsapp.sync_session.v1',
    { commandId, session, ...(caller.sentBy ? { sentBy: caller.sentBy } : {}), requestedAt: now.toISOString() },
    { source: 'urn:puente:gateway:api', id: commandId, time: now.toISOString() },
  );
  return { event, msgId, commandId };
}

export function markReadCommand(
  sessionParam: string | undefined,
  chatParam: string | undefined,
  body: Buffer,
  now: Date,
): NormalizedEvent & { commandId: string } {
  const session = pathId(sessionParam, 'session');
  const chatId = pathId(chatParam, 'chat');
  const { commandId, msgId } = commandIdentity(`mark_read:${chatId}`, session, idempotencyKeyOf(body, 'mark-read'));
  const event: DomainEvent = createEvent(
    'whatsapp.mark_read.v1',
    { commandId, session, chatId, requestedAt: now.toISOString() },
    { source: 'urn:puente:gateway:api', id: commandId, time: now.toISOString() },
  );
  return { event, msgId, commandId };
}
