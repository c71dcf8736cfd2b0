import {
  Channels,
  Collections,
  jidKind,
  normalizeJid,
  phoneOf,
  type DomainEventOf,
  type JidKind,
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
import { chatKey } from '../messages/facts.js';

/** The events the contacts read model applies. */
export type ContactEvent = DomainEventOf<
  'whatsapp.contact.updated.v1' | 'whatsapp.contact.imported.v1' | 'whatsapp.message.received.v1'
>;

export interface ContactDoc extends ProjectedDoc {
  session: string;
  jid: string;
  kind: JidKind;
  provider?: WhatsAppProvider;
  name?: string;
  /** The name the contact chose for themselves (`pushName`), from their messages. */
  pushName?: string;
  phone?: string;
  /** The contact's `@lid` identity, when known. */
  lid?: string;
  /** A Cloud API username user's business-scoped id (`user_id`). */
  userId?: string;
  _v: { profile?: AspectVersion; pushName?: AspectVersion };
}

function fresh(session: string, raw: string, provider: WhatsAppProvider): ContactDoc {
  const jid = normalizeJid(raw);
  const kind = jidKind(jid);
  const phone = phoneOf(jid);
  return {
    session,
    jid,
    kind,
    provider,
    ...(phone ? { phone } : {}),
    ...(kind === 'lid' ? { lid: jid } : {}),
    ...(kind === 'bsuid' ? { userId: jid.slice(0, jid.lastIndexOf('@')) } : {}),
    _v: {},
  };
}

/**
 * `wa_contacts`: one document per address, `<session>:<jid>`. Profile facts (name, phone, `@lid`)
 * merge when newer (a missing field keeps what was known); `pushName` follows the contact's newest
 * message in a one-to-one chat.
 */
export function contactsProjection(): Projection<ContactDoc, ContactEvent> {
  return {
    name: 'whatsapp-contacts',
    collection: Collections.waContacts,
    handles: ['whatsapp.contact.updated.v1', 'whatsapp.contact.imported.v1', 'whatsapp.message.received.v1'],
    keys(event) {
      switch (event.type) {
        case 'whatsapp.contact.updated.v1':
        case 'whatsapp.contact.imported.v1':
          return [chatKey(event.data.session, event.data.jid)];
        case 'whatsapp.message.received.v1':
          return event.data.pushName && event.data.from ? [chatKey(event.data.session, event.data.from)] : [];
        default:
          return unhandled(event);
      }
    },
    initial(_key, event) {
      switch (event.type) {
        case 'whatsapp.contact.updated.v1':
        case 'whatsapp.contact.imported.v1':
          return fresh(event.data.session, event.data.jid, event.data.provider);
        case 'whatsapp.message.received.v1':
          return fresh(event.data.session, event.data.from!, event.data.provider);
        default:
          return unhandled(event);
      }
    },
    evolve(doc, event, { position }) {
      const base = doc!;
      switch (event.type) {
        case 'whatsapp.contact.updated.v1':
        case 'whatsapp.contact.imported.v1': {
          const d = event.data;
          if (!isLaterSource(base._v.profile, d.timestamp)) return base;
          const phone = d.phone?.replace(/^\+/, '');
          const lid = d.lid ? normalizeJid(d.lid) : undefined;
          const changed =
            (d.name !== undefined && d.name !== base.name) ||
            (phone !== undefined && phone !== base.phone) ||
            (lid !== undefined && lid !== base.lid);
          // A document `initial` just made has no aspect yet (every stored one has one): it takes the profile's version.
          if (!changed && Object.keys(base._v).length > 0) return base;
          return setAspect(
            base,
            'profile',
            {
              ...(d.name !== undefined ? { name: d.name } : {}),
              ...(phone !== undefined ? { phone } : {}),
              ...(lid !== undefined ? { lid } : {}),
            },
            aspectVersion(d.timestamp, position),
          );
        }
        case 'whatsapp.message.received.v1': {
          const d = event.data;
          if (base.pushName === d.pushName || !isLaterSource(base._v.pushName, d.timestamp)) return base;
          return setAspect(base, 'pushName', { pushName: d.pushName }, aspectVersion(d.timestamp, position));
        }
        default:
          return unhandled(event);
      }
    },
    channel: (doc) => Channels.whatsappContacts(doc.session),
  };
}
