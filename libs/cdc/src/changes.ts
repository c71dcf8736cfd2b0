import { hash } from 'node:crypto';
import { createEvent, type DomainEvent, type GlymsRowChangedV1 } from '@puente/contracts';

/** The three ways bitrix-sync reads the ERP's changes (`GLYMS_CDC_MODE`). */
export const CdcModes = ['logical', 'logtable', 'debezium'] as const;
export type CdcMode = (typeof CdcModes)[number];

/** One changed row, as any CDC source reads it, before it becomes an event. */
export interface RowChange {
  schema: string;
  table: string;
  op: 'created' | 'updated' | 'deleted';
  /** Primary-key columns and their values. */
  key: Record<string, unknown>;
  /** The row after the change (absent for deletes). */
  row?: Record<string, unknown>;
  /** The row or key before the change, when the source has it. */
  before?: Record<string, unknown>;
  /** Commit LSN (`logical`, `debezium`) or change-log id (`logtable`). */
  position: string;
  commitTime?: string;
}

/** A change ready to publish: the event and its `Nats-Msg-Id`. */
export interface ChangeMessage {
  event: DomainEvent;
  msgId: string;
}

/** A CDC relay: reads changes from its source and publishes them to `EVENTS`, confirming the source only after the ack. */
export interface CdcSource {
  readonly mode: CdcMode;
  start(): Promise<void>;
  stop(): Promise<void>;
}

const EVENT_TYPE = {
  created: 'glyms.row.created.v1',
  updated: 'glyms.row.updated.v1',
  deleted: 'glyms.row.deleted.v1',
} as const;

/** A JSON-safe copy of a column value: dates as ISO strings, bigints and numerics as strings, bytes as base64. */
export function jsonValue(value: unknown): unknown {
  // Most columns are text: returned before the checks for the rarer types.
  if (typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (value === undefined || value === null) return null;
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (typeof value === 'bigint') return value.toString();
  if (Buffer.isBuffer(value)) return value.toString('base64');
  if (Array.isArray(value)) return value.map(jsonValue);
  if (typeof value === 'object')
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, jsonValue(v)]));
  return value;
}

/** `jsonValue` of every column; columns whose value the source did not send (`undefined`) are left out. */
export function jsonRow(row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const column in row) {
    const value = row[column];
    if (value !== undefined) out[column] = jsonValue(value);
  }
  return out;
}

/** The key as one stable string (columns sorted): part of message ids and link keys. */
export function keyString(key: Record<string, unknown>): string {
  return Object.keys(key)
    .sort()
    .map((column) => `${column}=${String(jsonValue(key[column]))}`)
    .join(',');
}

/**
 * The message id of a change: the source position of the change itself (a WAL LSN, a change-log id,
 * a Debezium LSN), the table and the key. The same change read twice (a relay restarted before it
 * confirmed its source) is one message in the stream's duplicate window.
 */
export function changeMsgId(
  mode: CdcMode,
  changePosition: string,
  change: Pick<RowChange, 'schema' | 'table' | 'key'>,
): string {
  return `glyms:${mode}:${changePosition}:${change.schema}.${change.table}:${keyString(change.key)}`;
}

/** The domain event of a change (`glyms.row.<op>.v1`) and its message id. */
export function changeMessage(
  mode: CdcMode,
  change: RowChange,
  changePosition: string,
  source = 'urn:puente:bitrix-sync:cdc',
): ChangeMessage {
  const data: GlymsRowChangedV1 = {
    schema: change.schema,
    table: change.table,
    op: change.op,
    key: jsonRow(change.key),
    ...(change.row ? { row: jsonRow(change.row) } : {}),
    ...(change.before ? { before: jsonRow(change.before) } : {}),
    position: change.position,
    ...(change.commitTime ? { commitTime: change.commitTime } : {}),
    cdc: mode,
  };
  const msgId = changeMsgId(mode, changePosition, change);
  // The event id follows from the message id, so a change read twice is the same event even outside the duplicate window.
  const id = hash('sha256', msgId, 'hex').slice(0, 32);
  return {
    event: createEvent(EVENT_TYPE[change.op], data, {
      source,
      id,
      ...(change.commitTime ? { time: change.commitTime } : {}),
    }),
    msgId,
  };
}
