import { z } from 'zod';
import { CloudEventSchema } from './envelope.js';
import { EventDefinitions, isEventType, type DomainEvent } from './events/registry.js';

/** Turns stored events of an older type version into the current one, so replays keep working. */
export interface Upcaster {
  readonly from: string;
  readonly to: string;
  readonly upcast: (data: unknown) => unknown;
}

/**
 * The upcasters in force. When a `.v2` of a type appears, its `.v1` → `.v2` upcaster goes here and the
 * `.v1` definition leaves `EventDefinitions`; every reader of the log then sees only current versions.
 */
export const Upcasters: readonly Upcaster[] = [];

export class UnknownEventTypeError extends Error {
  readonly code = 'UNKNOWN_EVENT_TYPE';
}

export class InvalidEventError extends Error {
  readonly code = 'INVALID_EVENT';
  constructor(
    message: string,
    readonly issues: z.core.$ZodIssue[],
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** Applies upcasters until the type has none left; a cycle is a programming error. */
export function upcast(
  type: string,
  data: unknown,
  upcasters: readonly Upcaster[] = Upcasters,
): { type: string; data: unknown } {
  const byFrom = new Map(upcasters.map((u) => [u.from, u]));
  const seen = new Set<string>();
  let current = { type, data };
  for (let step = byFrom.get(current.type); step; step = byFrom.get(current.type)) {
    if (seen.has(step.from)) throw new Error(`upcaster cycle at ${step.from}`);
    seen.add(step.from);
    current = { type: step.to, data: step.upcast(current.data) };
  }
  return current;
}

/** Validates an envelope from the log or the wire, upcasts it, and validates its data by type. */
export function parseEvent(raw: unknown, upcasters: readonly Upcaster[] = Upcasters): DomainEvent {
  const envelope = CloudEventSchema.safeParse(raw);
  if (!envelope.success)
    throw new InvalidEventError(
      `invalid CloudEvents envelope: ${z.prettifyError(envelope.error)}`,
      envelope.error.issues,
    );
  const current = upcast(envelope.data.type, envelope.data.data, upcasters);
  if (!isEventType(current.type)) throw new UnknownEventTypeError(`unknown event type ${current.type}`);
  const data = EventDefinitions[current.type].data.safeParse(current.data);
  if (!data.success)
    throw new InvalidEventError(`invalid ${current.type} data: ${z.prettifyError(data.error)}`, data.error.issues);
  return { ...envelope.data, type: current.type, data: data.data } as DomainEvent;
}

/** Decodes a JSON message body into a validated, upcast event. */
export function decodeEvent(bytes: Uint8Array, upcasters: readonly Upcaster[] = Upcasters): DomainEvent {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    throw new InvalidEventError('event body is not JSON', [], { cause: error });
  }
  return parseEvent(raw, upcasters);
}
