import pg from 'pg';
import type { Bus } from '@puente/bus';
import { changeMessage, parseTableName, type CdcMode } from '@puente/cdc';
import type { CompanyMapping } from './mapping.js';

/** The position of a resync's events: the pusher writes them even when the mapped fields look unchanged. */
export const RESYNC_PREFIX = 'resync@';

export const isResync = (position: string): boolean => position.startsWith(RESYNC_PREFIX);

/**
 * `npx puente bitrix sync companies`: publishes every current row of the mapping's table as an
 * `updated` change whose position marks it a resync, so the active bitrix-sync writes every company
 * again (Bitrix24 edited by hand, a mapping changed, a TRUNCATE, a restored backup). Returns the count.
 */
export async function publishCompanyResync(options: {
  bus: Bus;
  databaseUrl: string;
  mapping: CompanyMapping;
  mode: CdcMode;
  onProgress?: (rows: number) => void;
  now?: Date;
}): Promise<number> {
  const { schema, table } = parseTableName(options.mapping.table);
  const position = `${RESYNC_PREFIX}${(options.now ?? new Date()).toISOString()}`;
  const client = new pg.Client({ connectionString: options.databaseUrl });
  client.on('error', () => undefined);
  await client.connect();
  let rows = 0;
  try {
    await client.query('begin isolation level repeatable read read only');
    await client.query(
      `declare resync no scroll cursor for select * from ${pg.escapeIdentifier(schema)}.${pg.escapeIdentifier(table)}`,
    );
    for (;;) {
      const page = await client.query<Record<string, unknown>>('fetch 500 from resync');
      if (page.rows.length === 0) break;
      await options.bus.publishEvents(
        page.rows.map((row) =>
          changeMessage(
            options.mode,
            {
              schema,
              table,
              op: 'updated',
              key: Object.fromEntries(options.mapping.key.map((column) => [column, row[column]])),
              row,
              position,
            },
            position,
          ),
        ),
      );
      rows += page.rows.length;
      options.onProgress?.(rows);
    }
    await client.query('commit');
  } finally {
    await client.end().catch(() => undefined);
  }
  return rows;
}
