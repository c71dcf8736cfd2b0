import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** A server process this tool started and is responsible for stopping. */
export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** Stops the process: the polite signal first, SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/** Thrown when a dependency cannot be installed or started; `message` is one line saying what to do. */
export class StackError extends Error {
  readonly code = 'STACK_ERROR';
}

export interface SpawnOptions {
  name: string;
  command: string;
  args: string[];
  logFile: string;
  env?: NodeJS.ProcessEnv;
  uid?: number;
  gid?: number;
  cwd?: string;
  stopSignal?: NodeJS.Signals;
  /** Resolves true once the server answers. */
  ready: () => Promise<boolean>;
  readyTimeoutMs?: number;
}

const GUARD = `
"$@" &
child=$!
trap 'kill -INT $child 2>/dev/null' INT
trap 'kill -TERM $child 2>/dev/null' TERM
while kill -0 $child 2>/dev/null; do
  if [ ! -d /proc/$PUENTE_PARENT_PID ]; then kill -$PUENTE_STOP_SIGNAL $child 2>/dev/null; fi
  sleep 0.5 & wait $!
done
wait $child
`;

/** Running guards and the signal that stops each one's server. */
const live = new Map<ChildProcess, NodeJS.Signals>();
let exitHookInstalled = false;

/** Last resort: a process that exits without stopping its servers still takes them along. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    // The guard's own signal, which it forwards to the server and then waits for it: a SIGKILL would
    // end the guard alone and leave the server running.
    for (const [child, signal] of live) child.kill(signal);
  });
}

export async function spawnServer(options: SpawnOptions): Promise<ManagedProcess> {
  installExitHook();
  const log = createWriteStream(options.logFile, { flags: 'a' });
  await new Promise<void>((resolve, reject) => {
    log.once('open', () => resolve());
    log.once('error', reject);
  });
  // The server runs under a small guard that stops it when this process is gone, however it ended
  // (SIGKILL included), so no server outlives the tool that started it. Signals are forwarded.
  const child = spawn('/bin/sh', ['-c', GUARD, 'puente-guard', options.command, ...options.args], {
    env: {
      ...(options.env ?? process.env),
      PUENTE_PARENT_PID: String(process.pid),
      PUENTE_STOP_SIGNAL: (options.stopSignal ?? 'SIGTERM').replace('SIG', ''),
    },
    cwd: options.cwd,
    uid: options.uid,
    gid: options.gid,
    stdio: ['ignore', log, log],
  });
  live.set(child, options.stopSignal ?? 'SIGTERM');
  let exited = false;
  let spawnError: Error | undefined;
  const exitPromise = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      live.delete(child);
      resolve();
    });
    child.once('error', (error) => {
      spawnError = error;
      exited = true;
      live.delete(child);
      resolve();
    });
  });

  const stop = async (graceMs = 10_000): Promise<void> => {
    if (!exited) {
      child.kill(options.stopSignal ?? 'SIGTERM');
      const timer = sleep(graceMs).then(() => 'timeout' as const);
      if ((await Promise.race([exitPromise.then(() => 'exited' as const), timer])) === 'timeout') {
        child.kill('SIGKILL');
        await exitPromise;
      }
    }
    log.end();
  };

  const deadline = Date.now() + (options.readyTimeoutMs ?? 60_000);
  for (;;) {
    if (exited) {
      log.end();
      const why = spawnError ? spawnError.message : `exited with code ${child.exitCode ?? child.signalCode}`;
      throw new StackError(`${options.name} did not start (${why}); see ${options.logFile}:\n${tail(options.logFile)}`);
    }
    if (await options.ready().catch(() => false)) break;
    if (Date.now() > deadline) {
      await stop(2_000);
      throw new StackError(
        `${options.name} was not ready within ${options.readyTimeoutMs ?? 60_000} ms; see ${options.logFile}:\n${tail(options.logFile)}`,
      );
    }
    await sleep(100);
  }
  if (child.pid === undefined) throw new StackError(`${options.name} has no pid`);
  return { name: options.name, pid: child.pid, logFile: options.logFile, stop };
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-15).join('\n');
  } catch {
    return '';
  }
}

/** Runs a command to completion; rejects with its output when it fails. */
export function run(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; uid?: number; gid?: number } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code === 0) resolve(output);
      else
        reject(
          new Error(
            `${command} ${args.join(' ')} exited with ${code}: ${output.trim().split('\n').slice(-10).join('\n')}`,
          ),
        );
    });
  });
}

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

/** True when something accepts TCP connections on 127.0.0.1:port. */
export function portOpen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** The standard port when it is free, otherwise any free one. */
export async function preferredPort(port: number): Promise<number> {
  return (await portOpen(port)) ? freePort() : port;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
