import { BusUnavailableError, eventIdFor, type Bus } from '@puente/bus';
import { Headers, subjectOf } from '@puente/contracts';
import { BusUnavailableAnswer } from '../http/errors.js';
import { sha256, type Normalized, type WebhookRequest } from './delivery.js';

export interface Accepted {
  accepted: { id: string; duplicate: boolean }[];
  ignored?: { reason: string; type?: string }[];
}

/**
 * Keeps the verified body in WEBHOOKS_RAW (byte for byte, with its non-secret headers), then publishes
 * every event and waits for every ack. Only then may the sender get its 200; a bus that cannot ack
 * becomes a 503 with Retry-After, so the provider retries and nothing accepted is lost.
 */
export async function storeRaw(
  bus: Bus,
  request: WebhookRequest,
  headers: Record<string, string>,
  requestId: string,
): Promise<void> {
  await acked(
    bus.publish(`raw.${request.provider}`, request.body, {
      msgId: `raw:${request.provider}:${sha256(request.body)}`,
      headers: {
        'Puente-Http-Headers': JSON.stringify(headers),
        'Puente-Http-Params': JSON.stringify(request.params),
        'Puente-Received-At': request.receivedAt.toISOString(),
        'Puente-Request-Id': requestId,
      },
    }),
  );
}

/**
 * Publishes every event with its delivery id as `Nats-Msg-Id`, and its event id derived from that
 * delivery id (so a provider's retry, even days later, carries the same event id).
 */
export async function publishNormalized(bus: Bus, normalized: Normalized): Promise<Accepted> {
  const events = normalized.events.map(({ event, msgId }) => ({ event: { ...event, id: eventIdFor(msgId) }, msgId }));
  const results = await acked(
    Promise.all(
      events.map(({ event, msgId }) =>
        bus.publish(subjectOf(event), event, { msgId, headers: { [Headers.EventType]: event.type } }),
      ),
    ),
  );
  return {
    accepted: events.map(({ event }, i) => ({ id: event.id, duplicate: results[i]!.duplicate })),
    ...(normalized.ignored.length > 0 ? { ignored: [...normalized.ignored] } : {}),
  };
}

/** Waits for a publish; a bus that could not acknowledge becomes the 503 with Retry-After. */
export async function acked<T>(publishing: Promise<T>): Promise<T> {
  try {
    return await publishing;
  } catch (error) {
    throw error instanceof BusUnavailableError ? new BusUnavailableAnswer(error) : error;
  }
}
