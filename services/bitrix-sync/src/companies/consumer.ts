import { Consumers, glymsTableSubjects, type ConsumerDefinition } from '@puente/contracts';
import { parseTableName } from '@puente/cdc';
import type { CompanyMapping } from './mapping.js';

/**
 * The companies consumer for a mapping: the contract's consumer for the demo table; for another table,
 * the same durable name suffixed with the table (a consumer's subjects cannot change under its name).
 */
export function companiesConsumer(mapping: CompanyMapping): ConsumerDefinition {
  const { schema, table } = parseTableName(mapping.table);
  if (schema === 'public' && table === 'cliente') return Consumers.bitrixCompanies;
  return {
    ...Consumers.bitrixCompanies,
    durable: `${Consumers.bitrixCompanies.durable}-${schema}_${table}`.replace(/[^A-Za-z0-9_-]/g, '_'),
    filterSubjects: [glymsTableSubjects(schema, table)],
  };
}
