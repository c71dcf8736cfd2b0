import { StreamNames } from '@puente/contracts';
import { isNotFound, type Bus } from '@puente/bus';
import type { Normalized, RawDelivery } from './delivery.js';
import type { AnyProvider } from './provider.js';
import { providerNamed, providers } from './providers.js';
import { publishNormalized, type Accepted } from './publish.js';

function toRaw(msg: {
  seq: number;
  subject: string;
  time: Date;
  data: Uint8Array;
  header: { get(name: string): string };
}): RawDelivery {
  const json = (name: string) => {
    try {
      return JSON.parse(msg.header.get(name) || '{}') as Record<string, string>;
    } catch {
      return {};
    }
  };
  return {
    seq: msg.seq,
    provider: msg.subject.slice('raw.'.length),
    receivedAt: msg.header.get('Puente-Received-At') || msg.time.toISOString(),
    requestId: msg.header.get('Puente-Request-Id'),
    headers: json('Puente-Http-Headers'),
    params: json('Puente-Http-Params'),
    body: Buffer.from(msg.data),
  };
}

/**
 * Raw deliveries, oldest first, of one provider or all, received within [since, until), optionally only
 * those whose path parameters match `params` (a Kissflow dataset, say).
 */
export async function listRawDeliveries(
  bus: Bus,
  options: { provider?: string; since?: Date; until?: Date; params?: Record<string, string>; limit?: number } = {},
): Promise<RawDelivery[]> {
  const wanted = Object.entries(options.params ?? {});
  const filter = options.provider ? `raw.${options.provider}` : 'raw.>';
  const out: RawDelivery[] = [];
  let seq = 1;
  if (options.since) {
    try {
      seq = (
        await bus.direct.getMessage(StreamNames.WEBHOOKS_RAW, {
          start_time: options.since,
          next_by_subj: filter,
        } as never)
      ).seq;
    } catch (error) {
      if (isNotFound(error)) return out;
      throw error;
    }
  }
  while (out.length < (options.limit ?? 10_000)) {
    let msg;
    try {
      msg = await bus.direct.getMessage(StreamNames.WEBHOOKS_RAW, { seq, next_by_subj: filter });
    } catch (error) {
      if (isNotFound(error)) break;
      throw error;
    }
    const raw = toRaw(msg as never);
    if (options.until && Date.parse(raw.receivedAt) >= options.until.getTime()) break;
    const inRange = !options.since || Date.parse(raw.receivedAt) >= options.since.getTime();
    if (inRange && wanted.every(([name, value]) => raw.params[name] === value)) out.push(raw);
    seq = msg.seq + 1;
  }
  return out;
}

/** The kept delivery at that stream sequence. */
export async function getRawDelivery(bus: Bus, seq: number): Promise<RawDelivery> {
  const msg = await bus.jsm.streams.getMessage(StreamNames.WEBHOOKS_RAW, { seq });
  if (!msg.subject.startsWith('raw.')) throw new Error(`WEBHOOKS_RAW message ${seq} is not a raw delivery`);
  return toRaw(msg as never);
}

/**
 * Runs a kept delivery through its provider's normalizer again (the one in this build, after a fix)
 * and publishes the events. It was verified when it arrived, so it is not verified again; the message
 * ids come from the same delivery, so what was already published is a duplicate and the projections
 * ignore repeats: redelivering is idempotent.
 */
export function renormalize(raw: RawDelivery, list: readonly AnyProvider[] = providers): Normalized {
  const provider = providerNamed(raw.provider, list);
  if (!provider) throw new Error(`no normalizer for provider ${raw.provider}`);
  return provider.renormalize(raw);
}

/** Re-normalizes a kept delivery (see `renormalize`) and publishes its events. */
export async function redeliver(
  bus: Bus,
  raw: RawDelivery,
  list: readonly AnyProvider[] = providers,
): Promise<Accepted> {
  return publishNormalized(bus, renormalize(raw, list));
}
