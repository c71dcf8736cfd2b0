import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request a fake gateway received, for assertions on exact requests. */
export interface GatewayRequest {
  method: string;
  path: string;
  /** The key header the gateway reads (`apikey` for Evolution, `X-Api-Key` for WAHA). */
  apiKey?: string | undefined;
  body: unknown;
}

/** A send a fake gateway accepted: the message left, whatever its answer says. */
export interface GatewaySend {
  session: string;
  path: string;
  body: Record<string, unknown>;
  messageId: string;
}

/**
 * The HTTP plumbing of the fake Baileys gateways (Evolution API, WAHA): a loopback server, the requests
 * it received, and the sends it accepted. A subclass answers each request in its gateway's shapes.
 */
export abstract class FakeGatewayServer {
  readonly requests: GatewayRequest[] = [];
  readonly sends: GatewaySend[] = [];
  /** The files sent inline (base64), by the message id the send answered. */
  readonly files = new Map<string, ReceivedFile>();
  /** While set, a send is recorded (the message leaves) and answered 201 with a body that is not JSON (as a proxy's error page would be). */
  garbleSendAnswers = false;
  url = '';
  private readonly server = createServer((req, res) => void this.receive(req, res));
  private nextId = 1;

  constructor(protected readonly keyHeader: string) {}

  async start(): Promise<this> {
    this.url = await listenOnLoopback(this.server);
    return this;
  }

  stop(): Promise<void> {
    return closeServer(this.server);
  }

  /** Answers one request; `body` is its parsed JSON (undefined when absent or unreadable). */
  protected abstract handle(req: IncomingMessage, path: string, body: unknown): { status: number; body: unknown };

  /** Answers a binary download (a media file) itself and says so; false leaves the request to `handle` (JSON). */
  protected serveFile(_req: IncomingMessage, _res: ServerResponse, _path: string): boolean {
    return false;
  }

  /** Records a send and makes its message id (Baileys-like: upper-case hex). */
  protected accept(session: string, path: string, body: Record<string, unknown>): string {
    const messageId = `3EB0${(this.nextId++).toString(16).toUpperCase().padStart(16, '0')}`;
    this.sends.push({ session, path, body, messageId });
    return messageId;
  }

  private async receive(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://fake').pathname;
    const body = await readJson(req);
    const key = req.headers[this.keyHeader.toLowerCase()];
    this.requests.push({ method: req.method ?? 'GET', path, apiKey: Array.isArray(key) ? key[0] : key, body });
    if (this.serveFile(req, res, path)) return;
    const sendsBefore = this.sends.length;
    const answer = this.handle(req, path, body);
    const garble = this.garbleSendAnswers && this.sends.length > sendsBefore;
    res.writeHead(answer.status, { 'content-type': garble ? 'text/html' : 'application/json' });
    res.end(garble ? '<html><body>502 Bad Gateway</body></html>' : JSON.stringify(answer.body));
  }
}

/** Listens on a free loopback port; resolves with the server's base URL. */
export async function listenOnLoopback(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Closes a server, its open connections included. */
export async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** A request's JSON body; undefined when absent or unreadable. */
export async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  if (chunks.length === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    return undefined;
  }
}

/** A JSON object's field when it is a non-empty string. */
export function text(body: unknown, field: string): string | undefined {
  const value = (body as Record<string, unknown> | undefined)?.[field];
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** A file a fake provider received inline with a send, kept so tests compare its bytes. */
export interface ReceivedFile {
  bytes: Buffer;
  mimetype: string;
  fileName?: string | undefined;
}

/**
 * Plain base64 as the gateways accept it (class-validator's `isBase64`: the standard alphabet, padded
 * to a multiple of 4, no `data:` prefix), decoded; undefined for anything else.
 */
export function strictBase64(value: unknown): Buffer | undefined {
  if (typeof value !== 'string' || value === '' || value.length % 4 !== 0) return undefined;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(value)) return undefined;
  return Buffer.from(value, 'base64');
}
