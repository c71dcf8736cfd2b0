import { StreamNames } from '@puente/contracts';
import { isNotFound, type Bus } from '@puente/bus';
import type { Normalized, WebhookRequest } from './delivery.js';
import { normalizeEvolution } from './evolution/evolution.js';
import { normalizeInboxHub } from './inboxhub/inboxhub.js';
import { normalizeKissflow } from './kissflow/kissflow.js';
import { publishNormalized, type Accepted } from './publish.js';
import { normalizeWaha } from './waha/waha.js';
import { normalizeWhatsAppCloud } from './whatsapp-cloud/whatsappCloud.js';

export const RawProviders = ['kissflow', 'inboxhub', 'evolution', 'waha', 'whatsapp-cloud'] as const;
export type RawProvider = (typeof RawProviders)[number];

/** A verified delivery as `WEBHOOKS_RAW` keeps it (`raw.<provider>`): the body byte for byte and its non-secret headers. */
export interface RawDelivery {
  seq: number;
  provider: string;
  receivedAt: string;
  requestId: string;
  headers: Record<string, string>;
  params: Record<string, string>;
  body: Buffer;
}

function toRaw(msg: { seq: number; subject: string; time: Date; data: Uint8Array; header: { get(name: string): string } }): RawDelivery {
  const json = (name: string) => {
    try {
      return JSON.parse(msg.header.get(name) || '{}') as Record<string, string>;
    } catch {
      return {};
    }
  };
  return {
    seq: msg.seq, provider: msg.subject.slice('raw.'.length), receivedAt: msg.header.get('Puente-Received-At') || msg.time.toISOString(),
    requestId: msg.header.get('Puente-Request-Id'), headers: json('Puente-Http-Headers'), params: json('Puente-Http-Params'), body: Buffer.from(msg.data),
  };
}

/**
 * Raw deliveries, oldest first, of one provider or all, received within [since, until), optionally only
 * those whose path parameters match `params` (a Kissflow dataset, say).
 */
export async function listRawDeliveries(bus: Bus, options: { provider?: string; since?: Date; until?: Date; params?: Record<string, string>; limit?: number } = {}): Promise<RawDelivery[]> {
  const wanted = Object.entries(options.params ?? {});
  const filter = options.provider ? `raw.${options.provider}` : 'raw.>';
  const out: RawDelivery[] = [];
  let seq = 1;
  if (options.since) {
    try {
      seq = (await bus.direct.getMessage(StreamNames.WEBHOOKS_RAW, { start_time: options.since, next_by_subj: filter } as never)).seq;
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
export function renormalize(raw: RawDelivery): Normalized {
  const header = (name: string) => raw.headers[name];
  const request: WebhookRequest = { provider: raw.provider, params: raw.params, headers: raw.headers, body: raw.body, receivedAt: new Date(raw.receivedAt) };
  switch (raw.provider as RawProvider) {
    case 'kissflow':
      return normalizeKissflow(request);
    case 'inboxhub':
      return normalizeInboxHub(request, header('webhook-id') && header('webhook-signature') ? header('webhook-id') : undefined);
    case 'evolution':
      return normalizeEvolution(request);
    case 'waha':
      return normalizeWaha(request);
    case 'whatsapp-cloud':
      return normalizeWhatsAppCloud(request);
    default:
      throw new Error(`no normalizer for provider ${raw.provider}`);
  }
}

export async function redeliver(bus: Bus, raw: RawDelivery): Promise<Accepted> {
  return publishNormalized(bus, renormalize(raw));
}
