/**
 * WhatsApp addresses. Baileys gateways send JIDs in several spellings (`@c.us`, device suffixes,
 * upper case servers), the Cloud API sends phone digits or, for username users, a business-scoped
 * user id (BSUID, e.g. `US.13491208655302741918`). Read models key on one form: `normalizeJid`.
 */

/** The server Puente gives a Cloud API user known only by their BSUID (`user_id`). */
export const BSUID_SERVER = 'bsuid';

const BSUID = /^[A-Z]{2}\.[A-Za-z0-9.]{1,160}$/;

/**
 * One spelling per address: phone digits (with or without `+`) and `@c.us` become `@s.whatsapp.net`;
 * the device part (`user:device@server`) is dropped; the server is lower-cased; a BSUID becomes
 * `<bsuid>@bsuid` (case kept: it is opaque). Anything else is returned trimmed, unchanged.
 */
export function normalizeJid(raw: string): string {
  const value = raw.trim();
  const at = value.lastIndexOf('@');
  if (at < 0) {
    const digits = value.replace(/^\+/, '');
    if (/^\d{5,20}$/.test(digits)) return `${digits}@s.whatsapp.net`;
    if (BSUID.test(value)) return `${value}@${BSUID_SERVER}`;
    return value;
  }
  let user = value.slice(0, at);
  let server = value.slice(at + 1).toLowerCase();
  if (server === 'c.us') server = 's.whatsapp.net';
  const colon = user.indexOf(':');
  if (colon >= 0 && (server === 's.whatsapp.net' || server === 'lid' || server === 'hosted' || server === 'hosted.lid'))
    user = user.slice(0, colon);
  return `${user}@${server}`;
}

export type JidKind = 'user' | 'lid' | 'group' | 'broadcast' | 'newsletter' | 'bsuid' | 'other';

/** What a (normalized) JID addresses. */
export function jidKind(jid: string): JidKind {
  const server = jid.slice(jid.lastIndexOf('@') + 1);
  switch (server) {
    case 's.whatsapp.net':
      return 'user';
    case 'lid':
    case 'hosted.lid':
      return 'lid';
    case 'g.us':
      return 'group';
    case 'broadcast':
      return 'broadcast';
    case 'newsletter':
      return 'newsletter';
    case BSUID_SERVER:
      return 'bsuid';
    default:
      return 'other';
  }
}

/** The phone number (digits) of a phone JID, else undefined. */
export function phoneOf(jid: string): string | undefined {
  const match = /^(\d{5,20})@s\.whatsapp\.net$/.exec(jid);
  return match?.[1];
}
