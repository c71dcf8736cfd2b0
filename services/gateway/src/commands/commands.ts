import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { createEvent, type DomainEvent } from '@puente/contracts';
import { eventIdFor } from '@puente/bus';
import { UnauthorizedError, ContractViolationError } from '../http/errors.js';
import { bearerToken, matchesAny } from '../http/auth.js';
import { contractViolation, parseJson, type NormalizedEvent } from '../webhooks/delivery.js';

/** The command API takes `Authorization: Bearer <one of API_TOKENS>`. */
export function verifyApiToken(authorization: string | string[] | undefined, tokens: readonly string[]): void {
  const token = bearerToken(authorization);
  if (!token || !matchesAny(token, tokens)) throw new UnauthorizedError('missing or invalid API token');
}

const SendMessageBody = z
  .object({
    to: z.string().trim().min(1, 'required: a JID or phone number').max(128),
    /** The text, or a media item's caption. */
    text: z.string().min(1, 'must not be empty').max(4096, 'at most 4096 characters').optional(),
    /** Media by URL (the provider downloads it). */
    media: z
      .object({
        type: z.enum(['image', 'video', 'audio', 'document', 'sticker']),
        url: z.url({ protocol: /^https?$/ }),
        fileName: z.string().max(240).optional(),
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

const MarkReadBody = z.object({ idempotencyKey: z.string().min(1).max(200).optional() }).optional();

function pathId(value: string | undefined, name: string): string {
  if (!value || value.length > 256)
    throw new ContractViolationError(`the ${name} in the path must have 1 to 256 characters`, [
      { path: name, message: 'invalid' },
    ]);
  return value;
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
      requestedAt: now.toISOString(),
    },
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
  const parsed = MarkReadBody.safeParse(body.length === 0 ? undefined : parseJson(body));
  if (!parsed.success) throw contractViolation('invalid mark-read request', parsed.error);
  const { commandId, msgId } = commandIdentity(`mark_read:${chatId}`, session, parsed.data?.idempotencyKey);
  const event: DomainEvent = createEvent(
    'whatsapp.mark_read.v1',
    { commandId, session, chatId, requestedAt: now.toISOString() },
    { source: 'urn:puente:gateway:api', id: commandId, time: now.toISOString() },
  );
  return { event, msgId, commandId };
}
