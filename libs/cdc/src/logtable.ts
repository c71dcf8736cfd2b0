import pg from 'pg';
import type { Logger } from 'pino';
import { SpanKind, withSpan, type Bus } from '@puente/bus';
import type { DomainEvent } from '@puente/contracts';
import { changeMessage, type CdcSource, type RowChange } from './changes.js';
import { CdcSetupError } from './cdcSetupError.js';
import type { TableName } from './tableName.js';

export interface LogTableSourceOptions {
  bus: Bus;
  databaseUrl: string;
  logger: Logger;
  /** The trigger-era change log (default `f_cliente.sync_log_bitrix24`). */
  logTable?: TableName;
  /** The customer table its `id_cliente` points to (default `public.cliente`). */
  customerTable?: TableName;
  /** Wait between polls when the log had no more `PENDING` rows (default 1 s). */
  pollMs?: number;
  /** Log rows taken per transaction (default 200). */
  batch?: number;
}

const LOG_DEFAULT: TableName = { schema: 'f_cliente', table: 'sync_log_bitrix24' };
const CUSTOMER_DEFAULT: TableName = { schema: 'public', table: 'cliente' };

const qualified = (t: TableName) => `${pg.escapeIdentifier(t.schema)}.${pg.escapeIdentifier(t.table)}`;

/** What the change log's `operation_type` says (the trigger writes TG_OP: INSERT, UPDATE, DELETE). */
function opOf(operation: string, rowExists: boolean): RowChange['op'] {
  if (!rowExists) return 'deleted';
  return /^(i|insert|c|create)$/i.test(operation.trim()) ? 'created' : 'updated';
}

interface LogRow {
  log_id: number;
  id_cliente: number;
  operation_type: string;
  change_timestamp: Date | null;
  row: Record<string, unknown> | null;
}

/**
 * `GLYMS_CDC_MODE=logtable`, for installs that already have the trigger and change-log table of the
 * old sync script: takes `PENDING` rows with `FOR UPDATE SKIP LOCKED` (never `log_id > last`: ids
 * commit out of order), publishes each with the customer's current row, and marks them `QUEUED` in the
 * same transaction, after JetStream acknowledged them. A crash before the commit leaves them
 * `PENDING`; their next publication has the same message ids. Outcomes are written back later by
 * `recordOutcome` (`SUCCESS` or `ERROR`, `processed_timestamp`, `error_message`), as existing installs expect.
 */
export class LogTableSource implements CdcSource {
  readonly mode = 'logtable' as const;
  private readonly pool: pg.Pool;
  private stopping = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private readonly logTable: TableName;
  private readonly customerTable: TableName;

  constructor(private readonly options: LogTableSourceOptions) {
    this.pool = new pg.Pool({ connectionString: options.databaseUrl, max: 3 });
    this.pool.on('error', (error) => options.logger.warn({ err: error.message }, 'ERP connection error'));
    this.logTable = options.logTable ?? LOG_DEFAULT;
    this.customerTable = options.customerTable ?? CUSTOMER_DEFAULT;
  }

  async start(): Promise<void> {
    for (const t of [this.logTable, this.customerTable]) {
      const { rowCount } = await this.pool.query(
        'select 1 from information_schema.tables where table_schema = $1 and table_name = $2',
        [t.schema, t.table],
      );
      if (!rowCount)
        throw new CdcSetupError(
          `table ${t.schema}.${t.table} does not exist in the ERP database; logtable mode needs the change-log table of the trigger-based setup (docs/bitrix.md)`,
        );
    }
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.loop;
    await this.pool.end().catch(() => undefined);
  }

  private async run(): Promise<void> {
    let backoffMs = 500;
    while (!this.stopping) {
      try {
        const taken = await this.takeBatch();
        backoffMs = 500;
        if (taken === (this.options.batch ?? 200)) continue;
        await this.sleep(this.options.pollMs ?? 1_000);
      } catch (error) {
        this.options.logger.warn({ err: (error as Error).message }, 'could not relay the change log; retrying');
        await this.sleep(backoffMs);
        backoffMs = Math.min(backoffMs * 2, 30_000);
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      // A stop that came while a batch was being taken has already called the previous wake.
      if (this.stopping) return resolve();
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** One transaction: claim PENDING rows, publish them, mark them QUEUED. Returns how many were taken. */
  async takeBatch(): Promise<number> {
    const client = await this.pool.connect();
    try {
      await client.query('begin');
      const { rows } = await client.query<LogRow>(
        `select l.log_id, l.id_cliente, l.operation_type, l.change_timestamp, case when c.id_cliente is null then null else to_jsonb(c.*) end as row
           from ${qualified(this.logTable)} l left join ${qualified(this.customerTable)} c on c.id_cliente = l.id_cliente
          where l.sync_status = 'PENDING'
          order by l.log_id
          limit $1
          for update of l skip locked`,
        [this.options.batch ?? 200],
      );
      if (rows.length === 0) {
        await client.query('commit');
        return 0;
      }
      const messages = rows.map((r) =>
        changeMessage(
          'logtable',
          {
            schema: this.customerTable.schema,
            table: this.customerTable.table,
            op: opOf(r.operation_type, r.row !== null),
            key: { id_cliente: r.id_cliente },
            ...(r.row ? { row: r.row } : {}),
            position: String(r.log_id),
            ...(r.change_timestamp ? { commitTime: r.change_timestamp.toISOString() } : {}),
          },
          `log${r.log_id}`,
        ),
      );
      await withSpan(
        'glyms.cdc publish',
        {
          kind: SpanKind.PRODUCER,
          attributes: {
            'puente.cdc.mode': 'logtable',
            'messaging.system': 'nats',
            'messaging.batch.message_count': messages.length,
          },
        },
        () => this.options.bus.publishEvents(messages),
      );
      await client.query(
        `update ${qualified(this.logTable)} set sync_status = 'QUEUED' where log_id = any($1::int[])`,
        [rows.map((r) => r.log_id)],
      );
      await client.query('commit');
      return rows.length;
    } catch (error) {
      await client.query('rollback').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  /**
   * Writes a company outcome back to the log rows it covers: `SUCCESS`, or `ERROR` with the message
   * when the failure is final. A failure that will be retried leaves the rows `QUEUED`.
   */
  async recordOutcome(event: DomainEvent): Promise<void> {
    if (event.type !== 'bitrix.entity.synced.v1' && event.type !== 'bitrix.entity.failed.v1') return;
    if (event.data.entity !== 'company' || event.data.cdc !== 'logtable') return;
    const ids = (event.data.sourcePositions ?? []).map(Number).filter((n) => Number.isInteger(n));
    if (ids.length === 0) return;
    if (event.type === 'bitrix.entity.failed.v1' && event.data.retryable) return;
    const [status, message] =
      event.type === 'bitrix.entity.synced.v1'
        ? ['SUCCESS', null]
        : ['ERROR', `${event.data.error.code}: ${event.data.error.message}`];
    await this.pool.query(
      `update ${qualified(this.logTable)} set sync_status = $1, processed_timestamp = $2, error_message = $3 where log_id = any($4::int[]) and sync_status in ('QUEUED', 'ERROR')`,
      [status, new Date(event.data.at), message, ids],
    );
  }
}
