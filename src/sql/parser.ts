/**
 * The seam to PostgreSQL's own parser. The core never parses SQL itself: an adapter hands
 * it a {@link SqlParser} over `libpg-query` (PostgreSQL's grammar compiled to WASM) and
 * `pgsql-deparser`, so the core stays free of that optional dependency and of I/O.
 */

/** A parse-tree node as libpg-query emits it: `{ Kind: { ...fields } }`, or a field object. */
export type SqlNode = Record<string, unknown>;

/** Calls `fn` on every object node of `value` (a parse tree or part of one), parents before children. */
export function forEachNode(value: unknown, fn: (node: SqlNode) => void): void {
  if (Array.isArray(value)) {
    for (const item of value) forEachNode(item, fn);
    return;
  }
  if (value === null || typeof value !== 'object') return;
  const node = value as SqlNode;
  fn(node);
  for (const key in node) forEachNode(node[key], fn);
}

/** A column reference node: `a.b` as `["a", "b"]`. */
export function columnRefNode(names: readonly string[]): SqlNode {
  return { ColumnRef: { fields: names.map((sval) => ({ String: { sval } })) } };
}

/** A select-list (or SET) item: `val`, named `name` when given. */
export function resTarget(name: string | undefined, val: SqlNode): SqlNode {
  return { ResTarget: name === undefined ? { val } : { name, val } };
}

/** The column a `ResTarget` item names: an INSERT's column, an UPDATE's SET target. */
export function targetName(item: SqlNode): string {
  return (item.ResTarget as SqlNode).name as string;
}

/** The rows of a `VALUES` list (a `SelectStmt` node), each its items; none for any other select. */
export function valuesRows(select: SqlNode | undefined): SqlNode[][] {
  return ((select?.valuesLists as SqlNode[] | undefined) ?? []).map(
    (list) => (list.List as { items: SqlNode[] }).items,
  );
}

/** One statement of a parse result. */
export interface RawStatement {
  readonly stmt: SqlNode;
}

/** Parses and prints SQL with PostgreSQL's grammar. Synchronous: the adapter loads it first. */
export interface SqlParser {
  /** The statements of `sql`; throws on a syntax error. */
  parse(sql: string): { readonly stmts?: readonly RawStatement[] };
  /** SQL text of one statement or expression node. */
  deparse(node: SqlNode): string;
}
