/**
 * SQL text for the repository's statements. Every identifier here was validated when the
 * table or migration was defined and is used quoted; every value is a bind parameter.
 */
import type { BoundColumn, QualifiedName } from '../model/index.js';

/** A statement and its parameters. */
export interface Statement {
  readonly sql: string;
  readonly params: unknown[];
}

/** Collects parameters and hands out placeholders with the column's cast. */
export class Params {
  readonly values: unknown[] = [];

  /** Adds `value` (already encoded) and returns its placeholder, e.g. `$3::bigint`. */
  add(value: unknown, cast = ''): string {
    this.values.push(value);
    return `$${this.values.length}${cast}`;
  }
}

/** `"a" = $1 AND "b" = $2` for one key, or `("a", "b") IN (...)` / `"a" IN (...)` for several. */
export function keyPredicate(
  keyColumns: readonly BoundColumn[],
  keys: readonly (readonly unknown[])[],
  params: Params,
  alias = '',
): string {
  const prefix = alias === '' ? '' : `${alias}.`;
  if (keys.length === 1) {
    const key = keys[0]!;
    return keyColumns
      .map((column, index) => `${prefix}${column.quoted} = ${params.add(key[index], column.codec.cast)}`)
      .join(' AND ');
  }
  if (keyColumns.length === 1) {
    const column = keyColumns[0]!;
    return `${prefix}${column.quoted} IN (${keys.map((key) => params.add(key[0], column.codec.cast)).join(', ')})`;
  }
  const tuple = `(${keyColumns.map((column) => `${prefix}${column.quoted}`).join(', ')})`;
  const rows = keys.map(
    (key) => `(${keyColumns.map((column, index) => params.add(key[index], column.codec.cast)).join(', ')})`,
  );
  return `${tuple} IN (${rows.join(', ')})`;
}

/** `SELECT cols FROM table WHERE keys`. */
export function selectByKeys(
  table: QualifiedName,
  columns: readonly BoundColumn[],
  keyColumns: readonly BoundColumn[],
  keys: readonly (readonly unknown[])[],
  lock: boolean,
): Statement {
  const params = new Params();
  const where = keyPredicate(keyColumns, keys, params);
  const list = columns.map((column) => column.quoted).join(', ');
  return {
    sql: `SELECT ${list} FROM ${table.quoted} WHERE ${where}${lock ? ' FOR UPDATE' : ''}`,
    params: params.values,
  };
}

/** A column and the encoded value to write to it. */
export interface Assignment {
  readonly column: BoundColumn;
  readonly value: unknown;
}

/**
 * `INSERT INTO table (cols) VALUES (...)`, with `ON CONFLICT (key) DO UPDATE` when
 * `upsertOn` is given, and `OVERRIDING SYSTEM VALUE` with `overriding` (a value computed
 * from a `GENERATED ALWAYS` identity's sequence goes in as the identity's own).
 */
export function insertRow(
  table: QualifiedName,
  assignments: readonly Assignment[],
  upsertOn?: readonly BoundColumn[],
  overriding = false,
): Statement {
  const params = new Params();
  const columns = assignments.map((a) => a.column.quoted).join(', ');
  const values = assignments.map((a) => params.add(a.value, a.column.codec.cast)).join(', ');
  let sql = `INSERT INTO ${table.quoted} (${columns})${overriding ? ' OVERRIDING SYSTEM VALUE' : ''} VALUES (${values})`;
  if (upsertOn !== undefined) {
    const keyNames = new Set(upsertOn.map((column) => column.name));
    const updates = assignments.filter((a) => !keyNames.has(a.column.name));
    const target = upsertOn.map((column) => column.quoted).join(', ');
    sql +=
      updates.length === 0
        ? ` ON CONFLICT (${target}) DO NOTHING`
        : ` ON CONFLICT (${target}) DO UPDATE SET ${updates.map((a) => `${a.column.quoted} = EXCLUDED.${a.column.quoted}`).join(', ')}`;
  }
  return { sql, params: params.values };
}

// Texts of updateRow, found by the identity of the objects the text is made of (the table,
// its key columns, the assigned columns in order), all fixed when a table is defined: an
// update by key is the hottest write, and building its text costs more than looking it up.
interface TextNode {
  sql: string | undefined;
  readonly next: Map<object, TextNode>;
}
const updateTexts = new WeakMap<object, TextNode>();
let updateTextCount = 0;
const MAX_UPDATE_TEXTS = 1024;

function updateTextNode(
  table: QualifiedName,
  keyColumns: readonly BoundColumn[],
  assignments: readonly Assignment[],
): TextNode {
  let node: TextNode | undefined = updateTexts.get(table);
  if (node === undefined) {
    node = { sql: undefined, next: new Map() };
    updateTexts.set(table, node);
  }
  for (let i = -1; i < assignments.length; i++) {
    const part: object = i < 0 ? keyColumns : assignments[i]!.column;
    let child: TextNode | undefined = node.next.get(part);
    if (child === undefined) {
      child = { sql: undefined, next: new Map() };
      node.next.set(part, child);
    }
    node = child;
  }
  return node;
}

/** `UPDATE table SET ... WHERE key`. */
export function updateRow(
  table: QualifiedName,
  assignments: readonly Assignment[],
  keyColumns: readonly BoundColumn[],
  key: readonly unknown[],
): Statement {
  const node = updateTextCount < MAX_UPDATE_TEXTS ? updateTextNode(table, keyColumns, assignments) : undefined;
  if (node?.sql !== undefined) {
    // The placeholders number the assigned values first, then the key's.
    const values: unknown[] = [];
    for (const assignment of assignments) values.push(assignment.value);
    for (let index = 0; index < keyColumns.length; index++) values.push(key[index]);
    return { sql: node.sql, params: values };
  }
  const params = new Params();
  const set = assignments.map((a) => `${a.column.quoted} = ${params.add(a.value, a.column.codec.cast)}`).join(', ');
  const where = keyPredicate(keyColumns, [key], params);
  const sql = `UPDATE ${table.quoted} SET ${set} WHERE ${where}`;
  if (node !== undefined) {
    node.sql = sql;
    updateTextCount++;
  }
  return { sql, params: params.values };
}

/** `DELETE FROM table WHERE key`. */
export function deleteRow(
  table: QualifiedName,
  keyColumns: readonly BoundColumn[],
  key: readonly unknown[],
): Statement {
  const params = new Params();
  return { sql: `DELETE FROM ${table.quoted} WHERE ${keyPredicate(keyColumns, [key], params)}`, params: params.values };
}

/** `SELECT 1 FROM table WHERE key FOR UPDATE`: locks the row a cross-table write hangs off. */
export function lockRow(table: QualifiedName, keyColumns: readonly BoundColumn[], key: readonly unknown[]): Statement {
  const params = new Params();
  return {
    sql: `SELECT 1 FROM ${table.quoted} WHERE ${keyPredicate(keyColumns, [key], params)} FOR UPDATE`,
    params: params.values,
  };
}
