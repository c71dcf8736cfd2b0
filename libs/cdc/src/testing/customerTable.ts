import { uniqueName } from '@puente/bus/testing';

/**
 * Creates a customer table like the demo's `public.cliente`, with a sequence of its own (`LIKE ...
 * INCLUDING ALL` alone would share cliente's), so its ids start at 1 and its subjects
 * `evt.glyms.<table>.*` hold only the caller's changes. Without `table`, a unique `cliente_...` name is
 * chosen. Resolves with the table's name (in `public`).
 */
export async function createCustomerTable(
  db: { sql(text: string): Promise<unknown> },
  table = uniqueName('cliente_').toLowerCase(),
): Promise<string> {
  await db.sql(`create table public.${table} (like public.cliente including all)`);
  await db.sql(`create sequence public.${table}_seq owned by public.${table}.id_cliente`);
  await db.sql(`alter table public.${table} alter column id_cliente set default nextval('public.${table}_seq')`);
  return table;
}
