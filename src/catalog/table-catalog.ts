/**
 * What the system catalog says about the tables a migration touches: columns with their
 * types, triggers, indexes (and whether they are valid), constraints and sync functions.
 * Expand and contract plan from this, so a plan does exactly what is missing and a re-run
 * plans nothing.
 */
import type { Queryable } from '../kernel/index.js';
import type { QualifiedName } from '../model/index.js';

/** A column as the catalog describes it. */
export interface CatalogColumn {
  readonly name: string;
  /** `format_type` of the column: valid SQL for the type, e.g. `character varying(20)`. */
  readonly type: string;
  readonly notNull: boolean;
  /** The default expression (`pg_get_expr`), or `undefined` when the column has none. */
  readonly default: string | undefined;
}

/** An index of a table. */
export interface CatalogIndex {
  readonly name: string;
  /** False for what an interrupted `CREATE INDEX CONCURRENTLY` left behind. */
  readonly valid: boolean;
  readonly unique: boolean;
  /** Key columns in order; empty for an expression index. */
  readonly columns: readonly string[];
  /** Whether it has a `WHERE` clause or expressions (it can't serve as a plain unique key). */
  readonly partial: boolean;
}

/** A constraint of a table. */
export interface CatalogConstraint {
  readonly name: string;
  /** `c` check, `f` foreign key, `p` primary key, `u` unique, ... (pg_constraint.contype). */
  readonly type: string;
  readonly validated: boolean;
  /** For a foreign key: the oid of the referenced table. */
  readonly references: string | undefined;
}

/** One table in the catalog, or `exists: false`. */
export interface TableCatalog {
  readonly table: QualifiedName;
  readonly exists: boolean;
  /** pg_class oid, as text. */
  readonly oid: string | undefined;
  /** The schema the table was found in (through the search path when the name is unqualified). */
  readonly schema: string | undefined;
  readonly columns: ReadonlyMap<string, CatalogColumn>;
  readonly triggers: ReadonlySet<string>;
  readonly indexes: ReadonlyMap<string, CatalogIndex>;
  readonly constraints: ReadonlyMap<string, CatalogConstraint>;
}

/** Reads one table's catalog entries. A missing table gives `exists: false` and empty collections. */
export async function loadTableCatalog(db: Queryable, table: QualifiedName): Promise<TableCatalog> {
  const found = await db.query<{ oid: string; schema: string }>(
    `SELECT c.oid::text AS oid, n.nspname::text AS schema
       FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE c.oid = to_regclass($1)`,
    [table.quoted],
  );
  const row = found.rows[0];
  if (row === undefined) {
    return {
      table,
      exists: false,
      oid: undefined,
      schema: undefined,
      columns: new Map(),
      triggers: new Set(),
      indexes: new Map(),
      constraints: new Map(),
    };
  }
  const oid = row.oid;
  const [columns, triggers, indexes, constraints] = await Promise.all([
    db.query<{ name: string; type: string; not_null: boolean; default: string | null }>(
      `SELECT a.attname::text AS name, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null,
              pg_get_expr(d.adbin, d.adrelid) AS default
         FROM pg_catalog.pg_attribute a
         LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.attgenerated = ''
        WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
      [oid],
    ),
    db.query<{ name: string }>(
      'SELECT tgname::text AS name FROM pg_catalog.pg_trigger WHERE tgrelid = $1::oid AND NOT tgisinternal',
      [oid],
    ),
    db.query<{ name: string; valid: boolean; unique: boolean; columns: string[]; partial: boolean }>(
      `SELECT ic.relname::text AS name, i.indisvalid AS valid, i.indisunique AS unique,
              ARRAY(SELECT a.attname::text FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, ord)
                      JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                     ORDER BY k.ord) AS columns,
              (i.indpred IS NOT NULL OR i.indexprs IS NOT NULL) AS partial
         FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
        WHERE i.indrelid = $1::oid`,
      [oid],
    ),
    db.query<{ name: string; type: string; validated: boolean; references: string | null }>(
      `SELECT conname::text AS name, contype::text AS type, convalidated AS validated,
              CASE WHEN contype = 'f' THEN confrelid::text END AS references
         FROM pg_catalog.pg_constraint WHERE conrelid = $1::oid`,
      [oid],
    ),
  ]);
  return {
    table,
    exists: true,
    oid,
    schema: row.schema,
    columns: new Map(
      columns.rows.map((column) => [
        column.name,
        { name: column.name, type: column.type, notNull: column.not_null, default: column.default ?? undefined },
      ]),
    ),
    triggers: new Set(triggers.rows.map((trigger) => trigger.name)),
    indexes: new Map(indexes.rows.map((index) => [index.name, { ...index, columns: parseTextArray(index.columns) }])),
    constraints: new Map(
      constraints.rows.map((constraint) => [
        constraint.name,
        {
          name: constraint.name,
          type: constraint.type,
          validated: constraint.validated,
          references: constraint.references ?? undefined,
        },
      ]),
    ),
  };
}

/** Whether `columns`, in any order, are exactly the columns of a valid, total unique index. */
export function hasUniqueKey(catalog: TableCatalog, columns: readonly string[]): boolean {
  const wanted = [...columns].sort().join(',');
  for (const index of catalog.indexes.values()) {
    if (index.unique && index.valid && !index.partial && [...index.columns].sort().join(',') === wanted) return true;
  }
  return false;
}

/**
 * The source (`prosrc`, the text between the dollar quotes) of each argument-less function
 * named in `names` (SQL names, possibly qualified), or `undefined` for one that doesn't exist.
 */
export async function loadFunctionSources(
  db: Queryable,
  names: readonly string[],
): Promise<Map<string, string | undefined>> {
  const sources = new Map<string, string | undefined>();
  if (names.length === 0) return sources;
  const result = await db.query<{ name: string; source: string | null }>(
    `SELECT n.name, p.prosrc AS source FROM unnest($1::text[]) AS n(name)
       LEFT JOIN pg_catalog.pg_proc p ON p.oid = to_regprocedure(n.name || '()')`,
    [[...names]],
  );
  for (const row of result.rows) sources.set(row.name, row.source ?? undefined);
  return sources;
}

/** Drivers return `text[]` parsed, or as `{a,b}` text in some setups. */
function parseTextArray(value: unknown): string[] {
  if (Array.isArray(value)) return value.map(String);
  if (typeof value !== 'string' || value === '{}') return [];
  return value
    .slice(1, -1)
    .split(',')
    .map((part) => part.replace(/^"(.*)"$/, '$1').replace(/\\(.)/g, '$1'));
}
