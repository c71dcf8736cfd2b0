import {
  Channels,
  Collections,
  type DomainEventOf,
  type SessionSyncV1,
  type WhatsAppProvider,
} from '@puente/contracts';
import {
  aspectVersion,
  isLaterSource,
  setAspect,
  unhandled,
  type AspectVersion,
  type ProjectedDoc,
  type Projection,
} from '@puente/projection';
import { ContentEventTypes, countOnce, messageKey, type ContentEvent, type MessageFacts } from '../messages/facts.js';

/** The events the sessions read model applies. */
export type SessionEvent =
  | ContentEvent
  | DomainEventOf<
      'whatsapp.session.status.v1' | 'whatsapp.session.qr.v1' | 'whatsapp.session.sync.v1' | 'whatsapp.command.sent.v1'
    >;

export interface SessionDoc extends ProjectedDoc {
  provider: WhatsAppProvider;
  status?: 'connecting' | 'connected' | 'disconnected' | 'logged_out' | 'failed';
  phone?: string;
  reason?: string;
  /** The last QR code to pair with; cleared once connected. */
  qr?: string;
  qrAt?: string;
  /** When the last full sync completed. */
  lastSyncAt?: string;
  /** The last full sync: its phase and what it imported so far. */
  sync?: { syncId: string; phase: SessionSyncV1['phase']; counts: SessionSyncV1['counts']; error?: string; at: string };
  /** Messages counted once each, when their document first got content (imports included). */
  counters: { messagesIn: number; messagesOut: number };
  _v: { status?: AspectVersion; qr?: AspectVersion; sync?: AspectVersion };
  /** Bookkeeping: positions whose message raised a counter (a redelivered batch does not count again). */
  _counted?: number[];
}

/** `wa_sessions`: one document per session: status, last QR, last sync with its counts, message counters, the provider. */
export function sessionsProjection(facts: MessageFacts): Projection<SessionDoc, SessionEvent> {
  return {
    name: 'whatsapp-sessions',
    collection: Collections.waSessions,
    handles: [
      ...ContentEventTypes,
      'whatsapp.session.status.v1',
      'whatsapp.session.qr.v1',
      'whatsapp.session.sync.v1',
      'whatsapp.command.sent.v1',
    ],
    keys: (event) => [event.data.session],
    // A command's outcome names no provider: it only counts on a session document that exists.
    initial: (_key, event) =>
      event.type === 'whatsapp.command.sent.v1'
        ? null
        : { provider: event.data.provider, counters: { messagesIn: 0, messagesOut: 0 }, _v: {} },
    evolve(doc, event, { position }) {
      if (!doc) return doc;
      const base = doc;
      switch (event.type) {
        case 'whatsapp.message.received.v1':
        case 'whatsapp.message.sent.v1':
        case 'whatsapp.message.imported.v1': {
          const d = event.data;
          if (facts.firstContentAt(messageKey(d.session, d.messageId)) !== position) return base;
          const counted = countOnce(base._counted, position);
          if (!counted) return base;
          const counters = d.fromMe
            ? { ...base.counters, messagesOut: base.counters.messagesOut + 1 }
            : { ...base.counters, messagesIn: base.counters.messagesIn + 1 };
          return { ...base, counters, _counted: counted };
        }
        case 'whatsapp.command.sent.v1': {
          // A send whose answer came before the provider's webhook gives the provider's message document its
          // content here, not in a content event: counted here then, so the count is the same in either order.
          const d = event.data;
          if (d.kind !== 'send_message' || !d.providerMessageId) return base;
          if (facts.firstContentAt(messageKey(d.session, d.providerMessageId)) !== position) return base;
          const counted = countOnce(base._counted, position);
          if (!counted) return base;
          return {
            ...base,
            counters: { ...base.counters, messagesOut: base.counters.messagesOut + 1 },
            _counted: counted,
          };
        }
        case 'whatsapp.session.status.v1': {
          const d = event.data;
          if (!isLaterSource(base._v.status, d.timestamp)) return base;
          const next = setAspect(
            base,
            'status',
            { provider: d.provider, status: d.status },
            aspectVersion(d.timestamp, position),
          );
          if (d.phone) next.phone = d.phone;
          if (d.reason) next.reason = d.reason;
          else delete next.reason;
          if (d.status === 'connected' && next.qr && isLaterSource(next._v.qr, d.timestamp)) {
            delete next.qr;
            delete next.qrAt;
          }
          return next;
        }
        case 'whatsapp.session.qr.v1': {
          const d = event.data;
          if (!isLaterSource(base._v.qr, d.timestamp)) return base;
          const connectedSince =
            base.status === 'connected' && base._v.status && base._v.status[0] >= Date.parse(d.timestamp);
          // Connected since the code was shown: the code is old news, only its version moves.
          if (connectedSince) return setAspect(base, 'qr', {}, aspectVersion(d.timestamp, position));
          return setAspect(base, 'qr', { qr: d.qr, qrAt: d.timestamp }, aspectVersion(d.timestamp, position));
        }
        case 'whatsapp.session.sync.v1': {
          const d = event.data;
          if (
            !isLaterSource(base._v.sync, d.timestamp) &&
            !(base.sync?.syncId === d.syncId && d.phase === 'completed' && base.sync.phase !== 'completed')
          )
            return base;
          const next = setAspect(
            base,
            'sync',
            {
              sync: {
                syncId: d.syncId,
                phase: d.phase,
                counts: d.counts,
                ...(d.error ? { error: d.error } : {}),
                at: d.timestamp,
              },
            },
            aspectVersion(d.timestamp, position),
          );
          if (d.phase === 'completed') next.lastSyncAt = d.timestamp;
          return next;
        }
        default:
          return unhandled(event);
      }
    },
    channel: () => Channels.whatsappSessions(),
  };
}
