import { metrics, type Counter, type ObservableCallback, type ObservableGauge } from '@opentelemetry/api';
import {
  AckPolicy,
  DeliverPolicy,
  type ConsumerConfig,
  type ConsumerMessages,
  type JsMsg,
  type MsgHdrs,
  type Subscription,
} from 'nats';
import { deadLetterSubject, Headers, StreamNames, type ConsumerDefinition } from '@puente/contracts';
import { isNotFound, type Bus } from './bus.js';
import { describeError, PermanentError } from './errors.js';
import { eachConcurrently } from './pool.js';
import { extractTrace, linksOf, SpanKind, withSpan } from './trace.js';

/** One message handed to a handler. For a redrive, subject and position are the original's. */
export interface Delivery {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headers: MsgHdrs | undefined;
  /** The stream the message was first stored in. */
  readonly stream: string;
  /** Its sequence there: a projection's `_position`. */
  readonly position: number;
  /** 1 on first delivery. */
  readonly deliveryCount: number;
  readonly redrive: boolean;
  json<T = unknown>(): T;
}

/** How a message ends; decided by the handler, carried out by the runner in one place. */
export type Outcome =
  | { readonly kind: 'ack' }
  | { readonly kind: 'retry'; readonly error: unknown; readonly delayMs?: number }
  | { readonly kind: 'dead'; readonly error: unknown };

export const Outcomes = {
  ack: { kind: 'ack' } as Outcome,
  retry: (error: unknown, delayMs?: number): Outcome => ({
    kind: 'retry',
    error,
    ...(delayMs === undefined ? {} : { delayMs }),
  }),
  dead: (error: unknown): Outcome => ({ kind: 'dead', error }),
  /** Permanent errors (bad input, `PermanentError`, invalid events) go to the DLQ; anything else is retried. */
  fromError: (error: unknown): Outcome => (isPermanent(error) ? Outcomes.dead(error) : Outcomes.retry(error)),
} as const;

export function isPermanent(error: unknown): boolean {
  if (error instanceof PermanentError) return true;
  const code = (error as { code?: unknown })?.code;
  return (
    code === 'INVALID_EVENT' ||
    code === 'UNKNOWN_EVENT_TYPE' ||
    code === 'INVALID_TOKEN' ||
    (error as Error)?.name === 'ZodError'
  );
}

/** A handler gets a batch (in stream order) and returns one outcome per delivery. */
export type BatchHandler = (deliveries: readonly Delivery[]) => Promise<readonly Outcome[]>;

/** Adapts a one-message handler: a resolved promise acks, a throw is classified by `Outcomes.fromError`. */
export function perMessage(handler: (delivery: Delivery) => Promise<void>, concurrency = 1): BatchHandler {
  return async (deliveries) => {
    const outcomes: Outcome[] = new Array<Outcome>(deliveries.length);
    await eachConcurrently(deliveries, concurrency, async (delivery, i) => {
      try {
        await handler(delivery);
        outcomes[i] = Outcomes.ack;
      } catch (error) {
        outcomes[i] = Outcomes.fromError(error);
      }
    });
    return outcomes;
  };
}

export interface LoggerLike {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

const silent: LoggerLike = { debug() {}, info() {}, warn() {}, error() {} };

export interface ConsumerRunnerOptions {
  bus: Bus;
  consumer: ConsumerDefinition;
  handle: BatchHandler;
  /** Handler attempts before a message goes to the DLQ (default 5). */
  maxAttempts?: number;
  /** Delay before attempt n+1 after a retry outcome; the last value repeats (default 1 s, 5 s, 30 s, 2 min). */
  backoffMs?: readonly number[];
  /** How long the server waits for an outcome before redelivering (default 30 s); kept alive while a handler works. */
  ackWaitMs?: number;
  /** Largest batch handed to the handler (default 256). */
  batchSize?: number;
  /**
   * How long a batch that is not full waits for more messages after its first one arrived (default 0).
   * A handler that coalesces changes per key sees the changes of this window together.
   */
  lingerMs?: number;
  /** Most unacknowledged messages the server lets this consumer hold (default 4 × batchSize). */
  maxAckPending?: number;
  /** Also consume redrives of this consumer's dead letters (default true). */
  redrive?: boolean;
  logger?: LoggerLike;
}

export interface RunnerStats {
  batches: number;
  acked: number;
  retried: number;
  deadLettered: number;
}

interface Queued {
  msg: JsMsg;
  redrive: boolean;
  /** When it was queued (for `lingerMs`). */
  at?: number;
}

const nanos = (msValue: number) => msValue * 1_000_000;

/** The durable name of the consumer that reads redrives for `durable` from the DLQ stream. */
export function redriveConsumerName(durable: string): string {
  return `${durable}-redrive`;
}

/**
 * Runs a durable pull consumer: fetches, hands batches to the handler, and ends every message
 * explicitly (ack, nak with backoff, or dead-letter + term). Bounded redelivery; messages that keep
 * crashing the process are dead-lettered on their extra delivery, or from the server's
 * max-deliveries advisory. Redrives of this consumer's dead letters arrive through a second consumer.
 */
export class ConsumerRunner {
  readonly stats: RunnerStats = { batches: 0, acked: 0, retried: 0, deadLettered: 0 };
  private observer: NodeJS.Timeout | undefined;
  private gauges: ObservableGauge[] = [];
  private readonly unobserve: (() => void)[] = [];
  private outcomes: Counter | undefined;
  private readonly queue: Queued[] = [];
  private wake: (() => void) | undefined;
  private stopping = false;
  private subscriptions: ConsumerMessages[] = [];
  private advisories: Subscription[] = [];
  private loop: Promise<void> | undefined;
  private readonly maxAttempts: number;
  private readonly backoffMs: readonly number[];
  private readonly ackWaitMs: number;
  private readonly batchSize: number;
  private readonly log: LoggerLike;

  constructor(private readonly options: ConsumerRunnerOptions) {
    this.maxAttempts = options.maxAttempts ?? 5;
    this.backoffMs = options.backoffMs ?? [1_000, 5_000, 30_000, 120_000];
    this.ackWaitMs = options.ackWaitMs ?? 30_000;
    this.batchSize = options.batchSize ?? 256;
    this.log = options.logger ?? silent;
  }

  get name(): string {
    return this.options.consumer.durable;
  }

  /** Creates or updates the durable consumers, then starts consuming. */
  async start(): Promise<void> {
    const { bus, consumer } = this.options;
    await ensureConsumer(bus, consumer.stream, this.consumerConfig(consumer.durable, consumer.filterSubjects));
    const sources: { stream: string; durable: string; redrive: boolean }[] = [
      { stream: consumer.stream, durable: consumer.durable, redrive: false },
    ];
    if (this.options.redrive ?? true) {
      const durable = redriveConsumerName(consumer.durable);
      await ensureConsumer(bus, StreamNames.DLQ, this.consumerConfig(durable, [`redrive.${consumer.durable}.>`]));
      sources.push({ stream: StreamNames.DLQ, durable, redrive: true });
    }
    for (const source of sources) {
      this.advisories.push(
        bus.nc.subscribe(`$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.${source.stream}.${source.durable}`, {
          callback: (error, msg) => {
            if (!error) void this.onMaxDeliveries(msg.json(), source.redrive);
          },
        }),
      );
    }
    for (const source of sources) {
      const js = await bus.js.consumers.get(source.stream, source.durable);
      this.subscriptions.push(
        await js.consume({
          max_messages: this.batchSize,
          callback: (msg) => this.enqueue({ msg, redrive: source.redrive }),
        }),
      );
    }
    this.loop = this.run();
    this.observe();
  }

  /** Lag (messages not yet acknowledged) and DLQ depth of this consumer, refreshed every 15 s, as OpenTelemetry gauges. */
  private observe(): void {
    const { bus, consumer } = this.options;
    const meter = metrics.getMeter('puente-bus');
    const attributes = { consumer: consumer.durable };
    const latest = { lag: 0, redelivered: 0, dlq: 0 };
    const refresh = async () => {
      try {
        const info = await bus.jsm.consumers.info(consumer.stream, consumer.durable);
        latest.lag = info.num_pending + info.num_ack_pending;
        latest.redelivered = info.num_redelivered;
        const dlq = await bus.jsm.streams.info(StreamNames.DLQ, { subjects_filter: `dlq.${consumer.durable}.>` });
        latest.dlq = Object.values(dlq.state.subjects ?? {}).reduce((a, b) => a + b, 0);
      } catch {
        // keep the last figures; the next refresh tries again
      }
    };
    void refresh();
    this.observer = setInterval(() => void refresh(), 15_000);
    this.observer.unref();
    this.gauges = [
      meter.createObservableGauge('puente.consumer.lag', {
        description: 'messages of the consumer not yet acknowledged (pending + in flight)',
      }),
      meter.createObservableGauge('puente.consumer.redelivered', {
        description: 'messages of the consumer delivered more than once and not yet acknowledged',
      }),
      meter.createObservableGauge('puente.dlq.depth', {
        description: 'dead letters of the consumer waiting in the DLQ',
      }),
    ];
    const values = [() => latest.lag, () => latest.redelivered, () => latest.dlq];
    this.gauges.forEach((gauge, i) => {
      const callback: ObservableCallback = (result) => result.observe(values[i]!(), attributes);
      gauge.addCallback(callback);
      this.unobserve.push(() => gauge.removeCallback(callback));
    });
    this.outcomes = meter.createCounter('puente.consumer.messages', {
      description: 'messages settled by the consumer, by outcome (ack, retry, dead)',
    });
  }

  /**
   * Stops pulling, finishes the batch in hand, gives back (nak) what is queued, and flushes acks.
   * Bounded: after `timeoutMs` it returns anyway; unfinished messages are redelivered after ack wait.
   */
  async stop(timeoutMs = 10_000): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    clearInterval(this.observer);
    for (const undo of this.unobserve.splice(0)) undo();
    for (const sub of this.subscriptions) sub.stop();
    for (const sub of this.advisories) sub.unsubscribe();
    this.wake?.();
    const finished = this.loop ?? Promise.resolve();
    const timer = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), timeoutMs).unref());
    if ((await Promise.race([finished.then(() => 'done' as const), timer])) === 'timeout') {
      this.log.warn(
        { consumer: this.name, timeoutMs },
        'consumer did not finish its batch in time; it will be redelivered',
      );
    }
    for (const queued of this.queue.splice(0)) queued.msg.nak();
    await this.options.bus.nc.flush().catch(() => undefined);
  }

  private consumerConfig(
    durable: string,
    filterSubjects: readonly string[],
  ): Partial<ConsumerConfig> & { durable_name: string } {
    return {
      durable_name: durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(this.ackWaitMs),
      // Unbounded on the server: the runner bounds attempts itself (a message delivered more than
      // maxAttempts times is dead-lettered without running the handler), and a message whose dead
      // letter cannot be published yet (the DLQ away) must stay deliverable until it can.
      max_deliver: -1,
      max_ack_pending: this.options.maxAckPending ?? this.batchSize * 4,
      ...(filterSubjects.length === 1
        ? { filter_subject: filterSubjects[0] }
        : { filter_subjects: [...filterSubjects] }),
    };
  }

  private enqueue(queued: Queued): void {
    if (this.stopping) {
      queued.msg.nak();
      return;
    }
    this.queue.push({ ...queued, at: Date.now() });
    this.wake?.();
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      if (this.queue.length === 0) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
        continue;
      }
      const lingerMs = this.options.lingerMs ?? 0;
      const waitMs =
        lingerMs > 0 && this.queue.length < this.batchSize ? (this.queue[0]!.at ?? 0) + lingerMs - Date.now() : 0;
      if (waitMs > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, waitMs);
          this.wake = () => {
            if (this.queue.length < this.batchSize && !this.stopping) return;
            clearTimeout(timer);
            resolve();
          };
        });
        this.wake = undefined;
        if (this.stopping) break;
      }
      const batch = this.queue.splice(0, this.batchSize);
      try {
        await this.handleBatch(batch);
      } catch (error) {
        // Only settling itself can fail here (connection lost); the server redelivers.
        this.log.error({ consumer: this.name, err: error }, 'could not settle a batch');
      }
    }
  }

  private toDelivery({ msg, redrive }: Queued): Delivery {
    const h = msg.headers;
    const subject = redrive ? (h?.get(Headers.OriginalSubject) ?? msg.subject) : msg.subject;
    const stream = redrive ? (h?.get(Headers.OriginalStream) ?? msg.info.stream) : msg.info.stream;
    const position = redrive ? Number(h?.get(Headers.OriginalSequence) ?? msg.seq) : msg.seq;
    return {
      subject,
      data: msg.data,
      headers: h,
      stream,
      position,
      deliveryCount: msg.info.redeliveryCount,
      redrive,
      json: <T>() => JSON.parse(new TextDecoder().decode(msg.data)) as T,
    };
  }

  private async handleBatch(batch: Queued[]): Promise<void> {
    this.stats.batches++;
    const poisoned = batch.filter((q) => q.msg.info.redeliveryCount > this.maxAttempts);
    const live = batch.filter((q) => q.msg.info.redeliveryCount <= this.maxAttempts);
    await Promise.all(
      poisoned.map((q) =>
        this.deadLetter(q, {
          code: 'NO_OUTCOME',
          message: `no outcome after ${this.maxAttempts} deliveries: the handler crashed the process or timed out`,
        }),
      ),
    );
    if (live.length === 0) return;
    const deliveries = live.map((q) => this.toDelivery(q));
    const keepAlive = setInterval(() => live.forEach((q) => q.msg.working()), Math.max(1_000, this.ackWaitMs / 3));
    let outcomes: readonly Outcome[];
    try {
      outcomes = await withSpan(
        `${this.name} process`,
        {
          kind: SpanKind.CONSUMER,
          // One message continues its producer's trace; a batch links to every producer instead.
          ...(deliveries.length === 1
            ? { parent: extractTrace(deliveries[0]!.headers) }
            : { links: linksOf(deliveries.map((d) => d.headers)) }),
          attributes: {
            'messaging.system': 'nats',
            'messaging.batch.message_count': deliveries.length,
            'messaging.consumer.group.name': this.name,
          },
        },
        () => this.options.handle(deliveries),
      );
      if (outcomes.length !== deliveries.length)
        throw new Error(`handler returned ${outcomes.length} outcomes for ${deliveries.length} messages`);
    } catch (error) {
      outcomes = deliveries.map(() => Outcomes.retry(error));
    } finally {
      clearInterval(keepAlive);
    }
    await Promise.all(live.map((q, i) => this.settle(q, outcomes[i]!)));
  }

  /** The one place a message's fate is carried out. */
  private async settle(queued: Queued, outcome: Outcome): Promise<void> {
    const { msg } = queued;
    this.outcomes?.add(1, { consumer: this.name, outcome: outcome.kind });
    switch (outcome.kind) {
      case 'ack':
        msg.ack();
        this.stats.acked++;
        return;
      case 'retry': {
        const attempt = msg.info.redeliveryCount;
        if (attempt >= this.maxAttempts) {
          await this.deadLetter(queued, describeError(outcome.error));
          return;
        }
        const delay = outcome.delayMs ?? this.backoffMs[Math.min(attempt - 1, this.backoffMs.length - 1)] ?? 1_000;
        this.log.warn(
          {
            consumer: this.name,
            subject: msg.subject,
            seq: msg.seq,
            attempt,
            delayMs: delay,
            error: describeError(outcome.error),
          },
          'handler failed; will retry',
        );
        msg.nak(delay);
        this.stats.retried++;
        return;
      }
      case 'dead':
        await this.deadLetter(queued, describeError(outcome.error));
        return;
      default: {
        const never: never = outcome;
        throw new Error(`unknown outcome ${JSON.stringify(never)}`);
      }
    }
  }

  /** Publishes the message to the DLQ, then terminates it; if the DLQ cannot take it, it is retried later. */
  private async deadLetter(queued: Queued, error: { code: string; message: string }): Promise<void> {
    const { msg } = queued;
    const delivery = this.toDelivery(queued);
    try {
      await publishDeadLetter(this.options.bus, {
        consumer: this.name,
        subject: delivery.subject,
        stream: delivery.stream,
        position: delivery.position,
        data: msg.data,
        headers: msg.headers,
        deliveries: msg.info.redeliveryCount,
        error,
        msgId: deadLetterMsgId(this.name, msg.info.stream, msg.seq),
      });
    } catch (publishError) {
      // Never acked or terminated without its dead letter: redelivered (the server has no delivery cap)
      // and dead-lettered again, backing off like a retry, until the DLQ takes it.
      const attempt = msg.info.redeliveryCount;
      const delay = this.backoffMs[Math.min(attempt - 1, this.backoffMs.length - 1)] ?? 1_000;
      this.log.error(
        { consumer: this.name, seq: msg.seq, err: publishError, delayMs: delay },
        'could not dead-letter a message; it will be redelivered',
      );
      msg.nak(delay);
      return;
    }
    this.log.warn(
      { consumer: this.name, subject: delivery.subject, position: delivery.position, error },
      'message dead-lettered',
    );
    msg.term(error.message.slice(0, 200));
    this.stats.deadLettered++;
  }

  /** The server gave up redelivering (the process kept dying): fetch the message and dead-letter it. */
  private async onMaxDeliveries(
    advisory: { stream: string; consumer: string; stream_seq: number; deliveries: number },
    redrive: boolean,
  ): Promise<void> {
    try {
      const stored = await this.options.bus.jsm.streams.getMessage(advisory.stream, { seq: advisory.stream_seq });
      const h = stored.header;
      await publishDeadLetter(this.options.bus, {
        consumer: this.name,
        subject: redrive ? h.get(Headers.OriginalSubject) || stored.subject : stored.subject,
        stream: redrive ? h.get(Headers.OriginalStream) || advisory.stream : advisory.stream,
        position: redrive ? Number(h.get(Headers.OriginalSequence) || stored.seq) : stored.seq,
        data: stored.data,
        headers: h,
        deliveries: advisory.deliveries,
        error: {
          code: 'MAX_DELIVERIES',
          message: `the server stopped redelivering after ${advisory.deliveries} deliveries without an outcome`,
        },
        msgId: deadLetterMsgId(this.name, advisory.stream, advisory.stream_seq),
      });
      this.stats.deadLettered++;
    } catch (error) {
      this.log.error(
        { consumer: this.name, seq: advisory.stream_seq, err: error },
        'could not dead-letter a message from a max-deliveries advisory',
      );
    }
  }
}

/** Deterministic per source message, so the runner and the advisory path collapse into one dead letter. */
export function deadLetterMsgId(consumer: string, stream: string, seq: number): string {
  return `dlq:${consumer}:${stream}:${seq}`;
}

export interface DeadLetterFields {
  consumer: string;
  subject: string;
  stream: string;
  position: number;
  data: Uint8Array;
  headers: MsgHdrs | undefined;
  deliveries: number;
  error: { code: string; message: string };
  msgId: string;
}

/**
 * Publishes a dead letter to `DLQ` (`dlq.<consumer>.<original subject>`) with the headers the operator
 * CLI reads; resolves once the DLQ stored it. Also for sources outside JetStream (a Kafka record).
 */
export async function publishDeadLetter(
  bus: Bus,
  fields: DeadLetterFields,
  extraHeaders: Record<string, string> = {},
): Promise<void> {
  const h = copyHeaders(fields.headers);
  await bus.publish(deadLetterSubject(fields.consumer, fields.subject), fields.data, {
    msgId: fields.msgId,
    expectStream: StreamNames.DLQ,
    headers: {
      ...h,
      [Headers.OriginalStream]: fields.stream,
      [Headers.OriginalSubject]: fields.subject,
      [Headers.OriginalSequence]: String(fields.position),
      [Headers.Consumer]: fields.consumer,
      [Headers.Error]: fields.error.message,
      [Headers.ErrorCode]: fields.error.code,
      [Headers.Deliveries]: String(fields.deliveries),
      [Headers.FailedAt]: new Date().toISOString(),
      ...extraHeaders,
    },
  });
}

/** Application headers of a message, without the server's `Nats-*` ones. */
export function copyHeaders(h: MsgHdrs | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!h) return out;
  for (const key of h.keys()) if (!key.toLowerCase().startsWith('nats-')) out[key] = h.get(key);
  return out;
}

/** Creates the durable consumer, or updates it when its configuration changed. */
export async function ensureConsumer(
  bus: Bus,
  stream: string,
  config: Partial<ConsumerConfig> & { durable_name: string },
): Promise<void> {
  let current: ConsumerConfig | undefined;
  try {
    current = (await bus.jsm.consumers.info(stream, config.durable_name)).config;
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
  if (!current) {
    await bus.jsm.consumers.add(stream, config);
    return;
  }
  const changed = (Object.keys(config) as (keyof ConsumerConfig)[]).some(
    (key) => JSON.stringify(current[key]) !== JSON.stringify(config[key]),
  );
  if (changed) await bus.jsm.consumers.update(stream, config.durable_name, config);
}
