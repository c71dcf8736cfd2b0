/** A table the relay publishes, as `schema.table`. */
export interface TableName {
  schema: string;
  table: string;
}

/** `public.cliente` → `{schema: 'public', table: 'cliente'}`; a bare name is in `public`. */
export function parseTableName(name: string): TableName {
  const parts = name.trim().split('.');
  if (parts.length === 1 && parts[0]) return { schema: 'public', table: parts[0] };
  if (parts.length === 2 && parts[0] && parts[1]) return { schema: parts[0], table: parts[1] };
  throw new Error(`not a table name: ${name} (expected schema.table)`);
}
