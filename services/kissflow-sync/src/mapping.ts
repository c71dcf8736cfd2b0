import { readFileSync } from 'node:fs';
import { KissflowMappings, setOwn, type KissflowCoercion, type KissflowDatasetMapping } from '@puente/contracts';

export interface MappingError {
  field: string;
  message: string;
}

export interface Mapped {
  fields: Record<string, unknown>;
  errors: MappingError[];
}

/** Reads and validates a mapping file; the error names the file and the first problem. */
export function loadMappings(path: string | undefined): KissflowMappings {
  if (!path) return { datasets: {} };
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(
      `KISSFLOW_MAPPINGS: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`KISSFLOW_MAPPINGS: ${path} is not JSON: ${(error as Error).message}`);
  }
  const parsed = KissflowMappings.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`KISSFLOW_MAPPINGS: ${path}: ${issue.path.join('.') || '(file)'}: ${issue.message}`);
  }
  return parsed.data;
}

/**
 * A row in the shape the dataset's mapping describes. A value that cannot be coerced is stored as
 * null and named in `errors` (the row is still applied: one bad cell never blocks a row). A column
 * the row lacks is left out, so a mapped field is absent rather than null when Kissflow did not send it.
 */
export function applyMapping(row: Record<string, unknown>, mapping: KissflowDatasetMapping | undefined): Mapped {
  if (!mapping) return { fields: row, errors: [] };
  const fields: Record<string, unknown> = {};
  const errors: MappingError[] = [];
  const used = new Set<string>();
  for (const [name, spec] of Object.entries(mapping.fields)) {
    const { from, as } = typeof spec === 'string' ? { from: spec, as: 'raw' as const } : spec;
    used.add(from);
    if (!Object.hasOwn(row, from)) continue;
    const result = coerce(row[from], as);
    if ('error' in result) {
      setOwn(fields, name, null);
      errors.push({ field: name, message: `${from}: ${result.error}` });
    } else setOwn(fields, name, result.value);
  }
  if (mapping.unmapped === 'keep')
    for (const [key, value] of Object.entries(row))
      if (!used.has(key) && !Object.hasOwn(fields, key)) setOwn(fields, key, value);
  return { fields, errors };
}

type Coerced = { value: unknown } | { error: string };

const show = (value: unknown) => JSON.stringify(value)?.slice(0, 60) ?? String(value);

export function coerce(value: unknown, as: KissflowCoercion): Coerced {
  if (value === null || value === undefined || value === '')
    return { value: as === 'raw' || as === 'string' ? (value ?? null) : null };
  switch (as) {
    case 'raw':
      return { value };
    case 'string':
      if (typeof value === 'string') return { value };
      if (typeof value === 'number' || typeof value === 'boolean') return { value: String(value) };
      if (isLookup(value)) return { value: lookupName(value) };
      return { error: `expected text, got ${show(value)}` };
    case 'number':
      return toNumber(value);
    case 'boolean':
      if (typeof value === 'boolean') return { value };
      if (value === 1 || value === 0) return { value: value === 1 };
      if (typeof value === 'string' && /^(true|yes|y|1|si|sí)$/i.test(value.trim())) return { value: true };
      if (typeof value === 'string' && /^(false|no|n|0)$/i.test(value.trim())) return { value: false };
      return { error: `expected a yes/no value, got ${show(value)}` };
    case 'date':
      return toDate(value);
    case 'lookup':
      if (Array.isArray(value)) {
        const ids = value.map(lookupId);
        return ids.every((id) => id !== undefined)
          ? { value: ids }
          : { error: `expected lookup objects with an _id, got ${show(value)}` };
      }
      return lookupId(value) !== undefined
        ? { value: lookupId(value) }
        : { error: `expected a lookup object with an _id, got ${show(value)}` };
  }
}

function isLookup(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && ('_id' in value || 'Name' in value);
}

const lookupName = (value: Record<string, unknown>) => String(value.Name ?? value._id);

function lookupId(value: unknown): string | undefined {
  if (typeof value === 'string' && value.length > 0) return value;
  if (typeof value === 'number') return String(value);
  if (isLookup(value) && (typeof value._id === 'string' || typeof value._id === 'number')) return String(value._id);
  return undefined;
}

/** Numbers as sent, numeric text (`1,250.50`, ` 42 `), or a currency-like object's `value`. */
function toNumber(value: unknown): Coerced {
  if (typeof value === 'number') return Number.isFinite(value) ? { value } : { error: 'not a finite number' };
  if (typeof value === 'string') {
    const text = value.trim().replace(/\s/g, '');
    const plain = /^[-+]?\d{1,3}(,\d{3})+(\.\d+)?$/.test(text) ? text.replace(/,/g, '') : text;
    const n = plain === '' ? Number.NaN : Number(plain);
    return Number.isFinite(n) ? { value: n } : { error: `expected a number, got ${show(value)}` };
  }
  if (typeof value === 'object' && value !== null && 'value' in value)
    return toNumber((value as { value: unknown }).value);
  return { error: `expected a number, got ${show(value)}` };
}

/** ISO dates (`2025-10-15`, taken as UTC midnight) and times; epoch seconds or milliseconds. */
function toDate(value: unknown): Coerced {
  let ms = Number.NaN;
  if (typeof value === 'number') ms = Math.abs(value) < 1e11 ? value * 1000 : value;
  else if (typeof value === 'string' && /^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(value.trim())) {
    const text = value.trim().replace(' ', 'T');
    ms = Date.parse(/T.*(Z|[+-]\d{2}:?\d{2})$/.test(text) || !text.includes('T') ? text : `${text}Z`);
  }
  return Number.isFinite(ms) ? { value: new Date(ms) } : { error: `expected a date, got ${show(value)}` };
}
