/**
 * A mapping's SQL forms as parse-tree nodes: `forward` (a new column's value over the old
 * columns) where a read is served old, `backward` (an old column's value over the new
 * ones) where a write sets the old side too. The forms are the ones expand's triggers and
 * the backfill use (`renderSqlForm`), rendered and parsed by PostgreSQL's grammar.
 */
import { renderSqlForm } from '../lifecycle/index.js';
import { type BoundMapping, castType } from '../model/index.js';
import type { SqlNode, SqlParser } from './parser.js';
import type { MigratedColumn, SideColumn } from './tables.js';

/** Parsed forms by their rendered text: the same few come back for every statement. */
export type FormCache = Map<string, SqlNode>;

/** `name` as a quoted identifier. */
export function quoted(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** Prefix of the names the rewrite adds (hidden columns, aliases, CTEs); a statement naming one of its own is refused. */
export const HIDDEN_PREFIX = '__flagshift_';

/** The expression node of `text`, parsed once per text. */
function expression(parser: SqlParser, forms: FormCache, text: string): SqlNode {
  let node = forms.get(text);
  if (node === undefined) {
    const parsed = parser.parse(`SELECT ${text}`).stmts![0]!.stmt.SelectStmt as SqlNode;
    node = ((parsed.targetList as SqlNode[])[0]!.ResTarget as SqlNode).val as SqlNode;
    if (forms.size < 1000) forms.set(text, node);
  }
  return structuredClone(node);
}

/** The whole form is one column reference `{column}`: a rename's. */
function onlyColumn(form: string): string | undefined {
  return form.length > 2 && form.startsWith('{') && form.endsWith('}') && !form.slice(1, -1).includes('{')
    ? form.slice(1, -1)
    : undefined;
}

/** `column`'s value computed from the old columns of the relation `qualifier` names. */
export function forwardExpression(
  parser: SqlParser,
  forms: FormCache,
  column: MigratedColumn,
  qualifier: readonly string[],
): SqlNode {
  const { mapping, migration } = column;
  const form = mapping.sql!.forward[column.index]!;
  const prefix = qualifier.map(quoted).join('.');
  const text = renderSqlForm(
    form,
    mapping.oldColumns.map((old) => old.name),
    (name) => `${prefix}.${quoted(name)}`,
    `migration "${migration.name}"`,
  );
  return expression(parser, forms, onlyColumn(form) === undefined ? `(${text})` : text);
}

/** Old column `j` of `mapping`, computed from the values written to its new columns. */
export function backwardExpression(
  parser: SqlParser,
  forms: FormCache,
  mapping: BoundMapping,
  j: number,
  valueAt: (newColumn: string) => SqlNode,
): SqlNode {
  const form = mapping.sql!.backward[j]!;
  const single = onlyColumn(form);
  if (single !== undefined) return structuredClone(valueAt(single));
  // Typed as the new column: a parameter used for both columns would otherwise be deduced
  // once from the new column and once from the form's cast, and PostgreSQL refuses that.
  const typeOf = new Map(mapping.newColumns.map((column) => [column.name, column.type]));
  const text = renderSqlForm(
    form,
    mapping.newColumns.map((column) => column.name),
    (name) => {
      const type = typeOf.get(name);
      const value = parser.deparse(valueAt(name));
      return type === undefined ? `(${value})` : `CAST((${value}) AS ${castType(type)})`;
    },
    'mapping',
  );
  return expression(parser, forms, `(${text})`);
}

/** Alias of the side table inside a moved column's sub-query; the rewriter refuses a relation of the application's named so. */
export const SIDE_ALIAS_NAME = `${HIDDEN_PREFIX}side`;
/** {@link SIDE_ALIAS_NAME}, quoted. */
export const SIDE_ALIAS = quoted(SIDE_ALIAS_NAME);

/**
 * A moved column's new side, read from the main row `qualifier` names: `(SELECT s."bio"
 * FROM "user_profiles" s WHERE s."user_id" = u."id")`; NULL when the side row is missing,
 * as a repository reads it.
 */
function movedColumnExpression(
  parser: SqlParser,
  forms: FormCache,
  column: MigratedColumn & { readonly side: SideColumn },
  mainKeys: readonly string[],
  qualifier: readonly string[],
): SqlNode {
  const prefix = qualifier.map(quoted).join('.');
  const on = column.side.keyColumns
    .map((key, index) => `${SIDE_ALIAS}.${quoted(key)} = ${prefix}.${quoted(mainKeys[index]!)}`)
    .join(' AND ');
  return expression(
    parser,
    forms,
    `(SELECT ${SIDE_ALIAS}.${quoted(column.name)} FROM ${column.side.table} AS ${SIDE_ALIAS} WHERE ${on})`,
  );
}

/**
 * `column`'s value on `side`, read from the row `qualifier` names (whose key columns are
 * `mainKeys`): the new column itself, the moved column's side-table sub-query, or the
 * forward form over the old columns.
 */
export function sideForm(
  parser: SqlParser,
  forms: FormCache,
  column: MigratedColumn,
  side: 'old' | 'new',
  mainKeys: readonly string[],
  qualifier: readonly string[],
): SqlNode {
  if (side === 'old') return forwardExpression(parser, forms, column, qualifier);
  if (column.side !== undefined) {
    return movedColumnExpression(parser, forms, column as MigratedColumn & { side: SideColumn }, mainKeys, qualifier);
  }
  return { ColumnRef: { fields: [...qualifier, column.name].map((sval) => ({ String: { sval } })) } };
}
