/**
 * The headers that make stored media safe to serve from realtime's own origin: every item is content
 * someone sent over WhatsApp, so it must never run as a page of this origin.
 */

const FALLBACK_TYPE = 'application/octet-stream';
/** `type/subtype` of RFC 9110 tokens, then parameters without control characters. */
const MEDIA_TYPE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+)\/([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*(;[\x20-\x7e\t]*)?$/;

/** The `Content-Type` to answer: the stored MIME type when it is a well-formed one, else `application/octet-stream`. */
export function servedContentType(mimeType: string | undefined): string {
  const trimmed = mimeType?.trim();
  return trimmed && MEDIA_TYPE.test(trimmed) ? trimmed : FALLBACK_TYPE;
}

/**
 * Whether a browser may show the item in place: images, audio and video, except SVG (it scripts) and
 * anything HTML or XML-like. Everything else is a download.
 */
export function servedInline(contentType: string): boolean {
  const [, type, subtype] = MEDIA_TYPE.exec(contentType) ?? [];
  if (type === undefined || subtype === undefined) return false;
  const kind = type.toLowerCase();
  const sub = subtype.toLowerCase();
  if (kind !== 'image' && kind !== 'audio' && kind !== 'video') return false;
  return !/svg|html|xml/.test(sub);
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x1f\x7f]/g;

/** RFC 8187's `attr-char`: what a `filename*` value keeps unescaped. */
const ATTR_CHAR = /[A-Za-z0-9!#$&+.^_`|~-]/;

/**
 * `Content-Disposition` (RFC 6266): `inline` or `attachment`, with the file name, when there is one, as
 * an ASCII `filename` (others, quotes, backslashes and separators replaced) and an exact UTF-8 `filename*`
 * (RFC 8187) that current browsers prefer. Directory parts and control characters never reach the header.
 */
export function contentDisposition(inline: boolean, fileName: string | undefined): string {
  const kind = inline ? 'inline' : 'attachment';
  const name = fileName?.split(/[/\\]/).pop()?.replace(CONTROL, '').trim();
  if (!name) return kind;
  const ascii = name.replace(/[^\x20-\x7e]|["\\%]/g, '_');
  const exact = [...Buffer.from(name, 'utf8')]
    .map((byte) => {
      const char = String.fromCharCode(byte);
      return byte < 0x80 && ATTR_CHAR.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    })
    .join('');
  return `${kind}; filename="${ascii}"; filename*=UTF-8''${exact}`;
}
