/**
 * The gateway for the benchmark, in its own process: the real `build()` server plus one no-op route
 * (`POST /bench/noop` reads the body and answers 200 JSON the way the gateway does, with `sendJson`), so both are measured on the same server.
 * Prints `{"port": N}` once listening.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pino } from 'pino';
import { Bus } from '@puente/bus';
import { resolveSecrets, sendJson } from '@puente/runtime';
import { build, GatewaySecrets } from '@puente/gateway';

const bus = await Bus.connect({ servers: process.env.NATS_URL!, name: 'bench-gateway' });
await bus.ensureStreams();
const server = build({
  bus,
  logger: pino({ level: 'warn' }),
  checks: { nats: () => bus.connected },
  secrets: resolveSecrets(GatewaySecrets, process.env),
  maxBodyBytes: 4 * 1024 * 1024,
});
const gateway = server.listeners('request')[0] as (req: IncomingMessage, res: ServerResponse) => void;
server.removeAllListeners('request');
server.on('request', (req: IncomingMessage, res: ServerResponse) => {
  if (req.url !== '/bench/noop') return gateway(req, res);
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    sendJson(res, 200, { accepted: [], bytes: Buffer.concat(chunks).length });
  });
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`${JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 })}\n`);
});
if (process.env.BENCH_MEMORY_LOG) {
  setInterval(() => {
    const m = process.memoryUsage();
    process.stderr.write(
      `memory rss=${Math.round(m.rss / 1e6)} heapUsed=${Math.round(m.heapUsed / 1e6)} heapTotal=${Math.round(m.heapTotal / 1e6)} external=${Math.round(m.external / 1e6)} arrayBuffers=${Math.round(m.arrayBuffers / 1e6)}\n`,
    );
  }, 2_000).unref();
}
process.once('SIGTERM', () => {
  server.close();
  void bus.close().then(() => process.exit(0));
});
