import { ConfigurationError, type Driver, type Queryable, type QueryResult } from '../../src/index.js';
import {
  type AsyncContext,
  type ExecuteStatement,
  type TransactionScope,
  TransactionScopes,
} from '../../src/internal.js';

/** The part of a PGlite result the driver reads. */
export interface PgliteResultLike {
  readonly rows: unknown[];
  /** Rows changed by the statement(s); PGlite reports 0 for a SELECT. */
  readonly affectedRows?: number;
  /** Rows counted by the command tag (PGlite 0.3 and later). */
  readonly rowCount?: number;
  /** Command tag word, e.g. `SELECT` or `CREATE` (PGlite 0.3 and later). */
  readonly command?: string;
}

/** Something that runs one parameterized statement, like a PGlite instance or transaction. */
export interface PgliteQueryableLike {
  /** Runs one statement. */
  query(sql: string, params?: unknown[]): Promise<PgliteResultLike>;
}

/** The part of a `PGlite` instance the driver needs. */
export interface PGliteLike extends PgliteQueryableLike {
  /** Runs `fn` in a transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: PgliteQueryableLike) => Promise<T>): Promise<T>;
}

/** Command tags that carry a row count; PostgreSQL's own client reports none for the others. */
const countedCommands = new Set(['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'MERGE', 'COPY', 'FETCH', 'MOVE']);

/**
 * A {@link Driver} over PGlite, PostgreSQL compiled to WebAssembly running in-process. Built
 * by {@link createPgliteDriver}. PGlite has one connection, so statements and transactions
 * are queued by PGlite itself.
 */
export class PgliteDriver implements Driver {
  readonly name = 'pglite';
  readonly supportsConcurrentQueries = false;
  /** Present only when the driver opened the database itself (`openPglite`). */
  readonly close?: () => Promise<void>;
  readonly #db: PGliteLike;
  readonly #scopes = new TransactionScopes(createAsyncContext());

  constructor(db: PGliteLike, onClose?: () => Promise<void>) {
    this.#db = db;
    if (onClose !== undefined) this.close = onClose;
  }

  query<Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<Row>> {
    // Inside a transaction PGlite would queue `db.query` behind the transaction itself.
    const scope = this.#scopes.current();
    const result = scope === undefined ? execute(this.#db, sql, params) : scope.execute(sql, params);
    return result as Promise<QueryResult<Row>>;
  }

  /** PGlite has one connection: `fn` runs on it, and its settings are everyone's. */
  session<T>(fn: (connection: Queryable) => Promise<T>): Promise<T> {
    return fn({ query: (sql, params) => this.query(sql, params) });
  }

  inTransaction(): boolean | undefined {
    return this.#scopes.inside();
  }

  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    const scope = this.#scopes.current();
    if (scope !== undefined) return this.#scopes.nested(scope, fn);
    return this.#db.transaction((pgliteTx) => {
      const run: ExecuteStatement = (sql, params) => execute(pgliteTx, sql, params);
      return this.#scopes.runBody(run, fn);
    });
  }
}

async function execute(
  db: PgliteQueryableLike,
  sql: string,
  params: readonly unknown[] | undefined,
): Promise<QueryResult<unknown>> {
  const result = await db.query(sql, params === undefined ? [] : [...params]);
  return { rows: result.rows, rowCount: rowCountOf(result) };
}

/** The row count node-postgres would report for the same statement. */
function rowCountOf(result: PgliteResultLike): number | null {
  if (typeof result.rowCount === 'number') return result.rowCount;
  if (result.command !== undefined && !countedCommands.has(result.command)) return null;
  // Before PGlite 0.3 there is only `affectedRows`, which is 0 for a SELECT.
  return Math.max(result.rows.length, result.affectedRows ?? 0);
}

/** What the driver needs of `node:async_hooks`. */
export interface AsyncHooksLike {
  readonly AsyncLocalStorage?: new () => AsyncContext<TransactionScope>;
}

/** What the driver asks of the runtime's `process`, if it has one. */
export interface ProcessLike {
  readonly getBuiltinModule?: (id: string) => unknown;
  readonly versions?: { readonly node?: string };
}

/**
 * `node:async_hooks` where the runtime has it (Node, Deno, Bun), looked up without a static
 * `node:` import so the adapter still loads in a browser, where nested calls through the
 * driver inside a transaction are not detected and callers must use `tx`. Node before
 * 20.16 has no `process.getBuiltinModule`: there it is imported, by a specifier bundlers
 * leave alone. Without it, a statement through the driver inside a transaction's body
 * would wait for the transaction that holds PGlite, for ever.
 */
export async function asyncHooksOf(proc: ProcessLike | undefined): Promise<AsyncHooksLike | undefined> {
  const builtin = proc?.getBuiltinModule?.('node:async_hooks') as AsyncHooksLike | undefined;
  if (builtin !== undefined || proc?.versions?.node === undefined) return builtin;
  const specifier = 'node:async_hooks';
  return (await import(/* @vite-ignore */ /* webpackIgnore: true */ specifier).catch(() => undefined)) as
    | AsyncHooksLike
    | undefined;
}

const asyncHooks = await asyncHooksOf((globalThis as { process?: ProcessLike }).process);

function createAsyncContext(): AsyncContext<TransactionScope> | undefined {
  return asyncHooks?.AsyncLocalStorage === undefined ? undefined : new asyncHooks.AsyncLocalStorage();
}

/**
 * Creates a {@link Driver} over a PGlite instance (`@electric-sql/pglite`, an optional peer
 * dependency). Every statement goes through PGlite's `query`, so parameters are always
 * bound and one call runs one statement. The driver never closes `db`.
 *
 * @example
 * ```ts
 * import { PGlite } from '@electric-sql/pglite';
 * import { createPgliteDriver } from 'flagshift/pglite';
 *
 * const db = new PGlite();
 * const driver = createPgliteDriver(db);
 * await driver.query('CREATE TABLE users (id int PRIMARY KEY, name text)');
 * await driver.transaction((tx) => tx.query('INSERT INTO users VALUES ($1, $2)', [1, 'ada']));
 * await db.close();
 * ```
 */
export function createPgliteDriver(db: PGliteLike): PgliteDriver {
  const candidate = db as Partial<PGliteLike> | null;
  if (typeof candidate?.query !== 'function' || typeof candidate.transaction !== 'function') {
    throw new ConfigurationError('pglite driver needs a PGlite instance with query() and transaction() methods');
  }
  return new PgliteDriver(db);
}
