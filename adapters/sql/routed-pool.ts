/**
 * A `pg` pool whose statements are routed: hand it to Kysely's `PostgresDialect`,
 * `drizzle-orm/node-postgres` or `@prisma/adapter-pg` in place of the pool itself. Talks
 * to pg structurally (`PoolLike`), so pg stays the application's own dependency.
 */
import type { SqlResult, SqlRouterOptions, SqlRouterStats, SqlSession } from '../../src/internal.js';
import { RouterHandle, type StatementConfig } from './session.js';

/** The part of a pg client the routed pool uses. */
export interface PoolClientLike {
  query(config: StatementConfig): Promise<SqlResult>;
  release(error?: Error | boolean): void;
}

/** The part of a `pg.Pool` the routed pool uses. */
export interface PoolLike {
  query(config: StatementConfig): Promise<SqlResult>;
  connect(): Promise<PoolClientLike>;
  end(): Promise<void>;
  on(event: string, listener: (...args: unknown[]) => void): unknown;
}

type QueryCallback = (error: Error | null, result?: SqlResult) => void;

/** pg's call forms: `(text, values?)`, `(config)`, `(config, values)`, each with an optional callback. */
function statementOf(textOrConfig: string | StatementConfig, values: unknown): StatementConfig {
  const config: StatementConfig = typeof textOrConfig === 'string' ? { text: textOrConfig } : { ...textOrConfig };
  if (Array.isArray(values)) config.values = values;
  return config;
}

function settle<R>(promise: Promise<R>, callback: unknown): Promise<R> | undefined {
  if (typeof callback !== 'function') return promise;
  promise.then(
    (result) => (callback as QueryCallback)(null, result as SqlResult),
    (error: Error) => (callback as QueryCallback)(error),
  );
  return undefined;
}

/** A checked-out client: its statements are routed with one decision per migration per transaction. */
export class RoutedPoolClient {
  readonly client: PoolClientLike;
  readonly #handle: RouterHandle;
  readonly #session: SqlSession = { pinned: undefined };

  constructor(client: PoolClientLike, handle: RouterHandle) {
    this.client = client;
    this.#handle = handle;
  }

  query(textOrConfig: string | StatementConfig, values?: unknown, callback?: unknown): Promise<SqlResult> {
    const config = statementOf(textOrConfig, values);
    const run = this.#handle.run(config, this.#session, (routed) => this.client.query(routed));
    return settle(run, typeof values === 'function' ? values : callback) as Promise<SqlResult>;
  }

  release(error?: Error | boolean): void {
    this.#session.pinned = undefined;
    this.client.release(error);
  }

  on(event: string, listener: (...args: unknown[]) => void): this {
    (this.client as unknown as PoolLike).on(event, listener);
    return this;
  }
}

/**
 * The routed pool. Its class name ends in `Pool`, so ORMs that check (Drizzle) check out a
 * client for each transaction, as they do with `pg.Pool`.
 */
export class RoutedPool {
  readonly pool: PoolLike;
  readonly #handle: RouterHandle;

  constructor(pool: PoolLike, options: SqlRouterOptions) {
    this.pool = pool;
    this.#handle = new RouterHandle(options);
  }

  query(textOrConfig: string | StatementConfig, values?: unknown, callback?: unknown): Promise<SqlResult> {
    const config = statementOf(textOrConfig, values);
    const run = this.#handle.run(config, undefined, (routed) => this.pool.query(routed));
    return settle(run, typeof values === 'function' ? values : callback) as Promise<SqlResult>;
  }

  async connect(): Promise<RoutedPoolClient> {
    return new RoutedPoolClient(await this.pool.connect(), this.#handle);
  }

  end(): Promise<void> {
    this.#handle.router.close();
    return this.pool.end();
  }

  on(event: string, listener: (...args: unknown[]) => void): this {
    this.pool.on(event, listener);
    return this;
  }

  /** Plan-cache hits and misses, statements passed through, comparisons skipped. */
  stats(): SqlRouterStats {
    return this.#handle.router.stats();
  }
}

/**
 * Wraps `pool`: every statement that touches a table of `options.migrations` is rewritten
 * for its stage; the others run as they are.
 *
 * @example
 * ```ts
 * import pg from 'pg';
 * import { Kysely, PostgresDialect } from 'kysely';
 * import { routePool } from 'flagshift/sql';
 *
 * const pool = routePool(new pg.Pool(), { migrations: [usernameRename], flags, metrics });
 * const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
 * ```
 */
export function routePool(pool: PoolLike, options: SqlRouterOptions): RoutedPool {
  return new RoutedPool(pool, options);
}
