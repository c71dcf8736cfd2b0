import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { postgresServerUrl, startStack } from '@puente/stack';
import { runSoak, soakReport } from './soak.js';

/** `npm run soak -- --minutes N` (default 10): prints the report; exits 1 on growth or a lost delivery. */
const args = process.argv.slice(2);
const i = args.indexOf('--minutes');
const minutes = Number(i >= 0 ? args[i + 1] : 10);
if (!(minutes >= 1)) throw new Error('--minutes must be at least 1');

const dir = mkdtempSync(join(tmpdir(), 'puente-soak-stack-'));
const stack = await startStack({ dir, mode: 'test', needs: ['postgres'] });
let failed = true;
try {
  const result = await runSoak({
    minutes,
    postgresUrl: postgresServerUrl(stack.env()),
    log: (line) => process.stdout.write(`${line}\n`),
  });
  process.stdout.write(`\n${soakReport(result)}\n\n`);
  failed = result.failures.length > 0;
  process.stdout.write(
    failed ? `FAILED:\n${result.failures.map((f) => `  ${f}`).join('\n')}\n` : 'no growth, nothing lost\n',
  );
} finally {
  await stack.stop();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
