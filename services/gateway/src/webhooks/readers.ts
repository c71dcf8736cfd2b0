/**
 * Readers of loosely shaped vendor JSON, one meaning each, shared by every normalizer. A reader returns
 * undefined for anything it does not accept, so a normalizer can chain fallbacks with `??`.
 */

/** A JSON object (not null, not an array). */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A string with at least one character; anything else (numbers included) is undefined. */
export function nonEmptyString(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

/** A string with at least one character, or a number written as text (vendors that send ids as numbers). */
export function nonEmptyStringOrNumber(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : typeof value === 'number' ? String(value) : undefined;
}

/**
 * A vendor shape as it arrives: only the fields of `T` may be read, and each is unknown until a reader
 * checks it (a `*ApiTypes.ts` interface names the fields and what the vendor documents them to be).
 */
export type Unchecked<T> = { readonly [K in keyof T]?: unknown };
