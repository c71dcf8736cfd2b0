import assert from 'node:assert/strict';
import { createEvent, type DomainEvent, type EventData, type EventType } from '@puente/contracts';
import { evolveAll, type InMemoryState } from '../readModels.js';

/** Given/when/then helpers for the WhatsApp read models' tests (pure: no database). */
export { evolveAll, type InMemoryState };

export const ev = <T extends EventType>(type: T, data: EventData<T>): DomainEvent =>
  createEvent(type, data, { source: 'urn:test' }) as DomainEvent;
export const S = 'ventas';
export const chat = '34612345678@s.whatsapp.net';
export const at = (minute: number) => `2026-11-20T10:${String(minute).padStart(2, '0')}:00.000Z`;
export const received = (id: string, minute: number, extra: Partial<EventData<'whatsapp.message.received.v1'>> = {}) =>
  ev('whatsapp.message.received.v1', {
    session: S,
    provider: 'inboxhub',
    messageId: id,
    chatId: chat,
    from: chat,
    fromMe: false,
    pushName: 'Juan',
    type: 'text',
    text: `hola ${id}`,
    timestamp: at(minute),
    ...extra,
  });
export const status = (id: string, value: 'sent' | 'delivered' | 'read' | 'failed', minute: number) =>
  ev('whatsapp.message.status.v1', {
    session: S,
    provider: 'cloud-api',
    messageId: id,
    chatId: chat,
    status: value,
    timestamp: at(minute),
  });

/** A send of `text` to `chat` requested by command `commandId` at `minute`. */
export const sendRequested = (commandId: string, text: string, minute: number) =>
  ev('whatsapp.message.send_requested.v1', {
    session: S,
    provider: 'inboxhub',
    commandId,
    chatId: chat,
    type: 'text',
    text,
    requestedAt: at(minute),
  });

/** Documents without what depends on stream positions (versions, first-content position). */
export function plain(state: InMemoryState) {
  const strip = (m: Map<string, object>) =>
    Object.fromEntries(
      [...m]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, d]) => {
          const { _v, firstContentAt, _counted, ...rest } = d as Record<string, unknown>;
          void _v;
          void firstContentAt;
          void _counted;
          return [k, rest];
        }),
    );
  return {
    messages: strip(state.messages),
    conversations: strip(state.conversations),
    sessions: strip(state.sessions),
    contacts: strip(state.contacts),
    commands: strip(state.commands),
  };
}

export function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((item, i) =>
    permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [item, ...rest]),
  );
}

/** Every order of `events` ends in the state of the first order; returns that state. */
export function sameInEveryOrder(events: readonly DomainEvent[]): InMemoryState {
  const reference = evolveAll(events);
  for (const order of permutations(events))
    assert.deepEqual(
      plain(evolveAll(order)),
      plain(reference),
      `order ${order.map((e) => e.type.split('.').slice(1, 3).join('.')).join(', ')}`,
    );
  return reference;
}
