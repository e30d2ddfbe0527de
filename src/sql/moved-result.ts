/**
 * The result of a moved write (`moved-writes.ts`) as the caller's original command would
 * have given it: its final SELECT's rows are the RETURNING rows, or one row counting the
 * written rows when the caller asked for none.
 */

/** The command a moved write stands for, and whether its caller asked for rows. */
export interface MovedResult {
  readonly command: 'INSERT' | 'UPDATE' | 'DELETE';
  readonly returning: boolean;
}

/** A result as the router's caller sees it (pg's, or PGlite's with `affectedRows`). */
interface ResultLike {
  rows: unknown[];
  fields?: unknown[];
  rowCount?: number | null;
}

/** The column of the count a moved write without RETURNING selects. */
export const ROWS = '__flagshift_rows';

/** Turns the result of a moved write's final SELECT into the original command's. */
export function movedResult(result: ResultLike, moved: MovedResult): void {
  const counted = result as ResultLike & { command?: string; affectedRows?: number; oid?: number | null };
  let count = result.rows.length;
  if (!moved.returning) {
    const row = result.rows[0] as Record<string, unknown> | unknown[] | undefined;
    count = Number(Array.isArray(row) ? row[0] : (row?.[ROWS] ?? 0));
    result.rows.length = 0;
    if (Array.isArray(result.fields)) result.fields.length = 0;
  }
  result.rowCount = count;
  if ('affectedRows' in counted) counted.affectedRows = count;
  if ('command' in counted) counted.command = moved.command;
  if ('oid' in counted && moved.command === 'INSERT') counted.oid = 0;
}
