import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { CliConfigFile } from '@puente/contracts';
import { flag } from './common.js';
import { registerAll, type Registration } from './register.js';
import { UsageError } from './sendSample.js';

export type Via = 'ngrok' | 'cloudflared';

/** The CLI's settings file: `PUENTE_CONFIG`, else `~/.config/puente/config.json`. */
export function cliConfigPath(env: NodeJS.ProcessEnv): string {
  return env.PUENTE_CONFIG ?? join(env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'puente', 'config.json');
}

export function readCliConfig(env: NodeJS.ProcessEnv): CliConfigFile {
  const path = cliConfigPath(env);
  if (!existsSync(path)) return {};
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new Error(`${path} is not JSON: ${(error as Error).message}`);
  }
  const parsed = CliConfigFile.safeParse(json);
  if (!parsed.success)
    throw new Error(
      `${path}: ${parsed.error.issues[0]!.path.join('.') || '(file)'}: ${parsed.error.issues[0]!.message}`,
    );
  return parsed.data;
}

/** Where `puente tunnel` keeps the running agent's state and output (the hub's `.data/`). */
function stateDir(env: NodeJS.ProcessEnv): string {
  return join(resolve(env.PUENTE_ROOT ?? process.cwd()), '.data');
}

interface TunnelState {
  pid: number;
  via: Via;
  url: string;
  port: number;
  startedAt: string;
  registered: string[];
}

/** An executable on PATH (or the path in `<NAME>_BIN`), or undefined. */
export function which(name: string, env: NodeJS.ProcessEnv): string | undefined {
  const override = env[`${name.toUpperCase()}_BIN`];
  if (override) return existsSync(override) ? override : undefined;
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

const INSTALL: Record<Via, string> = {
  ngrok: 'ngrok is not installed: get it from https://ngrok.com/download (or use --via cloudflared)',
  cloudflared:
    'cloudflared is not installed: get it from https://developers.cloudflare.com/cloudflare-one/connections/connect-networks/downloads/ (or use --via ngrok)',
};

/** Whether ngrok has an auth token from somewhere it reads: our settings, NGROK_AUTHTOKEN, or its own config file. */
function ngrokHasToken(env: NodeJS.ProcessEnv, config: CliConfigFile): boolean {
  if (config.tunnel?.ngrok?.authtoken || env.NGROK_AUTHTOKEN) return true;
  const home = homedir();
  const files = [
    env.NGROK_CONFIG,
    join(home, '.config', 'ngrok', 'ngrok.yml'),
    join(home, 'Library', 'Application Support', 'ngrok', 'ngrok.yml'),
    join(home, '.ngrok2', 'ngrok.yml'),
  ];
  return files.some((file) => file && existsSync(file) && /^\s*authtoken:\s*\S+/m.test(readFileSync(file, 'utf8')));
}

export interface StartedAgent {
  url: string;
  child: ChildProcess;
  /** The last error line the agent printed. */
  lastError(): string | undefined;
}

/**
 * Starts a tunnel agent for the gateway's port and resolves with the public URL it reports: ngrok's
 * JSON log line `started tunnel` (`--log stdout --log-format json`), or the URL in cloudflared's
 * "Your quick Tunnel has been created" box (or, for a named tunnel with a token, the configured
 * hostname once a connection is registered). Rejects with the agent's own error when it exits first.
 */
export function startAgent(
  via: Via,
  binary: string,
  port: number,
  config: CliConfigFile,
  logFile: string,
  timeoutMs = 45_000,
): Promise<StartedAgent> {
  const ngrok = config.tunnel?.ngrok;
  const cf = config.tunnel?.cloudflared;
  let args: string[];
  if (via === 'ngrok') {
    args = ['http', String(port), '--log', 'stdout', '--log-format', 'json'];
    if (ngrok?.authtoken) args.push('--authtoken', ngrok.authtoken);
    if (ngrok?.domain)
      args.push('--url', ngrok.domain.startsWith('https://') ? ngrok.domain : `https://${ngrok.domain}`);
  } else if (cf?.token) {
    if (!cf.hostname)
      throw new Error(
        'a cloudflared tunnel token needs its public hostname: set tunnel.cloudflared.hostname in the settings file',
      );
    args = ['tunnel', '--no-autoupdate', 'run', '--token', cf.token];
  } else {
    args = ['tunnel', '--no-autoupdate', '--url', `http://127.0.0.1:${port}`];
  }
  mkdirSync(dirname(logFile), { recursive: true });
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
  let lastError: string | undefined;
  return new Promise((resolvePromise, reject) => {
    let settled = false;
    const done = (error: Error | undefined, url?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error) {
        child.kill('SIGTERM');
        reject(error);
      } else resolvePromise({ url: url!.replace(/\/$/, ''), child, lastError: () => lastError });
    };
    const timer = setTimeout(
      () =>
        done(
          new Error(`${via} reported no public URL within ${timeoutMs / 1000} s${lastError ? `: ${lastError}` : ''}`),
        ),
      timeoutMs,
    );
    let boxOpen = false;
    const onLine = (line: string) => {
      appendFileSync(logFile, `${line.replace(/(--token|authtoken["=: ]+)\S+/gi, '$1 [hidden]')}\n`);
      if (via === 'ngrok') {
        let entry: { lvl?: string; msg?: string; obj?: string; url?: string; err?: string };
        try {
          entry = JSON.parse(line) as typeof entry;
        } catch {
          return;
        }
        if (entry.lvl === 'crit' || entry.lvl === 'eror' || entry.lvl === 'error')
          lastError = String(entry.err ?? entry.msg ?? line).replace(/\s+/g, ' ');
        if (entry.msg === 'started tunnel' && typeof entry.url === 'string' && entry.url.startsWith('http'))
          done(undefined, entry.url);
        return;
      }
      if (/\bERR\b/.test(line)) lastError = line.replace(/^\S+\s+ERR\s+/, '');
      if (cf?.token) {
        if (/Registered tunnel connection/.test(line))
          done(undefined, `https://${cf.hostname!.replace(/^https?:\/\//, '')}`);
        return;
      }
      if (/\bERR\b/.test(line)) return;
      if (/quick Tunnel has been created/i.test(line)) boxOpen = true;
      // The URL is the one in the box (a hyphenated name under trycloudflare.com), not others in the log.
      const url =
        /\|\s+(https?:\/\/[^\s|]+)\s+\|/.exec(line)?.[1] ??
        /(https:\/\/[a-z0-9]+(?:-[a-z0-9]+)+\.trycloudflare\.com)\b/.exec(line)?.[1];
      if (url && (boxOpen || url.endsWith('.trycloudflare.com'))) done(undefined, url);
    };
    createInterface({ input: child.stdout! }).on('line', onLine);
    createInterface({ input: child.stderr! }).on('line', onLine);
    child.once('error', (error) => done(new Error(`${via} could not start: ${error.message}`)));
    child.once('exit', (code) => done(new Error(agentFailure(via, code, lastError))));
  });
}

/** One line that says what went wrong with the agent and what to do. */
function agentFailure(via: Via, code: number | null, lastError: string | undefined): string {
  if (via === 'ngrok' && lastError && /ERR_NGROK_(4018|105|107)|authtoken|authentication failed/i.test(lastError)) {
    return `ngrok refused its auth token: set one with \`npx puente tunnel config --ngrok-authtoken <token>\` (https://dashboard.ngrok.com/get-started/your-authtoken); ngrok said: ${lastError}`;
  }
  return `${via} exited (code ${code ?? 'signal'}) before reporting a URL${lastError ? `: ${lastError}` : ''}`;
}

/** The webhook URL of each provider behind a public gateway URL. */
export function providerUrls(base: string): [string, string][] {
  return [
    ['Kissflow', `${base}/webhooks/kissflow/<dataset id>   (Authorization: Bearer <KISSFLOW_WEBHOOK_SECRET>)`],
    ['Inbox Hub', `${base}/webhooks/inboxhub`],
    ['Evolution API', `${base}/webhooks/evolution`],
    ['WAHA', `${base}/webhooks/waha`],
    ['WhatsApp Cloud API', `${base}/webhooks/whatsapp-cloud   (verify token: the value of WHATSAPP_VERIFY_TOKEN)`],
  ];
}

/**
 * `puente tunnel [--via ngrok|cloudflared] [--port N] [--register [--session a,b] [--undo-on-exit]]`:
 * runs the agent until `stop` resolves (Ctrl-C) or the agent dies; `tunnel status`, `tunnel logs
 * [--follow]`, `tunnel config --ngrok-authtoken T --ngrok-domain D --cloudflared-token T --cloudflared-hostname H`.
 */
export async function tunnel(
  args: string[],
  env: NodeJS.ProcessEnv,
  out: (line: string) => void,
  stop: Promise<unknown>,
): Promise<number> {
  const [sub] = args;
  if (sub === 'status') return tunnelStatus(env, out);
  if (sub === 'logs') return tunnelLogs(args, env, out, stop);
  if (sub === 'config') return tunnelConfig(args, env, out);
  if (sub && !sub.startsWith('--')) throw new UsageError(`unknown tunnel command ${sub}: status, logs or config`);
  const config = readCliConfig(env);
  const viaFlag = flag(args, '--via');
  if (viaFlag !== undefined && viaFlag !== 'ngrok' && viaFlag !== 'cloudflared')
    throw new UsageError('--via must be ngrok or cloudflared');
  const via: Via =
    (viaFlag as Via | undefined) ??
    config.tunnel?.via ??
    (which('ngrok', env) || !which('cloudflared', env) ? 'ngrok' : 'cloudflared');
  const port = Number(flag(args, '--port') ?? env.GATEWAY_PORT ?? 8080);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError('--port must be a TCP port');
  const binary = which(via, env);
  if (!binary) throw new Error(INSTALL[via]);
  if (via === 'ngrok' && !ngrokHasToken(env, config)) {
    throw new Error(
      'ngrok needs an auth token: run `npx puente tunnel config --ngrok-authtoken <token>` with the token from https://dashboard.ngrok.com/get-started/your-authtoken',
    );
  }
  const dir = stateDir(env);
  const logFile = join(dir, 'tunnel.log');
  mkdirSync(dir, { recursive: true });
  writeFileSync(logFile, '');
  const agent = await startAgent(via, binary, port, config, logFile);
  const state: TunnelState = {
    pid: agent.child.pid!,
    via,
    url: agent.url,
    port,
    startedAt: new Date().toISOString(),
    registered: [],
  };
  const saveState = () => writeFileSync(join(dir, 'tunnel.json'), `${JSON.stringify(state, null, 2)}\n`);
  saveState();
  out(`tunnel (${via}): ${agent.url} -> http://127.0.0.1:${port}`);
  for (const [name, url] of providerUrls(agent.url)) out(`  ${name.padEnd(19)} ${url}`);
  let registrations: Registration[] = [];
  let code = 0;
  const died = new Promise<number>((resolveDied) => agent.child.once('exit', (exit) => resolveDied(exit ?? 1)));
  try {
    if (args.includes('--register')) {
      registrations = await registerAll(agent.url, env, out, flag(args, '--session'));
      state.registered = registrations.map((r) => r.name);
      saveState();
    }
    out('Ctrl-C stops the tunnel');
    const ended = await Promise.race([stop.then(() => 'stopped' as const), died.then(() => 'died' as const)]);
    if (ended === 'died') {
      process.stderr.write(`puente: the ${via} agent exited${agent.lastError() ? `: ${agent.lastError()}` : ''}\n`);
      code = 1;
    }
  } finally {
    if (args.includes('--undo-on-exit')) {
      for (const registration of registrations.reverse()) {
        try {
          out(`${registration.name}: ${await registration.undo()}`);
        } catch (error) {
          process.stderr.write(`puente: could not undo ${registration.name}: ${(error as Error).message}\n`);
          code = 1;
        }
      }
    }
    if (agent.child.exitCode === null && agent.child.signalCode === null) {
      agent.child.kill('SIGTERM');
      await Promise.race([died, new Promise((r) => setTimeout(r, 5_000))]);
      if (agent.child.exitCode === null) agent.child.kill('SIGKILL');
    }
    rmSync(join(dir, 'tunnel.json'), { force: true });
  }
  out(`tunnel (${via}) stopped`);
  return code;
}

function readState(env: NodeJS.ProcessEnv): TunnelState | undefined {
  const file = join(stateDir(env), 'tunnel.json');
  if (!existsSync(file)) return undefined;
  const state = JSON.parse(readFileSync(file, 'utf8')) as TunnelState;
  try {
    process.kill(state.pid, 0);
    return state;
  } catch {
    return undefined;
  }
}

/** The public URL of the running tunnel, if one runs. */
export function runningTunnelUrl(env: NodeJS.ProcessEnv): string | undefined {
  return readState(env)?.url;
}

function tunnelStatus(env: NodeJS.ProcessEnv, out: (line: string) => void): number {
  const state = readState(env);
  if (!state) {
    out('tunnel: not running (start it with `npx puente tunnel`)');
    return 1;
  }
  const minutes = Math.round((Date.now() - Date.parse(state.startedAt)) / 60_000);
  out(
    `tunnel (${state.via}): ${state.url} -> http://127.0.0.1:${state.port}, pid ${state.pid}, up ${minutes} min${state.registered.length ? `, registered with ${state.registered.join(', ')}` : ''}`,
  );
  return 0;
}

async function tunnelLogs(
  args: string[],
  env: NodeJS.ProcessEnv,
  out: (line: string) => void,
  stop: Promise<unknown>,
): Promise<number> {
  const file = join(stateDir(env), 'tunnel.log');
  if (!existsSync(file)) {
    out('tunnel: no log yet (start it with `npx puente tunnel`)');
    return 1;
  }
  let printed = 0;
  const print = () => {
    const text = readFileSync(file, 'utf8');
    if (text.length < printed) printed = 0;
    const fresh = text.slice(printed);
    printed = text.length;
    for (const line of fresh.split('\n').filter(Boolean)) out(line);
  };
  print();
  if (!args.includes('--follow')) return 0;
  const timer = setInterval(print, 500);
  await stop;
  clearInterval(timer);
  return 0;
}

function tunnelConfig(args: string[], env: NodeJS.ProcessEnv, out: (line: string) => void): number {
  const path = cliConfigPath(env);
  const config = readCliConfig(env);
  const set = <K extends string>(value: string | undefined, apply: (v: string) => void, name: K) => {
    if (value === undefined) return;
    if (!value || value.startsWith('--')) throw new UsageError(`${name} needs a value`);
    apply(value);
  };
  const tunnelConfigPart = (config.tunnel ??= {});
  set(
    flag(args, '--via'),
    (v) => {
      if (v !== 'ngrok' && v !== 'cloudflared') throw new UsageError('--via must be ngrok or cloudflared');
      tunnelConfigPart.via = v;
    },
    '--via',
  );
  set(flag(args, '--ngrok-authtoken'), (v) => ((tunnelConfigPart.ngrok ??= {}).authtoken = v), '--ngrok-authtoken');
  set(flag(args, '--ngrok-domain'), (v) => ((tunnelConfigPart.ngrok ??= {}).domain = v), '--ngrok-domain');
  set(
    flag(args, '--cloudflared-token'),
    (v) => ((tunnelConfigPart.cloudflared ??= {}).token = v),
    '--cloudflared-token',
  );
  set(
    flag(args, '--cloudflared-hostname'),
    (v) => ((tunnelConfigPart.cloudflared ??= {}).hostname = v),
    '--cloudflared-hostname',
  );
  const checked = CliConfigFile.parse(config);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(checked, null, 2)}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
  const t = checked.tunnel ?? {};
  out(
    `saved ${path}: via ${t.via ?? '(auto)'}, ngrok auth token ${t.ngrok?.authtoken ? 'set' : 'not set'}${t.ngrok?.domain ? `, domain ${t.ngrok.domain}` : ''}, cloudflared token ${t.cloudflared?.token ? 'set' : 'not set'}${t.cloudflared?.hostname ? `, hostname ${t.cloudflared.hostname}` : ''}`,
  );
  return 0;
}
