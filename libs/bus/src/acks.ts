import { createInbox, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from 'nats';

/** What a stream answers to a publish (`PubAck`). */
export interface StreamAck {
  stream: string;
  seq: number;
  duplicate: boolean;
}

interface Pending {
  resolve: (ack: StreamAck) => void;
  reject: (error: Error) => void;
  deadline: number;
}

interface Outgoing {
  subject: string;
  data: Uint8Array;
  headers: MsgHdrs;
  reply: string;
}

/**
 * JetStream publishes with their acks collected on one wildcard inbox subscription, and the publishes of
 * one event-loop turn written together.
 *
 * Why not `js.publish`: nats.js gives every request its own timer and builds an Error (a captured stack)
 * for its cancellation even when it succeeds, and flushes the socket once per microtask drain, that is
 * once per incoming HTTP request in the gateway. Profiled at the gateway's peak those were about a third
 * of its CPU (see docs/benchmarks.md). Here a request is one map entry, timeouts are swept twice a second,
 * and the writes of every request handled in the same turn go out in one flush.
 */
export class AckMux {
  private readonly prefix = `${createInbox()}.`;
  private readonly pending = new Map<string, Pending>();
  private readonly subscription: Subscription;
  private readonly sweeper: NodeJS.Timeout;
  private queue: Outgoing[] = [];
  private next = 0;

  constructor(private readonly nc: NatsConnection) {
    this.subscription = nc.subscribe(`${this.prefix}*`, { callback: (_error, msg) => this.onReply(msg) });
    this.sweeper = setInterval(() => this.sweep(), 500).unref();
  }

  /** Publishes with a reply inbox and resolves with the stream's ack; rejects on a JetStream error, no stream, or timeout. */
  request(subject: string, data: Uint8Array, headers: MsgHdrs, timeoutMs: number): Promise<StreamAck> {
    const token = (this.next++).toString(36);
    return new Promise<StreamAck>((resolve, reject) => {
      this.pending.set(token, { resolve, reject, deadline: Date.now() + timeoutMs });
      if (this.queue.length === 0) setImmediate(() => this.flush());
      this.queue.push({ subject, data, headers, reply: this.prefix + token });
    });
  }

  /** Fails every pending request and stops listening. */
  close(): void {
    clearInterval(this.sweeper);
    this.subscription.unsubscribe();
    this.failAll(new Error('connection closed'));
  }

  private flush(): void {
    const batch = this.queue;
    this.queue = [];
    for (const out of batch) {
      try {
        this.nc.publish(out.subject, out.data, { headers: out.headers, reply: out.reply });
      } catch (error) {
        this.settle(out.reply.slice(this.prefix.length), error as Error);
      }
    }
  }

  private onReply(msg: Msg): void {
    const token = msg.subject.slice(this.prefix.length);
    if (msg.headers?.code === 503)
      return this.settle(token, new Error('no stream is listening on this subject (503 no responders)'));
    let ack: {
      stream?: string;
      seq?: number;
      duplicate?: boolean;
      error?: { code?: number; err_code?: number; description?: string };
    };
    try {
      ack = msg.json();
    } catch {
      return this.settle(token, new Error('unreadable JetStream ack'));
    }
    if (ack.error)
      return this.settle(
        token,
        new Error(`JetStream error ${ack.error.err_code ?? ack.error.code}: ${ack.error.description ?? 'unknown'}`),
      );
    this.settle(token, undefined, { stream: ack.stream ?? '', seq: ack.seq ?? 0, duplicate: ack.duplicate === true });
  }

  private settle(token: string, error: Error | undefined, ack?: StreamAck): void {
    const entry = this.pending.get(token);
    if (!entry) return; // late answer to a request that already timed out
    this.pending.delete(token);
    if (error) entry.reject(error);
    else entry.resolve(ack!);
  }

  private sweep(): void {
    const now = Date.now();
    for (const [token, entry] of this.pending) {
      if (entry.deadline <= now) this.settle(token, new Error('timed out waiting for the JetStream ack'));
    }
  }

  private failAll(error: Error): void {
    for (const token of [...this.pending.keys()]) this.settle(token, error);
  }
}
