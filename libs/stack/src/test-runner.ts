import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startStack } from './stack.js';
import { StackError } from './processes.js';

/**
 * `npm test` after type-check and lint: starts the servers the tests need (or uses NATS_URL,
 * MONGO_URL, GLYMS_DATABASE_URL and KAFKA_BROKERS), runs every compiled test with node's test runner, then stops
 * what it started. Extra arguments replace the default test file globs.
 */
const DEFAULT_GLOBS = ['libs/*/dist/**/*.test.js', 'services/*/dist/**/*.test.js', 'test/*/dist/**/*.test.js'];

async function main(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'puente-test-'));
  const started = Date.now();
  const stack = await startStack({ dir, mode: 'test' });
  process.stderr.write(
    `[stack] ready in ${Date.now() - started} ms: ${Object.entries(stack.origin)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}\n`,
  );
  const args = process.argv.slice(2);
  const globs = args.filter((a) => !a.startsWith('--'));
  const flags = args.filter((a) => a.startsWith('--'));
  const child = spawn(
    process.execPath,
    [
      '--test',
      '--test-reporter=spec',
      `--test-concurrency=${process.env.TEST_CONCURRENCY ?? 2}`,
      '--test-timeout=180000',
      ...flags,
      ...(globs.length ? globs : DEFAULT_GLOBS),
    ],
    { stdio: 'inherit', env: { ...process.env, ...stack.env(), PUENTE_TEST_DIR: dir } },
  );
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  const code = await new Promise<number>((resolve) => child.once('exit', (c, s) => resolve(c ?? (s ? 1 : 0))));
  await stack.stop();
  rmSync(dir, { recursive: true, force: true });
  return code;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`${error instanceof StackError ? error.message : (error as Error).stack}\n`);
    process.exit(1);
  },
);
