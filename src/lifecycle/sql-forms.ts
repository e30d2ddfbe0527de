/**
 * The SQL forms of a mapping's transforms, rendered for a place in a statement: a sync
 * trigger (`NEW."col"`), a backfill or verification query (`t."col"`). Mappings write
 * column references as `{column}`; only columns of the mapping may be referenced.
 */
import { ConfigurationError } from '../kernel/index.js';
import type { BoundMapping, Migration } from '../model/index.js';

const REFERENCE = /\{([A-Za-z_][A-Za-z0-9_]*)\}/g;

/**
 * Replaces each `{column}` in `expression` by `reference(column)`. Throws a
 * {@link ConfigurationError} for a column outside `allowed`.
 */
export function renderSqlForm(
  expression: string,
  allowed: readonly string[],
  reference: (column: string) => string,
  where: string,
): string {
  return expression.replace(REFERENCE, (_, column: string) => {
    if (!allowed.includes(column)) {
      throw new ConfigurationError(
        `${where}: SQL form ${JSON.stringify(expression)} references column "${column}", which the mapping does not name`,
      );
    }
    return reference(column);
  });
}

/** The SQL forms of `mapping`, or a clear error when it has none (a custom mapping without `sql`). */
export function sqlFormsOf(
  migration: Migration,
  mapping: BoundMapping,
): { forward: readonly string[]; backward: readonly string[] } {
  const sql = mapping.sql;
  if (sql === undefined || sql.forward.some((e) => e === '') || sql.backward.some((e) => e === '')) {
    throw new ConfigurationError(
      `migration "${migration.name}": mapping of ${mapping.fields.map((f) => `"${f}"`).join(', ')} has no SQL form for every column; give customMapping({ sql }) so triggers, backfill and verification can run in the database`,
    );
  }
  return sql;
}

/** `forward[i]` rendered over the old columns, for new column i. */
export function forwardSql(
  migration: Migration,
  mapping: BoundMapping,
  reference: (column: string) => string,
): string[] {
  const { forward } = sqlFormsOf(migration, mapping);
  const allowed = mapping.oldColumns.map((column) => column.name);
  return forward.map((expression) => renderSqlForm(expression, allowed, reference, `migration "${migration.name}"`));
}

/** `backward[j]` rendered over the new columns, for old column j. */
export function backwardSql(
  migration: Migration,
  mapping: BoundMapping,
  reference: (column: string) => string,
): string[] {
  const { backward } = sqlFormsOf(migration, mapping);
  const allowed = mapping.newColumns.map((column) => column.name);
  return backward.map((expression) => renderSqlForm(expression, allowed, reference, `migration "${migration.name}"`));
}

/** Types PostgreSQL has no `=` for: compared by their text. */
const NO_EQUALITY = new Set(['xml', 'point', 'line', 'lseg', 'box', 'path', 'polygon', 'circle']);

/**
 * `sql`, a value of SQL type `type`, in a form `IS DISTINCT FROM` can compare: `json` as
 * `jsonb` (json has no `=`, and jsonb compares values, not spellings), the types without
 * `=` as text, any other type as it is.
 */
export function comparableSql(sql: string, type: string | undefined): string {
  const base = type
    ?.toLowerCase()
    .replace(/\(.*$/, '')
    .replace(/^pg_catalog\./, '')
    .trim();
  if (base === 'json') return `(${sql})::jsonb`;
  if (base !== undefined && NO_EQUALITY.has(base)) return `(${sql})::text`;
  return sql;
}
