/**
 * A PGlite database whose statements are routed. It answers as PGlite (`query`, `exec`,
 * `transaction`: for `drizzle-orm/pglite` and `pglite-prisma-adapter`) and as a pg pool
 * (`connect` in both of pg's forms, `on`, `end`: for the pg dialects of Kysely, Knex and
 * TypeORM), serializing checked-out clients on PGlite's one connection.
 */
import { EventEmitter } from 'node:events';
import {
  Mutex,
  type SqlResult,
  type SqlRouterOptions,
  type SqlRouterStats,
  type SqlSession,
} from '../../src/internal.js';
import { type ConnectCallback, settle, settleConnect } from './pg-call-forms.js';
import { type PgliteLease, type PgStyleResult, RoutedPgliteClient } from './routed-pglite-client.js';
import { RouterHandle, type StatementConfig } from './session.js';

/** PGlite's result, as the routed database returns it. */
export interface PgliteResultLike {
  rows: unknown[];
  fields?: unknown[];
  /** Rows changed, summed over the statements of the text. */
  affectedRows?: number;
  /** The command tag's first word, e.g. `SELECT` (PGlite 0.5.5 and later). */
  command?: string;
  /** The count of the command tag, when it has one (PGlite 0.5.5 and later). */
  rowCount?: number;
}

/** The part of PGlite (or of one of its transactions) the routed database uses. */
export interface PgliteQueryLike {
  /** Runs one statement. */
  query(sql: string, params?: unknown[], options?: Record<string, unknown>): Promise<PgliteResultLike>;
  /** Runs the statements of `sql`, unparameterized (the simple query protocol), one result each. */
  exec?(sql: string, options?: Record<string, unknown>): Promise<PgliteResultLike[]>;
  /** A transaction's: ends it rolled back (what `pglite-prisma-adapter` calls). */
  rollback?(): Promise<void>;
}

/** The part of a `PGlite` instance the routed database uses. */
export interface PgliteLike extends PgliteQueryLike {
  /** Runs `fn` in a transaction. */
  transaction<T>(fn: (tx: PgliteQueryLike) => Promise<T>): Promise<T>;
}

/** PGlite's result with the `rowCount` the router counts writes by. */
function counted(result: PgliteResultLike): SqlResult & PgliteResultLike {
  return { ...result, rowCount: result.rowCount ?? result.affectedRows ?? result.rows.length };
}

/** PGlite's result in pg's shape. PGlite before 0.5.5 reports no command tag: its `affectedRows` stands in for the count. */
function pgStyle(result: PgliteResultLike): PgStyleResult {
  const rowCount = result.rowCount ?? (result.command === undefined ? (result.affectedRows ?? null) : null);
  return { command: result.command ?? null, rowCount, rows: result.rows, fields: result.fields ?? [] };
}

function execute<R extends SqlResult>(
  db: PgliteQueryLike,
  options: Record<string, unknown> | undefined,
  shape: (result: PgliteResultLike) => R,
) {
  return async (config: StatementConfig): Promise<R> => {
    const result = await db.query(config.text, config.values as unknown[] | undefined, {
      ...options,
      ...(config.rowMode === 'array' ? { rowMode: 'array' } : {}),
    });
    return shape(result);
  };
}

/**
 * Runs `sql` through PGlite's `exec`, routed as one text: passed through when it touches
 * no migrated table; its one statement rewritten when it does; refused, before anything
 * runs, when it has several statements and one of them touches a migrated table.
 */
async function execRouted(
  db: PgliteQueryLike,
  handle: RouterHandle,
  session: SqlSession | undefined,
  sql: string,
  options: Record<string, unknown> | undefined,
): Promise<PgliteResultLike[]> {
  if (db.exec === undefined) throw new TypeError('routed PGlite: the wrapped database has no exec()');
  const exec = db.exec.bind(db);
  // Every result of the text, by the result the router sees (the last one).
  const scripts = new WeakMap<object, PgliteResultLike[]>();
  const last = await handle.run({ text: sql }, session, async (config) => {
    const results = await exec(config.text, options);
    const result = counted(results.at(-1) ?? { rows: [], fields: [] });
    scripts.set(result, results);
    return result;
  });
  const results = scripts.get(last)!;
  // A routed text is one statement: its result is the one the router compared and stripped.
  return results.length === 1 ? [last] : results;
}

/** One transaction of the routed database: one decision per migration for its whole length. */
class RoutedPgliteTransaction implements PgliteQueryLike {
  readonly #tx: PgliteQueryLike;
  readonly #handle: RouterHandle;
  readonly #session: SqlSession = { pinned: new Map() };

  constructor(tx: PgliteQueryLike, handle: RouterHandle) {
    this.#tx = tx;
    this.#handle = handle;
  }

  query(sql: string, params?: unknown[], options?: Record<string, unknown>): Promise<PgliteResultLike> {
    return this.#handle.run(
      { text: sql, values: params, rowMode: options?.rowMode as string | undefined },
      this.#session,
      execute(this.#tx, options, counted),
    );
  }

  /** Runs the statements of `sql` in the transaction, as {@link RoutedPglite.exec} does. */
  exec(sql: string, options?: Record<string, unknown>): Promise<PgliteResultLike[]> {
    return execRouted(this.#tx, this.#handle, this.#session, sql, options);
  }

  /** Rolls the transaction back, as PGlite's own transaction does. */
  rollback(): Promise<void> {
    if (this.#tx.rollback === undefined) return Promise.reject(new TypeError('this transaction has no rollback()'));
    return this.#tx.rollback();
  }
}

/** The routed PGlite database. */
export class RoutedPglite extends EventEmitter implements PgliteLike {
  readonly db: PgliteLike;
  readonly #handle: RouterHandle;
  readonly #connection = new Mutex();
  readonly #lease: PgliteLease = { current: undefined };
  #client: RoutedPgliteClient | undefined;
  #waiting = 0;
  #busy = false;

  constructor(db: PgliteLike, options: SqlRouterOptions) {
    super();
    this.db = db;
    this.#handle = new RouterHandle(options);
  }

  /** Runs one statement, rewritten for the stage of every migrated table it touches. */
  query(sql: string, params?: unknown[], options?: Record<string, unknown>): Promise<PgliteResultLike> {
    return this.#exclusive(() =>
      this.#handle.run(
        { text: sql, values: params, rowMode: options?.rowMode as string | undefined },
        undefined,
        execute(this.db, options, counted),
      ),
    );
  }

  /**
   * Runs the statements of `sql` (PGlite's `exec`: no parameters, one result per
   * statement), for schema scripts such as `pglite-prisma-adapter`'s `executeScript`. A
   * text touching no migrated table runs as it is; a text of one statement on a migrated
   * table is routed as {@link RoutedPglite.query} routes it; a text of several statements,
   * one of them on a migrated table, is refused with a `ValidationError` before any of
   * them runs: send that statement on its own.
   */
  exec(sql: string, options?: Record<string, unknown>): Promise<PgliteResultLike[]> {
    return this.#exclusive(() => execRouted(this.db, this.#handle, undefined, sql, options));
  }

  /** Runs `fn` in a transaction whose statements are routed like {@link RoutedPglite.query}'s. */
  transaction<T>(fn: (tx: PgliteQueryLike) => Promise<T>): Promise<T> {
    return this.#exclusive(() => this.db.transaction((tx) => fn(new RoutedPgliteTransaction(tx, this.#handle))));
  }

  /** Checks out the pg-style client, which holds PGlite's connection until its `release()`. */
  connect(): Promise<RoutedPgliteClient>;
  /** pg's callback form: `callback(null, client, release)` once the connection is free. */
  connect(callback: ConnectCallback<RoutedPgliteClient>): undefined;
  connect(callback?: ConnectCallback<RoutedPgliteClient>): Promise<RoutedPgliteClient> | undefined {
    return settleConnect(this.#checkOut(), callback);
  }

  async #checkOut(): Promise<RoutedPgliteClient> {
    let free!: () => void;
    const released = new Promise<void>((resolve) => {
      free = resolve;
    });
    await new Promise<void>((held) => {
      void this.#exclusive(() => {
        held();
        return released;
      });
    });
    const session: SqlSession = { pinned: undefined };
    this.#lease.current = {
      run: (config, onNotice) => this.#handle.run(config, session, execute(this.db, onNotice && { onNotice }, pgStyle)),
      release: (discard) => {
        session.pinned = undefined;
        if (!discard) return free();
        this.db.query('ROLLBACK').then(free, free);
      },
    };
    this.#client ??= new RoutedPgliteClient(this.#lease);
    return this.#client;
  }

  /** Runs `fn` once PGlite's connection is free, holding it until `fn` settles. */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    this.#waiting++;
    return this.#connection.run(async () => {
      this.#waiting--;
      this.#busy = true;
      try {
        return await fn();
      } finally {
        this.#busy = false;
      }
    });
  }

  /** pg's pool count of connections: PGlite has one. */
  get totalCount(): number {
    return 1;
  }

  /** pg's pool count of idle connections: 1 while nothing holds PGlite's connection, else 0. */
  get idleCount(): number {
    return this.#busy ? 0 : 1;
  }

  /** pg's pool count of callers waiting for a connection: statements, transactions and checkouts queued. */
  get waitingCount(): number {
    return this.#waiting;
  }

  /** Stops the router; the PGlite database stays open (close it yourself). */
  end(): Promise<void>;
  /** pg's callback form, which TypeORM's `destroy()` waits on. */
  end(callback: (error?: Error) => void): undefined;
  end(callback?: (error?: Error) => void): Promise<void> | undefined {
    this.#handle.router.close();
    return settle(Promise.resolve(), callback);
  }

  /** Plan-cache hits and misses, statements passed through, comparisons skipped. */
  stats(): SqlRouterStats {
    return this.#handle.router.stats();
  }
}

/**
 * Wraps a PGlite database: statements on the tables of `options.migrations` are rewritten
 * for their stage. Use it with `drizzle-orm/pglite` or `pglite-prisma-adapter`, as the
 * `pool` of Kysely's `PostgresDialect`, as Knex's `connectionPool`, or as TypeORM's pool
 * through {@link pgModuleOf}.
 *
 * @example
 * ```ts
 * import { PGlite } from '@electric-sql/pglite';
 * import { drizzle } from 'drizzle-orm/pglite';
 * import { routePglite } from 'flagshift/sql';
 *
 * const db = drizzle({ client: routePglite(new PGlite(), { migrations: [usernameRename], flags }) });
 * ```
 */
export function routePglite(db: PgliteLike, options: SqlRouterOptions): RoutedPglite {
  return new RoutedPglite(db, options);
}
