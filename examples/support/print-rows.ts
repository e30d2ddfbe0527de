/**
 * Prints rows as an aligned table, so the examples can show the physical columns next
 * to what the repository returns.
 */
import { inspect } from 'node:util';
import type { Queryable } from 'flagshift';

/** One value as the examples print it: strings plain, everything else as Node shows it (`12n`, `{ a: 1 }`). */
export function show(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  if (typeof value === 'string') return value;
  return inspect(value, { breakLength: Number.POSITIVE_INFINITY, compact: true, depth: 4 });
}

/** One entity or value on one line. */
export function line(value: unknown): string {
  return inspect(value, { breakLength: Number.POSITIVE_INFINITY, compact: true, depth: 4 });
}

/** Prints `rows` as a table with the given column order, indented. */
export function printRows(
  rows: readonly Record<string, unknown>[],
  columns: readonly string[],
  indent = '     ',
): void {
  const cells = rows.map((row) => columns.map((column) => show(row[column])));
  const widths = columns.map((column, index) => Math.max(column.length, ...cells.map((cell) => cell[index]!.length)));
  const format = (values: readonly string[]) => values.map((value, index) => value.padEnd(widths[index]!)).join(' | ');
  console.log(indent + format(columns).trimEnd());
  console.log(indent + widths.map((width) => '-'.repeat(width)).join('-+-'));
  for (const row of cells) console.log(indent + format(row).trimEnd());
}

/** Runs `sql` and prints its rows, columns in the order the statement names them. */
export async function printQuery(db: Queryable, sql: string, indent?: string): Promise<void> {
  const { rows } = await db.query<Record<string, unknown>>(sql);
  console.log(`${indent ?? '     '}${sql}`);
  if (rows.length === 0) console.log(`${indent ?? '     '}(no rows)`);
  else printRows(rows, Object.keys(rows[0]!), indent);
}
