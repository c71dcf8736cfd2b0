import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { canonicalJson } from '@puente/contracts';

const PHONE_TYPES = ['WORK', 'MOBILE', 'FAX', 'HOME', 'PAGER', 'MAILING', 'OTHER'] as const;
const EMAIL_TYPES = ['WORK', 'HOME', 'MAILING', 'OTHER'] as const;

/** A Bitrix24 company field name: standard upper-case (`COMMENTS`, `REVENUE`) or custom (`UF_CRM_1700000000`). */
const FieldName = z
  .string()
  .regex(/^[A-Z][A-Z0-9_]*$/, 'Bitrix24 field names are upper case, e.g. COMMENTS or UF_CRM_RUC');

/** A column copied into a field, optionally through a table of values (ERP value → Bitrix24 value). */
const ColumnValue = z.union([
  z
    .string()
    .min(1)
    .transform((column) => ({
      column,
      values: undefined as Record<string, string> | undefined,
      default: undefined as string | undefined,
    })),
  z.strictObject({
    column: z.string().min(1),
    values: z.record(z.string(), z.string()).optional(),
    default: z.string().optional(),
  }),
]);

/** A `crm_status` directory field (`COMPANY_TYPE`, `INDUSTRY`): Bitrix24 takes the `STATUS_ID` string, never the numeric id. */
const DirectoryValue = z.strictObject({
  column: z.string().min(1),
  /** ERP value → `STATUS_ID` (list them with `npx puente bitrix directory-items COMPANY_TYPE`). */
  values: z.record(
    z.string(),
    z.string().regex(/^[A-Za-z0-9_]+$/, 'a STATUS_ID such as CUSTOMER or IT (letters, digits, _)'),
  ),
  /** Used when the ERP value has no entry in `values`; absent: the field is left as it is in Bitrix24. */
  default: z.string().optional(),
});

const MultiValue = <T extends readonly [string, ...string[]]>(types: T) =>
  z.strictObject({ column: z.string().min(1), valueType: z.enum(types).default('WORK' as T[number]) });

/** The companies mapping file (`BITRIX_COMPANY_MAPPING`): ERP columns to Bitrix24 company fields. */
export const CompanyMapping = z.strictObject({
  /** The ERP table whose changes become companies. */
  table: z
    .string()
    .regex(/^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$/i)
    .default('public.cliente'),
  /** Its key columns: their values are the company's external id (`ORIGIN_ID`). */
  key: z.array(z.string().min(1)).min(1).default(['id_cliente']),
  /** `ORIGINATOR_ID` of the companies this sync owns: with `ORIGIN_ID`, how an existing company is found before one is created. */
  originatorId: z.string().min(1).max(64).default('glyms'),
  /** Column of the company name (`TITLE`, required). */
  title: z.string().min(1).default('razon_social'),
  email: MultiValue(EMAIL_TYPES).nullable().default({ column: 'email', valueType: 'WORK' }),
  phone: MultiValue(PHONE_TYPES).nullable().default({ column: 'telefono', valueType: 'WORK' }),
  companyType: DirectoryValue.optional(),
  industry: DirectoryValue.optional(),
  /** More fields, standard or custom: `{"UF_CRM_RUC": "ruc", "COMMENTS": {"column": "nota"}}`. */
  fields: z.record(FieldName, ColumnValue).default({}),
  /** A column saying whether the customer is active, and what an inactive one becomes. */
  active: z
    .strictObject({ column: z.string().min(1), whenInactive: z.enum(['delete', 'keep']).default('keep') })
    .optional(),
});
export type CompanyMapping = z.infer<typeof CompanyMapping>;

/** Reads and validates the mapping file; no file: the defaults for the demo schema. Throws one line naming the file and the problem. */
export function loadCompanyMapping(path: string | undefined): CompanyMapping {
  if (!path) return CompanyMapping.parse({});
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new Error(`BITRIX_COMPANY_MAPPING ${path}: ${(error as Error).message}`);
  }
  const parsed = CompanyMapping.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`BITRIX_COMPANY_MAPPING ${path}: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return parsed.data;
}

/** A company as Bitrix24 should hold it. */
export interface DesiredCompany {
  /** Plain fields (`TITLE`, `COMPANY_TYPE`, `UF_CRM_*`, ...). */
  fields: Record<string, string | number | boolean | null>;
  /** Multi-value fields by name (`PHONE`, `EMAIL`): the values and their type. */
  multi: Record<string, { value: string; valueType: string }[]>;
  /** Digest of all of it: equal digests make no call. */
  digest: string;
}

export type MappedCompany =
  | { kind: 'upsert'; company: DesiredCompany }
  | { kind: 'delete' }
  | { kind: 'invalid'; code: 'INVALID_EMAIL' | 'INVALID_PHONE' | 'MISSING_TITLE'; message: string };

const EMAIL = /^[^\s@<>(),;:"[\]]+@[^\s@<>(),;:"[\]]+\.[^\s@<>(),;:"[\]]{2,}$/;

const text = (value: unknown): string | null => {
  if (value === null || value === undefined) return null;
  const s = String(value).trim();
  return s === '' ? null : s;
};

/** A phone as Bitrix24 should get it: separators kept, at least 6 and at most 15 digits (E.164), an optional leading +. */
function validPhone(value: string): boolean {
  if (!/^\+?[0-9 ().\-/]+$/.test(value)) return false;
  const digits = value.replace(/\D/g, '').length;
  return digits >= 6 && digits <= 15;
}

/** The company's external id: its key columns' values (`5`, or `a,b` for a composite key). */
export function originIdOf(key: Record<string, unknown>, mapping: CompanyMapping): string {
  return mapping.key.map((column) => String(key[column] ?? '')).join(',');
}

const inactive = (value: unknown): boolean =>
  value === false || value === 'f' || value === 'false' || value === 0 || value === '0' || value === 'N';

/** What one ERP row should be in Bitrix24 (pure). */
export function mapCompany(row: Record<string, unknown> | undefined, mapping: CompanyMapping): MappedCompany {
  if (!row) return { kind: 'delete' };
  if (mapping.active && mapping.active.whenInactive === 'delete' && inactive(row[mapping.active.column]))
    return { kind: 'delete' };
  const title = text(row[mapping.title]);
  if (!title)
    return { kind: 'invalid', code: 'MISSING_TITLE', message: `column ${mapping.title} (the company title) is empty` };
  const fields: DesiredCompany['fields'] = { TITLE: title };
  for (const [name, directory] of [
    ['COMPANY_TYPE', mapping.companyType],
    ['INDUSTRY', mapping.industry],
  ] as const) {
    if (!directory) continue;
    const value = text(row[directory.column]);
    const mapped = (value !== null ? directory.values[value] : undefined) ?? directory.default;
    if (mapped !== undefined) fields[name] = mapped;
  }
  for (const [name, spec] of Object.entries(mapping.fields)) {
    const value = row[spec.column];
    const asText = text(value);
    if (spec.values) fields[name] = (asText !== null ? spec.values[asText] : undefined) ?? spec.default ?? null;
    else
      fields[name] = typeof value === 'number' || typeof value === 'boolean' ? value : (asText ?? spec.default ?? '');
  }
  const multi: DesiredCompany['multi'] = {};
  if (mapping.email) {
    const email = text(row[mapping.email.column]);
    if (email && !EMAIL.test(email))
      return {
        kind: 'invalid',
        code: 'INVALID_EMAIL',
        message: `column ${mapping.email.column} holds an invalid e-mail address`,
      };
    multi.EMAIL = email ? [{ value: email, valueType: mapping.email.valueType }] : [];
  }
  if (mapping.phone) {
    const phone = text(row[mapping.phone.column]);
    if (phone && !validPhone(phone))
      return {
        kind: 'invalid',
        code: 'INVALID_PHONE',
        message: `column ${mapping.phone.column} holds an invalid phone number`,
      };
    multi.PHONE = phone ? [{ value: phone, valueType: mapping.phone.valueType }] : [];
  }
  const digest = createHash('sha1').update(canonicalJson({ fields, multi })).digest('base64url').slice(0, 16);
  return { kind: 'upsert', company: { fields, multi, digest } };
}
