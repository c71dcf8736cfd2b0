import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startStack } from '@puente/stack';
import { runBusBench } from './bus.js';
import { runGatewayBench } from './gateway.js';
import { runWhatsAppBench } from './whatsapp.js';
import { runKissflowBench } from './kissflow.js';
import { runRealtimeBench } from './realtime.js';
import { runReplayBench } from './replay.js';
import { runE2eBench } from './e2e.js';
import { runBitrixBench } from './bitrix.js';
import { runMediaBench } from './media.js';
import { runInboxBench } from './inbox.js';
import { printTable, writeResult, type BenchResult } from './result.js';
import { writeReport } from './report.js';
import type { BenchEnv } from './bus.js';

/**
 * `npm run bench [-- <name> ...]`: runs the named benchmarks (default all) against local servers it
 * starts (or NATS_URL / MONGO_URL), prints a table, writes bench/results/<name>.json and latest.json,
 * and regenerates the "Latest results" table of docs/benchmarks.md from every benchmark's newest result.
 */
const BENCHMARKS: Record<string, (env: BenchEnv) => Promise<BenchResult>> = {
  bus: runBusBench,
  gateway: runGatewayBench,
  whatsapp: runWhatsAppBench,
  kissflow: runKissflowBench,
  realtime: runRealtimeBench,
  replay: runReplayBench,
  e2e: runE2eBench,
  bitrix: runBitrixBench,
  media: runMediaBench,
  inbox: runInboxBench,
};

const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const unknown = wanted.filter((name) => !BENCHMARKS[name]);
if (unknown.length > 0) {
  process.stderr.write(`unknown benchmark ${unknown.join(', ')}; available: ${Object.keys(BENCHMARKS).join(', ')}\n`);
  process.exit(2);
}
const dir = mkdtempSync(join(tmpdir(), 'puente-bench-'));
const selected = wanted.length > 0 ? wanted : Object.keys(BENCHMARKS);
// `bitrix` also needs the Glyms ERP's PostgreSQL (the same server FerretDB runs on, unless MONGO_URL points elsewhere).
const stack = await startStack({
  dir,
  mode: 'test',
  needs: selected.includes('bitrix') ? ['nats', 'mongo', 'postgres'] : ['nats', 'mongo'],
});
// The test helpers a benchmark reuses (createTestGlymsDatabase) find the servers in the environment, as tests do.
for (const [name, value] of Object.entries(stack.env())) process.env[name] ??= value;
const resultsDir = fileURLToPath(new URL('../results/', import.meta.url));
const docPath = fileURLToPath(new URL('../../docs/benchmarks.md', import.meta.url));
let failed = false;
try {
  for (const name of selected) {
    process.stdout.write(`bench ${name}: running\n`);
    const result = await BENCHMARKS[name]!({
      natsUrl: stack.natsUrl!,
      mongoUrl: stack.mongoUrl!,
      log: (line) => process.stdout.write(`  ${line}\n`),
    });
    writeResult(resultsDir, result);
    writeReport(resultsDir, docPath);
    printTable(result);
    failed ||= result.metrics.some((m) => !m.pass);
  }
} finally {
  await stack.stop();
  rmSync(dir, { recursive: true, force: true });
}
process.stdout.write(`\nresults in ${resultsDir}\n`);
process.exit(failed ? 1 : 0);
