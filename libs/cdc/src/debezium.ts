import { metrics } from '@opentelemetry/api';
import { Kafka, logLevel, type Consumer, type EachBatchPayload, type KafkaMessage, type LogEntry } from 'kafkajs';
import type { Logger } from 'pino';
import { z } from 'zod';
import { KAFKA_ORIGIN, publishDeadLetter, type Bus } from '@puente/bus';
import { changeMessage, type CdcSource, type ChangeMessage, type RowChange } from './changes.js';
import { RelayPublisher, resendPosition, type RelayUnit } from './relayPublisher.js';
import { parseTableName, type TableName } from './tableName.js';

/** What Debezium writes instead of an unchanged TOASTed column (`unavailable.value.placeholder`). */
export const DEBEZIUM_UNAVAILABLE_VALUE = '__debezium_unavailable_value';

/** The tables the relay follows when none are configured. */
export const DEFAULT_DEBEZIUM_TABLES = ['public.cliente', 'public.servicio'] as const;

/**
 * A Kafka Connect schema as the JSON converter writes it (`schemas.enable=true`): a type, an optional
 * semantic name (`org.apache.kafka.connect.data.Decimal`, `io.debezium.time.MicroTimestamp`, ...) with
 * its parameters, and for structs the fields, each naming itself in `field`.
 */
export interface ConnectSchema {
  type: string;
  optional?: boolean;
  name?: string;
  version?: number;
  parameters?: Record<string, string>;
  field?: string;
  fields?: ConnectSchema[];
  items?: ConnectSchema;
}

const ConnectSchema: z.ZodType<ConnectSchema> = z.lazy(() =>
  z.looseObject({
    type: z.string(),
    optional: z.boolean().optional(),
    name: z.string().optional(),
    version: z.number().optional(),
    parameters: z.record(z.string(), z.string()).optional(),
    field: z.string().optional(),
    fields: z.array(ConnectSchema).optional(),
    items: ConnectSchema.optional(),
  }),
);

const Row = z.record(z.string(), z.unknown());

/** The `source` block of a Debezium PostgreSQL change event (the fields the relay relies on). */
const SourceInfo = z.looseObject({
  /** The LSN of the change (a number in JSON; a string from some converters). */
  lsn: z.union([z.number().int().nonnegative(), z.string().regex(/^\d+$/)]),
  /** The commit time in the database, epoch milliseconds. */
  ts_ms: z.number(),
  txId: z.union([z.number(), z.string()]).nullish(),
  schema: z.string().min(1),
  table: z.string().min(1),
});

/** Debezium's value envelope (`before`, `after`, `source`, `op`) for a row change. */
const RowEnvelope = z.looseObject({
  op: z.enum(['c', 'r', 'u', 'd']),
  before: Row.nullish(),
  after: Row.nullish(),
  source: SourceInfo,
});

/** Only `op` is read before deciding what kind of record it is. */
const AnyEnvelope = z.looseObject({ op: z.string() });

/** A record that is not a Debezium change event the relay understands; `reason` says why. */
export class DebeziumRecordError extends Error {
  readonly code = 'DEBEZIUM_RECORD';
}

/** What one Kafka record of a Debezium topic comes to. */
export type DebeziumRecord =
  | {
      kind: 'change';
      change: RowChange;
      /** The identity of the change itself, for its message id: LSN, transaction and op. */
      changePosition: string;
    }
  | {
      kind: 'skipped';
      /** `tombstone`: the null value after a delete (for log compaction); `truncate` and `message`: not row changes. */
      reason: 'tombstone' | 'truncate' | 'message';
      table?: string;
    };

export interface ParseOptions {
  /** Key columns per `schema.table`, used only when a record comes without a Kafka key. */
  keyColumns?: Readonly<Record<string, readonly string[]>>;
  /** The connector's `unavailable.value.placeholder` (default `__debezium_unavailable_value`). */
  unavailableValue?: string;
}

type Bytes = Buffer | Uint8Array | string | null | undefined;

function text(bytes: Bytes): string | undefined {
  if (bytes === null || bytes === undefined) return undefined;
  const value = typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('utf8');
  return value.length === 0 ? undefined : value;
}

function parseJson(source: string, what: string): unknown {
  try {
    return JSON.parse(source) as unknown;
  } catch (error) {
    throw new DebeziumRecordError(`the ${what} is not JSON (${(error as Error).message})`);
  }
}

/**
 * The JSON converter with `schemas.enable=true` wraps every key and value as `{schema, payload}`;
 * without it the payload comes bare. A bare row never has exactly these two members with a Connect
 * schema (or null) under `schema`, so the shape tells them apart.
 */
export function unwrapConnectJson(json: unknown): { schema?: ConnectSchema; payload: unknown } {
  if (json !== null && typeof json === 'object' && !Array.isArray(json)) {
    const keys = Object.keys(json);
    if (keys.length === 2 && keys.includes('schema') && keys.includes('payload')) {
      const { schema, payload } = json as { schema: unknown; payload: unknown };
      if (schema === null) return { payload };
      const parsed = ConnectSchema.safeParse(schema);
      if (parsed.success) return { schema: parsed.data, payload };
    }
  }
  return { payload: json };
}

/** Field schemas of a struct schema by field name. */
function fieldSchemas(schema: ConnectSchema | undefined): Map<string, ConnectSchema> {
  return new Map((schema?.fields ?? []).filter((f) => f.field !== undefined).map((f) => [f.field!, f]));
}

/** The row schema (columns) of an envelope schema: the `after` field's struct, or `before`'s. */
function rowSchema(envelope: ConnectSchema | undefined): Map<string, ConnectSchema> {
  const fields = fieldSchemas(envelope);
  return fieldSchemas(fields.get('after') ?? fields.get('before'));
}

/** A big-endian two's complement integer (Connect's `Decimal` unscaled value). */
function twosComplement(bytes: Buffer): bigint {
  if (bytes.length === 0) return 0n;
  const unsigned = BigInt(`0x${bytes.toString('hex')}`);
  return bytes[0]! & 0x80 ? unsigned - (1n << BigInt(bytes.length * 8)) : unsigned;
}

/** `unscaled × 10^-scale` as a decimal string, exactly (`-12345`, 2 → `-123.45`). */
export function formatDecimal(unscaled: bigint, scale: number): string {
  const negative = unscaled < 0n;
  const digits = (negative ? -unscaled : unscaled).toString();
  if (scale <= 0) return `${negative ? '-' : ''}${digits}${'0'.repeat(-scale)}`;
  const padded = digits.padStart(scale + 1, '0');
  return `${negative ? '-' : ''}${padded.slice(0, -scale)}.${padded.slice(-scale)}`;
}

/** A `decimal.handling.mode=precise` value: base64 of the unscaled bytes, scale from the schema. */
export function decodeConnectDecimal(base64: string, scale: number): string {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(base64))
    throw new DebeziumRecordError(`a Decimal value is not base64: ${base64.slice(0, 40)}`);
  return formatDecimal(twosComplement(Buffer.from(base64, 'base64')), scale);
}

const UNITS_PER_SECOND = { milli: 1_000n, micro: 1_000_000n, nano: 1_000_000_000n } as const;
type Unit = keyof typeof UNITS_PER_SECOND;

/** Whole seconds and the fraction (as zero-padded digits) of a count of `unit`s, floor-divided so times before 1970 work. */
function split(value: number, unit: Unit): { seconds: bigint; fraction: string } {
  const per = UNITS_PER_SECOND[unit];
  const total = BigInt(Math.trunc(value));
  let seconds = total / per;
  let rest = total % per;
  if (rest < 0n) {
    seconds -= 1n;
    rest += per;
  }
  return { seconds, fraction: rest.toString().padStart(per.toString().length - 1, '0') };
}

/** An instant as ISO 8601 in UTC, keeping the source's sub-second precision (`2024-03-01T10:15:30.123456Z`). */
function isoTimestamp(value: number, unit: Unit): string | number {
  const { seconds, fraction } = split(value, unit);
  const date = new Date(Number(seconds) * 1000);
  // `infinity` timestamps arrive as huge sentinels: pass them through rather than failing the record.
  if (Number.isNaN(date.getTime())) return value;
  const iso = date.toISOString();
  // Years outside 0000-9999 have no plain ISO form (`+010000-...`): keep the number.
  if (iso.length !== 24) return value;
  return `${iso.slice(0, 19)}.${fraction}Z`;
}

/** A time of day (`10:15:30.123456`). */
function isoTime(value: number, unit: Unit): string {
  const { seconds, fraction } = split(value, unit);
  const s = Number(seconds);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${pad(Math.floor(s / 3600))}:${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}.${fraction}`;
}

/** A calendar date from days since 1970-01-01 (`2024-03-01`). */
function isoDate(days: number): string | number {
  const date = new Date(days * 86_400_000);
  return Number.isNaN(date.getTime()) ? days : date.toISOString().slice(0, 10);
}

/**
 * A column value as the event carries it, decoded by the column's Connect schema: exact decimal
 * strings for `Decimal` and `VariableScaleDecimal`, ISO 8601 for Debezium's and Connect's time types.
 * `timestamp without time zone` arrives as the wall-clock time counted as if it were UTC; it is
 * written with `Z`, as the logical relay writes it on a server running in UTC. Without a schema
 * (`schemas.enable=false`) values pass through as sent: a precise decimal is then undecodable, which
 * is why such connectors should use `decimal.handling.mode=string`.
 */
export function decodeConnectValue(value: unknown, schema: ConnectSchema | undefined): unknown {
  if (value === null || value === undefined || !schema) return value;
  const name = schema.name;
  switch (name) {
    case 'org.apache.kafka.connect.data.Decimal': {
      const scale = Number(schema.parameters?.scale ?? '0');
      if (typeof value === 'string') return decodeConnectDecimal(value, scale);
      // The JSON converter's `decimal.format=NUMERIC` writes the number itself.
      if (typeof value === 'number') return value.toFixed(scale);
      break;
    }
    case 'io.debezium.data.VariableScaleDecimal': {
      const parsed = z.object({ scale: z.number().int(), value: z.string() }).safeParse(value);
      if (parsed.success) return decodeConnectDecimal(parsed.data.value, parsed.data.scale);
      break;
    }
    case 'io.debezium.time.Date':
    case 'org.apache.kafka.connect.data.Date':
      if (typeof value === 'number') return isoDate(value);
      break;
    case 'io.debezium.time.Time':
    case 'org.apache.kafka.connect.data.Time':
      if (typeof value === 'number') return isoTime(value, 'milli');
      break;
    case 'io.debezium.time.MicroTime':
      if (typeof value === 'number') return isoTime(value, 'micro');
      break;
    case 'io.debezium.time.NanoTime':
      if (typeof value === 'number') return isoTime(value, 'nano');
      break;
    case 'io.debezium.time.Timestamp':
    case 'org.apache.kafka.connect.data.Timestamp':
      if (typeof value === 'number') return isoTimestamp(value, 'milli');
      break;
    case 'io.debezium.time.MicroTimestamp':
      if (typeof value === 'number') return isoTimestamp(value, 'micro');
      break;
    case 'io.debezium.time.NanoTimestamp':
      if (typeof value === 'number') return isoTimestamp(value, 'nano');
      break;
    default:
      // ZonedTimestamp, ZonedTime and the Iso* types are ISO strings already; the rest pass through.
      break;
  }
  if (schema.type === 'array' && Array.isArray(value))
    return value.map((item) => decodeConnectValue(item, schema.items));
  if (schema.type === 'struct' && typeof value === 'object' && !Array.isArray(value))
    return decodeRow(value as Record<string, unknown>, fieldSchemas(schema), undefined);
  return value;
}

/** True for the TOAST placeholder in any of its encodings (text, or base64 of it for byte columns). */
function isUnavailable(value: unknown, placeholder: string): boolean {
  if (typeof value === 'string') return value === placeholder || value === Buffer.from(placeholder).toString('base64');
  if (Array.isArray(value)) return value.length > 0 && value.every((item) => isUnavailable(item, placeholder));
  return false;
}

/** A row with every column decoded; columns holding the TOAST placeholder are left out, never forwarded. */
function decodeRow(
  row: Record<string, unknown>,
  columns: Map<string, ConnectSchema>,
  placeholder: string | undefined,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [column, value] of Object.entries(row)) {
    if (placeholder !== undefined && isUnavailable(value, placeholder)) continue;
    out[column] = decodeConnectValue(value, columns.get(column));
  }
  return out;
}

/** Debezium's numeric LSN in PostgreSQL's text form (`16/B374D848`), as the logical relay writes positions. */
export function lsnText(lsn: number | string): string {
  const value = BigInt(lsn);
  return `${(value >> 32n).toString(16).toUpperCase()}/${(value & 0xffffffffn).toString(16).toUpperCase()}`;
}

const OPS = { c: 'created', r: 'created', u: 'updated', d: 'deleted' } as const;

/**
 * Parses one record of a Debezium PostgreSQL topic (key and value as the JSON converter writes them,
 * with or without schemas) into a row change, or says why it carries none: a tombstone (null value),
 * a truncate (`t`) or a logical decoding message (`m`). Throws `DebeziumRecordError` for anything
 * else it cannot read. `r` (a snapshot read) is a creation. The key comes from the Kafka key, or
 * from the configured key columns of the row when the record has no key.
 */
export function parseDebeziumRecord(record: { key: Bytes; value: Bytes }, options: ParseOptions = {}): DebeziumRecord {
  const valueText = text(record.value);
  if (valueText === undefined) return { kind: 'skipped', reason: 'tombstone' };
  const value = unwrapConnectJson(parseJson(valueText, 'value'));
  if (value.payload === null) return { kind: 'skipped', reason: 'tombstone' };
  const head = AnyEnvelope.safeParse(value.payload);
  if (!head.success) throw new DebeziumRecordError('the value is not a Debezium envelope (no op)');
  if (head.data.op === 't' || head.data.op === 'm') {
    const source = z
      .looseObject({ schema: z.string(), table: z.string() })
      .safeParse((value.payload as { source?: unknown }).source);
    return {
      kind: 'skipped',
      reason: head.data.op === 't' ? 'truncate' : 'message',
      ...(source.success ? { table: `${source.data.schema}.${source.data.table}` } : {}),
    };
  }
  const parsed = RowEnvelope.safeParse(value.payload);
  if (!parsed.success)
    throw new DebeziumRecordError(
      `the value is not a Debezium row change: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'envelope'}: ${i.message}`).join('; ')}`,
    );
  const envelope = parsed.data;
  const placeholder = options.unavailableValue ?? DEBEZIUM_UNAVAILABLE_VALUE;
  const columns = rowSchema(value.schema);
  const after = envelope.after ? decodeRow(envelope.after, columns, placeholder) : undefined;
  const before = envelope.before ? decodeRow(envelope.before, columns, placeholder) : undefined;
  const op = OPS[envelope.op];
  if (op === 'deleted' ? !before : !after)
    throw new DebeziumRecordError(`a ${envelope.op} event without ${op === 'deleted' ? 'before' : 'after'}`);
  const { schema, table } = envelope.source;
  const key = keyOf(record.key, `${schema}.${table}`, (op === 'deleted' ? before : after)!, options);
  const position = lsnText(envelope.source.lsn);
  const change: RowChange = {
    schema,
    table,
    op,
    key,
    ...(op !== 'deleted' ? { row: after } : {}),
    ...(before ? { before } : {}),
    position,
    commitTime: new Date(envelope.source.ts_ms).toISOString(),
  };
  // One WAL record can hold several rows (COPY's multi-insert; a snapshot's reads share one LSN): the key
  // tells those apart in the message id. Transaction and op make the identity hold even where a snapshot
  // read and a streamed change of one row meet at the same LSN.
  const txId = envelope.source.txId ?? '-';
  return { kind: 'change', change, changePosition: `${position}:${txId}:${envelope.op}` };
}

function keyOf(
  keyBytes: Bytes,
  table: string,
  row: Record<string, unknown>,
  options: ParseOptions,
): Record<string, unknown> {
  const keyText = text(keyBytes);
  if (keyText !== undefined) {
    const key = unwrapConnectJson(parseJson(keyText, 'key'));
    const parsed = Row.safeParse(key.payload);
    if (!parsed.success) throw new DebeziumRecordError('the key is not a struct of key columns');
    return decodeRow(parsed.data, fieldSchemas(key.schema), undefined);
  }
  const columns = options.keyColumns?.[table];
  if (!columns?.length)
    throw new DebeziumRecordError(
      `a change of ${table} without a Kafka key (a table without primary key?): configure its key columns`,
    );
  const key: Record<string, unknown> = {};
  for (const column of columns) {
    if (!(column in row)) throw new DebeziumRecordError(`key column ${column} of ${table} is not in the row`);
    key[column] = row[column];
  }
  return key;
}

/** The topic Debezium writes a table's changes to: `<topic.prefix>.<schema>.<table>`. */
export function debeziumTopic(prefix: string, table: TableName): string {
  return `${prefix}.${table.schema}.${table.table}`;
}

const meter = metrics.getMeter('puente-bitrix-sync');
const relayedCounter = meter.createCounter('puente_cdc_changes_relayed', {
  description: 'Row changes the CDC relay published to EVENTS',
});
const unparseableCounter = meter.createCounter('puente_cdc_debezium_unparseable', {
  description: 'Kafka records of Debezium topics that could not be read as change events (dead-lettered)',
});

export interface DebeziumSourceOptions {
  bus: Bus;
  /** Kafka bootstrap servers (`KAFKA_BROKERS`). */
  brokers: readonly string[];
  /** The connector's `topic.prefix` (`DEBEZIUM_TOPIC_PREFIX`). */
  topicPrefix: string;
  /** `schema.table` names to follow (default `public.cliente`, `public.servicio`). */
  tables?: readonly string[];
  /** The Kafka consumer group: where the committed offsets live. */
  groupId: string;
  logger: Logger;
  clientId?: string;
  /** Where a new group starts: the oldest retained record (default), or only new ones. */
  fromBeginning?: boolean;
  /** Key columns per `schema.table` for records without a Kafka key. */
  keyColumns?: Readonly<Record<string, readonly string[]>>;
  /** The connector's `unavailable.value.placeholder`, when it is not Debezium's default. */
  unavailableValue?: string;
  /** Wait before re-reading a batch whose events JetStream did not acknowledge (default 1 s). */
  retryDelayMs?: number;
  /**
   * Test hook standing in for a crash: called after JetStream acknowledged a batch's events and
   * before its offsets are committed. Throwing leaves the offsets uncommitted and re-reads the batch.
   */
  faults?: { beforeCommit?: (batch: { topic: string; partition: number; lastOffset: string }) => Promise<void> | void };
}

/** Counts since the relay started. */
export interface DebeziumSourceStats {
  /** Kafka records read (a re-read record counts again). */
  records: number;
  /** Change events handed to JetStream and acknowledged. */
  published: number;
  /** Tombstones, truncates and logical messages. */
  skipped: number;
  /** Records that were not Debezium change events: dead-lettered (DLQ), never retried. */
  unparseable: number;
  /** Batches that were read again because publishing or committing failed. */
  retries: number;
}

/** kafkajs' log entries into the service's pino logger. */
function kafkaLogger(logger: Logger) {
  return () =>
    ({ level, log }: LogEntry): void => {
      const { message, ...rest } = log;
      if (level === logLevel.ERROR) logger.error({ kafkajs: rest }, message);
      else if (level === logLevel.WARN) logger.warn({ kafkajs: rest }, message);
      else logger.debug({ kafkajs: rest }, message);
    };
}

/**
 * `GLYMS_CDC_MODE=debezium`: Debezium's change events from Kafka (`<prefix>.<schema>.<table>`), relayed
 * to `EVENTS`. Offsets are committed by hand, per batch, only after JetStream acknowledged every event
 * of it: a crash anywhere before the commit re-reads the batch, and the message ids (LSN, transaction,
 * op, table and key) make each change one message. A record that is not a change event is logged with
 * its topic, partition and offset, counted, and stored in the DLQ before its offset is committed, so it
 * never holds its partition back and is never skipped unseen.
 */
export class DebeziumSource implements CdcSource {
  readonly mode = 'debezium' as const;
  private consumer: Consumer | undefined;
  private stopping = false;
  /**
   * Publishes each batch pipelined, and after a failed publish stores the partition's records up to the
   * batch's last offset again when read again, under new message ids, so the last copy of each change is
   * in order (`RelayPublisher`); scopes are partitions.
   */
  private readonly publisher: RelayPublisher<RelayUnit>;
  private wake: (() => void) | undefined;
  private readonly topics: Map<string, TableName>;
  private readonly counts: DebeziumSourceStats = { records: 0, published: 0, skipped: 0, unparseable: 0, retries: 0 };

  constructor(private readonly options: DebeziumSourceOptions) {
    if (options.brokers.length === 0) throw new Error('no Kafka broker: set KAFKA_BROKERS');
    if (!options.topicPrefix) throw new Error('no topic prefix: set DEBEZIUM_TOPIC_PREFIX');
    const tables = (options.tables ?? DEFAULT_DEBEZIUM_TABLES).map(parseTableName);
    if (tables.length === 0) throw new Error('no table to relay');
    this.topics = new Map(tables.map((t) => [debeziumTopic(options.topicPrefix, t), t]));
    this.publisher = new RelayPublisher({ bus: options.bus });
  }

  /** What the relay has done so far. */
  get stats(): Readonly<DebeziumSourceStats> {
    return { ...this.counts };
  }

  /** Records skipped because they could not be read (also the `puente_cdc_debezium_unparseable` counter). */
  get unparseableRecords(): number {
    return this.counts.unparseable;
  }

  /** Joins the consumer group, subscribes to the tables' topics and starts relaying in the background. */
  async start(): Promise<void> {
    this.stopping = false;
    const kafka = new Kafka({
      clientId: this.options.clientId ?? 'puente-bitrix-sync',
      brokers: [...this.options.brokers],
      logLevel: logLevel.WARN,
      logCreator: kafkaLogger(this.options.logger),
    });
    await this.ensureTopics(kafka);
    // A fetch waits up to maxWaitTimeInMs for records, and leaving the group waits for that fetch: 1 s keeps a stop quick.
    const consumer = kafka.consumer({ groupId: this.options.groupId, maxWaitTimeInMs: 1_000 });
    this.consumer = consumer;
    await consumer.connect();
    await consumer.subscribe({ topics: [...this.topics.keys()], fromBeginning: this.options.fromBeginning ?? true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: (payload) => this.relayBatch(consumer, payload),
    });
    this.options.logger.info(
      { topics: [...this.topics.keys()], groupId: this.options.groupId },
      'relaying Debezium change events',
    );
  }

  /**
   * Debezium creates a table's topic with its first event, so a table that has not changed yet has
   * none, and a consumer cannot subscribe to a topic that does not exist. Creating the missing ones
   * (the broker's default partitions and replicas) lets the relay start before the connector writes.
   */
  private async ensureTopics(kafka: Kafka): Promise<void> {
    const admin = kafka.admin();
    await admin.connect();
    try {
      const existing = new Set(await admin.listTopics());
      const missing = [...this.topics.keys()].filter((topic) => !existing.has(topic));
      if (missing.length === 0) return;
      this.options.logger.info({ topics: missing }, 'creating the topics Debezium has not written yet');
      await admin
        .createTopics({ topics: missing.map((topic) => ({ topic })), waitForLeaders: true })
        .catch((error: Error) => {
          throw new Error(
            `the Debezium topics ${missing.join(', ')} do not exist and could not be created (${error.message}): create them, or let the connector write a first change`,
            { cause: error },
          );
        });
    } finally {
      await admin.disconnect();
    }
  }

  /** Leaves the group (a batch in progress finishes or is abandoned uncommitted) and disconnects. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    const consumer = this.consumer;
    this.consumer = undefined;
    await consumer?.disconnect();
  }

  private async relayBatch(
    consumer: Consumer,
    { batch, resolveOffset, heartbeat, isRunning, isStale, commitOffsetsIfNecessary }: EachBatchPayload,
  ): Promise<void> {
    const { topic, partition } = batch;
    const where = `${topic}:${partition}`;
    const messages: ChangeMessage[] = [];
    const unreadable: { message: KafkaMessage; error: Error }[] = [];
    let last: KafkaMessage | undefined;
    for (const message of batch.messages) {
      if (!isRunning() || isStale() || this.stopping) break;
      this.counts.records += 1;
      last = message;
      const record = this.parse(topic, partition, message, unreadable);
      if (record?.kind === 'change')
        messages.push(
          changeMessage(
            'debezium',
            record.change,
            resendPosition(record.changePosition, this.publisher.resendRound(where, message.offset)),
          ),
        );
    }
    if (!last) return;
    try {
      // Resolves once every change of the batch is stored; a smaller batch failing again keeps the first failure's range.
      await this.publisher.publishBatch(where, messages, BigInt(last.offset));
      this.counts.published += messages.length;
      // An unreadable record is stored in the DLQ before its offset is committed: never skipped unseen.
      for (const { message, error } of unreadable) await this.deadLetter(topic, partition, message, error);
      relayedCounter.add(messages.length, { mode: 'debezium', phase: 'stream' });
      await this.options.faults?.beforeCommit?.({ topic, partition, lastOffset: last.offset });
      resolveOffset(last.offset);
      // The committed offset is the next one to read.
      await commitOffsetsIfNecessary({
        topics: [{ topic, partitions: [{ partition, offset: (BigInt(last.offset) + 1n).toString() }] }],
      });
      await heartbeat();
    } catch (error) {
      if (this.stopping) return;
      this.counts.retries += 1;
      this.options.logger.warn(
        { err: (error as Error).message, topic, partition, offset: batch.firstOffset() },
        'could not relay a batch of Debezium events; reading it again',
      );
      // Without a commit, the next fetch must still start at the batch: rewind this partition explicitly.
      const first = batch.firstOffset();
      if (first !== null) consumer.seek({ topic, partition, offset: first });
      await this.pause(this.options.retryDelayMs ?? 1_000);
    }
  }

  /**
   * A record that is not a change event, in the DLQ: its value as the body, its key, topic, partition
   * and offset in headers, on `dlq.debezium-<group>.kafka.<topic>`; the message id is its place in
   * Kafka, so a batch read again stores it once.
   */
  private async deadLetter(topic: string, partition: number, message: KafkaMessage, error: Error): Promise<void> {
    const consumer = `debezium-${this.options.groupId}`.replace(/[^A-Za-z0-9_-]/g, '_');
    const subject = `kafka.${topic.replace(/[^A-Za-z0-9_.-]/g, '_')}`;
    await publishDeadLetter(
      this.options.bus,
      {
        consumer,
        subject,
        stream: KAFKA_ORIGIN,
        position: Number(message.offset),
        data: message.value ?? new Uint8Array(),
        headers: undefined,
        deliveries: 1,
        error: {
          code: error instanceof DebeziumRecordError ? 'NOT_A_CHANGE_EVENT' : 'UNREADABLE',
          message: error.message,
        },
        msgId: `dlq:${consumer}:${topic}:${partition}:${message.offset}`,
      },
      {
        'Puente-Kafka-Topic': topic,
        'Puente-Kafka-Partition': String(partition),
        'Puente-Kafka-Offset': String(message.offset),
        ...(message.key ? { 'Puente-Kafka-Key': Buffer.from(message.key).toString('base64') } : {}),
      },
    );
  }

  /** One record as a change, or undefined when it carries none (skipped, or unreadable: noted in `unreadable`). */
  private parse(
    topic: string,
    partition: number,
    message: KafkaMessage,
    unreadable: { message: KafkaMessage; error: Error }[],
  ): DebeziumRecord | undefined {
    const where = { topic, partition, offset: message.offset };
    try {
      const record = parseDebeziumRecord(message, {
        keyColumns: this.options.keyColumns,
        unavailableValue: this.options.unavailableValue,
      });
      if (record.kind === 'skipped') {
        this.counts.skipped += 1;
        if (record.reason === 'truncate')
          this.options.logger.warn(
            { ...where, table: record.table },
            'TRUNCATE is not relayed: its rows were not deleted one by one; run `npx puente bitrix sync companies` if Bitrix24 must follow',
          );
        else if (record.reason === 'message')
          this.options.logger.info(where, 'skipping a logical decoding message: not a row change');
        return record;
      }
      const expected = this.topics.get(topic);
      if (expected && (expected.schema !== record.change.schema || expected.table !== record.change.table)) {
        throw new DebeziumRecordError(
          `a change of ${record.change.schema}.${record.change.table} on the topic of ${expected.schema}.${expected.table}`,
        );
      }
      return record;
    } catch (error) {
      this.counts.unparseable += 1;
      unparseableCounter.add(1, { topic });
      // The record's content may hold personal data: the log names where it is, and why, not what it says.
      this.options.logger.error(
        { ...where, err: (error as Error).message },
        'a Kafka record is not a Debezium change event: it goes to the DLQ',
      );
      unreadable.push({ message, error: error as Error });
      return undefined;
    }
  }

  /** Waits `ms`, or less when the relay stops meanwhile. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      if (this.stopping) return resolve();
      const timer = setTimeout(done, ms);
      this.wake = done;
    });
  }
}
