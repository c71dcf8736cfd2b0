/**
 * PHP-style query strings, the way Bitrix24 reads a `batch` sub-call (`method?fields[TITLE]=x&...`):
 * nested objects and arrays become bracketed keys, as PHP's `http_build_query` writes them and
 * `parse_str` reads them.
 */

/**
 * A reference to an earlier sub-call's result inside a batch: `$result[key]`, `$result[key][FIELD]`
 * (also `$result_error[...]`, `$result_total[...]`, `$result_next[...]`). Bitrix substitutes these in
 * the values of later sub-calls, so they are written as they are, not percent-encoded.
 */
const REFERENCE = /\$result(?:_error|_total|_next|_time)?(?:\[[A-Za-z0-9_.:-]+\])+/g;

/**
 * Encodes `params` as PHP's `http_build_query` does: `{fields: {TITLE: 'x', PHONE: [{VALUE: '1'}]}}` →
 * `fields[TITLE]=x&fields[PHONE][0][VALUE]=1`. `true`/`false` become `1`/`0` (PHP's form), `null` and
 * `undefined` are left out, dates become ISO strings. Key segments and values are percent-encoded as
 * UTF-8 (brackets of the key structure stay literal), except batch references (`$result[add_1]`).
 */
export function encodeQuery(params: Record<string, unknown>): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(params)) append(parts, encodeURIComponent(key), value);
  return parts.join('&');
}

function append(parts: string[], key: string, value: unknown): void {
  if (value === null || value === undefined) return;
  if (Array.isArray(value)) {
    value.forEach((item, index) => append(parts, `${key}[${index}]`, item));
    return;
  }
  if (value instanceof Date) {
    parts.push(`${key}=${encodeValue(value.toISOString())}`);
    return;
  }
  if (typeof value === 'object') {
    for (const [k, v] of Object.entries(value as Record<string, unknown>))
      append(parts, `${key}[${encodeURIComponent(k)}]`, v);
    return;
  }
  if (typeof value === 'boolean') {
    parts.push(`${key}=${value ? '1' : '0'}`);
    return;
  }
  parts.push(`${key}=${encodeValue(String(value))}`);
}

/** Percent-encodes a value, leaving batch references literal so Bitrix can substitute them. */
export function encodeValue(value: string): string {
  let out = '';
  let last = 0;
  for (const match of value.matchAll(REFERENCE)) {
    out += encodeURIComponent(value.slice(last, match.index)) + match[0];
    last = match.index + match[0].length;
  }
  return out + encodeURIComponent(value.slice(last));
}

/**
 * Decodes a PHP-style query string into nested objects, as PHP's `parse_str` does (the fake Bitrix24
 * reads batch sub-calls with it). Objects whose keys are exactly `0..n-1` become arrays; `a[]=x` appends.
 */
export function decodeQuery(query: string): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  for (const pair of query.split('&')) {
    if (!pair) continue;
    const eq = pair.indexOf('=');
    const rawKey = decode(eq < 0 ? pair : pair.slice(0, eq));
    const value = eq < 0 ? '' : decode(pair.slice(eq + 1));
    const open = rawKey.indexOf('[');
    const head = open <= 0 ? rawKey : rawKey.slice(0, open);
    const path = [head];
    if (open > 0) {
      for (const m of rawKey.slice(open).matchAll(/\[([^\]]*)\]/g)) path.push(m[1]!);
    }
    let node: Record<string, unknown> = root;
    for (let i = 0; i < path.length; i++) {
      let segment = path[i]!;
      if (segment === '') segment = String(Object.keys(node).length);
      if (i === path.length - 1) {
        node[segment] = value;
      } else {
        const next = node[segment];
        if (next === null || typeof next !== 'object') node[segment] = {};
        node = node[segment] as Record<string, unknown>;
      }
    }
  }
  for (const key of Object.keys(root)) root[key] = arraysOf(root[key]);
  return root;
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return text;
  }
}

function arraysOf(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) record[key] = arraysOf(record[key]);
  const keys = Object.keys(record);
  if (keys.length > 0 && keys.every((key, index) => key === String(index))) return keys.map((key) => record[key]);
  return record;
}
