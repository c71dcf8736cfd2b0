import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { testNatsUrl, uniqueName } from '@puente/bus/testing';
import { createTestGlymsDatabase, type TestGlymsDatabase } from '@puente/cdc/testing';
import { FakeBitrix24 } from '../testing/index.js';

// The operator CLI as a process (cli/bin/puente.js; `npm test` builds it with everything else).
const puente = fileURLToPath(new URL('../../../../cli/bin/puente.js', import.meta.url));

function runCli(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [puente, ...args], {
      env: { PATH: process.env.PATH ?? '', NATS_URL: testNatsUrl(), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

let pg: TestGlymsDatabase;
let fake: FakeBitrix24;

before(async () => {
  pg = await createTestGlymsDatabase();
  fake = await new FakeBitrix24({ bucket: { burst: 50, drainPerSecond: 20 } }).start();
});
after(async () => {
  await fake.stop();
  await pg.drop();
});

/** A service table of the test's own, its external-id tag, and the environment pointing the CLI at it, the fake and a mapping file. */
async function setup(
  mapping: Record<string, unknown>,
): Promise<{ table: string; tag: string; env: Record<string, string> }> {
  const table = uniqueName('servicio_').toLowerCase();
  const tag = uniqueName('C').toUpperCase();
  await pg.sql(`create table public.${table} (like public.servicio including all)`);
  const mappingFile = join(tmpdir(), `${table}.json`);
  writeFileSync(mappingFile, JSON.stringify(mapping));
  return {
    table,
    tag,
    env: {
      ...fake.env('webhook'),
      GLYMS_DATABASE_URL: pg.url,
      BITRIX_CATALOG_QUERY: `select id_servicio, codigo, nombre, precio, id_seccion, activo from public.${table}`,
      BITRIX_CATALOG_MAPPING: mappingFile,
    },
  };
}

describe('puente bitrix sync services', () => {
  test(
    '--dry-run prints the changes and writes nothing; the real run writes them and prints a summary',
    { timeout: 60_000 },
    async () => {
      const prefix = `${uniqueName('t')}:`;
      const { table, tag, env } = await setup({ prefix, currency: 'EUR' });
      await pg.sql(
        `insert into public.${table} (codigo, nombre, precio) values ($1, 'Consulta general', 120), ($2, 'Nueva consulta', 99)`,
        [`${tag}-1`, `${tag}-2`],
      );
      const mine = () => [...fake.products.values()].filter((p) => String(p.xmlId).startsWith(prefix));

      const dry = await runCli(['bitrix', 'sync', 'services', '--dry-run'], env);
      assert.equal(dry.code, 0, dry.stderr);
      assert.deepEqual(dry.stdout.trim().split('\n'), [
        `+ ${prefix}${tag}-1 Consulta general 120.00 EUR`,
        `+ ${prefix}${tag}-2 Nueva consulta 99.00 EUR`,
        'dry run (catalog 14, price type 1, EUR): 2 to create, 0 to update, 2 prices to write, 0 to deactivate, 0 unchanged, 0 invalid; nothing was written',
      ]);
      assert.equal(mine().length, 0);

      const real = await runCli(['bitrix', 'sync', 'services'], env);
      assert.equal(real.code, 0, real.stderr);
      assert.equal(
        real.stdout.trim().split('\n').at(-1),
        'services synced (catalog 14, price type 1, EUR): 2 created, 0 updated, 2 priced, 0 deactivated, 0 unchanged, 0 failed',
      );
      assert.deepEqual(
        mine()
          .map((p) => p.name)
          .sort(),
        ['Consulta general', 'Nueva consulta'],
      );

      await pg.sql(`update public.${table} set precio = 125 where codigo = $1`, [`${tag}-1`]);
      await pg.sql(`update public.${table} set activo = false where codigo = $1`, [`${tag}-2`]);
      const preview = await runCli(['bitrix', 'sync', 'services', '--dry-run'], env);
      assert.equal(preview.code, 0, preview.stderr);
      assert.deepEqual(preview.stdout.trim().split('\n').slice(0, 2), [
        `~ ${prefix}${tag}-1 price 120.00 → 125.00`,
        `- ${prefix}${tag}-2 deactivate (inactive)`,
      ]);
      assert.equal(mine().filter((p) => p.active === 'N').length, 0, 'the dry run wrote nothing');
    },
  );

  test(
    'a product that cannot be written is printed on its own line and the exit is non-zero; bad settings fail with one line',
    { timeout: 60_000 },
    async () => {
      const prefix = `${uniqueName('t')}:`;
      const { table, tag, env } = await setup({ prefix, currency: 'EUR' });
      await pg.sql(`insert into public.${table} (codigo, nombre, precio) values ($1, 'Uno', 1), ($2, 'Dos', 2)`, [
        `${tag}-1`,
        `${tag}-2`,
      ]);
      fake.inject({
        subCall: true,
        method: 'catalog.product.add',
        status: 400,
        error: 'ERROR_CORE',
        description: 'Product could not be saved',
        match: (p) => (p.fields as Record<string, unknown>).xmlId === `${prefix}${tag}-2`,
      });
      const partial = await runCli(['bitrix', 'sync', 'services'], env);
      assert.equal(partial.code, 1);
      const lines = partial.stdout.trim().split('\n');
      assert.ok(
        lines.includes(`! ${prefix}${tag}-2 catalog.product.add failed: ERROR_CORE: Product could not be saved`),
        partial.stdout,
      );
      assert.match(lines.at(-1)!, /: 1 created, 0 updated, 1 priced, 0 deactivated, 0 unchanged, 1 failed$/);

      const badMapping = join(tmpdir(), `${table}-bad.json`);
      writeFileSync(badMapping, JSON.stringify({ currency: 'soles' }));
      const bad = await runCli(['bitrix', 'sync', 'services', '--dry-run'], {
        ...env,
        BITRIX_CATALOG_MAPPING: badMapping,
      });
      assert.equal(bad.code, 1);
      assert.equal(bad.stderr.trim().split('\n').length, 1);
      assert.match(bad.stderr, /^puente: BITRIX_CATALOG_MAPPING .*-bad\.json: currency: an ISO 4217 code/);

      const query = await runCli(['bitrix', 'sync', 'services'], {
        ...env,
        BITRIX_CATALOG_QUERY: 'select codigo from public.no_such_table',
      });
      assert.equal(query.code, 1);
      assert.match(
        query.stderr,
        /^puente: BITRIX_CATALOG_QUERY failed: relation "public.no_such_table" does not exist\n$/,
      );
      assert.ok(!query.stderr.includes(fake.webhook.code), 'no webhook code in errors');

      const unset = await runCli(['bitrix', 'sync', 'services'], { GLYMS_DATABASE_URL: pg.url });
      assert.equal(unset.code, 1);
      assert.match(unset.stderr, /^puente: Bitrix24 not configured/);

      const companies = await runCli(['bitrix', 'sync', 'companies', '--dry-run'], env);
      assert.equal(companies.code, 2);
      assert.match(companies.stderr, /^puente: bitrix sync companies has no --dry-run/);
      const option = await runCli(['bitrix', 'sync', 'services', '--force'], env);
      assert.equal(option.code, 2);
      assert.match(option.stderr, /unknown option --force/);
    },
  );
});
