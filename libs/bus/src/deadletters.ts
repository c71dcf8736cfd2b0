import { Headers, redriveSubject, StreamNames } from '@puente/contracts';
import { isNotFound, type Bus } from './bus.js';
import { copyHeaders } from './runner.js';

/** `Puente-Original-Stream` of a dead letter that was a Kafka record (the Debezium relay's). */
export const KAFKA_ORIGIN = 'kafka';

/** A dead letter as the operator CLI shows it. */
export interface DeadLetter {
  /** Its sequence in the DLQ stream: what `dlq retry --id` takes. */
  id: number;
  consumer: string;
  originalStream: string;
  originalSubject: string;
  originalSequence: number;
  errorCode: string;
  error: string;
  deliveries: number;
  failedAt: string;
  size: number;
}

/** Dead letters in the DLQ stream, oldest first, optionally for one consumer. */
export async function listDeadLetters(
  bus: Bus,
  options: { consumer?: string; limit?: number } = {},
): Promise<DeadLetter[]> {
  const filter = options.consumer ? `dlq.${options.consumer}.>` : 'dlq.>';
  const limit = options.limit ?? 1_000;
  const out: DeadLetter[] = [];
  let seq = 1;
  while (out.length < limit) {
    let msg;
    try {
      msg = await bus.direct.getMessage(StreamNames.DLQ, { seq, next_by_subj: filter });
    } catch (error) {
      if (isNotFound(error)) break;
      throw error;
    }
    const h = msg.header;
    out.push({
      id: msg.seq,
      consumer: h.get(Headers.Consumer),
      originalStream: h.get(Headers.OriginalStream),
      originalSubject: h.get(Headers.OriginalSubject),
      originalSequence: Number(h.get(Headers.OriginalSequence) || 0),
      errorCode: h.get(Headers.ErrorCode),
      error: h.get(Headers.Error),
      deliveries: Number(h.get(Headers.Deliveries) || 0),
      failedAt: h.get(Headers.FailedAt),
      size: msg.data.length,
    });
    seq = msg.seq + 1;
  }
  return out;
}

/**
 * Sends a dead letter back to the consumer that gave up on it, and only to that one: it is published
 * on `redrive.<consumer>.<original subject>`, which only that consumer's redrive consumer reads, with a
 * fresh message id so the duplicate window does not swallow it. The dead letter is then removed.
 */
export async function redriveDeadLetter(bus: Bus, id: number): Promise<{ consumer: string; subject: string }> {
  const stored = await bus.jsm.streams.getMessage(StreamNames.DLQ, { seq: id });
  const consumer = stored.header.get(Headers.Consumer);
  const original = stored.header.get(Headers.OriginalSubject);
  if (!consumer || !original || !stored.subject.startsWith('dlq.'))
    throw new Error(`DLQ message ${id} is not a dead letter`);
  // A record from outside JetStream has no consumer to go back to.
  if (stored.header.get(Headers.OriginalStream) === KAFKA_ORIGIN)
    throw new Error(
      `DLQ message ${id} is a Kafka record the Debezium relay could not read (${original}); it cannot be retried: fix the connector or the table, then re-snapshot`,
    );
  const subject = redriveSubject(consumer, original);
  await bus.publish(subject, stored.data, {
    msgId: `redrive:${consumer}:${id}:${Date.now()}`,
    expectStream: StreamNames.DLQ,
    headers: copyHeaders(stored.header),
  });
  await bus.jsm.streams.deleteMessage(StreamNames.DLQ, id, false);
  return { consumer, subject };
}

/** Removes dead letters (of one consumer, or all); returns how many. */
export async function purgeDeadLetters(bus: Bus, consumer?: string): Promise<number> {
  const response = await bus.jsm.streams.purge(StreamNames.DLQ, { filter: consumer ? `dlq.${consumer}.>` : 'dlq.>' });
  return response.purged;
}
