/**
 * The version of one independently updated aspect of a document: the source's own time or order,
 * then the `EVENTS` stream sequence, compared in that order.
 */
export type AspectVersion = readonly [source: number, position: number];

/** Milliseconds since the epoch of an ISO time; a source order that is already a number stays as is. */
export function sourceOrder(value: string | number): number {
  if (typeof value === 'number') return value;
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new Error(`not a time: ${value}`);
  return ms;
}

/** The version of an aspect at a source time (ISO or ms) or order, then the stream position. */
export function aspectVersion(source: string | number, position: number): AspectVersion {
  return [sourceOrder(source), position];
}

/** True when `candidate` is strictly newer than `current` (absent is older than anything). */
export function isNewer(current: AspectVersion | undefined, candidate: AspectVersion): boolean {
  if (!current) return true;
  if (candidate[0] !== current[0]) return candidate[0] > current[0];
  return candidate[1] > current[1];
}

/**
 * True when a source time or order is strictly later than the aspect's (absent is older than
 * anything). Unlike `isNewer`, the position does not count: an equal time is the same fact again.
 */
export function isLaterSource(current: AspectVersion | undefined, source: string | number): boolean {
  return !current || sourceOrder(source) > current[0];
}

/**
 * `doc` with `fields` set and the aspect's version moved to `version`: the one way a projection
 * records that it changed an aspect (a new object; `doc` is not touched).
 */
export function setAspect<D extends { _v: object }>(
  doc: D,
  aspect: keyof D['_v'] & string,
  fields: Partial<Omit<D, '_v'>>,
  version: AspectVersion,
): D {
  return { ...doc, ...fields, _v: { ...doc._v, [aspect]: version } };
}
