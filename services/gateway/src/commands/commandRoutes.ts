import { Headers, subjectOf, type DomainEvent } from '@puente/contracts';
import type { Bus } from '@puente/bus';
import { sendJson, type RouteHandler, type RouteSpec, type TokenRevocations } from '@puente/runtime';
import { readBody } from '../http/body.js';
import { acked } from '../webhooks/publish.js';
import {
  authorizeCommand,
  markReadCommand,
  sendMessageCommand,
  syncSessionCommand,
  type CommandCaller,
} from './commands.js';

/** What the command API needs from the gateway. */
export interface CommandRoutesOptions {
  bus: Bus;
  /** The configured values of a secret (`API_TOKENS` and `REALTIME_JWT_SECRET` here). */
  secret: (variable: string) => readonly string[];
  now: () => Date;
  /** Revoked agent tokens, refused on every command. */
  revocations: TokenRevocations;
}

/** A command body is small: the text of a message, a media URL or a template, and an idempotency key. */
const COMMAND_MAX_BYTES = 64 * 1024;

/**
 * The command API's routes: each checks the bearer token, turns the body into a command event,
 * publishes it to COMMANDS, waits for the ack and answers 202 with the command id.
 */
export function commandRoutes(options: CommandRoutesOptions): RouteSpec[] {
  const command =
    (
      make: (
        params: Record<string, string>,
        body: Buffer,
        at: Date,
        caller: CommandCaller,
      ) => { event: DomainEvent; msgId: string; commandId: string },
    ): RouteHandler =>
    async (req, res, { requestId, params }) => {
      const caller = await authorizeCommand(req.headers.authorization, params.session, {
        apiTokens: options.secret('API_TOKENS'),
        agentSecrets: options.secret('REALTIME_JWT_SECRET'),
        revocations: options.revocations,
      });
      const body = await readBody(req, COMMAND_MAX_BYTES);
      const { event, msgId, commandId } = make(params, body, options.now(), caller);
      const ack = await acked(
        options.bus.publish(subjectOf(event), event, { msgId, headers: { [Headers.EventType]: event.type } }),
      );
      sendJson(res, 202, { commandId, duplicate: ack.duplicate, requestId });
    };
  return [
    {
      method: 'POST',
      path: '/api/whatsapp/:session/messages',
      handler: command((p, body, at, caller) => sendMessageCommand(p.session!, body, at, caller)),
    },
    {
      method: 'POST',
      path: '/api/whatsapp/:session/chats/:chat/read',
      handler: command((p, body, at) => markReadCommand(p.session!, p.chat!, body, at)),
    },
    {
      method: 'POST',
      path: '/api/whatsapp/:session/sync',
      handler: command((p, body, at, caller) => syncSessionCommand(p.session!, body, at, caller)),
    },
  ];
}
