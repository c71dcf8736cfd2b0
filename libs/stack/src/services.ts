import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export { SERVICES, type ServiceName } from '@puente/runtime';

export interface RunningServiceProcess {
  name: string;
  port: number;
  child: ChildProcess;
  exited: Promise<number | null>;
}

/** Starts a service from its compiled `main.js`, prefixing each of its log lines with its name. */
export function spawnService(
  root: string,
  name: string,
  port: number,
  env: NodeJS.ProcessEnv,
  out: NodeJS.WritableStream,
): RunningServiceProcess {
  // NODE_FLAGS: V8 flags that NODE_OPTIONS does not allow, passed on the command line as the image's entrypoint does.
  const flags = (env.NODE_FLAGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...flags, join(root, 'services', name, 'dist', 'main.js')], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream! }).on('line', (line) => out.write(`${name.padEnd(13)} | ${line}\n`));
  }
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { name, port, child, exited };
}

/** Polls `/readyz` until it answers 200, the process exits, or the time is up. */
export async function waitReady(service: RunningServiceProcess, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void service.exited.then(() => (exited = true));
  for (;;) {
    if (exited)
      throw new Error(
        `${service.name} exited with code ${service.child.exitCode} before it was ready (see its log lines above)`,
      );
    try {
      const response = await fetch(`http://127.0.0.1:${service.port}/readyz`);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${service.name} was not ready within ${timeoutMs} ms`);
    await sleep(200);
  }
}

/** SIGTERM, then SIGKILL after the grace period. */
export async function stopService(service: RunningServiceProcess, graceMs = 15_000): Promise<void> {
  if (service.child.exitCode !== null || service.child.signalCode !== null) return;
  service.child.kill('SIGTERM');
  const timedOut = await Promise.race([service.exited.then(() => false), sleep(graceMs).then(() => true)]);
  if (timedOut) {
    service.child.kill('SIGKILL');
    await service.exited;
  }
}
