import type { IncomingMessage } from 'node:http';
import { PayloadTooLargeError } from './errors.js';

/**
 * Reads the raw body, refusing it as soon as it passes `limit` bytes (a declared Content-Length over
 * the limit is refused before reading). Signatures are checked against exactly these bytes.
 */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    req.resume();
    throw new PayloadTooLargeError(limit);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) {
      req.resume();
      throw new PayloadTooLargeError(limit);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

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
