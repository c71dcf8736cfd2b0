import { BusUnavailableError, type Bus } from '@puente/bus';
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
export async function storeRaw(bus: Bus, request: WebhookRequest, headers: Record<string, string>, requestId: string): Promise<void> {
  try {
    await bus.publish(`raw.${request.provider}`, request.body, {
      msgId: `raw:${request.provider}:${sha256(request.body)}`,
      headers: {
        'Puente-Http-Headers': JSON.stringify(headers),
        'Puente-Http-Params': JSON.stringify(request.params),
        'Puente-Received-At': request.receivedAt.toISOString(),
        'Puente-Request-Id': requestId,
      },
    });
  } catch (error) {
    throw error instanceof BusUnavailableError ? new BusUnavailableAnswer(error) : error;
  }
}

export async function publishNormalized(bus: Bus, normalized: Normalized): Promise<Accepted> {
  try {
    const results = await Promise.all(
      normalized.events.map(({ event, msgId }) => bus.publish(subjectOf(event), event, { msgId, headers: { [Headers.EventType]: event.type } })),
    );
    return {
      accepted: normalized.events.map(({ event }, i) => ({ id: event.id, duplicate: results[i]!.duplicate })),
      ...(normalized.ignored.length > 0 ? { ignored: [...normalized.ignored] } : {}),
    };
  } catch (error) {
    throw error instanceof BusUnavailableError ? new BusUnavailableAnswer(error) : error;
  }
}
