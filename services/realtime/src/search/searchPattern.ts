/** The fewest digits a query needs before it is also matched against numbers (one or two match nearly every number). */
export const MIN_NUMBER_DIGITS = 3;

/**
 * The accented letters each base letter also matches: what Spanish, Portuguese, French and German
 * names carry. Stored names are matched through these classes instead of through a normalized copy
 * kept in the read models, so the projections stay as they are.
 */
const VARIANTS: Readonly<Record<string, string>> = {
  a: 'aàáâãäåā',
  c: 'cç',
  e: 'eèéêëē',
  i: 'iìíîïī',
  n: 'nñ',
  o: 'oòóôõöøō',
  u: 'uùúûüū',
  y: 'yýÿ',
};

/** A query without accents, in lower case: `Pérez` → `perez`. */
export function foldAccents(text: string): string {
  return text.toLowerCase().normalize('NFD').replace(/\p{M}/gu, '');
}

/**
 * The regular expression (source, for MongoDB's `$regex` with option `i`) that finds `query` inside a
 * stored text whatever its case and accents: every metacharacter of the query is escaped, so `.*` or
 * `(` match themselves, and every letter with accented forms becomes a class of them. Stored text in
 * decomposed form (a letter followed by a combining accent) is not matched by an accented letter of it.
 */
export function searchPattern(query: string): string {
  let out = '';
  for (const char of foldAccents(query)) {
    const variants = VARIANTS[char];
    out += variants ? `[${variants}]` : char.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
  }
  return out;
}

/** The digits of a query, when it has enough to search numbers (`+34 612-345` → `34612345`). */
export function numberPattern(query: string): string | undefined {
  const digits = query.replace(/\D/g, '');
  return digits.length >= MIN_NUMBER_DIGITS ? digits : undefined;
}
