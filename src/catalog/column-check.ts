/**
 * Checks that the columns a migration names exist, so a typo or a missing `expand`
 * surfaces as one clear error naming the column, not as a driver error mid-request.
 */
import { ConfigurationError, ErrorCode } from '../kernel/index.js';
import type { Migration, QualifiedName, TableDefinition } from '../model/index.js';
import type { ColumnSets } from './types.js';

/** What is missing for one side of one migration, as `table.column` names. */
export interface MigrationColumnState {
  readonly missingOld: readonly string[];
  readonly missingNew: readonly string[];
}

/** The tables a table definition and its migrations touch. */
export function tablesOf(table: TableDefinition, migrations: readonly Migration[]): QualifiedName[] {
  const tables = [table.table];
  for (const migration of migrations) {
    for (const mapping of migration.mappings) if (mapping.newTable) tables.push(mapping.newTable.table);
  }
  return tables;
}

function missingIn(sets: ColumnSets, table: QualifiedName, columns: readonly string[]): string[] {
  const set = sets.get(table.quoted);
  if (set === null || set === undefined) return [`${table.display} (table)`];
  return columns.filter((column) => !set.has(column)).map((column) => `${table.display}.${column}`);
}

/**
 * Checks the key and plain columns (always required) and reports, per migration, which
 * old and new columns are missing (required only in the stages that use that side).
 */
export function checkColumns(
  sets: ColumnSets,
  table: TableDefinition,
  plainFields: readonly string[],
  migrations: readonly Migration[],
): Map<string, MigrationColumnState> {
  const required = [...table.keyFields, ...plainFields].map((field) => table.columns[field]!.name);
  const missing = missingIn(sets, table.table, required);
  if (missing.length > 0) {
    throw new ConfigurationError(
      `column${missing.length > 1 ? 's' : ''} ${missing.map((name) => `"${name}"`).join(', ')} of table ${table.table.display} ${missing.length > 1 ? 'do' : 'does'} not exist`,
      { code: ErrorCode.UnknownColumn },
    );
  }
  const states = new Map<string, MigrationColumnState>();
  for (const migration of migrations) {
    const missingOld: string[] = [];
    const missingNew: string[] = [];
    for (const mapping of migration.mappings) {
      missingOld.push(
        ...missingIn(
          sets,
          table.table,
          mapping.oldColumns.map((column) => column.name),
        ),
      );
      const newTable = mapping.newTable?.table ?? table.table;
      const newColumns = mapping.newColumns.map((column) => column.name);
      if (mapping.newTable) newColumns.push(...mapping.newTable.keyColumns.map((column) => column.name));
      missingNew.push(...missingIn(sets, newTable, newColumns));
    }
    states.set(migration.name, { missingOld: [...new Set(missingOld)], missingNew: [...new Set(missingNew)] });
  }
  return states;
}

/** The error for a stage that needs columns that don't exist. */
export function missingColumnsError(
  migration: Migration,
  stage: string,
  side: 'old' | 'new',
  missing: readonly string[],
): ConfigurationError {
  const hint =
    side === 'new'
      ? 'run expand first, or set the stage back to off'
      : 'the old columns are gone: set the stage to complete';
  return new ConfigurationError(
    `column${missing.length > 1 ? 's' : ''} ${missing.map((name) => `"${name}"`).join(', ')} named by migration "${migration.name}" ${missing.length > 1 ? 'do' : 'does'} not exist, and stage ${stage} uses the ${side} side: ${hint}`,
    { code: ErrorCode.UnknownColumn },
  );
}
