import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MongoClient } from 'mongodb';
import type { Bus } from '@puente/bus';
import { connectTestBus, eventually, uniqueName } from '@puente/bus/testing';
import { freePort, spawnService, stopService, waitReady, type RunningServiceProcess } from '@puente/stack';
import { FakeBitrix24 } from '@puente/bitrix-sync/testing';
import { createCustomerTable, createTestGlymsDatabase, readEvents, type TestGlymsDatabase } from '@puente/cdc/testing';

const root = fileURLToPath(new URL('../../../', import.meta.url));
let bus: Bus;
let pg: TestGlymsDatabase;
let fake: FakeBitrix24;

before(async () => {
  bus = await connectTestBus();
  pg = await createTestGlymsDatabase();
  fake = await new FakeBitrix24({ bucket: { burst: 50, drainPerSecond: 20 } }).start();
});
after(async () => {
  await fake.stop();
  await pg.drop();
  await bus.close();
});

const quiet = { write: () => true } as unknown as NodeJS.WritableStream;
const entries = (company: Record<string, unknown>, field: string) =>
  ((company[field] as { VALUE: string }[] | undefined) ?? []).map((e) => e.VALUE);

describe('bitrix-sync end to end', () => {
  test("the service killed (SIGKILL) twice while customers change: every change is in EVENTS once by message id, and Bitrix24 ends with the ERP's state and no duplicate company or entry", async () => {
    const table = await createCustomerTable(pg);
    const mappingFile = join(tmpdir(), `${table}.json`);
    const originator = `e2e_${table}`;
    writeFileSync(mappingFile, JSON.stringify({ table: `public.${table}`, originatorId: originator }));
    const database = uniqueName('puente_e2e_');
    const env = {
      ...process.env,
      ...fake.env('webhook'),
      MONGO_URL: `${process.env.MONGO_URL!.replace(/\/?$/, '/')}${database}`,
      GLYMS_DATABASE_URL: pg.url,
      GLYMS_CDC_TABLES: `public.${table}`,
      GLYMS_CDC_SLOT: table,
      GLYMS_CDC_PUBLICATION: `pub_${table}`,
      BITRIX_COMPANY_MAPPING: mappingFile,
      BITRIX_COALESCE_MS: '100',
      BITRIX_CATALOG_INTERVAL_MS: '0',
      BITRIX_LEASE_TTL_MS: '1500',
      LOG_LEVEL: 'warn',
      OTEL_SDK_DISABLED: 'true',
    };
    const start = async (): Promise<RunningServiceProcess> => {
      const port = await freePort();
      const service = spawnService(
        root,
        'bitrix-sync',
        port,
        { ...env, HEALTH_PORT: String(port) },
        process.env.E2E_LOG ? process.stderr : quiet,
      );
      await waitReady(service);
      return service;
    };
    await pg.sql(
      `insert into public.${table} (razon_social, email, telefono) select 'Cliente ' || g, 'c' || g || '@x.example', '+51 1 555 ' || lpad(g::text, 4, '0') from generate_series(1, 30) g`,
    );
    let service = await start();
    const mongo = await MongoClient.connect(env.MONGO_URL);
    try {
      // Ready is not yet relaying: an update committed before the slot exists is part of the initial load, not
      // an update event. Under load, the first updates came before it (the load showed them; 205 of 210 events).
      await eventually(
        async () => ((await readEvents(bus, `evt.glyms.${table}.created`)).length === 30 ? true : undefined),
        30_000,
        'the initial load',
      );
      for (let round = 1; round <= 3; round++) {
        for (let i = 0; i < 60; i++) {
          const id = 1 + ((i * 7 + round) % 30);
          await pg.sql(
            `update public.${table} set razon_social = $2, telefono = $3, email = $4 where id_cliente = $1`,
            [
              id,
              `Cliente ${id} r${round}.${i}`,
              `+51 1 600 ${String(round * 100 + i).padStart(4, '0')}`,
              `r${round}i${i}@x${id}.example`,
            ],
          );
          if (round < 3 && i === 25 + round * 10) {
            service.child.kill('SIGKILL');
            await service.exited;
            service = await start();
          }
        }
      }
      const want = await pg.sql<{ id_cliente: number; razon_social: string; email: string; telefono: string }>(
        `select id_cliente, razon_social, email, telefono from public.${table} order by id_cliente`,
      );
      await eventually(
        () => {
          const companies = [...fake.companies.values()].filter((c) => c.ORIGINATOR_ID === originator);
          if (companies.length !== 30) return undefined;
          const byOrigin = new Map(companies.map((c) => [String(c.ORIGIN_ID), c]));
          return want.every((row) => {
            const c = byOrigin.get(String(row.id_cliente));
            return (
              c &&
              c.TITLE === row.razon_social &&
              entries(c, 'PHONE').join() === row.telefono &&
              entries(c, 'EMAIL').join() === row.email
            );
          })
            ? true
            : undefined;
        },
        60_000,
        'Bitrix24 to hold exactly the ERP state',
      );
      const companies = [...fake.companies.values()].filter((c) => c.ORIGINATOR_ID === originator);
      assert.equal(companies.length, 30, 'no company created twice');
      for (const c of companies) {
        assert.equal(entries(c, 'PHONE').length, 1, `company ${String(c.ID)} has one phone`);
        assert.equal(entries(c, 'EMAIL').length, 1, `company ${String(c.ID)} has one e-mail`);
      }
      const events = await eventually(
        async () => {
          const list = await readEvents(bus, `evt.glyms.${table}.>`);
          return list.length >= 210 ? list : undefined;
        },
        10_000,
        'the initial load and all 180 updates in EVENTS',
      );
      assert.equal(events.length, 30 + 180, 'the initial load and every update, each once');
      assert.equal(new Set(events.map((e) => e.msgId)).size, events.length);
    } finally {
      await stopService(service);
      await mongo
        .db(database)
        .dropDatabase()
        .catch(() => undefined);
      await mongo.close();
    }
  });
});
