/**
 * The small interface a database adapter implements. Core never talks to a database any
 * other way; `flagshift/pg` and `flagshift/pglite` implement it.
 */

/** Rows and affected-row count of one statement. */
export interface QueryResult<Row = Record<string, unknown>> {
  readonly rows: Row[];
  /** Rows inserted, updated, deleted or returned; `null` when the driver can't tell. */
  readonly rowCount: number | null;
}

/** One statement and its parameters. */
export interface Statement {
  readonly sql: string;
  /** Bind parameters; {@link Driver.pipeline} takes strings, numbers, booleans, bigints and `null`. */
  readonly params?: readonly unknown[];
}

/** A connection-like object that runs one parameterized statement at a time. */
export interface Queryable {
  /**
   * Runs one statement. `params` are always sent as bind parameters, never interpolated.
   * Errors are thrown as they come from the database, with their SQLSTATE in `code`.
   */
  query<Row = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<QueryResult<Row>>;
  /**
   * Optional: what `query(sql, params).then((r) => next.done(r), (e) => next.failed(e))`
   * does, with `next` run in the statement's own continuation instead of a second
   * promise's, and no functions made per call. The SDK's reads and writes use it where a
   * driver has it (`flagshift/pg` does); {@link queryInto} falls back to `query` elsewhere.
   * One of `next.done` and `next.failed` is called once, as a method of `next`, in the
   * caller's async context, never synchronously.
   */
  queryInto?<Row, T>(sql: string, params: readonly unknown[] | undefined, next: Continuation<Row, T>): Promise<T>;
}

/**
 * What becomes of one statement's outcome: its result or its error. One object for both,
 * usually the caller's own state, so a read or write needs no closures of its own.
 */
export interface Continuation<Row, T> {
  /** The statement's result. */
  done(result: QueryResult<Row>): T;
  /** The statement's error. */
  failed(error: unknown): T | Promise<T>;
}

/** `db.query(sql, params)` into `next`, through the driver's own {@link Queryable.queryInto} where it has one. */
export function queryInto<Row, T>(
  db: Queryable,
  sql: string,
  params: readonly unknown[] | undefined,
  next: Continuation<Row, T>,
): Promise<T> {
  if (db.queryInto !== undefined) return db.queryInto(sql, params, next);
  let query: Promise<QueryResult<Row>>;
  try {
    query = db.query<Row>(sql, params);
  } catch (error) {
    // A driver that throws instead of rejecting is handled like one that rejects.
    query = Promise.reject(error);
  }
  return continueWith(query, next);
}

/** `query`'s outcome into `next`, in a reaction of it. */
export function continueWith<Row, T>(query: Promise<QueryResult<Row>>, next: Continuation<Row, T>): Promise<T> {
  return query.then(
    (result) => next.done(result),
    (error: unknown) => next.failed(error),
  );
}

/**
 * The `tx` a driver hands to a transaction's body, when it can open a transaction nested
 * in that one: under a savepoint, rolled back to it when `fn` throws.
 */
export interface NestingQueryable extends Queryable {
  /** Runs `fn` under a savepoint: released when it resolves, rolled back to when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
}

/** Whether `db` (a transaction's `tx`) can open a nested transaction itself. */
export function canNest(db: Queryable): db is NestingQueryable {
  return typeof (db as Partial<NestingQueryable>).transaction === 'function';
}

/** A database the SDK can run statements and transactions on. */
export interface Driver extends Queryable {
  /** Adapter name for messages and metrics, e.g. `pg` or `pglite`. */
  readonly name: string;
  /**
   * Whether two statements issued at once really run at once (a pool). When false,
   * concurrent statements are queued by the driver; results are the same, only slower.
   */
  readonly supportsConcurrentQueries: boolean;
  /**
   * Runs `fn` in one transaction on one connection: commits when it resolves, rolls back
   * when it throws. Nested calls run inside the outer transaction.
   */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /**
   * Whether the caller runs inside a {@link transaction} of this driver, so that what it
   * sends joins that transaction; `undefined` (or no method) when the driver can't tell.
   * A transaction opened with plain SQL (`BEGIN`) on the driver's connection is not seen.
   */
  inTransaction?(): boolean | undefined;
  /**
   * Runs `fn` on one connection, outside a transaction, for statements that must share
   * session settings but can't run in a transaction (`SET lock_timeout` before `CREATE
   * INDEX CONCURRENTLY`). The connection goes back as `fn` left it: restore any setting
   * you change (`RESET lock_timeout`). On a single connection (a client, PGlite) it is
   * that connection, and other callers' statements wait or interleave as they do there.
   */
  session<T>(fn: (connection: Queryable) => Promise<T>): Promise<T>;
  /**
   * Optional: runs `statements` in order as one transaction, sent together in one round
   * trip (the extended protocol's implicit transaction: one Sync after the last), and
   * resolves with each one's result once it committed. A setting one of them makes with
   * `set_config(..., true)` holds for those after it. When one fails, none of them took
   * effect. Nothing after the last statement waits on the client, so the locks its
   * statements take are held for no round trip more. A caller inside a
   * {@link transaction} gets them run one by one in a transaction nested in it. Where a
   * driver has none, flagshift runs them in a {@link transaction}, one round trip each.
   * One case rejects after the commit: a returned value the client fails to decode.
   */
  pipeline?(statements: readonly Statement[]): Promise<QueryResult[]>;
  /** Releases what the adapter created itself (never what the caller passed in). */
  close?(): Promise<void>;
}

/**
 * Runs `statements` as one transaction: in one round trip through the driver's own
 * {@link Driver.pipeline} where it has one, otherwise in a {@link Driver.transaction}, one
 * statement after the other. Resolves with each one's result.
 */
export function runPipeline(driver: Driver, statements: readonly Statement[]): Promise<QueryResult[]> {
  if (driver.pipeline !== undefined) return driver.pipeline(statements);
  return inOneTransaction(driver, statements);
}

/** `statements` one after the other in a {@link Driver.transaction} of `driver`. */
export function inOneTransaction(driver: Driver, statements: readonly Statement[]): Promise<QueryResult[]> {
  return driver.transaction(async (tx) => {
    const results: QueryResult[] = [];
    for (const statement of statements) results.push(await tx.query(statement.sql, statement.params));
    return results;
  });
}
