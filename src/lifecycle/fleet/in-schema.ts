/**
 * One migration definition, bound to another schema: a schema-per-tenant fleet defines
 * its migration once and runs it in every tenant's schema. The copy keeps the name and
 * the flag keys (so flag targeting, not separate flags, tells tenants apart) and names
 * every table, the main one and the side tables, in the given schema.
 */
import { ConfigurationError } from '../../kernel/index.js';
import {
  type ColumnOptions,
  defineMigration,
  defineTable,
  identifierProblem,
  type MappingSpec,
  type Migration,
  type TableDefinition,
} from '../../model/index.js';

/**
 * `migration` with its main table and side tables in `schema`: same name, mappings,
 * flags, stage defaults and comparison. Pass it to a repository of the tenant the schema
 * belongs to; a fleet member with a `schema` gets it by itself.
 *
 * @throws ConfigurationError when `schema` is not a plain identifier.
 *
 * @example
 * ```ts
 * import { createRepository } from 'flagshift';
 * import { migrationInSchema } from 'flagshift/lifecycle';
 *
 * const acmeUsers = createRepository(migrationInSchema(usernameRename, 'acme'), {
 *   driver,
 *   flags,
 *   context: { tenant: 'acme' },
 * });
 * ```
 */
export function migrationInSchema(migration: Migration, schema: string): Migration {
  const problem = identifierProblem(schema);
  if (problem !== undefined) {
    throw new ConfigurationError(`schema ${JSON.stringify(schema)} of migration "${migration.name}" ${problem}`, {
      path: 'schema',
    });
  }
  const mappings: MappingSpec[] = migration.mappings.map((mapping) =>
    mapping.spec.newTable === undefined || mapping.newTable === undefined
      ? mapping.spec
      : { ...mapping.spec, newTable: { ...mapping.spec.newTable, name: `${schema}.${mapping.newTable.table.name}` } },
  );
  return defineMigration({
    name: migration.name,
    table: tableInSchema(migration.table, schema),
    mappings,
    defaultStage: migration.defaultStage,
    description: migration.description,
    flags: {
      stage: migration.stageFlagKey,
      percent: migration.percentFlagKey,
      defaultPercent: migration.defaultPercent,
      evaluation: migration.evaluation,
    },
    compare: {
      ...migration.compare,
      sampleOneIn: migration.sampleOneIn,
      shadowReadOneIn: migration.shadowReadOneIn,
      rawValues: migration.rawValues,
    },
  });
}

/** `table` defined again in `schema`, with the same key, entity and columns. */
function tableInSchema(table: TableDefinition, schema: string): TableDefinition {
  const columns: Record<string, string | ColumnOptions> = {};
  for (const [field, column] of Object.entries(table.columns)) {
    columns[field] = column.type === undefined ? column.name : { column: column.name, type: column.type };
  }
  return defineTable({
    name: `${schema}.${table.table.name}`,
    key: table.keyFields,
    entity: table.entity,
    columns,
  }) as TableDefinition;
}
