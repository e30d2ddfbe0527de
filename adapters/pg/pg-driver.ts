import { AsyncLocalStorage } from 'node:async_hooks';
import { z } from 'zod';
import {
  ConfigurationError,
  type Continuation,
  type Driver,
  type Queryable,
  type QueryResult,
  type Statement,
} from '../../src/index.js';
import {
  continueWith,
  type ExecuteStatement,
  inOneTransaction,
  Mutex,
  parseOptions,
  type TransactionScope,
  TransactionScopes,
} from '../../src/internal.js';
import { type PreparedQueryable, sendNamed } from './named-send.js';
import type { PgClientLike, PgPoolClientLike, PgPoolLike, PgQueryResultLike } from './pg-client.js';
import { endsSession, sendPipeline } from './pg-pipeline.js';
import { MAX_PREPARED, PreparedStatements } from './prepared-statements.js';

// Errors seen on pool connections outside a checkout's own listener, by connection.
const lostConnections = new WeakMap<PgPoolClientLike, Error>();
const guardedConnections = new WeakSet<PgPoolClientLike>();
// Pools whose connections are guarded already: any number of drivers may share one pool
// (a repository each, one per request), and each would otherwise add its own listeners,
// which the pool keeps for its life and calls on every checkout.
const guardedPools = new WeakSet<PgPoolLike>();

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
  /**
   * Whether statements with parameters run as named prepared statements: each connection
   * parses and plans a statement once, then only binds and executes it, which saves the
   * server most of the work of a point read or write. At most {@link MAX_PREPARED}
   * statement texts are prepared; others run unnamed. `auto` prepares on node-postgres's
   * `pg.Client`, its pool clients and `pg-pool` pools (whose `Client` must take
   * `query({ name, text, values })`, as `pg`'s and `pg.native`'s do, and, when it is
   * `pg`'s JavaScript client, a submitted query: see `sendNamed`); a look-alike gets the
   * text form.
   *
   * A statement whose result type changed under it (`ALTER COLUMN ... TYPE`: "cached plan
   * must not change result type") is prepared again under a new name, up to 8 times per
   * statement, then sent unnamed. A connection that lost its statements (SQLSTATE 26000 or
   * 42P05: `DISCARD ALL`, a pooler in transaction mode that can't keep them) turns
   * preparing off for the driver. Either failure happens before the statement runs; on a
   * pool, a one-off statement that failed so is sent again at once, unnamed. Inside a
   * transaction or session, and on one connection (where a resend would run after the
   * statements queued behind it), the error reaches the caller, and the next use is
   * prepared afresh. Say `false` behind a pooler in transaction mode that doesn't support
   * prepared statements (PgBouncer before 1.21, or without `max_prepared_statements`).
   * @default 'auto'
   */
  readonly prepare?: 'auto' | boolean;
}

const optionsSchema = z
  .object({
    kind: z.enum(['auto', 'pool', 'client']).default('auto'),
    prepare: z.union([z.literal('auto'), z.boolean()]).default('auto'),
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
  readonly #prepared: PreparedStatements;

  constructor(db: PgPoolLike | PgClientLike, kind: 'pool' | 'client', prepare: boolean) {
    this.supportsConcurrentQueries = kind === 'pool';
    this.#prepared = new PreparedStatements(prepare, isNodePostgres(db), writesOwnMessages(db));
    if (kind === 'pool') {
      this.#pool = db as PgPoolLike;
      if (!guardedPools.has(this.#pool)) {
        guardedPools.add(this.#pool);
        this.#pool.on?.('connect', guardConnection);
        this.#pool.on?.('acquire', guardConnection);
      }
    } else {
      this.#client = db;
    }
  }

  query<Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<Row>> {
    const scope = this.#scopes.current();
    return (scope === undefined ? this.#run(sql, params) : scope.execute(sql, params)) as Promise<QueryResult<Row>>;
  }

  queryInto<Row, T>(sql: string, params: readonly unknown[] | undefined, next: Continuation<Row, T>): Promise<T> {
    // Outside a transaction, where a statement needn't wait in the queue, a named statement
    // is sent by `sendNamed`, without `pg`'s promise.
    const direct =
      this.#prepared.callbacks &&
      (this.#client === undefined || this.#queued === 0) &&
      this.#scopes.current() === undefined;
    const name = direct && params !== undefined && params.length > 0 ? this.#prepared.nameOf(sql) : undefined;
    if (name === undefined) return continueWith(this.query<Row>(sql, params), next);
    const retry = this.#client === undefined;
    return sendNamed(this.#client ?? this.#pool!, name, sql, params as unknown[], this.#prepared, retry, next);
  }

  inTransaction(): boolean | undefined {
    return this.#scopes.inside();
  }

  async pipeline(statements: readonly Statement[]): Promise<QueryResult[]> {
    // Inside a transaction: one after the other in a nested one (a savepoint), so a failure
    // undoes them and leaves the caller's transaction usable, as on every driver.
    if (this.#scopes.current() !== undefined) return inOneTransaction(this, statements);
    const sent =
      this.#client !== undefined
        ? await this.#enqueue(async () => sendPipeline(this.#client!, statements, this.#prepared))
        : await withPoolClient(this.#pool!, async (client, onBroken) => {
            try {
              return await sendPipeline(client, statements, this.#prepared);
            } catch (error) {
              // The server ended the session (`FATAL`): the pool must not hand the connection
              // out again before its socket's end arrives.
              if (endsSession(error)) onBroken(asError(error));
              throw error;
            }
          });
    // A connection that can't take one (pg.native, a look-alike): a transaction instead.
    return sent ?? inOneTransaction(this, statements);
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
        execute(client, sql, params, this.#prepared, false) as Promise<QueryResult<Row>>,
    });
    if (this.#client !== undefined) {
      const client = this.#client;
      return this.#enqueue(() => fn(direct(client)));
    }
    return withPoolClient(this.#pool!, (client) => fn(direct(client)));
  }

  #run(sql: string, params: readonly unknown[] | undefined): Promise<QueryResult<unknown>> {
    const prepared = this.#prepared;
    if (this.#client === undefined) return execute(this.#pool!, sql, params, prepared, true);
    // On one connection a resend would run after whatever was queued behind the statement.
    const client = this.#client;
    if (this.#queued === 0) return execute(client, sql, params, prepared, false);
    return this.#enqueue(() => execute(client, sql, params, prepared, false));
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
    const run: ExecuteStatement = (sql, params) => execute(client, sql, params, this.#prepared, false);
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

/**
 * Runs one statement on `client`. With parameters, `pg` uses the extended protocol: one
 * statement, one result, already shaped like the driver's (`rows`, `rowCount`), and the
 * statement is prepared under its name when it has one. `retry`: a named statement that
 * failed because of its preparation is sent again unnamed (only for a one-off statement on
 * a pool: in a transaction the failure has aborted it, and on one connection the resend
 * would overtake the statements queued behind it).
 */
function execute(
  client: PgClientLike,
  sql: string,
  params: readonly unknown[] | undefined,
  prepared: PreparedStatements,
  retry: boolean,
): Promise<QueryResult<unknown>> {
  try {
    if (params !== undefined && params.length > 0) {
      // `pg` doesn't write to the values array.
      const values = params as unknown[];
      const name = prepared.nameOf(sql);
      if (name === undefined) return client.query(sql, values);
      if (prepared.callbacks) return sendNamed(client, name, sql, values, prepared, retry, AS_IS);
      return (client as unknown as PreparedQueryable).query({ name, text: sql, values }).then(undefined, (error) => {
        if (!prepared.failed(sql, name, error) || !retry) throw error;
        return client.query(sql, values);
      });
    }
    return client.query(sql, []).then(toQueryResult);
  } catch (error) {
    // A client that throws instead of rejecting still fails the statement, not its caller.
    return Promise.reject(error);
  }
}

/** A statement's own outcome: the result, or the error rethrown. */
const AS_IS: Continuation<unknown, QueryResult<unknown>> = {
  done: (result) => result,
  failed: (error) => {
    throw error;
  },
};

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

/** Whether `db` is node-postgres's own `pg.Client`, pool client or `pg.Pool`. */
function isNodePostgres(db: PgPoolLike | PgClientLike): boolean {
  const candidate = db as object & { Client?: unknown };
  return 'connectionParameters' in candidate || (typeof candidate.Client === 'function' && 'options' in candidate);
}

/**
 * Whether `db` is node-postgres's JavaScript client, one of its pool clients or a pool of
 * them, outside node-postgres's pipeline and binary modes: where a submitted query is
 * handed the protocol's messages (`pg.native` runs queries in libpq, and the pipeline
 * mode refuses queries other than `pg`'s own).
 */
function writesOwnMessages(db: PgPoolLike | PgClientLike): boolean {
  type Settings = { pipeline?: unknown; binary?: unknown };
  const candidate = db as object & Settings & { Client?: unknown; options?: Settings };
  const pool = typeof candidate.Client === 'function';
  const client = (pool ? (candidate.Client as { prototype: object }).prototype : candidate) as {
    _handleDataRow?: unknown;
  };
  const settings = pool ? (candidate.options ?? {}) : candidate;
  // A client in binary mode gets binary results from `pg`'s own query: it keeps it, so
  // that a column reads the same whichever way a statement is sent.
  return typeof client._handleDataRow === 'function' && !settings.pipeline && !settings.binary;
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
 * client checked out of a pool; the driver uses its `query`, `connect`, `release` and
 * `error` events (on node-postgres's JavaScript client also the connection's protocol
 * messages, for named statements: see `sendNamed`), and neither closes `db` nor touches
 * `pg`'s global type parsers (an `int8` stays a string).
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
  const valid = parseOptions('pg driver', optionsSchema, options ?? {}, {
    kind: '"auto", "pool" or "client"',
    prepare: '"auto", true or false',
  });
  if (typeof (db as Partial<PgClientLike> | null)?.query !== 'function') {
    throw new ConfigurationError('pg driver needs a pg.Pool, pg.Client or pool client with a query() method');
  }
  const { kind, prepare } = valid;
  return new PgDriver(db, kind === 'auto' ? detectKind(db) : kind, prepare === 'auto' ? isNodePostgres(db) : prepare);
}
