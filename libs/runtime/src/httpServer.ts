import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { handleMetrics } from './metrics.js';

/** A readiness check: resolves true when the dependency answers. */
export type Check = () => boolean | Promise<boolean>;

export interface HealthReport {
  status: 'ok' | 'unavailable';
  checks: Record<string, 'ok' | 'failing'>;
}

/** Runs every check with a bound; a check that throws or times out is failing. */
export async function readiness(checks: Record<string, Check>, timeoutMs = 2_000): Promise<HealthReport> {
  const entries = await Promise.all(
    Object.entries(checks).map(async ([name, check]) => {
      const timeout = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), timeoutMs).unref());
      const ok = await Promise.race([
        Promise.resolve()
          .then(check)
          .catch(() => false),
        timeout,
      ]);
      return [name, ok ? 'ok' : 'failing'] as const;
    }),
  );
  const report = Object.fromEntries(entries) as HealthReport['checks'];
  return { status: Object.values(report).every((s) => s === 'ok') ? 'ok' : 'unavailable', checks: report };
}

/** Answers `/healthz` (the process is alive) and `/readyz` (every dependency check passes). */
export async function handleHealth(
  req: IncomingMessage,
  res: ServerResponse,
  checks: Record<string, Check>,
  detail?: ReadyDetail,
): Promise<boolean> {
  const path = (req.url ?? '').split('?')[0];
  if (req.method !== 'GET' || (path !== '/healthz' && path !== '/readyz')) return false;
  const body = path === '/healthz' ? { status: 'ok' } : await readiness(checks);
  const bounded = (work: Promise<Record<string, unknown>>) =>
    Promise.race([
      work,
      new Promise<Record<string, unknown>>((resolve) => setTimeout(() => resolve({}), 1_000).unref()),
    ]);
  const extra =
    path === '/readyz' && detail
      ? await bounded(
          Promise.resolve()
            .then(detail)
            .catch(() => ({})),
        )
      : {};
  sendJson(res, body.status === 'ok' ? 200 : 503, { ...extra, ...body });
  return true;
}

/** Information added to the `/readyz` body; it never changes the status. */
export type ReadyDetail = () => Record<string, unknown> | Promise<Record<string, unknown>>;

/** Application routes: answer and resolve true, or resolve false to fall through to 404. */
export type Route = (req: IncomingMessage, res: ServerResponse, requestId: string) => Promise<boolean>;

/** Answers JSON with its length (not chunked), so Node writes head and body in one syscall. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(text)),
    ...headers,
  });
  res.end(text);
}

/**
 * An HTTP server (not listening yet) that answers `/healthz` and `/readyz`, then the routes given,
 * and JSON 404 otherwise. Every answer carries `x-request-id` (the caller's, or a new one); an
 * unexpected failure is logged and answered 500 with the request id, never a crash.
 */
export function createHttpServer(options: {
  checks: Record<string, Check>;
  route?: Route;
  onError?: (error: unknown, requestId: string) => void;
  readyDetail?: ReadyDetail;
}): Server {
  return createServer((req, res) => {
    const given = req.headers['x-request-id'];
    const requestId = typeof given === 'string' && /^[\w.:-]{1,128}$/.test(given) ? given : randomUUID();
    res.setHeader('x-request-id', requestId);
    const handle = async () => {
      if (await handleHealth(req, res, options.checks, options.readyDetail)) return;
      if (handleMetrics(req, res)) return;
      if (options.route && (await options.route(req, res, requestId))) return;
      sendJson(res, 404, {
        error: 'not_found',
        message: `no route for ${req.method} ${(req.url ?? '').split('?')[0]}`,
        requestId,
      });
    };
    handle().catch((error: unknown) => {
      options.onError?.(error, requestId);
      if (!res.headersSent) sendJson(res, 500, { error: 'internal', requestId });
    });
  });
}

/** Starts listening; resolves with the bound port and a bounded `close`. */
export async function listen(
  server: Server,
  port: number,
  host = '0.0.0.0',
): Promise<{ port: number; close: () => Promise<void> }> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : port,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}

/** A server with only the health endpoints, for services that serve nothing else over HTTP. */
export function startHealthServer(options: {
  port: number;
  checks: Record<string, Check>;
}): Promise<{ port: number; close: () => Promise<void> }> {
  return listen(createHttpServer({ checks: options.checks }), options.port);
}
