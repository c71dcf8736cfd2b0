import {
  IncomingMessage,
  ServerResponse,
  type IncomingHttpHeaders,
  type RequestListener,
  type Server,
} from 'node:http';
import { Socket } from 'node:net';
import { Writable } from 'node:stream';

/** A request to inject: what a client would send. */
export interface InjectRequest {
  method?: string;
  url: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** How long the handler may take to finish its answer (default 5 s). */
  timeoutMs?: number;
}

/** The answer, as a client would read it. */
export interface InjectResponse {
  status: number;
  /** Header names in lower case. */
  headers: IncomingHttpHeaders;
  body: string;
  /** The body parsed as JSON. */
  json(): unknown;
}

/** Collects what the response writes to its "socket": the status line, the headers and the body. */
class Capture extends Writable {
  readonly chunks: Buffer[] = [];
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.chunks.push(Buffer.from(chunk));
    callback();
  }
}

function decodeChunked(bytes: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = bytes.indexOf('\r\n', at);
    const size = parseInt(bytes.subarray(at, lineEnd).toString('latin1'), 16);
    if (!size) return Buffer.concat(parts);
    parts.push(bytes.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
}

/** Reads the HTTP/1.1 answer Node wrote: status line, headers, and the body (de-chunked). */
function parseAnswer(raw: Buffer, method: string): InjectResponse {
  const end = raw.indexOf('\r\n\r\n');
  const [statusLine, ...lines] = raw.subarray(0, end).toString('latin1').split('\r\n');
  const headers: IncomingHttpHeaders = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    const previous = headers[name];
    if (name === 'set-cookie') headers['set-cookie'] = [...((previous as string[] | undefined) ?? []), value];
    else headers[name] = previous === undefined ? value : `${String(previous)}, ${value}`;
  }
  const rest = raw.subarray(end + 4);
  const body =
    method === 'HEAD' ? Buffer.alloc(0) : headers['transfer-encoding'] === 'chunked' ? decodeChunked(rest) : rest;
  const text = body.toString('utf8');
  return { status: Number(statusLine!.split(' ')[1]), headers, body: text, json: () => JSON.parse(text) as unknown };
}

/**
 * Answers one request with a server's request listener (or a bare listener), without a socket: the
 * request is a real `IncomingMessage`, the response a real `ServerResponse` whose bytes are read back
 * as a client would. Fastify's `inject` is the model; unit tests of routes and handlers use it.
 */
export function inject(target: Server | RequestListener, request: InjectRequest): Promise<InjectResponse> {
  const method = (request.method ?? 'GET').toUpperCase();
  const body = request.body === undefined ? undefined : Buffer.from(request.body);
  const req = new IncomingMessage(new Socket());
  req.method = method;
  req.url = request.url;
  req.httpVersion = '1.1';
  req.httpVersionMajor = 1;
  req.httpVersionMinor = 1;
  const headers: Record<string, string> = {
    host: 'inject.local',
    ...(body ? { 'content-length': String(body.length) } : {}),
  };
  for (const [name, value] of Object.entries(request.headers ?? {})) headers[name.toLowerCase()] = value;
  req.headers = headers;
  req.rawHeaders = Object.entries(headers).flat();
  if (body) req.push(body);
  req.push(null);

  const res = new ServerResponse(req);
  const capture = new Capture();
  res.assignSocket(capture as unknown as Socket);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(new Error(`inject: ${method} ${request.url} was not answered within ${request.timeoutMs ?? 5_000} ms`)),
      request.timeoutMs ?? 5_000,
    );
    res.once('finish', () => {
      clearTimeout(timer);
      // The last write reaches the capture in the same tick as `finish`; read it on the next one.
      setImmediate(() => resolve(parseAnswer(Buffer.concat(capture.chunks), method)));
    });
    const listener: RequestListener = typeof target === 'function' ? target : (q, s) => target.emit('request', q, s);
    try {
      const returned = listener(req, res) as unknown;
      if (returned instanceof Promise)
        returned.catch((error: unknown) => {
          clearTimeout(timer);
          reject(error as Error);
        });
    } catch (error) {
      clearTimeout(timer);
      reject(error as Error);
    }
  });
}
