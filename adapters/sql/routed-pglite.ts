/**
 * A PGlite database whose statements are routed. It answers both as PGlite (`query`,
 * `transaction`: for `drizzle-orm/pglite`) and as a pg pool (`connect` / `release`: for
 * Kysely's `PostgresDialect`), serializing checked-out clients on PGlite's one connection.
 */
import {
  Mutex,
  type SqlResult,
  type SqlRouterOptions,
  type SqlRouterStats,
  type SqlSession,
} from '../../src/internal.js';
import { RouterHandle, type StatementConfig } from './session.js';

/** PGlite's result, as the routed database returns it. */
export interface PgliteResultLike {
  rows: unknown[];
  fields?: unknown[];
  affectedRows?: number;
}

/** The part of PGlite (or of one of its transactions) the routed database uses. */
export interface PgliteQueryLike {
  /** Runs one statement. */
  query(sql: string, params?: unknown[], options?: Record<string, unknown>): Promise<PgliteResultLike>;
  /** A transaction's: ends it rolled back (what `pglite-prisma-adapter` calls). */
  rollback?(): Promise<void>;
}

/** The part of a `PGlite` instance the routed database uses. */
export interface PgliteLike extends PgliteQueryLike {
  /** Runs `fn` in a transaction. */
  transaction<T>(fn: (tx: PgliteQueryLike) => Promise<T>): Promise<T>;
}

function execute(db: PgliteQueryLike, options: Record<string, unknown> | undefined) {
  return async (config: StatementConfig): Promise<SqlResult & PgliteResultLike> => {
    const result = await db.query(config.text, config.values as unknown[] | undefined, {
      ...options,
      ...(config.rowMode === 'array' ? { rowMode: 'array' } : {}),
    });
    return { ...result, rowCount: result.affectedRows ?? result.rows.length };
  };
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
      execute(this.#tx, options),
    );
  }

  /** Rolls the transaction back, as PGlite's own transaction does. */
  rollback(): Promise<void> {
    if (this.#tx.rollback === undefined) return Promise.reject(new TypeError('this transaction has no rollback()'));
    return this.#tx.rollback();
  }
}

/** The routed PGlite database. */
export class RoutedPglite implements PgliteLike {
  readonly db: PgliteLike;
  readonly #handle: RouterHandle;
  readonly #connection = new Mutex();

  constructor(db: PgliteLike, options: SqlRouterOptions) {
    this.db = db;
    this.#handle = new RouterHandle(options);
  }

  /** Runs one statement, rewritten for the stage of every migrated table it touches. */
  query(sql: string, params?: unknown[], options?: Record<string, unknown>): Promise<PgliteResultLike> {
    return this.#connection.run(() =>
      this.#handle.run(
        { text: sql, values: params, rowMode: options?.rowMode as string | undefined },
        undefined,
        execute(this.db, options),
      ),
    );
  }

  /** Runs `fn` in a transaction whose statements are routed like {@link RoutedPglite.query}'s. */
  transaction<T>(fn: (tx: PgliteQueryLike) => Promise<T>): Promise<T> {
    return this.#connection.run(() => this.db.transaction((tx) => fn(new RoutedPgliteTransaction(tx, this.#handle))));
  }

  /** A pg-pool-style client holding PGlite's connection until `release()`. */
  async connect(): Promise<{
    /** Runs one statement, routed. */
    query(text: string | StatementConfig, values?: unknown[]): Promise<SqlResult>;
    /** Gives the connection back. */
    release(): void;
  }> {
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const held = new Promise<void>((acquired) => {
      void this.#connection.run(() => {
        acquired();
        return released;
      });
    });
    await held;
    const session: SqlSession = { pinned: undefined };
    return {
      query: (text, values) => {
        const config: StatementConfig = typeof text === 'string' ? { text } : { ...text };
        if (values !== undefined) config.values = values;
        return this.#handle.run(config, session, execute(this.db, undefined));
      },
      release: () => release(),
    };
  }

  /** Stops the router; the PGlite database stays open (close it yourself). */
  async end(): Promise<void> {
    this.#handle.router.close();
  }

  /** Plan-cache hits and misses, statements passed through, comparisons skipped. */
  stats(): SqlRouterStats {
    return this.#handle.router.stats();
  }
}

/**
 * Wraps a PGlite database: statements on the tables of `options.migrations` are rewritten
 * for their stage. Use it with `drizzle-orm/pglite`, or as the `pool` of Kysely's
 * `PostgresDialect`.
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
