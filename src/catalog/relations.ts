/**
 * Small facts about relations by name: which exist, how large a table is, whether an
 * index is valid. Each is one statement over the catalog that never creates anything, so
 * read-only callers (status, the dashboard) may use them.
 */
import type { Queryable } from '../kernel/index.js';
import type { QualifiedName } from '../model/index.js';

/** Which of `names` (SQL names, e.g. `"flagshift"."events"`) are relations that exist. */
export async function existingRelations(db: Queryable, names: readonly string[]): Promise<Set<string>> {
  if (names.length === 0) return new Set();
  // A VALUES list, not an array parameter, which not every driver serializes alike.
  const values = names.map((_, index) => `($${index + 1}::text)`).join(', ');
  const { rows } = await db.query<{ name: string }>(
    `SELECT t.name FROM (VALUES ${values}) AS t(name) WHERE to_regclass(t.name) IS NOT NULL`,
    [...names],
  );
  return new Set(rows.map((row) => row.name));
}

/** A table's size and planner statistics. */
export interface TableSize {
  /** The table with its indexes and TOAST, in bytes (0 when it doesn't exist). */
  readonly bytes: number;
  /** `pg_class.reltuples`, rounded: -1 when the table was never analyzed (or doesn't exist). */
  readonly reltuples: number;
}

/** Reads `table`'s {@link TableSize}. */
export async function loadTableSize(db: Queryable, table: QualifiedName): Promise<TableSize> {
  const result = await db.query<{ bytes: unknown; reltuples: unknown }>(
    `SELECT pg_total_relation_size(oid)::float8 AS bytes, reltuples::float8 AS reltuples
       FROM pg_catalog.pg_class WHERE oid = to_regclass($1)`,
    [table.quoted],
  );
  const row = result.rows[0];
  return { bytes: Number(row?.bytes ?? 0), reltuples: Math.round(Number(row?.reltuples ?? -1)) };
}

/** Whether the index named `index` (an SQL name) is valid; `undefined` when there is none. */
export async function loadIndexValidity(db: Queryable, index: string): Promise<boolean | undefined> {
  const found = await db.query<{ valid: boolean }>(
    'SELECT indisvalid AS valid FROM pg_catalog.pg_index WHERE indexrelid = to_regclass($1)',
    [index],
  );
  return found.rows[0]?.valid;
}
