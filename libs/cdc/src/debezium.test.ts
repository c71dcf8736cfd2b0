import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { changeMessage } from './changes.js';
import {
  decodeConnectDecimal,
  DebeziumRecordError,
  formatDecimal,
  lsnText,
  parseDebeziumRecord,
  type ConnectSchema,
  type DebeziumRecord,
} from './debezium.js';

/** The columns of the test table as Debezium's JSON converter describes them (precise decimals, adaptive time precision). */
const columns: ConnectSchema[] = [
  { type: 'int32', optional: false, field: 'id_cliente' },
  { type: 'string', optional: false, field: 'razon_social' },
  { type: 'string', optional: true, field: 'email' },
  {
    type: 'bytes',
    optional: true,
    name: 'org.apache.kafka.connect.data.Decimal',
    version: 1,
    parameters: { scale: '2', 'connect.decimal.precision': '12' },
    field: 'saldo',
  },
  { type: 'string', optional: true, name: 'io.debezium.time.ZonedTimestamp', version: 1, field: 'updated_at' },
  { type: 'int64', optional: true, name: 'io.debezium.time.MicroTimestamp', version: 1, field: 'creado' },
  { type: 'int32', optional: true, name: 'io.debezium.time.Date', version: 1, field: 'alta' },
  { type: 'int64', optional: true, name: 'io.debezium.time.MicroTime', version: 1, field: 'hora' },
  { type: 'bytes', optional: true, field: 'logo' },
];
const rowSchema = (field: string): ConnectSchema => ({
  type: 'struct',
  fields: columns,
  optional: true,
  name: 'glyms.public.cliente.Value',
  field,
});
const envelopeSchema: ConnectSchema = {
  type: 'struct',
  name: 'glyms.public.cliente.Envelope',
  optional: false,
  fields: [
    rowSchema('before'),
    rowSchema('after'),
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
const keySchema: ConnectSchema = {
  type: 'struct',
  name: 'glyms.public.cliente.Key',
  optional: false,
  fields: [{ type: 'int32', optional: false, field: 'id_cliente' }],
};

/** 2024-03-01T10:15:30.000Z */
const COMMIT_MS = 1_709_288_130_000;
const LSN = 0x1_6b37_48d0; // 1/6B3748D0

function source(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    version: '3.0.8.Final',
    connector: 'postgresql',
    name: 'glyms',
    ts_ms: COMMIT_MS,
    snapshot: 'false',
    db: 'glyms',
    sequence: `["${LSN - 200}","${LSN}"]`,
    schema: 'public',
    table: 'cliente',
    txId: 771,
    lsn: LSN,
    xmin: null,
    ...overrides,
  };
}

interface Event {
  op: string;
  before?: Record<string, unknown> | null;
  after?: Record<string, unknown> | null;
  source?: Record<string, unknown>;
}

function payload(event: Event): Record<string, unknown> {
  return {
    before: event.before ?? null,
    after: event.after ?? null,
    source: event.source ?? source(),
    op: event.op,
    ts_ms: COMMIT_MS + 15,
    transaction: null,
  };
}

/** A record as the JSON converter writes it with `schemas.enable=true` (the default). */
function withSchema(
  event: Event,
  key: Record<string, unknown> | null = { id_cliente: 7 },
): { key: Buffer | null; value: Buffer } {
  return {
    key: key && Buffer.from(JSON.stringify({ schema: keySchema, payload: key })),
    value: Buffer.from(JSON.stringify({ schema: envelopeSchema, payload: payload(event) })),
  };
}

/** The same with `schemas.enable=false`: bare key and envelope. */
function bare(
  event: Event,
  key: Record<string, unknown> | null = { id_cliente: 7 },
): { key: Buffer | null; value: Buffer } {
  return { key: key && Buffer.from(JSON.stringify(key)), value: Buffer.from(JSON.stringify(payload(event))) };
}

function change(record: DebeziumRecord) {
  assert.equal(record.kind, 'change', `expected a change, got ${JSON.stringify(record)}`);
  return record.kind === 'change' ? record : assert.fail();
}

const row = {
  id_cliente: 7,
  razon_social: 'Ferretería Andina SAC',
  email: 'compras@andina.example',
  saldo: 'MDk=',
  updated_at: '2024-03-01T10:15:30.123456Z',
  creado: 1_709_288_130_123_456,
  alta: 19_783,
  hora: 36_930_123_456,
  logo: null,
};

describe('bitrix-sync Debezium record parsing', () => {
  test("an insert with the JSON converter's schema becomes a created change with decoded columns, the commit time and the LSN as position", () => {
    const parsed = change(parseDebeziumRecord(withSchema({ op: 'c', after: row })));
    assert.deepEqual(parsed.change, {
      schema: 'public',
      table: 'cliente',
      op: 'created',
      key: { id_cliente: 7 },
      row: {
        id_cliente: 7,
        razon_social: 'Ferretería Andina SAC',
        email: 'compras@andina.example',
        saldo: '123.45',
        updated_at: '2024-03-01T10:15:30.123456Z',
        creado: '2024-03-01T10:15:30.123456Z',
        alta: '2024-03-01',
        hora: '10:15:30.123456',
        logo: null,
      },
      position: '1/6B3748D0',
      commitTime: '2024-03-01T10:15:30.000Z',
    });
    assert.equal(parsed.changePosition, '1/6B3748D0:771:c');
  });

  test('a bare envelope (schemas.enable=false) is read the same way, values passing through as sent', () => {
    const parsed = change(parseDebeziumRecord(bare({ op: 'u', before: null, after: { ...row, saldo: '123.45' } })));
    assert.equal(parsed.change.op, 'updated');
    assert.deepEqual(parsed.change.key, { id_cliente: 7 });
    assert.equal(parsed.change.row?.saldo, '123.45');
    assert.equal(
      parsed.change.row?.creado,
      1_709_288_130_123_456,
      'without a schema a MicroTimestamp cannot be told from a number',
    );
    assert.equal(parsed.change.before, undefined, 'DEFAULT replica identity sends no before image of an update');
  });

  test('an update with a full before image carries it', () => {
    const parsed = change(
      parseDebeziumRecord(withSchema({ op: 'u', before: { ...row, email: 'antes@andina.example' }, after: row })),
    );
    assert.equal(parsed.change.before?.email, 'antes@andina.example');
    assert.equal(parsed.change.before?.saldo, '123.45');
    assert.equal(parsed.change.row?.email, 'compras@andina.example');
  });

  test('a snapshot read (op r) is a creation', () => {
    const parsed = change(
      parseDebeziumRecord(withSchema({ op: 'r', after: row, source: source({ snapshot: 'true', txId: null }) })),
    );
    assert.equal(parsed.change.op, 'created');
    assert.equal(parsed.changePosition, '1/6B3748D0:-:r');
  });

  test('a delete takes its row from before and its key from the Kafka key', () => {
    const parsed = change(
      parseDebeziumRecord(
        withSchema({
          op: 'd',
          before: {
            id_cliente: 7,
            razon_social: null,
            email: null,
            saldo: null,
            updated_at: null,
            creado: null,
            alta: null,
            hora: null,
            logo: null,
          },
          after: null,
        }),
      ),
    );
    assert.equal(parsed.change.op, 'deleted');
    assert.deepEqual(parsed.change.key, { id_cliente: 7 });
    assert.equal(parsed.change.row, undefined);
    assert.equal(parsed.change.before?.id_cliente, 7);
  });

  test('a record without a Kafka key takes its key from the configured key columns, and fails without them', () => {
    const record = withSchema({ op: 'd', before: { id_cliente: 9 } }, null);
    assert.deepEqual(
      change(parseDebeziumRecord(record, { keyColumns: { 'public.cliente': ['id_cliente'] } })).change.key,
      { id_cliente: 9 },
    );
    assert.throws(() => parseDebeziumRecord(record), DebeziumRecordError);
  });

  test("tombstones (null or empty value) are skipped, with or without the JSON converter's wrapper", () => {
    assert.deepEqual(parseDebeziumRecord({ key: Buffer.from('{"id_cliente":7}'), value: null }), {
      kind: 'skipped',
      reason: 'tombstone',
    });
    assert.deepEqual(parseDebeziumRecord({ key: Buffer.from('{"id_cliente":7}'), value: Buffer.alloc(0) }), {
      kind: 'skipped',
      reason: 'tombstone',
    });
    assert.deepEqual(parseDebeziumRecord({ key: null, value: '{"schema":null,"payload":null}' }), {
      kind: 'skipped',
      reason: 'tombstone',
    });
  });

  test('truncates and logical decoding messages are skipped, not relayed', () => {
    assert.deepEqual(parseDebeziumRecord(withSchema({ op: 't' }, null)), {
      kind: 'skipped',
      reason: 'truncate',
      table: 'public.cliente',
    });
    const message = {
      op: 'm',
      ts_ms: COMMIT_MS,
      source: source({ schema: '', table: '' }),
      message: { prefix: 'audit', content: 'aGVsbG8=' },
    };
    assert.equal(
      (parseDebeziumRecord({ key: null, value: JSON.stringify(message) }) as { reason?: string }).reason,
      'message',
    );
  });

  test('an unchanged TOASTed column (the placeholder) is dropped from the row, as text or as bytes', () => {
    const after = {
      ...row,
      email: '__debezium_unavailable_value',
      logo: Buffer.from('__debezium_unavailable_value').toString('base64'),
    };
    const parsed = change(parseDebeziumRecord(withSchema({ op: 'u', after })));
    assert.equal('email' in parsed.change.row!, false);
    assert.equal('logo' in parsed.change.row!, false);
    assert.equal(parsed.change.row?.razon_social, 'Ferretería Andina SAC');
    assert.equal(
      JSON.stringify(changeMessage('debezium', parsed.change, parsed.changePosition).event).includes(
        '__debezium_unavailable_value',
      ),
      false,
    );
    const custom = change(
      parseDebeziumRecord(withSchema({ op: 'u', after: { ...row, email: '<toast>' } }), {
        unavailableValue: '<toast>',
      }),
    );
    assert.equal('email' in custom.change.row!, false);
  });

  test('records that are not Debezium change events fail with a reason', () => {
    assert.throws(() => parseDebeziumRecord({ key: null, value: 'not json' }), /not JSON/);
    assert.throws(() => parseDebeziumRecord({ key: null, value: '{"hello":"world"}' }), /no op/);
    assert.throws(() => parseDebeziumRecord({ key: null, value: JSON.stringify({ op: 'c', after: row }) }), /source/);
    assert.throws(() => parseDebeziumRecord(withSchema({ op: 'c', after: null })), /without after/);
    assert.throws(
      () => parseDebeziumRecord({ key: Buffer.from('[1]'), value: JSON.stringify(payload({ op: 'c', after: row })) }),
      /key/,
    );
  });

  test('the same record read twice is one message id; another LSN or key is another', () => {
    const once = change(parseDebeziumRecord(withSchema({ op: 'c', after: row })));
    const again = change(parseDebeziumRecord(bare({ op: 'c', after: row })));
    const later = change(parseDebeziumRecord(withSchema({ op: 'u', after: row, source: source({ lsn: LSN + 64 }) })));
    const other = change(
      parseDebeziumRecord(withSchema({ op: 'c', after: { ...row, id_cliente: 8 } }, { id_cliente: 8 })),
    );
    const id = (r: typeof once) => changeMessage('debezium', r.change, r.changePosition).msgId;
    assert.equal(id(once), id(again));
    assert.notEqual(id(once), id(later));
    assert.notEqual(id(once), id(other));
    assert.equal(changeMessage('debezium', once.change, once.changePosition).event.type, 'glyms.row.created.v1');
  });
});

describe('bitrix-sync Debezium value decoding', () => {
  test("precise decimals decode from base64 two's complement with the schema's scale", () => {
    assert.equal(decodeConnectDecimal('MDk=', 2), '123.45');
    assert.equal(decodeConnectDecimal('z8c=', 2), '-123.45');
    assert.equal(decodeConnectDecimal('BQ==', 2), '0.05');
    assert.equal(decodeConnectDecimal('+w==', 2), '-0.05');
    assert.equal(decodeConnectDecimal('AA==', 2), '0.00');
    assert.equal(decodeConnectDecimal('AIA=', 0), '128', 'a leading zero byte keeps 0x80 positive');
    assert.equal(decodeConnectDecimal('gA==', 0), '-128');
    assert.equal(
      decodeConnectDecimal('AY7pD/bDc+DuTj8K0g==', 4),
      '12345678901234567890123456.7890',
      'beyond 2^53 stays exact',
    );
    assert.equal(formatDecimal(12n, -2), '1200');
    assert.throws(() => decodeConnectDecimal('***', 2), DebeziumRecordError);
  });

  test('a negative price and a variable-scale numeric arrive as exact decimal strings', () => {
    const schema: ConnectSchema = {
      ...envelopeSchema,
      fields: [
        {
          type: 'struct',
          optional: true,
          field: 'after',
          fields: [
            {
              type: 'bytes',
              optional: false,
              name: 'org.apache.kafka.connect.data.Decimal',
              parameters: { scale: '2' },
              field: 'precio',
            },
            {
              type: 'struct',
              optional: true,
              name: 'io.debezium.data.VariableScaleDecimal',
              field: 'factor',
              fields: [
                { type: 'int32', optional: false, field: 'scale' },
                { type: 'bytes', optional: false, field: 'value' },
              ],
            },
          ],
        },
      ],
    };
    const value = JSON.stringify({
      schema,
      payload: payload({
        op: 'c',
        after: { precio: 'z8c=', factor: { scale: 3, value: 'MDk=' } },
        source: source({ table: 'servicio' }),
      }),
    });
    const parsed = change(parseDebeziumRecord({ key: '{"id_servicio":1}', value }));
    assert.deepEqual(parsed.change.row, { precio: '-123.45', factor: '12.345' });
    assert.equal(parsed.change.table, 'servicio');
  });

  test('Debezium and Connect time types become ISO 8601 strings', () => {
    const cols: ConnectSchema[] = [
      { type: 'int64', name: 'io.debezium.time.Timestamp', field: 'ts' },
      { type: 'int64', name: 'io.debezium.time.MicroTimestamp', field: 'micro' },
      { type: 'int64', name: 'io.debezium.time.NanoTimestamp', field: 'nano' },
      { type: 'int64', name: 'org.apache.kafka.connect.data.Timestamp', field: 'connect_ts' },
      { type: 'string', name: 'io.debezium.time.ZonedTimestamp', field: 'zoned' },
      { type: 'int32', name: 'io.debezium.time.Date', field: 'date' },
      { type: 'int32', name: 'org.apache.kafka.connect.data.Date', field: 'connect_date' },
      { type: 'int32', name: 'io.debezium.time.Time', field: 'time' },
      { type: 'int64', name: 'io.debezium.time.MicroTime', field: 'micro_time' },
      { type: 'int64', name: 'io.debezium.time.MicroTimestamp', field: 'before_1970' },
      { type: 'int64', name: 'io.debezium.time.MicroTimestamp', field: 'infinity' },
      { type: 'array', items: { type: 'int32', name: 'io.debezium.time.Date' }, field: 'dates' },
    ];
    const schema: ConnectSchema = { type: 'struct', fields: [{ type: 'struct', field: 'after', fields: cols }] };
    const after = {
      ts: COMMIT_MS + 123,
      micro: 1_709_288_130_000_001,
      nano: 1_000_000_000_000_000_000,
      connect_ts: COMMIT_MS,
      zoned: '2024-03-01T05:15:30-05:00',
      date: 19_783,
      connect_date: 0,
      time: 36_930_123,
      micro_time: 36_930_000_001,
      before_1970: -1,
      infinity: 'LONG_MAX',
      dates: [19_783, 19_784],
    };
    // PostgreSQL's `infinity` arrives as Long.MAX_VALUE, which no JavaScript number literal holds exactly.
    const value = JSON.stringify({ schema, payload: payload({ op: 'c', after }) }).replace(
      '"LONG_MAX"',
      '9223372036854775807',
    );
    const parsed = change(parseDebeziumRecord({ key: '{"id":1}', value }));
    assert.deepEqual(parsed.change.row, {
      ts: '2024-03-01T10:15:30.123Z',
      micro: '2024-03-01T10:15:30.000001Z',
      nano: '2001-09-09T01:46:40.000000000Z',
      connect_ts: '2024-03-01T10:15:30.000Z',
      zoned: '2024-03-01T05:15:30-05:00',
      date: '2024-03-01',
      connect_date: '1970-01-01',
      time: '10:15:30.123',
      micro_time: '10:15:30.000001',
      before_1970: '1969-12-31T23:59:59.999999Z',
      infinity: Number('9223372036854775807'),
      dates: ['2024-03-01', '2024-03-02'],
    });
  });

  test('LSNs are written as PostgreSQL writes them', () => {
    assert.equal(lsnText(0x1_6b37_48d0), '1/6B3748D0');
    assert.equal(lsnText('23456'), '0/5BA0');
  });
});
