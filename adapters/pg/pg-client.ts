/**
 * The shapes of `pg`'s objects the driver accepts: a result, a client, a pool and a
 * pool's checked-out connection. Structural, so a pool of another `pg`-compatible library
 * (or a test's stand-in) fits as well as `pg`'s own.
 */

/** The part of a `pg` query result the driver reads. */
export interface PgQueryResultLike {
  readonly rows: unknown[];
  readonly rowCount: number | null;
  readonly command?: string;
}

/** Anything with `pg`'s `query(text, values)`: a `pg.Client`, a `pg.Pool` or a pool client. */
export interface PgClientLike {
  /** Runs one statement. */
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
  /** Removes an `error` listener added with `on`. */
  removeListener?(event: 'error', listener: (error: Error) => void): unknown;
}

/** The part of `pg.Pool` the driver needs: one-off statements and checked-out connections. */
export interface PgPoolLike extends PgClientLike {
  /** Checks a client out of the pool. */
  connect(): Promise<PgPoolClientLike>;
  /**
   * `pg.Pool` announces each new connection (`connect`) and each checkout (`acquire`,
   * before it drops its idle listener); the driver guards the connection then.
   */
  on?(event: 'connect' | 'acquire', listener: (client: PgPoolClientLike) => void): unknown;
}
