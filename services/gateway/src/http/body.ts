import type { IncomingMessage } from 'node:http';

// The capped body reader is shared with realtime's command forwarding (libs/runtime).
export { readBody } from '@puente/runtime';

/** Header names that never leave the gateway (credentials), not even into WEBHOOKS_RAW. */
const SECRET_HEADERS = new Set(['authorization', 'apikey', 'x-api-key', 'cookie', 'proxy-authorization']);

/** Non-secret headers of a request, lower-cased; signatures are kept (they prove nothing without the secret). */
export function safeHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || SECRET_HEADERS.has(name)) continue;
    out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}
