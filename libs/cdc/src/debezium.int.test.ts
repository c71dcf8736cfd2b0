import { randomInt } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka, logLevel, Partitioners, type Admin, type Producer } from 'kafkajs';
import { pino } from 'pino';
import { listDeadLetters, redriveDeadLetter, type Bus } from '@puente/bus';
import { connectTestBus, eventually, uniqueName } from '@puente/bus/testing';
import { StreamNames, type GlymsRowChangedV1 } from '@puente/contracts';
import { freePort, startDebeziumConnect } from '@puente/stack';
import { createTestGlymsDatabase, readEvents, type StoredEvent } from './testing/index.js';
import { DebeziumSource, type DebeziumSourceOptions } from './debezium.js';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const brokers = (process.env.KAFKA_BROKERS ?? '').split(',').filter(Boolean);
let bus: Bus;
let kafka: Kafka;
let admin: Admin;
let producer: Producer;

before(async () => {
  if (brokers.length === 0)
    throw new Error('KAFKA_BROKERS is not set: run tests through `npm test`, which starts Kafka');
  bus = await connectTestBus();
  kafka = new Kafka({ clientId: 'debezium-int-test', brokers, logLevel: logLevel.NOTHING });
  admin = kafka.admin();
  await admin.connect();
  producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
});
after(async () => {
  await producer.disconnect();
  await admin.disconnect();
  await bus.close();
});

/** The connector's topic of `public.cliente` under a prefix of this test's own, with two partitions (rows hash to one by key). */
async function clienteTopic(): Promise<{ prefix: string; topic: string }> {
  const prefix = uniqueName('glyms');
  const topic = `${prefix}.public.cliente`;
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true });
  return { prefix, topic };
}

const keySchema = {
  type: 'struct',
  name: 'glyms.public.cliente.Key',
  optional: false,
  fields: [{ type: 'int32', optional: false, field: 'id_cliente' }],
};
const valueSchema = {
  type: 'struct',
  optional: true,
  name: 'glyms.public.cliente.Value',
  fields: [
    { type: 'int32', optional: false, field: 'id_cliente' },
    { type: 'string', optional: false, field: 'razon_social' },
    { type: 'string', optional: true, field: 'email' },
    { type: 'string', optional: true, name: 'io.debezium.time.ZonedTimestamp', version: 1, field: 'updated_at' },
  ],
};
const envelopeSchema = {
  type: 'struct',
  optional: false,
  name: 'glyms.public.cliente.Envelope',
  version: 2,
  fields: [
    { ...valueSchema, field: 'before' },
    { ...valueSchema, field: 'after' },
    {
      type: 'struct',
      optional: false,
      name: 'io.debezium.connector.postgresql.Source',
      field: 'source',
      fields: [{ type: 'int64', optional: true, field: 'lsn' }],
    },
    { type: 'string', optional: false, field: 'op' },
    { type: 'int64', optional: true, field: 'ts_ms' },
  ],
};

interface Change {
  op: 'c' | 'u' | 'd';
  id: number;
  razonSocial?: string;
  email?: string;
}

/**
 * Debezium's records for a change, as its PostgreSQL connector writes them with the JSON converter
 * (schemas enabled, or bare): the change event, and for a delete the tombstone after it.
 */
function debeziumRecords(
  change: Change,
  lsn: number,
  options: { schemas: boolean },
): { key: string; value: string | null }[] {
  const row = {
    id_cliente: change.id,
    razon_social: change.razonSocial ?? `Cliente ${change.id}`,
    email: change.email ?? null,
    updated_at: '2024-03-01T10:15:30.123456Z',
  };
  const payload = {
    before: change.op === 'd' ? { id_cliente: change.id, razon_social: null, email: null, updated_at: null } : null,
    after: change.op === 'd' ? null : row,
    source: {
      version: '3.0.8.Final',
      connector: 'postgresql',
      name: 'glyms',
      ts_ms: Date.now(),
      snapshot: 'false',
      db: 'glyms',
      sequence: `["${lsn - 100}","${lsn}"]`,
      schema: 'public',
      table: 'cliente',
      txId: 1000 + lsn,
      lsn,
      xmin: null,
    },
    op: change.op,
    ts_ms: Date.now(),
    transaction: null,
  };
  const key = options.schemas
    ? JSON.stringify({ schema: keySchema, payload: { id_cliente: change.id } })
    : JSON.stringify({ id_cliente: change.id });
  const value = options.schemas ? JSON.stringify({ schema: envelopeSchema, payload }) : JSON.stringify(payload);
  return change.op === 'd'
    ? [
        { key, value },
        { key, value: null },
      ]
    : [{ key, value }];
}

/** LSNs of this test run, far apart from any other test's. */
let nextLsn = randomInt(1, 1_000_000) * 1_000_000;

async function produce(topic: string, changes: Change[], options = { schemas: true }): Promise<number> {
  const messages = changes.flatMap((change) => debeziumRecords(change, (nextLsn += 64), options));
  await producer.send({ topic, messages });
  return messages.length;
}

/** Ids no other test uses: the subject `evt.glyms.cliente.>` is shared with every `cliente` test of the run. */
const ids = (count: number): number[] => {
  const base = randomInt(1, 2_000_000) * 1_000;
  return Array.from({ length: count }, (_, i) => base + i);
};

const data = (e: StoredEvent) => e.event.data as GlymsRowChangedV1;

/** This test's Debezium events in `EVENTS`, read back by subject. */
async function eventsOf(rows: number[]): Promise<StoredEvent[]> {
  const wanted = new Set(rows);
  return (await readEvents(bus, 'evt.glyms.cliente.>')).filter(
    (e) => data(e).cdc === 'debezium' && wanted.has(data(e).key.id_cliente as number),
  );
}

/** Committed offsets of the group, per partition (-1: none). */
async function committed(groupId: string, topic: string): Promise<Record<number, string>> {
  const [offsets] = await admin.fetchOffsets({ groupId, topics: [topic] });
  return Object.fromEntries((offsets?.partitions ?? []).map((p) => [p.partition, p.offset]));
}

async function endOffsets(topic: string): Promise<Record<number, string>> {
  return Object.fromEntries((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, p.high]));
}

/**
 * Whether the group has committed every partition up to `end`. A partition no record went to (the keys
 * hash to either of the two) has nothing to commit: Kafka reports its offset as -1.
 */
async function committedUpTo(groupId: string, topic: string, end: Record<number, string>): Promise<boolean> {
  const offsets = await committed(groupId, topic);
  return Object.entries(end).every(
    ([partition, high]) => offsets[Number(partition)] === high || (high === '0' && offsets[Number(partition)] === '-1'),
  );
}

function relay(prefix: string, groupId: string, extra: Partial<DebeziumSourceOptions> = {}): DebeziumSource {
  return new DebeziumSource({
    bus,
    brokers,
    topicPrefix: prefix,
    tables: ['public.cliente'],
    groupId,
    logger,
    retryDelayMs: 100,
    ...extra,
  });
}

describe('bitrix-sync Debezium CDC relay', () => {
  test('inserts, updates and deletes arrive as glyms.row events once each and in order per row; a tombstone publishes nothing, an unreadable record goes to the DLQ', async () => {
    const { prefix, topic } = await clienteTopic();
    const [a, b, c] = ids(3) as [number, number, number];
    await produce(topic, [
      { op: 'c', id: a, razonSocial: 'Ferretería Andina SAC' },
      { op: 'c', id: b, razonSocial: 'Textiles del Sur EIRL' },
      { op: 'u', id: a, razonSocial: 'Ferretería Andina SAC', email: 'compras@andina.example' },
      { op: 'd', id: b },
    ]);
    // A record no Debezium connector would write, on the partition of row `c`, before its insert: it must not hold the partition back.
    await producer.send({
      topic,
      messages: [{ key: JSON.stringify({ id_cliente: c }), value: '{"not":"a change event"}' }],
    });
    await produce(topic, [{ op: 'c', id: c, razonSocial: 'Minera Quispe SA' }]);
    const groupId = uniqueName('bitrix-sync-');
    const source = relay(prefix, groupId);
    await source.start();
    try {
      const events = await eventually(
        async () => {
          const list = await eventsOf([a, b, c]);
          return list.length >= 5 && source.stats.records >= 7 ? list : undefined;
        },
        30_000,
        'five change events',
      );
      const summary = (id: number) =>
        events
          .filter((e) => data(e).key.id_cliente === id)
          .map((e) => `${e.subject}:${data(e).row?.email ?? data(e).row?.razon_social ?? '-'}`);
      assert.deepEqual(summary(a), [
        'evt.glyms.cliente.created:Ferretería Andina SAC',
        'evt.glyms.cliente.updated:compras@andina.example',
      ]);
      assert.deepEqual(summary(b), ['evt.glyms.cliente.created:Textiles del Sur EIRL', 'evt.glyms.cliente.deleted:-']);
      assert.deepEqual(summary(c), ['evt.glyms.cliente.created:Minera Quispe SA']);
      const deleted = events.find((e) => e.subject.endsWith('.deleted'))!;
      assert.deepEqual(data(deleted).key, { id_cliente: b });
      assert.equal(data(deleted).row, undefined);
      assert.match(data(deleted).position, /^[0-9A-F]+\/[0-9A-F]+$/);
      assert.ok(data(deleted).commitTime);
      assert.equal(events[0]!.event.type, 'glyms.row.created.v1');
      assert.equal(new Set(events.map((e) => e.msgId)).size, 5);
      assert.ok(events.every((e) => e.msgId?.startsWith('glyms:debezium:')));
      assert.deepEqual(
        { unparseable: source.stats.unparseable, skipped: source.stats.skipped },
        { unparseable: 1, skipped: 1 },
        'one unreadable record, one tombstone',
      );
      // The unreadable record is in the DLQ (stored before its offset was committed), and cannot be redriven.
      const consumer = `debezium-${groupId}`.replace(/[^A-Za-z0-9_-]/g, '_');
      const [letter, ...more] = await listDeadLetters(bus, { consumer });
      assert.equal(more.length, 0, 'one dead letter, even if the batch was read twice');
      assert.equal(letter?.originalStream, 'kafka');
      assert.equal(letter.originalSubject, `kafka.${topic}`);
      assert.equal(letter.errorCode, 'NOT_A_CHANGE_EVENT');
      const stored = await bus.jsm.streams.getMessage(StreamNames.DLQ, { seq: letter.id });
      assert.equal(new TextDecoder().decode(stored.data), '{"not":"a change event"}');
      assert.equal(stored.header.get('Puente-Kafka-Topic'), topic);
      assert.equal(stored.header.get('Puente-Kafka-Offset'), String(letter.originalSequence));
      await assert.rejects(redriveDeadLetter(bus, letter.id), /cannot be retried/);
      // Every record is committed, the unreadable one included.
      const end = await endOffsets(topic);
      await eventually(
        async () => ((await committedUpTo(groupId, topic, end)) ? true : undefined),
        30_000,
        'offsets committed up to the end',
      );
      assert.equal((await eventsOf([a, b, c])).length, 5);
    } finally {
      await source.stop();
    }
  });

  test('a batch whose first publish JetStream does not acknowledge is read again, and what was stored after it is stored again after it', async () => {
    const { prefix, topic } = await clienteTopic();
    const [row] = ids(1) as [number];
    // One row, so one partition: its insert and three updates in one batch.
    await produce(topic, [
      { op: 'c', id: row, razonSocial: 'v0' },
      ...[1, 2, 3].map((v): Change => ({ op: 'u', id: row, razonSocial: `v${v}` })),
    ]);
    let refused = 0;
    // The first batch: every change but the first is stored, then the publish fails (JetStream away for the first).
    const failing = new Proxy(bus, {
      get(target, prop, receiver) {
        if (prop !== 'publishEvents') return Reflect.get(target, prop, receiver) as unknown;
        return async (items: Parameters<Bus['publishEvents']>[0]) => {
          if (refused > 0) return target.publishEvents(items);
          refused++;
          await target.publishEvents(items.slice(1));
          throw new Error('simulated: no ack from JetStream for the first change');
        };
      },
    });
    const groupId = uniqueName('bitrix-sync-');
    const source = relay(prefix, groupId, { bus: failing });
    await source.start();
    try {
      const end = await endOffsets(topic);
      await eventually(
        async () => ((await committedUpTo(groupId, topic, end)) ? true : undefined),
        30_000,
        'offsets committed after the retry',
      );
    } finally {
      await source.stop();
    }
    const names = (await eventsOf([row])).map((e) => data(e).row?.razon_social);
    assert.deepEqual(
      names,
      ['v1', 'v2', 'v3', 'v0', 'v1', 'v2', 'v3'],
      'the batch stored again after the failed change: its last copies in order',
    );
  });

  test('a relay that dies after JetStream acknowledged a batch but before committing its offsets re-reads it on restart, and EVENTS keeps each change once', async () => {
    const { prefix, topic } = await clienteTopic();
    const rows = ids(6);
    const changes: Change[] = [
      ...rows.map((id): Change => ({ op: 'c', id })),
      ...rows.slice(0, 3).map((id): Change => ({ op: 'u', id, email: `r${id}@x.example` })),
      { op: 'd', id: rows[5]! },
    ];
    // The bare envelope (schemas.enable=false) this time.
    const records = await produce(topic, changes, { schemas: false });
    const groupId = uniqueName('bitrix-sync-');
    let crashes = 0;
    const first = relay(prefix, groupId, {
      faults: {
        beforeCommit: () => {
          crashes += 1;
          throw new Error('simulated crash between the ack and the offset commit');
        },
      },
    });
    await first.start();
    try {
      await eventually(
        async () => ((await eventsOf(rows)).length >= changes.length && crashes >= 2 ? true : undefined),
        30_000,
        'every change published and a crash before each commit',
      );
    } finally {
      await first.stop();
    }
    assert.ok(first.stats.retries >= 2);
    assert.ok(
      Object.values(await committed(groupId, topic)).every((offset) => offset === '-1'),
      'nothing was committed',
    );

    // The restarted relay reads everything again; the message ids make the second publication a no-op.
    const second = relay(prefix, groupId);
    await second.start();
    try {
      const end = await endOffsets(topic);
      await eventually(
        async () => ((await committedUpTo(groupId, topic, end)) ? true : undefined),
        30_000,
        'offsets committed after the restart',
      );
      assert.equal(second.stats.records, records, 'every record was read again');
      assert.equal(second.stats.published, changes.length);
    } finally {
      await second.stop();
    }
    const events = await eventsOf(rows);
    assert.equal(events.length, changes.length, 'six inserts, three updates and a delete, each stored once');
    assert.equal(new Set(events.map((e) => e.msgId)).size, events.length);

    // A third start resumes after the committed offsets: only the new change is read.
    const third = relay(prefix, groupId);
    await third.start();
    try {
      await produce(topic, [{ op: 'u', id: rows[0]!, razonSocial: 'Cambiado' }], { schemas: false });
      const last = await eventually(
        async () => (await eventsOf(rows)).find((e) => data(e).row?.razon_social === 'Cambiado'),
        30_000,
        'the change after the restart',
      );
      assert.equal(last.subject, 'evt.glyms.cliente.updated');
      assert.equal(third.stats.records, 1);
    } finally {
      await third.stop();
    }
    assert.equal((await eventsOf(rows)).length, changes.length + 1);
  });
});

describe('bitrix-sync Debezium CDC relay with a real Debezium PostgreSQL connector', () => {
  test('a snapshot row, then inserts, updates and deletes in public.cliente and a precise numeric price in public.servicio arrive as glyms.row events', async () => {
    const db = await createTestGlymsDatabase('glyms_dbz_');
    const slot = uniqueName('dbz_').toLowerCase();
    const prefix = uniqueName('glyms');
    const [old, fresh] = ids(2) as [number, number];
    const codigo = uniqueName('SRV-');
    await db.sql(
      `insert into public.cliente (id_cliente, razon_social, email) values ($1, 'Antes del snapshot SAC', 'antes@x.example')`,
      [old],
    );
    await db.sql(`insert into public.servicio (codigo, nombre, precio) values ($1, 'Nota de crédito', -12.5)`, [
      codigo,
    ]);
    const dir = mkdtempSync(join(process.env.PUENTE_TEST_DIR ?? tmpdir(), 'connect-'));
    const connect = await startDebeziumConnect({
      dir,
      brokers: brokers.join(','),
      restPort: await freePort(),
      log: (line) => logger.info(line),
      connector: {
        name: prefix,
        databaseUrl: db.url,
        topicPrefix: prefix,
        slotName: slot,
        tables: ['public.cliente', 'public.servicio'],
      },
    });
    const source = relay(prefix, uniqueName('bitrix-sync-'), { tables: ['public.cliente', 'public.servicio'] });
    try {
      await source.start();
      await db.sql(`insert into public.cliente (id_cliente, razon_social) values ($1, 'Nuevo Cliente EIRL')`, [fresh]);
      await db.sql(`update public.cliente set email = 'nuevo@x.example' where id_cliente = $1`, [fresh]);
      await db.sql(`delete from public.cliente where id_cliente = $1`, [old]);
      const events = await eventually(
        async () => {
          const list = await eventsOf([old, fresh]);
          return list.length >= 4 ? list : undefined;
        },
        60_000,
        'four cliente events from Debezium',
      );
      const summary = (id: number) =>
        events.filter((e) => data(e).key.id_cliente === id).map((e) => e.subject.split('.').pop());
      assert.deepEqual(summary(old), ['created', 'deleted']);
      assert.deepEqual(summary(fresh), ['created', 'updated']);
      const updated = events.find((e) => e.subject.endsWith('.updated'))!;
      assert.equal(data(updated).row?.email, 'nuevo@x.example');
      assert.match(String(data(updated).row?.updated_at), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
      assert.equal(JSON.stringify(events).includes('__debezium_unavailable_value'), false);
      assert.equal(new Set(events.map((e) => e.msgId)).size, events.length);
      const servicio = await eventually(
        async () => (await readEvents(bus, 'evt.glyms.servicio.>')).find((e) => data(e).row?.codigo === codigo),
        30_000,
        'the servicio snapshot row',
      );
      assert.equal(
        data(servicio).row?.precio,
        '-12.50',
        'numeric(12,2) in decimal.handling.mode=precise decodes exactly',
      );
      assert.equal(source.stats.unparseable, 0);
    } finally {
      await source.stop();
      await connect.process.stop();
      await db.drop();
    }
  });
});
