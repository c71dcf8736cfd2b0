import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { postgresServerUrl, startStack } from '@puente/stack';
import { FAULTS, faultTable, runFaults, type Fault } from './faults.js';

/**
 * `npm run test:faults [-- --deliveries N] [--fault F ...]`: the fault suite at full length (2,000
 * deliveries per fault by default). Prints the table; exits 1 if any acknowledged delivery is lost or
 * applied twice, or anything reached the DLQ.
 */
const args = process.argv.slice(2);
const value = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const deliveries = Number(value('--deliveries') ?? 2_000);
const chosen = args.flatMap((a, i) => (args[i - 1] === '--fault' ? [a] : []));
for (const f of chosen)
  if (!(FAULTS as readonly string[]).includes(f)) throw new Error(`unknown fault ${f}: ${FAULTS.join(', ')}`);
if (!Number.isInteger(deliveries) || deliveries < 30) throw new Error('--deliveries must be an integer of at least 30');

const dir = mkdtempSync(join(tmpdir(), 'puente-faults-stack-'));
const stack = await startStack({ dir, mode: 'test', needs: ['postgres'] });
let failed = true;
try {
  const rows = await runFaults({
    deliveries,
    postgresUrl: postgresServerUrl(stack.env()),
    log: (line) => process.stdout.write(`${line}\n`),
    ...(chosen.length ? { faults: chosen as Fault[] } : {}),
  });
  process.stdout.write(`\n${faultTable(rows)}\n\n`);
  failed = rows.some((r) => r.lost > 0 || r.duplicates > 0 || r.deadLetters > 0);
  process.stdout.write(
    `${failed ? 'FAILED: a delivery was lost or applied twice, or reached the DLQ' : 'every acknowledged delivery is in the read model exactly once'}\n`,
  );
} finally {
  await stack.stop();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
