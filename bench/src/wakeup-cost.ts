import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Agent, createServer, request } from 'node:http';
import type { AddressInfo, Server } from 'node:net';
import { fileURLToPath } from 'node:url';

/**
 * `node bench/dist/wakeup-cost.js [rate] [seconds]`: the CPU a bare `node:http` server (it answers `ok`)
 * uses per request when posted to at a fixed rate over keep-alive, from its `/proc/<pid>/stat`. Not a
 * benchmark of Puente: a measure of what waking a process costs on this machine, which the e2e
 * benchmark's tail depends on (docs/benchmarks.md, e2e). Linux only.
 */
if (process.argv[2] === 'serve') {
  createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.setHeader('content-length', 2);
      res.end('ok');
    });
  }).listen(0, '127.0.0.1', function (this: Server) {
    process.send!((this.address() as AddressInfo).port);
  });
} else {
  const rate = Number(process.argv[2] ?? 200);
  const seconds = Number(process.argv[3] ?? 8);
  const server = fork(fileURLToPath(import.meta.url), ['serve']);
  const port = await new Promise<number>((resolve) => server.once('message', (m) => resolve(m as number)));
  const ticks = () => {
    const stat = readFileSync(`/proc/${server.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  };
  const agent = new Agent({ keepAlive: true });
  const before = ticks();
  const start = performance.now();
  let sent = 0;
  while (performance.now() - start < seconds * 1000) {
    const wait = start + (sent * 1000) / rate - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    sent++;
    request({ agent, host: '127.0.0.1', port, method: 'POST', path: '/' }, (res) => res.resume()).end('x');
  }
  await new Promise((resolve) => setTimeout(resolve, 200));
  // Clock ticks are 10 ms (USER_HZ 100).
  const used = (ticks() - before) * 10;
  process.stdout.write(
    `${rate} requests/s for ${seconds} s: the server used ${used} ms of CPU, ${Math.round((used / sent) * 1000)} µs per request\n`,
  );
  agent.destroy();
  server.kill();
}
