import pg from 'pg';
import { uniqueName } from '@puente/bus/testing';
import { GLYMS_SCHEMA, postgresServerUrl } from '@puente/stack';

/** A database of its own on the test run's PostgreSQL, with the demo Glyms schema and no rows. */
export interface TestGlymsDatabase {
  url: string;
  name: string;
  /** Runs SQL on it (a short-lived connection). */
  sql<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<R[]>;
  /** Drops its replication slots, then the database. */
  drop(): Promise<void>;
}

export async function createTestGlymsDatabase(prefix = 'glyms_'): Promise<TestGlymsDatabase> {
  const server = postgresServerUrl(process.env);
  const name = uniqueName(prefix).toLowerCase();
  const admin = new pg.Client({ connectionString: `${server}/postgres` });
  await admin.connect();
  try {
    await admin.query(`create database ${pg.escapeIdentifier(name)}`);
  } finally {
    await admin.end();
  }
  const url = `${server}/${name}`;
  const sql = async <R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<R[]> => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return (await client.query<R>(text, values)).rows;
    } finally {
      await client.end();
    }
  };
  await sql(GLYMS_SCHEMA);
  return {
    url,
    name,
    sql,
    async drop() {
      const client = new pg.Client({ connectionString: `${server}/postgres` });
      await client.connect();
      try {
        await client.query(
          'select pg_terminate_backend(active_pid) from pg_replication_slots where database = $1 and active_pid is not null',
          [name],
        );
        await client.query('select pg_drop_replication_slot(slot_name) from pg_replication_slots where database = $1', [
          name,
        ]);
        await client.query(`drop database if exists ${pg.escapeIdentifier(name)} with (force)`);
      } finally {
        await client.end();
      }
    },
  };
}
