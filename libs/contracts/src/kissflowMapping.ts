import { z } from 'zod';

/**
 * How one mapped field is coerced: `raw` keeps the value as sent; `string`, `number`, `boolean`;
 * `date` stores a BSON date (from an ISO date or time, or epoch seconds or milliseconds); `lookup`
 * turns a lookup or user object (`{"_id", "Name"}`), or a list of them, into its id (or ids).
 */
export const KissflowCoercion = z.enum(['raw', 'string', 'number', 'boolean', 'date', 'lookup']);
export type KissflowCoercion = z.infer<typeof KissflowCoercion>;

/** One field of the read model: a column renamed (`"Cliente_RUC"`), or a column with a coercion. */
export const KissflowFieldMapping = z.union([
  z.string().min(1),
  z.strictObject({ from: z.string().min(1), as: KissflowCoercion.default('raw') }),
]);
export type KissflowFieldMapping = z.infer<typeof KissflowFieldMapping>;

export const KissflowDatasetMapping = z.strictObject({
  /** Read-model field name → where it comes from. */
  fields: z.record(z.string().min(1), KissflowFieldMapping),
  /** `drop` (default): only the mapped fields are kept; `keep`: the other columns too, as sent. */
  unmapped: z.enum(['drop', 'keep']).default('drop'),
});
export type KissflowDatasetMapping = z.infer<typeof KissflowDatasetMapping>;

/** The file `KISSFLOW_MAPPINGS` names: per dataset id, the shape of its rows in `kissflow_records.fields`. */
export const KissflowMappings = z.strictObject({ datasets: z.record(z.string().min(1), KissflowDatasetMapping) });
export type KissflowMappings = z.infer<typeof KissflowMappings>;

/**
 * Field names and values from outside (Kissflow columns) made storable in MongoDB and FerretDB,
 * reversibly. A name with `.`, a leading `$`, a NUL or a `%` is percent-encoded (`%2E`, `%24`, `%00`,
 * `%25`; a name `__proto__` becomes `%5F_proto__`); an array inside an array (FerretDB rejects those) becomes `{"%arr": [...]}`; a string with a
 * NUL (PostgreSQL-backed servers reject it) or a value nested deeper than `MAX_STORED_DEPTH` becomes
 * `{"%json": "<its JSON>"}`; an infinite number or NaN (FerretDB rejects them) `{"%num": "Infinity"}`.
 * Encoded names always have two hex digits after `%`, so the markers `%arr`, `%json` and `%num`
 * never collide with a column's name.
 */
export const MAX_STORED_DEPTH = 60;

/** A `.`, `%` or NUL anywhere, or a leading `$`. */
// eslint-disable-next-line no-control-regex -- NUL is one of the characters a BSON name cannot hold
const UNSTORABLE_NAME = /[.%\u0000]|^\$/g;

export function encodeFieldName(name: string): string {
  // `__proto__` as a key is a trap in JavaScript (and for BSON decoders): stored as `%5F_proto__`.
  if (name === '__proto__') return '%5F_proto__';
  UNSTORABLE_NAME.lastIndex = 0;
  return UNSTORABLE_NAME.test(name)
    ? name.replace(UNSTORABLE_NAME, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0').toUpperCase()}`)
    : name;
}

export function decodeFieldName(name: string): string {
  return name.includes('%')
    ? name.replace(/%([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)))
    : name;
}

/** A JSON value (or one with dates) in a form both servers store. */
export function toStorable(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return value.includes('\u0000') ? { '%json': JSON.stringify(value) } : value;
  if (typeof value === 'number' && !Number.isFinite(value)) return { '%num': String(value) };
  if (value === null || typeof value !== 'object' || value instanceof Date) return value;
  if (depth >= MAX_STORED_DEPTH) return { '%json': JSON.stringify(value) };
  if (Array.isArray(value))
    return value.map((item) =>
      Array.isArray(item) ? { '%arr': toStorable(item, depth + 1) } : toStorable(item, depth + 1),
    );
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value))
    if (item !== undefined) setOwn(out, encodeFieldName(key), toStorable(item, depth + 1));
  return out;
}

/** The inverse of `toStorable`: the value as Kissflow sent it (dates stay dates). */
export function fromStorable(value: unknown): unknown {
  if (value === null || typeof value !== 'object' || value instanceof Date) return value;
  if (Array.isArray(value)) return value.map(fromStorable);
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record);
  if (keys.length === 1 && keys[0] === '%json' && typeof record['%json'] === 'string')
    return JSON.parse(record['%json']) as unknown;
  if (keys.length === 1 && keys[0] === '%arr' && Array.isArray(record['%arr'])) return fromStorable(record['%arr']);
  if (keys.length === 1 && keys[0] === '%num' && typeof record['%num'] === 'string') return Number(record['%num']);
  return Object.fromEntries(keys.map((key) => [decodeFieldName(key), fromStorable(record[key])]));
}

/** Sets an own, enumerable property, whatever its name (`__proto__` included). */
export function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}
