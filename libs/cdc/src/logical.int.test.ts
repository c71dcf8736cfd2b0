import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import type { Bus } from '@puente/bus';
import { connectTestBus, eventually, uniqueName } from '@puente/bus/testing';
import type { GlymsRowChangedV1 } from '@puente/contracts';
import { createCustomerTable, createTestGlymsDatabase, readEvents, type TestGlymsDatabase } from './testing/index.js';
import { CdcSetupError } from './cdcSetupError.js';
import { LogicalSource, type LogicalSourceOptions } from './logical.js';
import { lsnToBigInt } from './lsn.js';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
let bus: Bus;
let db: TestGlymsDatabase;

before(async () => {
  bus = await connectTestBus();
  db = await createTestGlymsDatabase();
});
after(async () => {
  await db.drop();
  await bus.close();
});

/** A customer table of its own per test, so its subject `evt.glyms.<table>.*` holds only this test's events. */
const customerTable = (): Promise<string> => createCustomerTable(db);

async function source(table: string, extra: Partial<LogicalSourceOptions> = {}): Promise<LogicalSource> {
  const slot = extra.slot ?? table;
  const kv = await bus.kv('glyms_cdc', { history: 1 });
  return new LogicalSource({
    bus,
    kv,
    databaseUrl: db.url,
    tables: [{ schema: 'public', table }],
    publication: `pub_${table}`,
    slot,
    logger,
    checkIntervalMs: 200,
    ...extra,
  });
}

const data = (e: { event: { data: unknown } }) => e.event.data as GlymsRowChangedV1;
/** Each value once, where its last copy stands. */
const lastPositions = <T>(values: T[]): T[] => values.filter((value, i) => values.lastIndexOf(value) === i);

describe('bitrix-sync logical CDC relay', () => {
  test('a relay stopped right after it starts (its stream still connecting) stops at once and leaves no replication connection open', async () => {
    const table = await customerTable();
    const walsenders = async () =>
      (
        await db.sql<{ n: number }>(
          `select count(*)::int as n from pg_stat_activity where datname = current_database() and backend_type = 'walsender'`,
        )
      )[0]!.n;
    for (let round = 0; round < 3; round++) {
      const relay = await source(table);
      await relay.start();
      const started = Date.now();
      await relay.stop();
      assert.ok(Date.now() - started < 5_000, `stopped in ${Date.now() - started} ms`);
    }
    // Before: a stop during the connect hung (its connect never settled); then the connection stayed open, unowned.
    await eventually(async () => ((await walsenders()) === 0 ? true : undefined), 5_000, 'no walsender left');
    await db.sql(`insert into public.${table} (razon_social) values ('Después')`);
    const relay = await source(table);
    await relay.start();
    try {
      await eventually(
        async () => ((await readEvents(bus, `evt.glyms.${table}.>`)).length === 1 ? true : undefined),
        15_000,
        'the row, once',
      );
    } finally {
      await relay.stop();
    }
  });

  test('with a publish window of 4, thousands of changes wait for room: none lost, none twice, in commit order, and the slot confirms past them', async () => {
    const table = await customerTable();
    const relay = await source(table, { window: 4 });
    await relay.start();
    try {
      // 1,500 single-row transactions, one of 1,000 rows, then 500 updates in one: many socket reads held back.
      await db.sql(
        `do $$ begin for i in 1..1500 loop insert into public.${table} (razon_social) values ('Fila ' || i); commit; end loop; end $$`,
      );
      await db.sql(`insert into public.${table} (razon_social) select 'Lote ' || i from generate_series(1, 1000) as i`);
      await db.sql(`update public.${table} set email = 'e' || id_cliente || '@x.example' where id_cliente <= 500`);
      const walAfter = (await db.sql<{ lsn: string }>('select pg_current_wal_insert_lsn()::text as lsn'))[0]!.lsn;
      const stored = async () =>
        (await bus.jsm.streams.info('EVENTS', { subjects_filter: `evt.glyms.${table}.>` })).state.subjects ?? {};
      await eventually(
        async () => (Object.values(await stored()).reduce((a, b) => a + b, 0) >= 3_000 ? true : undefined),
        60_000,
        '3,000 changes',
      );
      const events = await readEvents(bus, `evt.glyms.${table}.>`);
      assert.equal(events.length, 3_000);
      const created = events.filter((e) => e.subject.endsWith('.created')).map((e) => data(e).key.id_cliente);
      assert.deepEqual(
        created,
        Array.from({ length: 2_500 }, (_, i) => i + 1),
        'every insert once, in commit order',
      );
      assert.deepEqual(
        events.slice(2_500).map((e) => [e.subject.split('.').pop(), data(e).key.id_cliente]),
        Array.from({ length: 500 }, (_, i) => ['updated', i + 1]),
      );
      await eventually(
        () => (relay.confirmedLsn && lsnToBigInt(relay.confirmedLsn) >= lsnToBigInt(walAfter) ? true : undefined),
        15_000,
        'the slot confirmed past the last change',
      );
    } finally {
      await relay.stop();
    }
  });

  test('a publish JetStream does not acknowledge ends the stream: nothing after it is confirmed, the stream restarts at the last confirmed LSN, and what was stored after it is stored again after it', async () => {
    const table = await customerTable();
    // The 6th and 7th publishes fail without being stored (JetStream away, say), and the 21st: the first of
    // the second stream, which fails too; the rest go through.
    let publishes = 0;
    const refused: string[] = [];
    const failing = new Proxy(bus, {
      get(target, prop, receiver) {
        if (prop !== 'pipeline') return Reflect.get(target, prop, receiver) as unknown;
        return (window?: number) => {
          const real = target.pipeline(window);
          const refuse = (subject: string) => {
            publishes++;
            if (![6, 7, 21].includes(publishes)) return undefined;
            refused.push(subject);
            return Promise.reject(new Error('simulated: no ack from JetStream'));
          };
          return {
            tryPublish: (subject: string, payload: unknown, options: object) =>
              refuse(subject) ?? real.tryPublish(subject, payload, options),
            publish: async (subject: string, payload: unknown, options: object) => {
              const failed = refuse(subject);
              return failed ? { ack: failed } : real.publish(subject, payload, options);
            },
          };
        };
      },
    });
    const relay = await source(table, { bus: failing });
    await relay.start();
    try {
      await db.sql(
        `do $$ begin for i in 1..20 loop insert into public.${table} (razon_social) values ('Fila ' || i); commit; end loop; end $$`,
      );
      const walAfter = (await db.sql<{ lsn: string }>('select pg_current_wal_insert_lsn()::text as lsn'))[0]!.lsn;
      await eventually(
        () => (relay.confirmedLsn && lsnToBigInt(relay.confirmedLsn) >= lsnToBigInt(walAfter) ? true : undefined),
        20_000,
        'the slot confirmed past the last change',
      );
      assert.equal(refused.length, 3);
      // 8 to 20 were stored before 6 and 7 (pipelined); read again, they are stored again after them.
      const ids = (await readEvents(bus, `evt.glyms.${table}.>`)).map((e) => data(e).key.id_cliente as number);
      const lastCopies = lastPositions(ids);
      assert.deepEqual(
        lastCopies,
        Array.from({ length: 20 }, (_, i) => i + 1),
        'the last copy of each change, in commit order',
      );
      assert.equal(lastCopies.length, 20);
      assert.deepEqual(ids.slice(0, 5), [1, 2, 3, 4, 5], 'the changes confirmed before the failure, once');
    } finally {
      await relay.stop();
    }
  });

  test('rows that existed before the slot arrive through the initial load, then inserts, updates and deletes stream in commit order', async () => {
    const table = await customerTable();
    await db.sql(
      `insert into public.${table} (razon_social, email) values ('Antes Uno', 'a@x.example'), ('Antes Dos', 'b@x.example')`,
    );
    const relay = await source(table);
    await relay.start();
    try {
      await db.sql(`insert into public.${table} (razon_social, telefono) values ('Nuevo', '+51 1 555 0000')`);
      await db.sql(`update public.${table} set email = 'nuevo@x.example' where razon_social = 'Nuevo'`);
      await db.sql(`delete from public.${table} where razon_social = 'Antes Uno'`);
      const events = await eventually(
        async () => {
          const list = await readEvents(bus, `evt.glyms.${table}.>`);
          return list.length >= 5 ? list : undefined;
        },
        15_000,
        'five changes',
      );
      assert.deepEqual(
        events.map((e) => [
          e.subject.split('.').pop(),
          data(e).row?.razon_social ?? data(e).before?.razon_social ?? null,
          data(e).key.id_cliente,
        ]),
        [
          ['created', 'Antes Uno', 1],
          ['created', 'Antes Dos', 2],
          ['created', 'Nuevo', 3],
          ['updated', 'Nuevo', 3],
          ['deleted', null, 1],
        ],
      );
      assert.equal(data(events[3]!).row?.email, 'nuevo@x.example');
      assert.equal(data(events[0]!).cdc, 'logical');
      assert.match(data(events[2]!).position, /^[0-9A-F]+\/[0-9A-F]+$/);
      assert.ok(data(events[2]!).commitTime, 'streamed changes carry their commit time');
      assert.equal(new Set(events.map((e) => e.msgId)).size, events.length);
    } finally {
      await relay.stop();
    }
  });

  test('a relay that died during its initial load: the slot is kept and loaded again, and every change committed meanwhile still streams, once', async () => {
    const table = await customerTable();
    await db.sql(
      `insert into public.${table} (razon_social, email) values ('Uno', 'a@x.example'), ('Dos', 'b@x.example')`,
    );
    // given the state a relay leaves when it is killed between creating its slot and finishing the load:
    // the publication and the slot exist, the load's completion was never recorded in KV
    await db.sql(`create publication pub_${table} for table public.${table}`);
    await db.sql(`select pg_create_logical_replication_slot($1, 'pgoutput')`, [table]);
    // and changes committed after the slot was made
    await db.sql(`update public.${table} set razon_social = 'Uno v2' where id_cliente = 1`);
    await db.sql(`insert into public.${table} (razon_social) values ('Tres')`);
    await db.sql(`update public.${table} set razon_social = 'Uno v3' where id_cliente = 1`);
    // when a relay starts
    const relay = await source(table);
    await relay.start();
    try {
      // then the rows load again (as they are now), and the three changes follow in commit order
      const events = await eventually(
        async () => {
          const list = await readEvents(bus, `evt.glyms.${table}.>`);
          return list.length >= 6 ? list : undefined;
        },
        15_000,
        'three loaded rows and three changes',
      );
      const loaded = events.filter((e) => data(e).commitTime === undefined);
      const streamed = events.filter((e) => data(e).commitTime !== undefined);
      assert.deepEqual(loaded.map((e) => data(e).key.id_cliente).sort(), [1, 2, 3]);
      assert.deepEqual(
        streamed.map((e) => [e.subject.split('.').pop(), data(e).row?.razon_social]),
        [
          ['updated', 'Uno v2'],
          ['created', 'Tres'],
          ['updated', 'Uno v3'],
        ],
      );
      // every change is newer than the load it follows, so a consumer ordering by position ends at 'Uno v3'
      assert.ok(streamed.every((e) => lsnToBigInt(data(e).position) > lsnToBigInt(data(loaded[0]!).position)));
      assert.equal(new Set(events.map((e) => e.msgId)).size, events.length);
    } finally {
      await relay.stop();
    }
  });

  test('a relay that dies after JetStream acknowledged a transaction but before confirming its LSN re-reads it, and the stream keeps each change once', async () => {
    const table = await customerTable();
    let crashes = 0;
    const relay = await source(table, {
      faults: {
        afterPublish: () => {
          if (crashes++ < 2) throw new Error('simulated crash before the LSN is confirmed');
        },
      },
    });
    await relay.start();
    try {
      await db.sql(`insert into public.${table} (razon_social) select 'Cliente ' || g from generate_series(1, 20) g`);
      await db.sql(`update public.${table} set email = 'x' || id_cliente || '@x.example' where id_cliente <= 5`);
      await eventually(
        async () => ((await readEvents(bus, `evt.glyms.${table}.>`)).length >= 25 && crashes >= 3 ? true : undefined),
        20_000,
        'all changes relayed after two crashes',
      );
      await eventually(() => (relay.confirmedLsn && crashes >= 3 ? true : undefined), 10_000, 'the LSN confirmed');
    } finally {
      await relay.stop();
    }
    // A new process picks up from the confirmed LSN: nothing is published twice.
    const again = await source(table);
    await again.start();
    try {
      await db.sql(`update public.${table} set razon_social = 'Cambiado' where id_cliente = 20`);
      const events = await eventually(
        async () => {
          const list = await readEvents(bus, `evt.glyms.${table}.>`);
          return list.length >= 26 ? list : undefined;
        },
        15_000,
        'the change after the restart',
      );
      await new Promise((resolve) => setTimeout(resolve, 500));
      const final = await readEvents(bus, `evt.glyms.${table}.>`);
      assert.equal(final.length, 26, 'twenty inserts, five updates and one more update, each stored once');
      assert.equal(new Set(final.map((e) => e.msgId)).size, final.length);
      assert.equal(data(events.at(-1)!).row?.razon_social, 'Cambiado');
    } finally {
      await again.stop();
    }
  });

  test('an idle published table does not pin WAL: the slot confirms the server position while other tables change', async () => {
    const table = await customerTable();
    const relay = await source(table);
    await relay.start();
    try {
      const start = relay.confirmedLsn!;
      await db.sql('create table if not exists public.ruido (n int)');
      await db.sql('insert into public.ruido select generate_series(1, 5000)');
      const slot = async () =>
        (
          await db.sql<{ confirmed: string; behind: string }>(
            `select confirmed_flush_lsn::text as confirmed, pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::text as behind from pg_replication_slots where slot_name = $1`,
            [table],
          )
        )[0]!;
      await eventually(
        async () => ((await slot()).confirmed !== start ? true : undefined),
        15_000,
        'the slot to advance past the unrelated writes',
      );
      assert.equal((await readEvents(bus, `evt.glyms.${table}.>`)).length, 0);
    } finally {
      await relay.stop();
    }
  });

  test('a table without a primary key is refused at start with a message that says what to change', async () => {
    const table = uniqueName('sinpk_').toLowerCase();
    await db.sql(`create table public.${table} (nombre text)`);
    const relay = await source(table);
    await assert.rejects(
      relay.start(),
      (error: Error) =>
        error instanceof CdcSetupError &&
        /no primary key/.test(error.message) &&
        /REPLICA IDENTITY FULL/.test(error.message),
    );
  });
});
