/**
 * A compatibility view: the table in its old shape (old column names and values),
 * computed from the new columns by the backward SQL forms. Reports and BI tools that
 * can't move with the application keep reading it after contract has dropped the old
 * columns.
 */
import { type BoundColumn, type Migration, parseQualifiedName } from '../../model/index.js';
import { backwardSql } from '../sql-forms.js';
import { derivedIdentifier, qualifiedName } from './names.js';

/**
 * `CREATE OR REPLACE VIEW` of the old shape of `migration`'s table: every field of the
 * table definition, in entity order, with migrated fields replaced by their old columns,
 * each computed from the new columns by the backward transform and cast to the old
 * column's declared type. Side tables of cross-table moves are joined by key (`LEFT
 * JOIN`: a missing side row reads as NULL). Old columns are computed, so writes through
 * the view can't reach them; grant consumers `SELECT` only.
 *
 * @param viewName view name, optionally schema-qualified. @default `<table>_compat` in the table's schema
 *
 * @example
 * ```ts
 * import { compatViewSql } from 'flagshift/lifecycle';
 *
 * await driver.query(compatViewSql(usernameRename)); // CREATE OR REPLACE VIEW "users_compat" AS ...
 * const rows = await driver.query('SELECT id, user_name FROM users_compat');
 * ```
 */
export function compatViewSql(migration: Migration, viewName?: string): string {
  const table = migration.table;
  const view =
    viewName === undefined
      ? qualifiedName(table.table.schema, derivedIdentifier([table.table.name], 'compat'))
      : parseQualifiedName(viewName, 'view name').quoted;
  const sides = migration.sideTables;
  const aliasOf = new Map(sides.map((side, index) => [side.table.quoted, `s${index}`]));
  const columns: string[] = [];
  const done = new Set<number>();
  for (const field of table.fields) {
    const at = migration.mappings.findIndex((mapping) => mapping.fields.includes(field));
    if (at < 0) {
      const column = table.columns[field]!;
      columns.push(`t.${column.quoted}`);
      continue;
    }
    if (done.has(at)) continue;
    done.add(at);
    const mapping = migration.mappings[at]!;
    const alias = mapping.newTable === undefined ? 't' : aliasOf.get(mapping.newTable.table.quoted)!;
    const byName = new Map<string, BoundColumn>(mapping.newColumns.map((column) => [column.name, column]));
    const values = backwardSql(migration, mapping, (name) => `${alias}.${byName.get(name)!.quoted}`);
    mapping.oldColumns.forEach((column, index) => {
      const value = column.type === undefined ? `(${values[index]})` : `(${values[index]})::${column.type}`;
      columns.push(`${value} AS ${column.quoted}`);
    });
  }
  const keys = table.keyFields.map((field) => table.columns[field]!);
  const joins = sides.map((side, index) => {
    const sideKeys = side.keyColumns;
    const on = sideKeys.map((column, k) => `s${index}.${column.quoted} = t.${keys[k]!.quoted}`).join(' AND ');
    return ` LEFT JOIN ${side.table.quoted} AS s${index} ON ${on}`;
  });
  return `CREATE OR REPLACE VIEW ${view} AS SELECT ${columns.join(', ')} FROM ${table.table.quoted} AS t${joins.join('')}`;
}
