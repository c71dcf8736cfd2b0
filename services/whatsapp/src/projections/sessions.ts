import { Channels, Collections, type DomainEvent, type SessionSyncV1, type WhatsAppProvider } from '@puente/contracts';
import type { AspectVersion, ProjectedDoc, Projection } from '@puente/projection';
import { countOnce, isContentEvent, laterThan, messageKey, versionAt, type MessageFacts } from './common.js';

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
export function sessionsProjection(facts: MessageFacts): Projection<SessionDoc> {
  return {
    name: 'whatsapp-sessions',
    collection: Collections.waSessions,
    keys(event: DomainEvent) {
      switch (event.type) {
        case 'whatsapp.session.status.v1':
        case 'whatsapp.session.qr.v1':
        case 'whatsapp.session.sync.v1':
          return [event.data.session];
        default:
          return isContentEvent(event) ? [event.data.session] : [];
      }
    },
    evolve(doc, event, { position }) {
      if (event.type !== 'whatsapp.session.status.v1' && event.type !== 'whatsapp.session.qr.v1' && event.type !== 'whatsapp.session.sync.v1' && !isContentEvent(event)) return doc;
      const base: SessionDoc = doc ?? { provider: event.data.provider, counters: { messagesIn: 0, messagesOut: 0 }, _v: {} };
      if (isContentEvent(event)) {
        const d = event.data;
        if (facts.firstContentAt(messageKey(d.session, d.messageId)) !== position) return base;
        const counted = countOnce(base._counted, position);
        if (!counted) return base;
        const counters = d.fromMe ? { ...base.counters, messagesOut: base.counters.messagesOut + 1 } : { ...base.counters, messagesIn: base.counters.messagesIn + 1 };
        return { ...base, counters, _counted: counted };
      }
      switch (event.type) {
        case 'whatsapp.session.status.v1': {
          const d = event.data;
          if (!laterThan(base._v.status, d.timestamp)) return base;
          const next: SessionDoc = { ...base, provider: d.provider, status: d.status, _v: { ...base._v, status: versionAt(d.timestamp, position) } };
          if (d.phone) next.phone = d.phone;
          if (d.reason) next.reason = d.reason;
          else delete next.reason;
          if (d.status === 'connected' && next.qr && laterThan(next._v.qr, d.timestamp)) {
            delete next.qr;
            delete next.qrAt;
          }
          return next;
        }
        case 'whatsapp.session.qr.v1': {
          const d = event.data;
          if (!laterThan(base._v.qr, d.timestamp)) return base;
          const connectedSince = base.status === 'connected' && base._v.status && base._v.status[0] >= Date.parse(d.timestamp);
          if (connectedSince) return { ...base, _v: { ...base._v, qr: versionAt(d.timestamp, position) } };
          return { ...base, qr: d.qr, qrAt: d.timestamp, _v: { ...base._v, qr: versionAt(d.timestamp, position) } };
        }
        case 'whatsapp.session.sync.v1': {
          const d = event.data;
          if (!laterThan(base._v.sync, d.timestamp) && !(base.sync?.syncId === d.syncId && d.phase === 'completed' && base.sync.phase !== 'completed')) return base;
          const next: SessionDoc = {
            ...base,
            sync: { syncId: d.syncId, phase: d.phase, counts: d.counts, ...(d.error ? { error: d.error } : {}), at: d.timestamp },
            _v: { ...base._v, sync: versionAt(d.timestamp, position) },
          };
          if (d.phase === 'completed') next.lastSyncAt = d.timestamp;
          return next;
        }
        default:
          return base;
      }
    },
    channel: () => Channels.whatsappSessions(),
  };
}
