import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { z } from 'zod';
import type { DomainEvent } from '@puente/contracts';
import { ContractViolationError, MalformedJsonError } from '../http/errors.js';

/** One verified HTTP delivery, as every provider's normalizer sees it. */
export interface WebhookRequest {
  readonly provider: string;
  readonly params: Readonly<Record<string, string>>;
  readonly headers: IncomingHttpHeaders;
  /** The raw bytes received: what signatures are checked against. */
  readonly body: Buffer;
  readonly receivedAt: Date;
}

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

/** A kept delivery as the request its normalizer saw (headers as kept: credentials are not among them). */
export function rawRequest(raw: RawDelivery): WebhookRequest {
  return {
    provider: raw.provider,
    params: raw.params,
    headers: raw.headers,
    body: raw.body,
    receivedAt: new Date(raw.receivedAt),
  };
}

/** An event to publish, with the delivery identity the stream deduplicates on (its event id derives from it when published). */
export interface NormalizedEvent {
  readonly event: DomainEvent;
  readonly msgId: string;
}

export interface Normalized {
  readonly events: readonly NormalizedEvent[];
  /** Parts of the delivery Puente keeps (in WEBHOOKS_RAW) but does not turn into events. */
  readonly ignored: readonly { readonly reason: string; readonly type?: string }[];
}

/** A delivery that becomes exactly one event. */
export function single(event: DomainEvent, msgId: string): Normalized {
  return { events: [{ event, msgId }], ignored: [] };
}

export const sha256 = (value: string | Buffer): string => createHash('sha256').update(value).digest('hex');

export { canonicalJson } from '@puente/contracts';

export function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (error) {
    throw new MalformedJsonError(error);
  }
}

/** A zod failure as a 400 that names every offending field. */
export function contractViolation(what: string, error: z.ZodError): ContractViolationError {
  const details = error.issues.map((issue) => ({
    path: issue.path.map(String).join('.') || '(body)',
    message: issue.message,
  }));
  return new ContractViolationError(`${what}: ${details.map((d) => `${d.path}: ${d.message}`).join('; ')}`, details);
}
