import { cpus } from 'node:os';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** One measured metric, in the result format of DESIGN.md ("Benchmark results"). */
export interface Metric {
  metric: string;
  value: number;
  unit: string;
  /** What was measured beside it in the same run. */
  baseline: string;
  baselineValue: number;
  /** value / baselineValue, or the inverse for latencies (`lowerIsBetter`), so higher is better. */
  ratio: number;
  target: number;
  targetOn?: 'value';
  pass: boolean;
}

export interface BenchResult {
  name: string;
  at: string;
  machine: { cpus: number; model: string; node: string };
  metrics: Metric[];
}

export function metric(fields: Omit<Metric, 'ratio' | 'pass'> & { lowerIsBetter?: boolean }): Metric {
  const { lowerIsBetter, ...rest } = fields;
  const ratio = lowerIsBetter ? rest.baselineValue / rest.value : rest.value / rest.baselineValue;
  const rounded = Math.round(ratio * 1000) / 1000;
  const pass = rest.targetOn === 'value' ? rest.value >= rest.target : rounded >= rest.target;
  return { ...rest, value: round(rest.value), baselineValue: round(rest.baselineValue), ratio: rounded, pass };
}

const round = (n: number) => (Math.abs(n) >= 100 ? Math.round(n) : Math.round(n * 100) / 100);

export function machine(): BenchResult['machine'] {
  return { cpus: cpus().length, model: cpus()[0]?.model ?? 'unknown', node: process.version };
}

/** Writes `bench/results/<name>.json` and refreshes `latest.json` with every result present. */
/** Every benchmark's newest result in `dir` (`<name>.json`). */
export function readResults(dir: string): BenchResult[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json') && f !== 'latest.json')
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as BenchResult);
}

export function writeResult(dir: string, result: BenchResult): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${result.name}.json`), `${JSON.stringify(result, null, 2)}\n`);
  const all = readResults(dir);
  writeFileSync(
    join(dir, 'latest.json'),
    `${JSON.stringify({ at: new Date().toISOString(), machine: machine(), results: all }, null, 2)}\n`,
  );
}

export function printTable(result: BenchResult): void {
  const rows = result.metrics.map((m) => [
    m.metric,
    `${m.value} ${m.unit}`,
    `${m.baselineValue} ${m.unit}`,
    m.baseline,
    String(m.ratio),
    `≥ ${m.target}`,
    m.pass ? 'pass' : 'FAIL',
  ]);
  const header = ['metric', 'puente', 'baseline', 'baseline is', 'ratio', 'target', ''];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  process.stdout.write(
    `\n${result.name} (${result.machine.cpus} × ${result.machine.model}, node ${result.machine.node})\n${line(header)}\n`,
  );
  for (const row of rows) process.stdout.write(`${line(row)}\n`);
}

/** The p-th percentile (0–100) of sorted values; NaN when there are none. */
export function percentile(sorted: readonly number[], p: number): number {
  return sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Median of repeated measurements. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
