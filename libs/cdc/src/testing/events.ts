import { decodeEvent, StreamNames, type DomainEvent } from '@puente/contracts';
import { isNotFound, type Bus } from '@puente/bus';

/** One message of `EVENTS`, as stored. */
export interface StoredEvent {
  seq: number;
  subject: string;
  msgId: string | undefined;
  event: DomainEvent;
}

/** Every message of `EVENTS` on subjects matching `filter` (a NATS wildcard subject), in stream order. */
export async function readEvents(bus: Bus, filter: string): Promise<StoredEvent[]> {
  const out: StoredEvent[] = [];
  let seq = 1;
  for (;;) {
    let stored;
    try {
      stored = await bus.direct.getMessage(StreamNames.EVENTS, { seq, next_by_subj: filter });
    } catch (error) {
      if (isNotFound(error)) return out;
      throw error;
    }
    out.push({
      seq: stored.seq,
      subject: stored.subject,
      msgId: stored.header.get('Nats-Msg-Id') || undefined,
      event: decodeEvent(stored.data),
    });
    seq = stored.seq + 1;
  }
}
