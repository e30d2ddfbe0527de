/**
 * A stand-in for the backfill command that comes later: copies old columns into empty new
 * ones in the same row, with the SQL forms each mapping helper carries.
 */
import type { Migration, Queryable } from 'flagshift';

/**
 * Fills the new columns of every same-row mapping of `migration` from its old columns,
 * in rows whose new columns are all NULL. Prints the statement and returns the row count.
 */
export async function backfill(db: Queryable, migration: Migration): Promise<number> {
  let total = 0;
  for (const mapping of migration.mappings) {
    if (mapping.newTable !== undefined || mapping.sql === undefined) continue;
    const sql = mapping.sql;
    // `{column}` in a mapping's SQL names a column of the same row.
    const expression = (text: string) => text.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, '"$1"');
    const assignments = mapping.newColumns.map(
      (column, index) => `${column.quoted} = ${expression(sql.forward[index]!)}`,
    );
    const empty = mapping.newColumns.map((column) => `${column.quoted} IS NULL`).join(' AND ');
    const statement = `UPDATE ${migration.table.table.quoted} SET ${assignments.join(', ')} WHERE ${empty}`;
    const result = await db.query(statement);
    console.log(`     backfill: ${statement}  -- ${result.rowCount ?? 0} rows`);
    total += result.rowCount ?? 0;
  }
  return total;
}
