/** What replaces a credential in the kept copy of a delivery. */
export const REDACTED = '[redacted]';

/** Shorter values are not looked for: they would match ordinary text. */
const MIN_SECRET_LENGTH = 8;

/**
 * The body with every occurrence of these values (as written, and as a JSON string escapes them)
 * replaced by `[redacted]`; every other byte as received. The same Buffer when none occurs.
 */
export function redactValues(body: Buffer, values: Iterable<string>): Buffer {
  const needles = new Set<string>();
  for (const value of values) {
    if (value.length < MIN_SECRET_LENGTH) continue;
    needles.add(value);
    needles.add(JSON.stringify(value).slice(1, -1));
    needles.add(value.replaceAll('/', '\\/'));
  }
  let out = body;
  for (const needle of needles) {
    const pattern = Buffer.from(needle, 'utf8');
    let at = out.indexOf(pattern);
    if (at < 0) continue;
    const parts: Buffer[] = [];
    let from = 0;
    while (at >= 0) {
      parts.push(out.subarray(from, at), Buffer.from(REDACTED));
      from = at + pattern.length;
      at = out.indexOf(pattern, from);
    }
    parts.push(out.subarray(from));
    out = Buffer.concat(parts);
  }
  return out;
}
