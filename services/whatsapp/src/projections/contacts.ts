import { Channels, Collections, jidKind, normalizeJid, phoneOf, type DomainEvent, type JidKind, type WhatsAppProvider } from '@puente/contracts';
import type { AspectVersion, ProjectedDoc, Projection } from '@puente/projection';
import { chatKey, laterThan, versionAt } from './common.js';

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
    session, jid, kind, provider,
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
export function contactsProjection(): Projection<ContactDoc> {
  return {
    name: 'whatsapp-contacts',
    collection: Collections.waContacts,
    keys(event: DomainEvent) {
      switch (event.type) {
        case 'whatsapp.contact.updated.v1':
        case 'whatsapp.contact.imported.v1':
          return [chatKey(event.data.session, event.data.jid)];
        case 'whatsapp.message.received.v1':
          return event.data.pushName && event.data.from ? [chatKey(event.data.session, event.data.from)] : [];
        default:
          return [];
      }
    },
    evolve(doc, event, { position }) {
      switch (event.type) {
        case 'whatsapp.contact.updated.v1':
        case 'whatsapp.contact.imported.v1': {
          const d = event.data;
          const base = doc ?? fresh(d.session, d.jid, d.provider);
          if (!laterThan(base._v.profile, d.timestamp)) return base;
          const phone = d.phone?.replace(/^\+/, '');
          const lid = d.lid ? normalizeJid(d.lid) : undefined;
          const changed = (d.name !== undefined && d.name !== base.name) || (phone !== undefined && phone !== base.phone) || (lid !== undefined && lid !== base.lid);
          if (!changed && doc) return doc;
          return {
            ...base,
            ...(d.name !== undefined ? { name: d.name } : {}),
            ...(phone !== undefined ? { phone } : {}),
            ...(lid !== undefined ? { lid } : {}),
            _v: { ...base._v, profile: versionAt(d.timestamp, position) },
          };
        }
        case 'whatsapp.message.received.v1': {
          const d = event.data;
          const base = doc ?? fresh(d.session, d.from!, d.provider);
          if (base.pushName === d.pushName || !laterThan(base._v.pushName, d.timestamp)) return base;
          return { ...base, pushName: d.pushName, _v: { ...base._v, pushName: versionAt(d.timestamp, position) } };
        }
        default:
          return doc;
      }
    },
    channel: (doc) => Channels.whatsappContacts(doc.session),
  };
}
