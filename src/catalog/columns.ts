/**
 * Checks that the columns a migration names exist, so a typo or a missing `expand`
 * surfaces as one clear error naming the column, not as a driver error mid-request.
 */
import { ConfigurationError, ErrorCode, type Queryable } from '../kernel/index.js';
import type { Migration, QualifiedName, TableDefinition } from '../model/index.js';

/** Columns that exist, per quoted table name; `null` for a table that does not exist. */
export type ColumnSets = ReadonlyMap<string, ReadonlySet<string> | null>;

/** Reads the columns of `tables` from the system catalog, in one statement. */
export async function loadColumns(db: Queryable, tables: readonly QualifiedName[]): Promise<ColumnSets> {
  const unique = [...new Map(tables.map((table) => [table.quoted, table])).values()];
  const values = unique.map((_, index) => `($${index + 1}::text)`).join(', ');
  const result = await db.query<{ name: string; column_name: string | null }>(
    `SELECT t.name, a.attname::text AS column_name FROM (VALUES ${values}) AS t(name)
     LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = to_regclass(t.name) AND a.attnum > 0 AND NOT a.attisdropped`,
    unique.map((table) => table.quoted),
  );
  const sets = new Map<string, Set<string> | null>();
  for (const row of result.rows) {
    if (row.column_name === null) {
      if (!sets.has(row.name)) sets.set(row.name, null);
      continue;
    }
    let set = sets.get(row.name);
    if (set == null) {
      set = new Set();
      sets.set(row.name, set);
    }
    set.add(row.column_name);
  }
  return sets;
}

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
