import type { IncomingMessage } from 'node:http';
import { readBody, type Logger, type RouteSpec } from '@puente/runtime';
import { refused } from '../refused.js';

/** What forwarding needs: where the gateway's command API is, how long to wait, and the log. */
export interface CommandForwardingOptions {
  /** The gateway's base URL (`REALTIME_GATEWAY_URL`). */
  gatewayUrl: string;
  /** How long to wait for the gateway's answer before answering 504 (`REALTIME_GATEWAY_TIMEOUT_MS`). */
  timeoutMs: number;
  logger: Logger;
}

/** A command body is small (text, a media reference, an idempotency key): the gateway's own cap. */
export const COMMAND_MAX_BYTES = 64 * 1024;

/** The gateway's answer headers passed back besides the body's type. */
const ANSWER_HEADERS = ['retry-after'] as const;

/**
 * The command API path a `/commands/...` request stands for, or undefined. Built with the URL parser and
 * checked afterwards, so dot segments (`/commands/../webhooks/...`, encoded or not) cannot reach
 * anything but the gateway's WhatsApp command API.
 */
function commandPath(rawUrl: string, gateway: URL): URL | undefined {
  const path = rawUrl.replace(/^\/commands\//, '/api/');
  if (/(^|\/)(\.|%2e){1,2}(\/|$|\?)/i.test(path)) return undefined;
  const target = new URL(path, gateway);
  return target.origin === gateway.origin && target.pathname.startsWith('/api/whatsapp/') ? target : undefined;
}

/**
 * `POST /commands/<path>` forwarded to the gateway's `POST /api/<path>` with the caller's own
 * `Authorization` (an inbox page talks only to realtime's origin; the gateway checks the token's send
 * rights). The answer, status and problem body included, is passed through; a gateway that cannot be
 * reached is 502, one that does not answer in time 504, each with a problem body.
 */
export function commandForwardingRoutes(options: CommandForwardingOptions): RouteSpec[] {
  const gateway = new URL(options.gatewayUrl);
  return [
    {
      method: 'POST',
      path: '/commands/*path',
      handler: async (req: IncomingMessage, res, { requestId }) => {
        const target = commandPath(req.url ?? '/', gateway);
        if (!target) throw refused('not_found', 'no such command: /commands/whatsapp/<session>/...');
        const body = await readBody(req, COMMAND_MAX_BYTES);
        const headers: Record<string, string> = { 'x-request-id': requestId };
        if (req.headers.authorization) headers.authorization = req.headers.authorization;
        if (req.headers['content-type']) headers['content-type'] = req.headers['content-type'];
        let answer: Response;
        try {
          answer = await fetch(target, {
            method: 'POST',
            headers,
            body: new Uint8Array(body),
            redirect: 'manual',
            signal: AbortSignal.timeout(options.timeoutMs),
          });
        } catch (error) {
          const timedOut = (error as Error).name === 'TimeoutError';
          options.logger.warn(
            { requestId, err: (error as Error).message, timedOut },
            'the gateway did not answer a command',
          );
          throw timedOut
            ? refused('gateway_timeout', `the gateway did not answer within ${options.timeoutMs} ms`)
            : refused('bad_gateway', 'the gateway cannot be reached; nothing was sent');
        }
        const bytes = Buffer.from(await answer.arrayBuffer());
        const out: Record<string, string | number> = { 'content-length': bytes.length, 'cache-control': 'no-store' };
        const type = answer.headers.get('content-type');
        if (type) out['content-type'] = type;
        for (const name of ANSWER_HEADERS) {
          const value = answer.headers.get(name);
          if (value) out[name] = value;
        }
        res.writeHead(answer.status, out);
        res.end(bytes);
      },
    },
  ];
}
