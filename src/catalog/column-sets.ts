/**
 * The column names of many tables in one statement: what a repository checks a
 * migration's columns against when it starts, without a round trip per table.
 */
import type { Queryable } from '../kernel/index.js';
import type { QualifiedName } from '../model/index.js';
import type { ColumnSets } from './types.js';

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
