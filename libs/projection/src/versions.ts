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

export function aspectVersion(source: string | number, position: number): AspectVersion {
  return [sourceOrder(source), position];
}

/** True when `candidate` is strictly newer than `current` (absent is older than anything). */
export function isNewer(current: AspectVersion | undefined, candidate: AspectVersion): boolean {
  if (!current) return true;
  if (candidate[0] !== current[0]) return candidate[0] > current[0];
  return candidate[1] > current[1];
}
