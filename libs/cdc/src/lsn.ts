/** A PostgreSQL LSN (`16/B374D848`) as a number of bytes, for comparisons and lag. */
export function lsnToBigInt(lsn: string): bigint {
  const [high, low] = lsn.split('/');
  if (high === undefined || low === undefined || !/^[0-9a-f]+$/i.test(high) || !/^[0-9a-f]+$/i.test(low))
    throw new Error(`not an LSN: ${lsn}`);
  return (BigInt(`0x${high}`) << 32n) + BigInt(`0x${low}`);
}

const CANONICAL = /^[1-9A-F][0-9A-F]{0,7}\/(0|[1-9A-F][0-9A-F]{0,7})$|^0\/(0|[1-9A-F][0-9A-F]{0,7})$/;

/** The canonical text of an LSN (upper-case hex, no padding), whatever padding the source used. */
export function normalizeLsn(lsn: string): string {
  if (CANONICAL.test(lsn)) return lsn;
  // The replication protocol's form (`0000001A/0B3C4D5E`, two 32-bit halves, padded): trimmed as text, on every transaction.
  if (PADDED.test(lsn))
    return `${lsn.slice(0, 8).replace(LEADING_ZEROS, '')}/${lsn.slice(9).replace(LEADING_ZEROS, '')}`.toUpperCase();
  return formatLsn(lsnToBigInt(lsn));
}

const PADDED = /^[0-9A-Fa-f]{8}\/[0-9A-Fa-f]{8}$/;
const LEADING_ZEROS = /^0+(?=.)/;

/** A number of bytes as canonical LSN text. */
function formatLsn(value: bigint): string {
  return `${(value >> 32n).toString(16).toUpperCase()}/${(value & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** The later of two LSNs. */
export function maxLsn(a: string, b: string): string {
  return lsnToBigInt(a) >= lsnToBigInt(b) ? a : b;
}

/** The LSN one byte before (`0/0` stays). */
export function previousLsn(lsn: string): string {
  const value = lsnToBigInt(lsn);
  return formatLsn(value > 0n ? value - 1n : 0n);
}
