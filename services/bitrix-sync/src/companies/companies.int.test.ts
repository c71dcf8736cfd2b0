import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { mkdtempSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import pgModule from 'pg';
import { freePort, startDebeziumConnect } from '@puente/stack';
import type { Db } from 'mongodb';
import { pino } from 'pino';
import { Collections, StreamNames } from '@puente/contracts';
import type { Bus } from '@puente/bus';
import { connectTestBus, eventually, uniqueName } from '@puente/bus/testing';
import { testDatabase } from '@puente/projection/testing';
import { Config, loadCompanyMapping, publishCompanyResync, startBitrixSync, type BitrixLinkDoc } from '../index.js';
import { createCustomerTable, createTestGlymsDatabase, readEvents, type TestGlymsDatabase } from '@puente/cdc/testing';
import { FakeBitrix24 } from '../testing/index.js';

const { Client } = pgModule;
const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
let bus: Bus;
let pg: TestGlymsDatabase;
let mongo: Awaited<ReturnType<typeof testDatabase>>;
let db: Db;
let fake: FakeBitrix24;
const dropLater: (() => Promise<void>)[] = [];

before(async () => {
  bus = await connectTestBus();
  pg = await createTestGlymsDatabase();
  fake = await new FakeBitrix24({ bucket: { burst: 50, drainPerSecond: 20 } }).start();
});
after(async () => {
  await fake.stop();
  for (const drop of dropLater) await drop();
  await pg.drop();
  await bus.close();
});

/** A customer table of this test's own (with its own sequence), and a mapping file pointing at it. */
async function customers(extra: Record<string, unknown> = {}): Promise<{ table: string; mappingFile: string }> {
  const table = await createCustomerTable(pg);
  // bitrix_links is keyed by the customer id: a database of its own per test.
  mongo = await testDatabase();
  db = mongo.db;
  dropLater.push(mongo.drop);
  const mappingFile = join(tmpdir(), `${table}.json`);
  writeFileSync(
    mappingFile,
    JSON.stringify({
      table: `public.${table}`,
      originatorId: `t_${table}`,
      companyType: { column: 'idclientetipo', values: { 1: 'CUSTOMER', 2: 'PARTNER' } },
      ...extra,
    }),
  );
  return { table, mappingFile };
}

function config(table: string, mappingFile: string, extra: Record<string, string> = {}) {
  return Config.parse({
    ...fake.env('webhook'),
    GLYMS_DATABASE_URL: pg.url,
    GLYMS_CDC_TABLES: `public.${table}`,
    GLYMS_CDC_SLOT: table,
    GLYMS_CDC_PUBLICATION: `pub_${table}`,
    BITRIX_COMPANY_MAPPING: mappingFile,
    BITRIX_COALESCE_MS: '300',
    BITRIX_LEASE_TTL_MS: '3000',
    BITRIX_CATALOG_INTERVAL_MS: '0',
    ...extra,
  });
}

const companiesOf = (originatorId: string) =>
  [...fake.companies.values()].filter((c) => c.ORIGINATOR_ID === originatorId);
const links = () => db.collection<BitrixLinkDoc & { _id: string }>(Collections.bitrixLinks);
const entries = (company: Record<string, unknown>, field: string) =>
  ((company[field] as { VALUE: string }[] | undefined) ?? []).map((e) => e.VALUE);

describe('bitrix-sync companies', () => {
  test('customers inserted, updated and deleted in the ERP become, change and leave Bitrix24 companies (logical CDC, initial load included)', async () => {
    const { table, mappingFile } = await customers();
    await pg.sql(
      `insert into public.${table} (razon_social, email, telefono, idclientetipo) values ('Comercial Andina S.A.C.', 'compras@andina.example', '+51 1 555 0101', 1)`,
    );
    const running = await startBitrixSync({ bus, db, logger, config: config(table, mappingFile) });
    try {
      const originator = `t_${table}`;
      await eventually(
        () => (companiesOf(originator).length === 1 ? true : undefined),
        20_000,
        'the existing customer as a company',
      );
      await pg.sql(
        `insert into public.${table} (razon_social, email, telefono, idclientetipo) values ('Clínica San Martín', 'admin@sanmartin.example', '+51 1 555 0103', 2), ('Borrar S.A.', null, null, 1)`,
      );
      await eventually(() => (companiesOf(originator).length === 3 ? true : undefined), 20_000, 'two more companies');
      await pg.sql(
        `update public.${table} set razon_social = 'Clínica San Martín S.A.', telefono = '+51 1 555 0199' where id_cliente = 2`,
      );
      await pg.sql(`delete from public.${table} where id_cliente = 3`);
      const clinic = await eventually(
        () => {
          const list = companiesOf(originator);
          const c = list.find((x) => x.ORIGIN_ID === '2');
          return list.length === 2 && c?.TITLE === 'Clínica San Martín S.A.' ? c : undefined;
        },
        20_000,
        'the update and the delete',
      );
      assert.deepEqual(entries(clinic, 'PHONE'), ['+51 1 555 0199']);
      assert.deepEqual(entries(clinic, 'EMAIL'), ['admin@sanmartin.example']);
      assert.equal(clinic.COMPANY_TYPE, 'PARTNER');
      const link = await eventually(
        () =>
          links()
            .findOne({ _id: 'company:2' })
            .then((d) => (d?.multiValueIds.PHONE?.length ? d : undefined)),
        10_000,
        'the link',
      );
      assert.equal(link.bitrixId, String(clinic.ID));
      assert.equal(link.status, 'synced');
      assert.deepEqual(
        link.multiValueIds.PHONE,
        (clinic.PHONE as { ID: string }[]).map((e) => String(e.ID)),
      );
      await eventually(
        () =>
          links()
            .findOne({ _id: 'company:3' })
            .then((d) => (d?.status === 'deleted' ? true : undefined)),
        10_000,
        'the deleted link',
      );
    } finally {
      await running.stop();
    }
  });

  test('ten updates of one customer inside the coalescing window make one Bitrix24 call with the last state, and phone and e-mail never pile up', async () => {
    const { table, mappingFile } = await customers();
    await pg.sql(
      `insert into public.${table} (razon_social, email, telefono) values ('Distribuidora Los Olivos', 'ventas@olivos.example', '+51 1 555 0102')`,
    );
    const running = await startBitrixSync({
      bus,
      db,
      logger,
      config: config(table, mappingFile, { BITRIX_COALESCE_MS: '1500' }),
    });
    try {
      const originator = `t_${table}`;
      await eventually(() => (companiesOf(originator).length === 1 ? true : undefined), 20_000, 'the company');
      await eventually(
        () =>
          links()
            .findOne({ _id: 'company:1' })
            .then((d) => d ?? undefined),
        10_000,
        'its link',
      );
      await new Promise((resolve) => setTimeout(resolve, 400));
      const before = fake.requests.length;
      for (let i = 1; i <= 10; i++)
        await pg.sql(
          `update public.${table} set razon_social = 'Los Olivos v${i}', telefono = '+51 1 555 01${String(i).padStart(2, '0')}', email = 'v${i}@olivos.example' where id_cliente = 1`,
        );
      const company = await eventually(
        () => {
          const c = companiesOf(originator)[0]!;
          return c.TITLE === 'Los Olivos v10' ? c : undefined;
        },
        20_000,
        'the last state',
      );
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      const calls = fake.requests.slice(before).filter((r) => r.method === 'batch');
      assert.equal(calls.length, 1, `one batch request, got ${JSON.stringify(calls)}`);
      assert.equal(
        calls[0]!.commands,
        1,
        'one update sub-call: the entries are changed by their ids, nothing to read back',
      );
      assert.deepEqual(entries(company, 'PHONE'), ['+51 1 555 0110']);
      assert.deepEqual(entries(company, 'EMAIL'), ['v10@olivos.example']);
      // Clearing and setting again: still exactly one entry each.
      await pg.sql(`update public.${table} set telefono = null where id_cliente = 1`);
      await eventually(
        () => (entries(companiesOf(originator)[0]!, 'PHONE').length === 0 ? true : undefined),
        20_000,
        'the phone removed',
      );
      await pg.sql(`update public.${table} set telefono = '+51 1 555 0200' where id_cliente = 1`);
      await pg.sql(`update public.${table} set email = 'final@olivos.example' where id_cliente = 1`);
      const final = await eventually(
        () => {
          const c = companiesOf(originator)[0]!;
          return entries(c, 'EMAIL')[0] === 'final@olivos.example' && entries(c, 'PHONE').length === 1 ? c : undefined;
        },
        20_000,
        'the final entries',
      );
      assert.deepEqual(entries(final, 'PHONE'), ['+51 1 555 0200']);
      assert.deepEqual(entries(final, 'EMAIL'), ['final@olivos.example']);
    } finally {
      await running.stop();
    }
  });

  test('an invalid e-mail is reported (failed event, lastError, a dead letter) and not retried, while other customers sync', async () => {
    const { table, mappingFile } = await customers();
    const running = await startBitrixSync({ bus, db, logger, config: config(table, mappingFile) });
    try {
      const originator = `t_${table}`;
      await pg.sql(
        `insert into public.${table} (razon_social, email) values ('Correo Malo', 'no-es-un-correo'), ('Correo Bueno', 'ok@bueno.example')`,
      );
      await eventually(() => (companiesOf(originator).length === 1 ? true : undefined), 20_000, 'the valid customer');
      const link = await eventually(
        () =>
          links()
            .findOne({ _id: 'company:1' })
            .then((d) => d ?? undefined),
        10_000,
        'the failure in bitrix_links',
      );
      assert.equal(link.status, 'failed');
      assert.equal(link.lastError?.code, 'INVALID_EMAIL');
      const failed = await eventually(
        async () => {
          const list = (await readEvents(bus, 'evt.bitrix.company.failed')).filter(
            (e) =>
              (e.event.data as { sourceKey: string }).sourceKey === '1' &&
              e.event.source === 'urn:puente:bitrix-sync' &&
              (e.event.data as { error: { code: string } }).error.code === 'INVALID_EMAIL',
          );
          return list.length > 0 ? list : undefined;
        },
        10_000,
        'a failed event',
      );
      assert.equal((failed[0]!.event.data as { retryable: boolean }).retryable, false);
      const dlq = await eventually(
        async () => {
          const info = await bus.jsm.streams.info(StreamNames.DLQ, {
            subjects_filter: `dlq.bitrix-companies-public_${table}.>`,
          });
          const count = Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0);
          return count > 0 ? count : undefined;
        },
        15_000,
        'the dead letter',
      );
      assert.equal(dlq, 1);
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      assert.equal(
        (await readEvents(bus, 'evt.bitrix.company.failed')).filter(
          (e) =>
            (e.event.data as { sourceKey: string; cdc?: string }).sourceKey === '1' &&
            (e.event.data as { sourcePositions?: string[] }).sourcePositions?.length,
        ).length >= 1,
        true,
      );
      assert.equal(
        companiesOf(originator).some((c) => c.TITLE === 'Correo Malo'),
        false,
      );
    } finally {
      await running.stop();
    }
  });

  test('logtable mode: PENDING log rows are pushed and marked SUCCESS, as the old script did', async () => {
    const { table, mappingFile } = await customers();
    await pg.sql(
      `insert into public.${table} (razon_social, email) values ('Log Uno', 'uno@log.example'), ('Log Dos', 'dos@log.example')`,
    );
    const ids = (
      await pg.sql<{ id_cliente: number }>(
        `select id_cliente from public.${table} where razon_social like 'Log %' order by id_cliente`,
      )
    ).map((r) => r.id_cliente);
    await pg.sql(
      `insert into f_cliente.sync_log_bitrix24 (id_cliente, operation_type) select unnest($1::int[]), 'INSERT'`,
      [ids],
    );
    const running = await startBitrixSync({
      bus,
      db,
      logger,
      config: config(table, mappingFile, { GLYMS_CDC_MODE: 'logtable', GLYMS_LOGTABLE_POLL_MS: '200' }),
    });
    try {
      const originator = `t_${table}`;
      await eventually(() => (companiesOf(originator).length === 2 ? true : undefined), 20_000, 'two companies');
      const rows = await eventually(
        async () => {
          const list = await pg.sql<{ sync_status: string; processed_timestamp: Date | null }>(
            'select sync_status, processed_timestamp from f_cliente.sync_log_bitrix24 order by log_id',
          );
          return list.every((r) => r.sync_status === 'SUCCESS') ? list : undefined;
        },
        20_000,
        'the log rows marked SUCCESS',
      );
      assert.ok(rows.every((r) => r.processed_timestamp instanceof Date));
      await pg.sql(`update public.${table} set email = 'no valido' where id_cliente = $1`, [ids[0]]);
      await pg.sql(`insert into f_cliente.sync_log_bitrix24 (id_cliente, operation_type) values ($1, 'UPDATE')`, [
        ids[0],
      ]);
      const failed = await eventually(
        async () => {
          const list = await pg.sql<{ sync_status: string; error_message: string | null }>(
            `select sync_status, error_message from f_cliente.sync_log_bitrix24 where operation_type = 'UPDATE'`,
          );
          return list[0]?.sync_status === 'ERROR' ? list[0] : undefined;
        },
        20_000,
        'the failure written back',
      );
      assert.match(failed.error_message ?? '', /INVALID_EMAIL/);
    } finally {
      await running.stop();
    }
  });

  test('debezium mode: a real Debezium connector feeds Kafka, and inserts, updates and deletes reach Bitrix24', async () => {
    const brokers = process.env.KAFKA_BROKERS;
    if (!brokers) throw new Error('KAFKA_BROKERS is not set: run tests through `npm test`, which starts Kafka');
    const { table, mappingFile } = await customers();
    await pg.sql(`insert into public.${table} (razon_social, email) values ('Snapshot S.A.', 'snap@x.example')`);
    const prefix = uniqueName('glyms');
    const connect = await startDebeziumConnect({
      dir: mkdtempSync(join(tmpdir(), 'puente-dbz-')),
      brokers,
      restPort: await freePort(),
      log: (line) => logger.info(line),
      connector: {
        name: prefix,
        databaseUrl: pg.url,
        topicPrefix: prefix,
        slotName: `dbz_${table}`,
        publicationName: `dbzpub_${table}`,
        tables: [`public.${table}`],
      },
    });
    const running = await startBitrixSync({
      bus,
      db,
      logger,
      config: config(table, mappingFile, {
        GLYMS_CDC_MODE: 'debezium',
        KAFKA_BROKERS: brokers,
        DEBEZIUM_TOPIC_PREFIX: prefix,
      }),
    });
    try {
      const originator = `t_${table}`;
      await eventually(
        () => (companiesOf(originator).length === 1 ? true : undefined),
        60_000,
        'the snapshot row as a company',
      );
      await pg.sql(`insert into public.${table} (razon_social) values ('Nuevo Debezium')`);
      await pg.sql(`update public.${table} set razon_social = 'Snapshot S.A.C.' where id_cliente = 1`);
      await pg.sql(`delete from public.${table} where id_cliente = 2`);
      await eventually(
        () => {
          const list = companiesOf(originator);
          return list.length === 1 && list[0]!.TITLE === 'Snapshot S.A.C.' ? true : undefined;
        },
        60_000,
        'the update and the delete',
      );
      await eventually(
        () =>
          links()
            .findOne({ _id: 'company:2' })
            .then((d) => (d?.status === 'deleted' ? d : undefined)),
        30_000,
        'the created-then-deleted customer',
      );
      assert.equal(
        companiesOf(originator).some((c) => c.TITLE === 'Nuevo Debezium'),
        false,
      );
    } finally {
      await running.stop();
      await connect.process.stop();
    }
  });

  test('a stop that comes while the active part is starting is not missed: it ends as soon as the start does, failed or not', async () => {
    for (const ending of ['commit', 'drop table'] as const) {
      const { table, mappingFile } = await customers();
      // The relay's start waits on this lock (its publication needs the table), so the stop comes mid-start.
      const locker = new Client({ connectionString: pg.url });
      await locker.connect();
      try {
        await locker.query('begin');
        await locker.query(`lock table public.${table} in access exclusive mode`);
        const running = await startBitrixSync({ bus, db, logger, config: config(table, mappingFile) });
        await eventually(
          () =>
            pg
              .sql<{ n: number }>(
                `select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and query ilike '%${table}%'`,
              )
              .then((r) => (r[0]!.n > 0 ? true : undefined)),
          10_000,
          'the start waiting on the lock',
        );
        const stopped = running.stop();
        await sleep(300);
        const released = Date.now();
        await locker.query(ending === 'commit' ? 'commit' : `drop table public.${table} cascade`);
        if (ending === 'drop table') await locker.query('commit');
        // Before: a stop during the start was only seen when the lease was lost (never), or after the 30 s retry wait.
        const outcome = await Promise.race([stopped.then(() => 'stopped'), sleep(10_000).then(() => 'still running')]);
        assert.equal(outcome, 'stopped', `after the start ended by ${ending}`);
        assert.ok(Date.now() - released < 10_000);
      } finally {
        await locker.end().catch(() => undefined);
      }
    }
  });

  test('a resync (bitrix sync companies) writes every company again, undoing an edit made in Bitrix24 by hand', async () => {
    const { table, mappingFile } = await customers();
    await pg.sql(
      `insert into public.${table} (razon_social, telefono) values ('Original S.A.', '+51 1 555 0300'), ('Otra S.A.', null)`,
    );
    const running = await startBitrixSync({ bus, db, logger, config: config(table, mappingFile) });
    try {
      const originator = `t_${table}`;
      const first = await eventually(
        () => {
          const list = companiesOf(originator);
          return list.length === 2 ? list.find((c) => c.ORIGIN_ID === '1') : undefined;
        },
        20_000,
        'two companies',
      );
      await eventually(
        () =>
          links()
            .countDocuments({ status: 'synced' })
            .then((n) => (n === 2 ? true : undefined)),
        10_000,
        'two links',
      );
      first.TITLE = 'Editado a mano';
      const rows = await publishCompanyResync({
        bus,
        databaseUrl: pg.url,
        mapping: loadCompanyMapping(mappingFile),
        mode: 'logical',
      });
      assert.equal(rows, 2);
      await eventually(
        () => (companiesOf(originator).find((c) => c.ORIGIN_ID === '1')?.TITLE === 'Original S.A.' ? true : undefined),
        20_000,
        'the title restored',
      );
      const company = companiesOf(originator).find((c) => c.ORIGIN_ID === '1')!;
      assert.deepEqual(entries(company, 'PHONE'), ['+51 1 555 0300'], 'the phone is not added twice');
      assert.equal(companiesOf(originator).length, 2);
    } finally {
      await running.stop();
    }
  });
});
