import { Channels, Collections, type DomainEventOf, type MessageTemplate } from '@puente/contracts';
import {
  aspectVersion,
  isLaterSource,
  setAspect,
  type AspectVersion,
  type ProjectedDoc,
  type Projection,
} from '@puente/projection';

/** The events the templates read model applies. */
export type TemplateEvent = DomainEventOf<'whatsapp.templates.synced.v1'>;

/** A Cloud API session's message template, as its WhatsApp Business Account lists it. */
export interface TemplateDoc extends ProjectedDoc {
  session: string;
  name: string;
  /** Language and locale code (`es`, `en_US`): a template's name has one document per language. */
  language: string;
  /** Meta's status: only `APPROVED` templates can be sent. */
  status?: string;
  category?: string;
  components?: MessageTemplate['components'];
  /** Meta's template id. */
  templateId?: string;
  wabaId?: string;
  /** When the list this document comes from was read. */
  syncedAt?: string;
  _v: { sync?: AspectVersion };
}

/**
 * A template's components as the read model stores them: without `example` (the sample values Meta's
 * review reads, not needed to send; `body_text` is an array of arrays) and with any other array held
 * directly in an array as its JSON text, since FerretDB stores no nested arrays (the event keeps them as
 * Meta gave them).
 */
export function storableComponents(components: MessageTemplate['components']): MessageTemplate['components'] {
  const clean = (value: unknown, inArray: boolean): unknown => {
    if (Array.isArray(value)) return inArray ? JSON.stringify(value) : value.map((v) => clean(v, true));
    if (value && typeof value === 'object')
      return Object.fromEntries(
        Object.entries(value).flatMap(([k, v]) => (k === 'example' ? [] : [[k, clean(v, false)]])),
      );
    return value;
  };
  return components.map((c) => clean(c, false) as Record<string, unknown>);
}

/** `_id` of a template document. */
export const templateKey = (session: string, name: string, language: string): string =>
  `${session}:${name}:${language}`;

/**
 * `wa_templates`: one document per template and language of a session, `<session>:<name>:<language>`.
 * Each `templates.synced` is the whole list: a listed template takes the list's fields, one it names as
 * removed becomes a tombstone; an older list (by the time it was read) changes nothing, nor does the
 * same list again.
 */
export function templatesProjection(): Projection<TemplateDoc, TemplateEvent> {
  return {
    name: 'whatsapp-templates',
    collection: Collections.waTemplates,
    handles: ['whatsapp.templates.synced.v1'],
    // One event type: no switch over `type` (a new one handled here gets its own).
    keys(event) {
      const d = event.data;
      return [...d.templates, ...d.removed].map((t) => templateKey(d.session, t.name, t.language));
    },
    initial(key, event) {
      const d = event.data;
      // A removed template never seen here still gets its tombstone: an older list arriving later must not bring it back.
      const t = [...d.templates, ...d.removed].find((t) => templateKey(d.session, t.name, t.language) === key)!;
      return { session: d.session, name: t.name, language: t.language, _v: {} };
    },
    evolve(doc, event, { key, position }) {
      const d = event.data;
      if (!doc || !isLaterSource(doc._v.sync, d.timestamp)) return doc;
      const version = aspectVersion(d.timestamp, position);
      const listed = d.templates.find((t) => templateKey(d.session, t.name, t.language) === key);
      if (!listed)
        return doc._deleted ? doc : setAspect(doc, 'sync', { _deleted: true, syncedAt: d.timestamp }, version);
      const { _deleted: _gone, ...alive } = doc;
      return setAspect(
        alive as TemplateDoc,
        'sync',
        {
          status: listed.status,
          category: listed.category,
          components: storableComponents(listed.components),
          templateId: listed.id,
          wabaId: d.wabaId,
          syncedAt: d.timestamp,
        },
        version,
      );
    },
    channel: (doc) => Channels.whatsappTemplates(doc.session),
    indexes: [{ key: { session: 1, name: 1 }, name: 'session_templates' }],
  };
}
