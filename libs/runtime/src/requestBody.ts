import type { IncomingMessage } from 'node:http';
import { HttpError } from './problems.js';

/** A body over the limit, declared or read: 413. */
export class PayloadTooLargeError extends HttpError {
  constructor(limit: number) {
    super('payload_too_large', `the body is larger than ${limit} bytes`);
  }
}

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
