/**
 * The column names of many tables in one statement: what a repository checks a
 * migration's columns against when it starts, without a round trip per table. The same
 * statement says how the database fills each column left out of an insert, which is what
 * a repository needs to insert an entity without its key.
 */
import type { Queryable } from '../kernel/index.js';
import type { QualifiedName } from '../model/index.js';
import type { ColumnFacts, ColumnGenerator, ColumnSets } from './types.js';

// An identity column has no pg_attrdef row: its next value is its sequence's. A generated
// column's pg_attrdef row is its expression, which is no default (it can't be written).
const COLUMN_FACTS_SQL = (values: string) => `SELECT t.name, a.attname::text AS column_name,
  CASE WHEN a.attidentity <> '' THEN format('nextval(%L::regclass)', pg_get_serial_sequence(t.name, a.attname))
       ELSE pg_get_expr(d.adbin, d.adrelid) END AS generator,
  coalesce(a.attidentity = 'a', false) AS always
  FROM (VALUES ${values}) AS t(name)
  LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = to_regclass(t.name) AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.attgenerated = ''`;

/** Reads the columns of `tables` from the system catalog, in one statement. */
export async function loadColumns(db: Queryable, tables: readonly QualifiedName[]): Promise<ColumnSets> {
  return (await loadColumnFacts(db, tables)).sets;
}

/**
 * Reads the columns of `tables` and how the database fills those it fills by itself (a
 * default expression, `serial`, an identity), in one statement.
 */
export async function loadColumnFacts(db: Queryable, tables: readonly QualifiedName[]): Promise<ColumnFacts> {
  const unique = [...new Map(tables.map((table) => [table.quoted, table])).values()];
  const values = unique.map((_, index) => `($${index + 1}::text)`).join(', ');
  const result = await db.query<{
    name: string;
    column_name: string | null;
    generator: string | null;
    always: boolean | null;
  }>(
    COLUMN_FACTS_SQL(values),
    unique.map((table) => table.quoted),
  );
  const sets = new Map<string, Set<string> | null>();
  const generators = new Map<string, Map<string, ColumnGenerator>>();
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
    if (row.generator === null) continue;
    let filled = generators.get(row.name);
    if (filled === undefined) {
      filled = new Map();
      generators.set(row.name, filled);
    }
    filled.set(row.column_name, { sql: row.generator, always: row.always === true });
  }
  return { sets, generators };
}
