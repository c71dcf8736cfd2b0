import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const puente = fileURLToPath(new URL('../../../cli/bin/puente.js', import.meta.url));

/** The `puente` CLI as a process: what it printed so far (`output`: stdout and stderr as they came), and its exit. */
export function startCli(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): {
  child: ChildProcess;
  output: () => string;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
} {
  const child = spawn(process.execPath, [puente, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => {
    output += c.toString();
    stdout += c.toString();
  });
  child.stderr!.on('data', (c: Buffer) => {
    output += c.toString();
    stderr += c.toString();
  });
  return {
    child,
    output: () => output,
    stdout: () => stdout,
    stderr: () => stderr,
    exited: new Promise((resolve) => child.once('exit', resolve)),
  };
}

/** Runs the `puente` CLI to its end. */
export async function runCli(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number | null; output: string; stdout: string; stderr: string }> {
  const cli = startCli(args, env);
  const code = await cli.exited;
  return { code, output: cli.output(), stdout: cli.stdout(), stderr: cli.stderr() };
}
