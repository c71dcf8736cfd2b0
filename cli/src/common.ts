import { join, resolve } from 'node:path';
import { Bus } from '@puente/bus';
import { UsageError } from './sendSample.js';

export function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

export function required(args: string[], name: string, what: string): string {
  const value = flag(args, name);
  if (!value || value.startsWith('--')) throw new UsageError(`${name} is required (${what})`);
  return value;
}

/**
 * The URL of a server that the local stack (`npm start`) runs, if any. The stack is a dev tool, absent from
 * the image: there the variables name every server.
 */
async function localServerUrl(env: NodeJS.ProcessEnv, name: 'nats' | 'mongo'): Promise<string | undefined> {
  const stack = await import('@puente/stack').catch(() => undefined);
  return stack?.runningServerUrl(join(resolve(env.PUENTE_ROOT ?? process.cwd()), '.data'), name);
}

/** NATS: `NATS_URL`, else the local stack that `npm start` runs. */
export async function natsUrl(env: NodeJS.ProcessEnv): Promise<string> {
  const url = env.NATS_URL ?? (await localServerUrl(env, 'nats'));
  if (!url) throw new Error('no NATS to talk to: set NATS_URL, or start the hub with npm start');
  return url;
}

/**
 * A bus connection for the CLI, with the same NATS settings as the services: `NATS_URL` (else the local
 * stack), `NATS_TOKEN` or `NATS_CREDS`, and `NATS_REPLICAS` for what it creates.
 */
export async function connectBus(env: NodeJS.ProcessEnv): Promise<Bus> {
  const replicas = Number(env.NATS_REPLICAS ?? 1);
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > 5)
    throw new UsageError('NATS_REPLICAS must be an integer from 1 to 5');
  return Bus.connect({
    servers: await natsUrl(env),
    name: 'puente-cli',
    replicas,
    ...(env.NATS_TOKEN ? { token: env.NATS_TOKEN } : {}),
    ...(env.NATS_CREDS ? { credsFile: env.NATS_CREDS } : {}),
  });
}

/** A one-line progress bar: `[#####.....] 50% label`. */
export function progressBar(fraction: number, label: string, width = 24): string {
  const done = Math.max(0, Math.min(width, Math.round(fraction * width)));
  return `[${'#'.repeat(done)}${'.'.repeat(width - done)}] ${String(Math.round(fraction * 100)).padStart(3)}% ${label}`;
}

/** MongoDB: `MONGO_URL`, else the local stack that `npm start` runs. */
export async function mongoUrl(env: NodeJS.ProcessEnv): Promise<string> {
  const url = env.MONGO_URL ?? (await localServerUrl(env, 'mongo'));
  if (!url) throw new Error('no MongoDB to read the read model from: set MONGO_URL, or start the hub with npm start');
  return url;
}

/**
 * Progress of long CLI work: redrawn in place on a terminal, otherwise one line a second at most
 * (and always the last one). `done()` ends the line on a terminal.
 */
export function progressPrinter(
  out: (line: string) => void,
  isTty: boolean,
): { show(fraction: number, label: string, final: boolean): void; done(): void } {
  let last = 0;
  return {
    show(fraction, label, final) {
      if (isTty) process.stdout.write(`\r${progressBar(fraction, label)}\u001b[K`);
      else if (final || Date.now() - last > 1_000) {
        last = Date.now();
        out(progressBar(fraction, label));
      }
    },
    done() {
      if (isTty) process.stdout.write('\n');
    },
  };
}
