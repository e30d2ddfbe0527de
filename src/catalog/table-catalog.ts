/**
 * What the system catalog says about one table: columns with their types and defaults,
 * triggers, indexes (and whether they are valid), constraints. Expand and contract plan
 * from this, so a plan does exactly what is missing and a re-run plans nothing; backfill,
 * verification and pre-flight check a migration's keys and columns against it.
 */
import { parseIntArray, parseJson, type Queryable } from '../kernel/index.js';
import type { QualifiedName } from '../model/index.js';
import type { CatalogColumn, CatalogConstraint, CatalogIndex, TableCatalog } from './types.js';

/** A row of the one statement {@link loadTableCatalog} runs; the collections come as JSON. */
interface CatalogRow {
  oid: unknown;
  schema: string;
  columns: unknown;
  triggers: unknown;
  indexes: unknown;
  constraints: unknown;
}

// One statement, so reading a table costs one round trip, and on a pool one connection.
const TABLE_CATALOG_SQL = `SELECT c.oid::int8 AS oid, n.nspname::text AS schema,
  (SELECT coalesce(json_agg(json_build_object('name', a.attname, 'attnum', a.attnum,
            'type', format_type(a.atttypid, a.atttypmod), 'notNull', a.attnotnull,
            'default', pg_get_expr(d.adbin, d.adrelid)) ORDER BY a.attnum), '[]'::json)
     FROM pg_catalog.pg_attribute a
     LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.attgenerated = ''
    WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns,
  (SELECT coalesce(json_agg(json_build_object('name', t.tgname, 'conditional', t.tgqual IS NOT NULL,
            'refired', t.tgenabled <> 'O')), '[]'::json)
     FROM pg_catalog.pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal) AS triggers,
  (SELECT coalesce(json_agg(json_build_object('name', ic.relname, 'primary', i.indisprimary, 'unique', i.indisunique,
            'valid', i.indisvalid, 'partial', (i.indpred IS NOT NULL OR i.indexprs IS NOT NULL),
            'keys', i.indkey::int2[], 'keyCount', i.indnkeyatts) ORDER BY ic.relname), '[]'::json)
     FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
    WHERE i.indrelid = c.oid) AS indexes,
  (SELECT coalesce(json_agg(json_build_object('name', k.conname, 'type', k.contype::text, 'validated', k.convalidated,
            'references', CASE WHEN k.contype = 'f' THEN k.confrelid::int8 END)), '[]'::json)
     FROM pg_catalog.pg_constraint k WHERE k.conrelid = c.oid) AS constraints
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = to_regclass($1)`;

/** Reads one table's catalog entries. A missing table gives `exists: false` and empty collections. */
export async function loadTableCatalog(db: Queryable, table: QualifiedName): Promise<TableCatalog> {
  const found = await db.query<CatalogRow>(TABLE_CATALOG_SQL, [table.quoted]);
  const row = found.rows[0];
  if (row === undefined) {
    return {
      table,
      exists: false,
      oid: undefined,
      schema: undefined,
      columns: new Map(),
      triggers: new Set(),
      conditionalTriggers: new Set(),
      refiredTriggers: new Set(),
      indexes: new Map(),
      constraints: new Map(),
    };
  }
  const byNumber = new Map<number, string>();
  const columns = new Map<string, CatalogColumn>();
  for (const column of jsonList<{
    name: string;
    attnum: number;
    type: string;
    notNull: boolean;
    default: string | null;
  }>(row.columns)) {
    byNumber.set(column.attnum, column.name);
    columns.set(column.name, {
      name: column.name,
      attnum: column.attnum,
      type: column.type,
      notNull: column.notNull,
      default: column.default ?? undefined,
    });
  }
  const indexes = new Map<string, CatalogIndex>();
  for (const index of jsonList<{
    name: string;
    primary: boolean;
    unique: boolean;
    valid: boolean;
    partial: boolean;
    keys: unknown;
    keyCount: number;
  }>(row.indexes)) {
    const keys = parseIntArray(index.keys);
    indexes.set(index.name, {
      name: index.name,
      primary: index.primary,
      unique: index.unique,
      valid: index.valid,
      partial: index.partial,
      // Attribute number 0 marks an expression entry.
      columns: keys.slice(0, index.keyCount).map((attnum) => (attnum === 0 ? undefined : byNumber.get(attnum))),
      included: keys.slice(index.keyCount).flatMap((attnum) => byNumber.get(attnum) ?? []),
    });
  }
  const constraints = new Map<string, CatalogConstraint>();
  for (const constraint of jsonList<{ name: string; type: string; validated: boolean; references: number | null }>(
    row.constraints,
  )) {
    constraints.set(constraint.name, {
      name: constraint.name,
      type: constraint.type,
      validated: constraint.validated,
      references: constraint.references ?? undefined,
    });
  }
  const triggers = jsonList<{ name: string; conditional: boolean; refired: boolean }>(row.triggers);
  return {
    table,
    exists: true,
    oid: Number(row.oid),
    schema: row.schema,
    columns,
    triggers: new Set(triggers.map((trigger) => trigger.name)),
    conditionalTriggers: new Set(triggers.filter((trigger) => trigger.conditional).map((trigger) => trigger.name)),
    refiredTriggers: new Set(triggers.filter((trigger) => trigger.refired).map((trigger) => trigger.name)),
    indexes,
    constraints,
  };
}

/** A JSON array the driver returned parsed or as text. */
function jsonList<T>(value: unknown): T[] {
  const parsed = parseJson(value);
  return Array.isArray(parsed) ? (parsed as T[]) : [];
}

/**
 * Whether `columns`, in any order, are exactly the columns of a valid, total unique index
 * (its `INCLUDE` columns counted with its key columns).
 */
export function hasUniqueKey(catalog: TableCatalog, columns: readonly string[]): boolean {
  const wanted = [...columns].sort().join(',');
  for (const index of catalog.indexes.values()) {
    if (!index.unique || !index.valid || index.partial) continue;
    const indexed = [...index.columns.flatMap((column) => column ?? []), ...index.included];
    if (indexed.sort().join(',') === wanted) return true;
  }
  return false;
}

/** Whether a valid, total unique index makes `columns` unique (its key columns are a subset of them). */
export function hasUniqueIndexOn(catalog: TableCatalog, columns: readonly string[]): boolean {
  return [...catalog.indexes.values()].some(
    (index) =>
      index.unique &&
      index.valid &&
      !index.partial &&
      index.columns.length > 0 &&
      index.columns.every((column) => column !== undefined && columns.includes(column)),
  );
}

/** Whether a valid index starts with `columns` (in any order), so a keyset scan on them uses it. */
export function hasIndexLeadingWith(catalog: TableCatalog, columns: readonly string[]): boolean {
  return [...catalog.indexes.values()].some(
    (index) =>
      index.valid &&
      !index.partial &&
      index.columns.length >= columns.length &&
      columns.every((column) => index.columns.slice(0, columns.length).includes(column)),
  );
}
