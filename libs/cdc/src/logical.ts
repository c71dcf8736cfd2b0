import { setTimeout as sleep } from 'node:timers/promises';
import { metrics } from '@opentelemetry/api';
import type { KV } from 'nats';
import pg from 'pg';
import { LogicalReplicationService, PgoutputPlugin, type Pgoutput } from 'pg-logical-replication';
import type { Logger } from 'pino';
import { context, trace, SpanKind, SpanStatusCode, type Context, type Span } from '@opentelemetry/api';
import type { Bus } from '@puente/bus';
import { changeMessage, type CdcSource, type RowChange } from './changes.js';
import { CdcSetupError } from './cdcSetupError.js';
import { lsnToBigInt, normalizeLsn, previousLsn } from './lsn.js';
import { RelayPublisher, resendPosition, type RelayPublisherHooks, type RelayUnit } from './relayPublisher.js';
import type { TableName } from './tableName.js';

/** A slot or publication name PostgreSQL accepts unquoted: lower-case letters, digits, `_`. */
const SLOT_NAME = /^[a-z0-9_]{1,63}$/;
/** The replication connection's connect timeout: a server that does not answer fails the attempt (and a stop waits no longer). */
const CONNECT_TIMEOUT_MS = 10_000;

export interface LogicalSourceOptions {
  bus: Bus;
  /** Where the relay remembers that the initial load of its slot is done. */
  kv: KV;
  databaseUrl: string;
  tables: readonly TableName[];
  publication: string;
  slot: string;
  logger: Logger;
  /** Warn when the slot holds back more WAL than this (default 256 MiB). */
  lagWarnBytes?: number;
  /** How often the slot's lag is measured and an idle stream asks the server for its position (default 10 s). */
  checkIntervalMs?: number;
  /** Changes in flight to JetStream at once, across transactions (default 1,024). */
  window?: number;
  /** Longest wait before a durable LSN is confirmed to PostgreSQL (default 50 ms; status updates are batched). */
  confirmEveryMs?: number;
  /**
   * Test hooks standing in for a crash: called after a transaction's events were acknowledged by
   * JetStream and before its LSN is confirmed to PostgreSQL. Throwing ends the stream there.
   */
  faults?: { afterPublish?: (commitLsn: string) => Promise<void> | void };
}

/** What the relay remembers in KV per slot. */
interface SlotState {
  slot: string;
  database: string;
  consistentPoint: string;
  loadedAt: string;
  rows: number;
}

/**
 * A transaction being read, then, once committed, waiting for its changes to be stored: its end LSN is
 * confirmed when every publish of it and of every earlier transaction is acknowledged (`RelayPublisher`).
 */
interface RelayedTransaction extends RelayUnit {
  commitLsn: string;
  commitTime: string;
  /** The span its changes' traces hang from, and the context its publishes run in (made once). */
  span: Span;
  context: Context;
  /** The LSN after its commit record, set when the commit is read. */
  end?: string;
}

const tracer = trace.getTracer('puente-bitrix-sync');

const meter = metrics.getMeter('puente-bitrix-sync');
const relayedCounter = meter.createCounter('puente_cdc_changes_relayed', {
  description: 'Row changes the CDC relay published to EVENTS',
});
const commitLag = meter.createHistogram('puente_cdc_commit_to_ack_ms', {
  description: "From a transaction's commit in PostgreSQL to JetStream's ack of its last change",
  unit: 'ms',
});
const slotLagGauge = meter.createObservableGauge('puente_cdc_slot_lag_bytes', {
  description: 'WAL the replication slot holds back (current LSN minus confirmed flush LSN)',
  unit: 'By',
});

/**
 * `GLYMS_CDC_MODE=logical`: PostgreSQL logical replication with `pgoutput`, through a publication and a
 * slot of its own (both created when missing). The first start creates the slot with an exported
 * snapshot and publishes every existing row as read in that snapshot, then streams from the slot's
 * consistent point: no gap, no overlap. A transaction's LSN is confirmed to PostgreSQL only after
 * JetStream acknowledged all of its changes; a crash in between replays the transaction, whose message
 * ids (change LSN + table + key) make it one delivery.
 */
export class LogicalSource implements CdcSource {
  readonly mode = 'logical' as const;
  private stopping = false;
  /** Aborted by stop(): ends a backoff wait. */
  private readonly halt = new AbortController();
  /** Settles once the current stream has started replicating, or failed to. */
  private settling: Promise<void> = Promise.resolve();
  /** Resolved by stop() once it has ended the stream: the loop stops waiting for a subscribe that may never settle. */
  private givenUp!: () => void;
  private readonly gaveUp = new Promise<void>((resolve) => (this.givenUp = resolve));
  private loop: Promise<void> | undefined;
  private service: LogicalReplicationService | undefined;
  /** Messages read while one waits for room in the publish window, in order (undefined: none waits). */
  private held: { lsn: string; message: Pgoutput.Message }[] | undefined;
  /** The publish window, the confirmation of transactions in commit order, and the resend after a failed publish. */
  private readonly publisher: RelayPublisher<RelayedTransaction>;
  /** The last LSN sent to PostgreSQL as flushed, and when. */
  private reported: string | undefined;
  private reportedAt = 0;
  private reportTimer: NodeJS.Timeout | undefined;
  /** The last LSN confirmed to the server (everything before it is in JetStream). */
  private confirmed: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lagBytes: number | undefined;
  private lagWarnedAt = 0;
  private keyColumns = new Map<string, string[]>();
  private readonly observeLag = (result: { observe(value: number, attributes?: Record<string, string>): void }) => {
    if (this.lagBytes !== undefined) result.observe(this.lagBytes, { slot: this.options.slot });
  };

  constructor(private readonly options: LogicalSourceOptions) {
    if (!SLOT_NAME.test(options.slot))
      throw new CdcSetupError(
        `GLYMS_CDC_SLOT ${options.slot} is not a valid slot name (lower-case letters, digits and _ only)`,
      );
    if (!SLOT_NAME.test(options.publication))
      throw new CdcSetupError(
        `GLYMS_CDC_PUBLICATION ${options.publication} is not a valid name (lower-case letters, digits and _ only)`,
      );
    if (options.tables.length === 0) throw new CdcSetupError('no table to relay: set GLYMS_CDC_TABLES');
    this.publisher = new RelayPublisher({
      bus: options.bus,
      window: options.window ?? 1_024,
      positionOf: (tx) => lsnToBigInt(tx.commitLsn),
    });
  }

  /** Prepares the database (publication, slot, initial load when the slot is new) and starts streaming in the background. */
  async start(): Promise<void> {
    const client = new pg.Client({ connectionString: this.options.databaseUrl });
    // A server that goes away rejects the query in flight; the client's own error event must not crash the process.
    client.on('error', () => undefined);
    await client.connect();
    try {
      await this.checkTables(client);
      await this.ensurePublication(client);
      await this.ensureSlot(client);
    } finally {
      await client.end();
    }
    slotLagGauge.addCallback(this.observeLag);
    this.timer = setInterval(() => void this.check(), this.options.checkIntervalMs ?? 10_000).unref();
    this.loop = this.stream();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.halt.abort();
    clearInterval(this.timer);
    slotLagGauge.removeCallback(this.observeLag);
    // A pg client ended while it connects never settles its connect() and may still open the connection,
    // then left unowned (and, holding no error listener yet, able to crash the process later): the
    // stream being set up is let start (or fail) first, within the connection timeout.
    await Promise.race([this.settling, sleep(CONNECT_TIMEOUT_MS + 1_000, undefined, { ref: false })]);
    await this.service?.stop().catch(() => undefined);
    this.givenUp();
    await this.loop;
  }

  /** The WAL the slot holds back, as last measured. */
  get slotLagBytes(): number | undefined {
    return this.lagBytes;
  }

  /** The last LSN confirmed to PostgreSQL by this process. */
  get confirmedLsn(): string | undefined {
    return this.confirmed;
  }

  private qualified(t: TableName): string {
    return `${pg.escapeIdentifier(t.schema)}.${pg.escapeIdentifier(t.table)}`;
  }

  /** Every table exists and can publish updates and deletes: otherwise those statements would fail on the ERP itself. */
  private async checkTables(client: pg.Client): Promise<void> {
    for (const t of this.options.tables) {
      const { rows } = await client.query<{ identity: string; keys: string[] | null }>(
        `select c.relreplident as identity,
                (select array_agg(a.attname::text order by array_position(i.indkey, a.attnum))
                   from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
                  where i.indrelid = c.oid and i.indisprimary) as keys
           from pg_class c join pg_namespace n on n.oid = c.relnamespace
          where n.nspname = $1 and c.relname = $2 and c.relkind in ('r', 'p')`,
        [t.schema, t.table],
      );
      const row = rows[0];
      if (!row)
        throw new CdcSetupError(`table ${t.schema}.${t.table} does not exist in the ERP database (GLYMS_CDC_TABLES)`);
      if (row.identity === 'n')
        throw new CdcSetupError(
          `table ${t.schema}.${t.table} has REPLICA IDENTITY NOTHING: its updates and deletes cannot be published; run ALTER TABLE ${t.schema}.${t.table} REPLICA IDENTITY DEFAULT (with a primary key) or FULL`,
        );
      if (row.identity === 'd' && !row.keys?.length)
        throw new CdcSetupError(
          `table ${t.schema}.${t.table} has no primary key: once published, UPDATE and DELETE on it would fail; add a primary key or run ALTER TABLE ${t.schema}.${t.table} REPLICA IDENTITY FULL`,
        );
      this.keyColumns.set(`${t.schema}.${t.table}`, row.keys ?? []);
    }
  }

  private async ensurePublication(client: pg.Client): Promise<void> {
    const { publication, tables } = this.options;
    const existing = await client.query('select 1 from pg_publication where pubname = $1', [publication]);
    if (existing.rowCount === 0) {
      await client.query(
        `create publication ${publication} for table ${tables.map((t) => this.qualified(t)).join(', ')}`,
      );
      this.options.logger.info(
        { publication, tables: tables.map((t) => `${t.schema}.${t.table}`) },
        'created publication',
      );
      return;
    }
    const { rows } = await client.query<{ schemaname: string; tablename: string }>(
      'select schemaname, tablename from pg_publication_tables where pubname = $1',
      [publication],
    );
    const missing = tables.filter((t) => !rows.some((r) => r.schemaname === t.schema && r.tablename === t.table));
    if (missing.length > 0) {
      await client.query(
        `alter publication ${publication} add table ${missing.map((t) => this.qualified(t)).join(', ')}`,
      );
      this.options.logger.info(
        { publication, added: missing.map((t) => `${t.schema}.${t.table}`) },
        'added tables to the publication',
      );
    }
  }

  private stateKey(database: string): string {
    return `${this.options.slot}.${Buffer.from(database).toString('hex')}`;
  }

  /**
   * Reuses the slot when its initial load completed. A slot whose load was cut short (the process died
   * during it) is kept and loaded again. No slot, or one PostgreSQL invalidated: creates it and loads
   * every row from its snapshot.
   */
  private async ensureSlot(client: pg.Client): Promise<void> {
    const { slot, kv, logger } = this.options;
    const database = (await client.query<{ db: string }>('select current_database() as db')).rows[0]!.db;
    const key = this.stateKey(database);
    const { rows } = await client.query<{
      database: string;
      wal_status: string | null;
      active_pid: number | null;
      confirmed_flush_lsn: string | null;
    }>('select database, wal_status, active_pid, confirmed_flush_lsn from pg_replication_slots where slot_name = $1', [
      slot,
    ]);
    const existing = rows[0];
    if (existing && existing.database !== database)
      throw new CdcSetupError(
        `replication slot ${slot} belongs to database ${existing.database}; choose another GLYMS_CDC_SLOT`,
      );
    const entry = await kv.get(key);
    const state = entry?.value.length ? entry.json<SlotState>() : undefined;
    if (existing && existing.wal_status !== 'lost' && state) {
      this.confirmed = existing.confirmed_flush_lsn ?? undefined;
      logger.info(
        { slot, confirmedFlushLsn: existing.confirmed_flush_lsn, loadedAt: state.loadedAt },
        'resuming from the replication slot',
      );
      return;
    }
    if (existing && existing.active_pid !== null)
      throw new CdcSetupError(
        `replication slot ${slot} is in use by process ${existing.active_pid}; is another relay running?`,
      );
    let loaded: SlotState;
    if (existing && existing.wal_status !== 'lost' && existing.confirmed_flush_lsn) {
      // The first load was cut short. The slot has confirmed nothing yet, so it still stands at its
      // consistent point and holds every change since; dropping it would lose those changes (only the
      // rows' newest state would be loaded again). Its exported snapshot died with the process that made
      // it, so the rows are read as they are now, labelled with that point: a row the first attempt
      // published has the same message id and is not stored twice. The stream then starts at the point,
      // so every change since follows in order, each newer (by LSN) than the loaded rows.
      logger.warn(
        { slot, confirmedFlushLsn: existing.confirmed_flush_lsn },
        "the slot's initial load never completed: loading it again, then streaming from the slot",
      );
      loaded = await this.load(database, normalizeLsn(existing.confirmed_flush_lsn));
    } else {
      if (existing) {
        logger.warn(
          { slot, walStatus: existing.wal_status },
          existing.wal_status === 'lost'
            ? 'the replication slot was invalidated (WAL removed): recreating it and loading every row again'
            : 'the replication slot has no confirmed position: recreating it and loading every row again',
        );
        await client.query('select pg_drop_replication_slot($1)', [slot]);
      }
      await kv.delete(key).catch(() => undefined);
      loaded = await this.createSlotAndLoad(database);
    }
    await kv.put(key, JSON.stringify(loaded));
    this.confirmed = loaded.consistentPoint;
  }

  /** Creates the slot with an exported snapshot and publishes every row of every table as read in it. */
  private async createSlotAndLoad(database: string): Promise<SlotState> {
    const { slot, logger, databaseUrl } = this.options;
    const replication = new pg.Client({ connectionString: databaseUrl, replication: 'database' } as pg.ClientConfig);
    replication.on('error', () => undefined);
    await replication.connect();
    try {
      const created = (
        await replication.query<{ consistent_point: string; snapshot_name: string }>(
          `CREATE_REPLICATION_SLOT ${slot} LOGICAL pgoutput (SNAPSHOT 'export')`,
        )
      ).rows[0]!;
      const consistentPoint = normalizeLsn(created.consistent_point);
      if (!/^[0-9A-F-]+$/i.test(created.snapshot_name))
        throw new Error(`unexpected snapshot name ${created.snapshot_name}`);
      logger.info({ slot, consistentPoint }, 'created replication slot; loading existing rows from its snapshot');
      // The snapshot is valid while the replication connection stays idle, which it does until the load ends.
      return await this.load(database, consistentPoint, created.snapshot_name);
    } finally {
      await replication.end().catch(() => undefined);
    }
  }

  /** Publishes every row of every table as `created` at `position`, read in one snapshot (the exported one, when given). */
  private async load(database: string, position: string, snapshot?: string): Promise<SlotState> {
    const { slot, bus, logger, databaseUrl } = this.options;
    const reader = new pg.Client({ connectionString: databaseUrl });
    reader.on('error', () => undefined);
    await reader.connect();
    try {
      await reader.query('begin isolation level repeatable read read only');
      if (snapshot) await reader.query(`set transaction snapshot '${snapshot}'`);
      let rows = 0;
      for (const t of this.options.tables) {
        const keys = this.keyColumns.get(`${t.schema}.${t.table}`) ?? [];
        await reader.query(`declare initial_load no scroll cursor for select * from ${this.qualified(t)}`);
        for (;;) {
          const page = await reader.query<Record<string, unknown>>('fetch 1000 from initial_load');
          if (page.rows.length === 0) break;
          const messages = page.rows.map((row) =>
            changeMessage(
              'logical',
              {
                schema: t.schema,
                table: t.table,
                op: 'created',
                key: pick(row, keys),
                row,
                position,
              },
              `snapshot@${position}`,
            ),
          );
          await bus.publishEvents(messages);
          rows += messages.length;
          relayedCounter.add(messages.length, { mode: 'logical', phase: 'load' });
        }
        await reader.query('close initial_load');
      }
      await reader.query('commit');
      logger.info({ slot, rows }, 'initial load published');
      return { slot, database, consistentPoint: position, loadedAt: new Date().toISOString(), rows };
    } finally {
      await reader.end().catch(() => undefined);
    }
  }

  /** Streams from the slot until stopped, reconnecting with backoff after any failure. */
  private async stream(): Promise<void> {
    let backoffMs = 500;
    while (!this.stopping) {
      const service = new LogicalReplicationService(
        { connectionString: this.options.databaseUrl, connectionTimeoutMillis: CONNECT_TIMEOUT_MS },
        // Manual acknowledgements only: the library's automatic ones (and its timer) confirm LSNs before they are durable.
        // No library flow control: its queue awaits every message's listeners (a promise chain per message);
        // messages are handled as they are read, and a full publish window pauses the socket (`hold`).
        { acknowledge: { auto: false, timeoutSeconds: 0 }, flowControl: { enabled: false } },
      );
      this.service = service;
      this.abandon(this.publisher.restart(() => service === this.service && !service.isStop(), this.hooks(service)));
      this.reported = this.confirmed;
      service.on('data', (lsn: string, message: Pgoutput.Message) => this.onData(service, lsn, message));
      service.on(
        'heartbeat',
        (lsn: string, _time: number, shouldRespond: boolean) => void this.onKeepalive(service, lsn, shouldRespond),
      );
      service.on('error', (error: Error) =>
        this.options.logger.warn({ err: error.message, slot: this.options.slot }, 'replication stream error'),
      );
      service.on('start', () => {
        backoffMs = 500;
        this.options.logger.info(
          { slot: this.options.slot, from: this.confirmed },
          'streaming from the replication slot',
        );
      });
      try {
        const plugin = new PgoutputPlugin({ protoVersion: 1, publicationNames: [this.options.publication] });
        const subscribing = this.confirmed
          ? service.subscribe(plugin, this.options.slot, this.confirmed)
          : service.subscribe(plugin, this.options.slot);
        this.settling = new Promise<void>((resolve) => {
          service.once('start', () => resolve());
          subscribing.then(
            () => resolve(),
            () => resolve(),
          );
        });
        await Promise.race([subscribing, this.gaveUp]);
      } catch (error) {
        if (!this.stopping)
          this.options.logger.warn(
            { err: (error as Error).message, slot: this.options.slot },
            'replication stream ended; reconnecting',
          );
      } finally {
        await service.destroy().catch(() => undefined);
      }
      if (this.stopping) break;
      await sleep(backoffMs, undefined, { signal: this.halt.signal }).catch(() => undefined);
      backoffMs = Math.min(backoffMs * 2, 30_000);
    }
  }

  /** A message as read: handled at once, or queued behind one that waits for room in the publish window. */
  private onData(service: LogicalReplicationService, lsn: string, message: Pgoutput.Message): void {
    if (this.held) {
      this.held.push({ lsn, message });
      return;
    }
    const waiting = this.onMessage(service, lsn, message);
    if (waiting) void this.hold(service, waiting);
  }

  /**
   * Backpressure: while a message waits for room in the window, the socket is paused and what was already
   * read queues (a socket read holds many messages), then is handled in order before reading resumes.
   */
  private async hold(service: LogicalReplicationService, waiting: Promise<void>): Promise<void> {
    const held: { lsn: string; message: Pgoutput.Message }[] = [];
    this.held = held;
    const socket = (service as unknown as { _connection?: { stream?: { pause?: () => void; resume?: () => void } } })
      ._connection?.stream;
    socket?.pause?.();
    try {
      await waiting;
      for (let next = held.shift(); next && service === this.service && !service.isStop(); next = held.shift()) {
        await this.onMessage(service, next.lsn, next.message);
      }
    } finally {
      if (this.held === held) this.held = undefined;
      if (service === this.service && !service.isStop()) socket?.resume?.();
    }
  }

  /**
   * Handles one decoded message. Synchronous unless the publish window is full: then the returned promise
   * holds the stream until there is room. Per row that saves the promise chain of an async handler, which
   * at tens of thousands of rows a second is a good part of the relay's CPU.
   */
  private onMessage(
    service: LogicalReplicationService,
    lsn: string,
    message: Pgoutput.Message,
  ): Promise<void> | undefined {
    if (service !== this.service || service.isStop()) return undefined;
    try {
      // The service writes XLogData positions unpadded and upper case already: the canonical form.
      return this.apply(service, lsn, message)?.catch((error: unknown) => this.fail(service, error));
    } catch (error) {
      return this.fail(service, error);
    }
  }

  /**
   * Nothing after a failed change may be confirmed: ends the stream; the next one reads again from the
   * last confirmed LSN. When a publish failed (`gap`), the changes of every unconfirmed transaction read
   * so far are stored again when read again, under new message ids (`RelayPublisher`), so the last copy of
   * each change is in commit order.
   */
  private async fail(service: LogicalReplicationService, error: unknown, gap = false): Promise<void> {
    if (service !== this.service || service.isStop()) return;
    this.options.logger.warn(
      { err: (error as Error).message, slot: this.options.slot },
      'could not relay a transaction; restarting the stream from the last confirmed LSN',
    );
    for (const tx of this.publisher.unconfirmed)
      tx.span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
    this.abandon(this.publisher.abandon(gap));
    await service.stop().catch(() => undefined);
  }

  /** What the stream's publisher calls back: transactions confirmed, a failure, the test's fault hook. */
  private hooks(service: LogicalReplicationService): RelayPublisherHooks<RelayedTransaction> {
    const afterPublish = this.options.faults?.afterPublish;
    return {
      confirmed: (tx) => this.confirm(service, tx),
      failed: (error, gap) => void this.fail(service, error, gap),
      ...(afterPublish ? { beforeConfirm: (tx: RelayedTransaction) => afterPublish(tx.end!) } : {}),
    };
  }

  private apply(service: LogicalReplicationService, lsn: string, message: Pgoutput.Message): Promise<void> | undefined {
    switch (message.tag) {
      case 'begin': {
        const span = tracer.startSpan('glyms.cdc transaction', {
          kind: SpanKind.PRODUCER,
          attributes: { 'puente.cdc.mode': 'logical', 'messaging.system': 'nats' },
        });
        const commitLsn = normalizeLsn(message.commitLsn ?? lsn);
        this.publisher.begin({
          commitLsn,
          commitTime: microsToIso(message.commitTime),
          span,
          context: trace.setSpan(context.active(), span),
          changes: 0,
          unacked: 0,
          complete: false,
          resend: undefined,
        });
        return undefined;
      }
      case 'insert':
      case 'update':
      case 'delete': {
        const tx = this.publisher.open;
        if (!tx) throw new Error(`a ${message.tag} outside a transaction at ${lsn}`);
        // Waits only for room in the window (backpressure pauses the stream); the ack is counted at confirm time.
        return this.publisher.publish(
          tx,
          changeMessage('logical', this.changeOf(message, tx), resendPosition(lsn, tx.resend)),
        );
      }
      case 'commit': {
        const tx = this.publisher.open;
        if (!tx) return undefined;
        tx.end = normalizeLsn(message.commitEndLsn ?? lsn);
        tx.span.setAttributes({ 'puente.cdc.commit_lsn': tx.commitLsn, 'messaging.batch.message_count': tx.changes });
        this.publisher.complete();
        return undefined;
      }
      case 'truncate':
        this.options.logger.warn(
          { tables: message.relations.map((r) => `${r.schema}.${r.name}`) },
          'TRUNCATE is not relayed: its rows were not deleted one by one; run `npx puente bitrix sync companies` if Bitrix24 must follow',
        );
        return undefined;
      case 'relation':
      case 'type':
      case 'origin':
      case 'message':
        return undefined;
      default: {
        const unexpected: never = message;
        throw new Error(`unknown pgoutput message ${(unexpected as { tag: string }).tag}`);
      }
    }
  }

  /** A transaction and every earlier one are stored: its end LSN is the new confirmed position. */
  private confirm(service: LogicalReplicationService, tx: RelayedTransaction): void {
    tx.span.end();
    if (tx.changes > 0) {
      relayedCounter.add(tx.changes, { mode: 'logical', phase: 'stream' });
      commitLag.record(Date.now() - Date.parse(tx.commitTime), { mode: 'logical' });
    }
    this.confirmed = tx.end;
    this.report(service);
  }

  /** Sends the confirmed LSN to PostgreSQL, at most every `confirmEveryMs` (one status update covers many transactions). */
  private report(service: LogicalReplicationService): void {
    const every = this.options.confirmEveryMs ?? 50;
    const send = () => {
      this.reportTimer = undefined;
      if (service !== this.service || service.isStop() || !this.confirmed || this.confirmed === this.reported) return;
      this.reported = this.confirmed;
      this.reportedAt = Date.now();
      void flushTo(service, this.confirmed).catch(() => undefined);
    };
    if (Date.now() - this.reportedAt >= every) send();
    else this.reportTimer ??= setTimeout(send, every - (Date.now() - this.reportedAt));
  }

  /** Ends what the stream had in flight, as the publisher dropped it (its transactions are read again from the last confirmed LSN). */
  private abandon(dropped: readonly RelayedTransaction[]): void {
    clearTimeout(this.reportTimer);
    this.reportTimer = undefined;
    for (const tx of dropped) tx.span.end();
    this.held = undefined;
  }

  private changeOf(
    message: Pgoutput.MessageInsert | Pgoutput.MessageUpdate | Pgoutput.MessageDelete,
    tx: RelayedTransaction,
  ): RowChange {
    const { relation } = message;
    const keys = this.keyColumns.get(`${relation.schema}.${relation.name}`)?.length
      ? this.keyColumns.get(`${relation.schema}.${relation.name}`)!
      : relation.keyColumns;
    const base = { schema: relation.schema, table: relation.name, position: tx.commitLsn, commitTime: tx.commitTime };
    if (message.tag === 'insert') return { ...base, op: 'created', key: pick(message.new, keys), row: message.new };
    if (message.tag === 'update') {
      const before = message.old ?? message.key ?? undefined;
      return { ...base, op: 'updated', key: pick(message.new, keys), row: message.new, ...(before ? { before } : {}) };
    }
    const before = message.old ?? message.key ?? {};
    return { ...base, op: 'deleted', key: pick(before, keys), before };
  }

  /**
   * A keepalive carries the server's decoding position. With nothing of ours in flight, everything up
   * to it is either published or not ours (other tables, other databases): confirming it lets
   * PostgreSQL recycle WAL even when the published tables are idle.
   */
  private async onKeepalive(service: LogicalReplicationService, lsn: string, shouldRespond: boolean): Promise<void> {
    if (service !== this.service || service.isStop()) return;
    const position = normalizeLsn(lsn);
    if (this.idle(service) && (!this.confirmed || lsnToBigInt(position) > lsnToBigInt(this.confirmed))) {
      this.confirmed = position;
      this.reported = position;
      this.reportedAt = Date.now();
      await flushTo(service, position);
    } else if (shouldRespond && this.confirmed) {
      this.reported = this.confirmed;
      this.reportedAt = Date.now();
      await flushTo(service, this.confirmed);
    }
  }

  /** No open transaction, nothing unconfirmed, and no message held back (held ones came before this keepalive). */
  private idle(service: LogicalReplicationService): boolean {
    return service === this.service && this.publisher.idle && this.held === undefined;
  }

  /** Measures the slot's lag (and warns while it is high), and asks an idle stream's server for its position. */
  private async check(): Promise<void> {
    const { slot, logger, databaseUrl } = this.options;
    const service = this.service;
    if (service && !service.isStop() && this.confirmed && this.idle(service))
      await flushTo(service, this.confirmed, true).catch(() => undefined);
    const client = new pg.Client({ connectionString: databaseUrl });
    client.on('error', () => undefined);
    try {
      await client.connect();
      const { rows } = await client.query<{ lag: string | null; wal_status: string | null }>(
        'select pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint::text as lag, wal_status from pg_replication_slots where slot_name = $1 and database = current_database()',
        [slot],
      );
      const row = rows[0];
      if (!row) {
        logger.error(
          { slot },
          'the replication slot is gone; restart bitrix-sync to recreate it and load every row again',
        );
        return;
      }
      this.lagBytes = row.lag === null ? undefined : Number(row.lag);
      const limit = this.options.lagWarnBytes ?? 256 * 1024 * 1024;
      if (this.lagBytes !== undefined && this.lagBytes > limit && Date.now() - this.lagWarnedAt > 300_000) {
        this.lagWarnedAt = Date.now();
        logger.warn(
          { slot, lagBytes: this.lagBytes, walStatus: row.wal_status },
          'the replication slot holds back more WAL than GLYMS_SLOT_LAG_WARN_BYTES: PostgreSQL keeps it until the relay catches up',
        );
      }
    } catch (error) {
      logger.debug({ err: (error as Error).message }, 'slot lag check failed');
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}

/**
 * Reports `lsn` as written, flushed and applied: the position after the last byte we hold. The library
 * sends its argument plus one, so it gets the byte before. Exactly the server's position matters: a
 * walsender lets PostgreSQL shut down only once the reported flush position equals what it sent.
 */
function flushTo(service: LogicalReplicationService, lsn: string, ping = false): Promise<boolean> {
  return service.acknowledge(previousLsn(lsn), ping);
}

function pick(row: Record<string, unknown>, columns: readonly string[]): Record<string, unknown> {
  if (columns.length === 0) return { ...row };
  return Object.fromEntries(columns.map((c) => [c, row[c]]));
}

/** The last commit time formatted: transactions committed in the same millisecond (dozens under load) reuse it. */
let lastCommitTime = { ms: Number.NaN, iso: '' };

function microsToIso(micros: unknown): string {
  const ms = Number(BigInt(micros as bigint) / 1000n);
  if (ms !== lastCommitTime.ms) lastCommitTime = { ms, iso: new Date(ms).toISOString() };
  return lastCommitTime.iso;
}
