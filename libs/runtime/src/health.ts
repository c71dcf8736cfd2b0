import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

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
      const ok = await Promise.race([Promise.resolve().then(check).catch(() => false), timeout]);
      return [name, ok ? 'ok' : 'failing'] as const;
    }),
  );
  const report = Object.fromEntries(entries) as HealthReport['checks'];
  return { status: Object.values(report).every((s) => s === 'ok') ? 'ok' : 'unavailable', checks: report };
}

/** Answers `/healthz` (the process is alive) and `/readyz` (every dependency check passes). */
export async function handleHealth(req: IncomingMessage, res: ServerResponse, checks: Record<string, Check>): Promise<boolean> {
  const path = (req.url ?? '').split('?')[0];
  if (req.method !== 'GET' || (path !== '/healthz' && path !== '/readyz')) return false;
  const body = path === '/healthz' ? { status: 'ok' } : await readiness(checks);
  res.writeHead(body.status === 'ok' ? 200 : 503, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
  return true;
}

/** A small HTTP server with only the health endpoints, for services that serve nothing else. */
export async function startHealthServer(options: { port: number; host?: string; checks: Record<string, Check> }): Promise<{ server: Server; port: number; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    void handleHealth(req, res, options.checks).then((handled) => {
      if (!handled) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'not_found' }));
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '0.0.0.0', () => resolve());
  });
  const address = server.address();
  return {
    server,
    port: typeof address === 'object' && address ? address.port : options.port,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
