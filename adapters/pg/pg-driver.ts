import { AsyncLocalStorage } from 'node:async_hooks';
import { z } from 'zod';
import type { Driver, Queryable, QueryResult } from '../../src/driver.js';
import { ConfigurationError } from '../../src/errors.js';
import { Mutex } from './mutex.js';
import { type ExecuteStatement, type TransactionScope, TransactionScopes } from './transaction-scopes.js';

/** The part of a `pg` query result the driver reads. */
export interface PgQueryResultLike {
  readonly rows: unknown[];
  readonly rowCount: number | null;
  readonly command?: string;
}

/** Anything with `pg`'s `query(text, values)`: a `pg.Client`, a `pg.Pool` or a pool client. */
export interface PgClientLike {
  query(text: string, values?: unknown[]): Promise<PgQueryResultLike>;
}

/** A connection checked out of a pool, as `pg.Pool#connect()` resolves it. */
export interface PgPoolClientLike extends PgClientLike {
  /** Gives the connection back; with an error, the pool destroys it instead. */
  release(err?: Error | boolean): void;
  /**
   * A checked-out `pg` client has no `error` listener of its own: one lost while the
   * driver holds it would crash the process as an unhandled `error` event.
   */
  on?(event: 'error', listener: (error: Error) => void): unknown;
  removeListener?(event: 'error', listener: (error: Error) => void): unknown;
}

/** The part of `pg.Pool` the driver needs: one-off statements and checked-out connections. */
export interface PgPoolLike extends PgClientLike {
  connect(): Promise<PgPoolClientLike>;
  /**
   * `pg.Pool` announces each new connection (`connect`) and each checkout (`acquire`,
   * before it drops its idle listener); the driver guards the connection then.
   */
  on?(event: 'connect' | 'acquire', listener: (client: PgPoolClientLike) => void): unknown;
}

// Errors seen on pool connections outside a checkout's own listener, by connection.
const lostConnections = new WeakMap<PgPoolClientLike, Error>();
const guardedConnections = new WeakSet<PgPoolClientLike>();

/**
 * Gives a pool connection an `error` listener for its whole life. pg-pool drops its idle
 * listener when it hands a connection out, before the driver's `await connect()` resumes:
 * a backend terminated in that gap would emit `error` with nobody listening, which crashes
 * the process. The error is remembered, so the release destroys the connection.
 */
function guardConnection(client: PgPoolClientLike): void {
  if (guardedConnections.has(client) || typeof client.on !== 'function') return;
  guardedConnections.add(client);
  client.on('error', (error) => {
    if (!lostConnections.has(client)) lostConnections.set(client, error);
  });
}

/** Options of {@link createPgDriver}. */
export interface PgDriverOptions {
  /**
   * Whether `db` is a pool (transactions check out a connection each, statements run at
   * once) or one connection (statements and transactions are queued on it). `auto` treats
   * `db` as a pool when it has `connect()` and is neither a `pg.Client` nor a checked-out
   * pool client; say `pool` for a pool that doesn't look like `pg.Pool`.
   * @default 'auto'
   */
  readonly kind?: 'auto' | 'pool' | 'client';
}

const optionsSchema = z
  .object({
    kind: z.enum(['auto', 'pool', 'client']).default('auto'),
  })
  .strict();

/**
 * A {@link Driver} over node-postgres. Built by {@link createPgDriver}; it never closes or
 * reconfigures the pool or client it was given.
 */
export class PgDriver implements Driver {
  readonly name = 'pg';
  readonly supportsConcurrentQueries: boolean;
  readonly #pool: PgPoolLike | undefined;
  readonly #client: PgClientLike | undefined;
  readonly #queue = new Mutex();
  // Work queued on the one connection and not settled yet. While there is none, a statement
  // skips the queue: `pg` runs one connection's queries in the order they were sent, so it
  // still runs after everything sent before it and before anything queued after it.
  #queued = 0;
  readonly #scopes = new TransactionScopes(new AsyncLocalStorage<TransactionScope>());

  constructor(db: PgPoolLike | PgClientLike, kind: 'pool' | 'client') {
    this.supportsConcurrentQueries = kind === 'pool';
    if (kind === 'pool') {
      this.#pool = db as PgPoolLike;
      this.#pool.on?.('connect', guardConnection);
      this.#pool.on?.('acquire', guardConnection);
    } else {
      this.#client = db;
    }
  }

  query<Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<Row>> {
    const scope = this.#scopes.current();
    return (scope === undefined ? this.#run(sql, params) : scope.execute(sql, params)) as Promise<QueryResult<Row>>;
  }

  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    const scope = this.#scopes.current();
    if (scope !== undefined) return this.#scopes.nested(scope, fn);
    if (this.#client !== undefined) {
      const client = this.#client;
      return this.#enqueue(() => this.#transact(client, fn, () => undefined));
    }
    return this.#transactOnPool(this.#pool!, fn);
  }

  async session<T>(fn: (connection: Queryable) => Promise<T>): Promise<T> {
    const direct = (client: PgClientLike): Queryable => ({
      query: <Row>(sql: string, params?: readonly unknown[]) =>
        execute(client, sql, params) as Promise<QueryResult<Row>>,
    });
    if (this.#client !== undefined) {
      const client = this.#client;
      return this.#enqueue(() => fn(direct(client)));
    }
    return withPoolClient(this.#pool!, (client) => fn(direct(client)));
  }

  #run(sql: string, params: readonly unknown[] | undefined): Promise<QueryResult<unknown>> {
    if (this.#client === undefined) return execute(this.#pool!, sql, params);
    const client = this.#client;
    if (this.#queued === 0) return execute(client, sql, params);
    return this.#enqueue(() => execute(client, sql, params));
  }

  /** Runs `fn` on the one connection once everything queued before it has settled. */
  #enqueue<T>(fn: () => Promise<T>): Promise<T> {
    this.#queued++;
    const result = this.#queue.run(fn);
    const settled = () => {
      this.#queued--;
    };
    result.then(settled, settled);
    return result;
  }

  #transactOnPool<T>(pool: PgPoolLike, fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return withPoolClient(pool, (client, onBroken) => this.#transact(client, fn, onBroken));
  }

  /** BEGIN, body, COMMIT; ROLLBACK when anything throws. Reports a connection it can't trust. */
  async #transact<T>(
    client: PgClientLike,
    fn: (tx: Queryable) => Promise<T>,
    onBroken: (error: Error) => void,
  ): Promise<T> {
    const run: ExecuteStatement = (sql, params) => execute(client, sql, params);
    const rollback = () => client.query('ROLLBACK').then(undefined, (error: unknown) => onBroken(asError(error)));
    try {
      await client.query('BEGIN');
    } catch (error) {
      onBroken(asError(error));
      throw error;
    }
    let value: T;
    try {
      value = await this.#scopes.runBody(run, fn);
    } catch (error) {
      await rollback();
      throw error;
    }
    let commit: PgQueryResultLike;
    try {
      commit = await client.query('COMMIT');
    } catch (error) {
      // Harmless when the failed COMMIT already ended the transaction (a deferred constraint).
      await rollback();
      throw error;
    }
    if (commit.command === 'ROLLBACK') {
      // PostgreSQL answers COMMIT of an aborted transaction with ROLLBACK, not an error:
      // a body that caught a statement's error and resolved would look committed.
      throw new CommitRolledBackError();
    }
    return value;
  }
}

/**
 * Runs `fn` on a connection checked out of `pool`, guarded from checkout on. A connection
 * that was lost, or that `fn` reports broken through `onBroken` (a failed BEGIN or
 * ROLLBACK), can't be trusted: the pool destroys it instead of taking it back.
 */
async function withPoolClient<T>(
  pool: PgPoolLike,
  fn: (client: PgPoolClientLike, onBroken: (error: Error) => void) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  guardConnection(client);
  let broken: Error | undefined;
  const onBroken = (error: Error) => {
    broken ??= error;
  };
  client.on?.('error', onBroken);
  try {
    return await fn(client, onBroken);
  } finally {
    client.removeListener?.('error', onBroken);
    client.release(broken ?? lostConnections.get(client));
  }
}

function execute(
  client: PgClientLike,
  sql: string,
  params: readonly unknown[] | undefined,
): Promise<QueryResult<unknown>> {
  try {
    // With parameters `pg` uses the extended protocol: one statement, one result, already
    // shaped like the driver's (`rows`, `rowCount`). Returned as it is, a read costs no
    // promise hop of the driver's own. `pg` doesn't write to the values array.
    if (params !== undefined && params.length > 0) return client.query(sql, params as unknown[]);
    return client.query(sql, []).then(toQueryResult);
  } catch (error) {
    // A client that throws instead of rejecting still fails the statement, not its caller.
    return Promise.reject(error);
  }
}

/**
 * The driver's result of `pg`'s. Text without parameters goes over the simple protocol,
 * where several statements give an array: the last one's.
 */
function toQueryResult(raw: PgQueryResultLike | PgQueryResultLike[]): QueryResult<unknown> {
  const result = Array.isArray(raw) ? raw[raw.length - 1] : raw;
  return { rows: result?.rows ?? [], rowCount: result?.rowCount ?? null };
}

/**
 * COMMIT found the transaction aborted and rolled it back. Shaped like a `pg` error, SQLSTATE
 * `25P02` (in_failed_sql_transaction) in `code`, as PGlite reports the same case.
 */
class CommitRolledBackError extends Error {
  readonly code = '25P02';
  readonly severity = 'ERROR';

  constructor() {
    super('transaction was rolled back instead of committed because a statement in it failed');
    this.name = 'CommitRolledBackError';
  }
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

function detectKind(db: PgPoolLike | PgClientLike): 'pool' | 'client' {
  const candidate = db as Partial<PgPoolLike & PgPoolClientLike> & object;
  if (typeof candidate.release === 'function') return 'client';
  // `pg.Client` has `connect()` too, but it resolves to nothing.
  if ('connectionParameters' in candidate) return 'client';
  return typeof candidate.connect === 'function' ? 'pool' : 'client';
}

/**
 * Creates a {@link Driver} over node-postgres. `db` can be a `pg.Pool`, a `pg.Client` or a
 * client checked out of a pool; the driver only uses `query`, `connect` and `release`, and
 * neither closes `db` nor touches `pg`'s global type parsers (an `int8` stays a string).
 *
 * On a pool each transaction checks out its own connection and statements run
 * concurrently. On one connection, statements and transactions are queued so they never
 * interleave. A statement or `transaction()` issued through the driver while a transaction
 * is open in the same async call chain joins it (a nested transaction becomes a savepoint).
 * Errors from `pg` are rethrown unchanged, SQLSTATE in `code`.
 *
 * @example
 * ```ts
 * import pg from 'pg';
 * import { createPgDriver } from 'flagshift/pg';
 *
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * const driver = createPgDriver(pool);
 * const moved = await driver.transaction(async (tx) => {
 *   const { rowCount } = await tx.query('UPDATE users SET plan = $1 WHERE plan = $2', ['pro', 'gold']);
 *   return rowCount;
 * });
 * await pool.end();
 * ```
 */
export function createPgDriver(db: PgPoolLike | PgClientLike, options?: PgDriverOptions): PgDriver {
  const parsed = optionsSchema.safeParse(options ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue?.path.join('.') ?? '';
    throw new ConfigurationError(`pg driver option "${path}" is invalid: ${issue?.message ?? 'unknown problem'}`, {
      path,
      cause: parsed.error,
    });
  }
  if (typeof (db as Partial<PgClientLike> | null)?.query !== 'function') {
    throw new ConfigurationError('pg driver needs a pg.Pool, pg.Client or pool client with a query() method');
  }
  const { kind } = parsed.data;
  return new PgDriver(db, kind === 'auto' ? detectKind(db) : kind);
}
