/**
 * The seam to PostgreSQL's own parser. The core never parses SQL itself: an adapter hands
 * it a {@link SqlParser} over `libpg-query` (PostgreSQL's grammar compiled to WASM) and
 * `pgsql-deparser`, so the core stays free of that optional dependency and of I/O.
 */

/** A parse-tree node as libpg-query emits it: `{ Kind: { ...fields } }`, or a field object. */
export type SqlNode = Record<string, unknown>;

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
