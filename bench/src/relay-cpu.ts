import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { Bus } from '@puente/bus';
import { LogicalSource } from '@puente/cdc';
import { createCustomerTable, createTestGlymsDatabase } from '@puente/cdc/testing';
import { startStack } from '@puente/stack';
import { storedCount } from './bitrix.js';

/**
 * `node bench/dist/relay-cpu.js [rows]`: the logical relay's own CPU per row. A backlog of single-row
 * transactions (default 200,000) is committed while no relay reads the slot; then the relay starts and
 * drains it. Prints rows per second and the CPU (user + system) of this process, which is the relay's,
 * per row. Not a target of its own: the profile behind the `bitrix` relay figures (docs/benchmarks.md).
 */
const rows = Number(process.argv[2] ?? 200_000);
const dir = mkdtempSync(join(tmpdir(), 'puente-relay-cpu-'));
const stack = await startStack({ dir, mode: 'test', needs: ['nats', 'mongo', 'postgres'] });
for (const [name, value] of Object.entries(stack.env())) process.env[name] ??= value;
const bus = await Bus.connect({ servers: process.env.NATS_URL!, name: 'relay-cpu' });
try {
  await bus.ensureStreams();
  const db = await createTestGlymsDatabase('relay_cpu_');
  try {
    const table = 'cliente_drain';
    await createCustomerTable(db, table);
    const options = {
      bus,
      kv: await bus.kv('glyms_cdc', { history: 1 }),
      databaseUrl: db.url,
      tables: [{ schema: 'public', table }],
      publication: `pub_${table}`,
      slot: `${db.name}_slot`,
      logger: pino({ level: 'warn' }),
    };
    // The first start creates the slot (empty initial load); the backlog is committed while nothing reads it.
    const first = new LogicalSource(options);
    await first.start();
    await first.stop();
    process.stderr.write(`committing ${rows} single-row transactions…\n`);
    await db.sql(
      `do $$ begin for i in 1..${rows} loop insert into public.${table} (razon_social, email, telefono) values ('Empresa ' || i, 'c' || i || '@x.example', '+51 1 555 ' || i); commit; end loop; end $$`,
    );
    const subject = `evt.glyms.${table}.created`;
    const stored = () => storedCount(bus, subject);
    const cpu = process.cpuUsage();
    const started = Date.now();
    const relay = new LogicalSource(options);
    await relay.start();
    try {
      for (let last = -1, n = 0, progressAt = Date.now(); (n = await stored()) < rows; last = n) {
        if (n !== last) {
          process.stderr.write(`\r${n} of ${rows} stored`);
          progressAt = Date.now();
        } else if (Date.now() - progressAt > 30_000)
          throw new Error(`relay-cpu: no progress for 30 s at ${n} of ${rows} rows`);
        await sleep(100);
      }
    } finally {
      await relay.stop();
    }
    const ms = Date.now() - started;
    const used = process.cpuUsage(cpu);
    process.stderr.write('\n');
    process.stdout.write(
      `${JSON.stringify({ rows, seconds: ms / 1000, rowsPerSecond: Math.round((rows / ms) * 1000), cpuMicrosPerRow: Number(((used.user + used.system) / rows).toFixed(1)) })}\n`,
    );
  } finally {
    await db.drop();
  }
} finally {
  await bus.close();
  await stack.stop();
  rmSync(dir, { recursive: true, force: true });
}
