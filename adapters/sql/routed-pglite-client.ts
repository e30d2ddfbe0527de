/**
 * The pg-style client of a routed PGlite: what the pg dialects of TypeORM, Knex and Kysely
 * call on a checked-out client, over PGlite's one connection. `query` in every pg call form
 * (callbacks included, results with pg's `command` and `rowCount`), `release`, and events:
 * `notice` carries PostgreSQL's notices; `error` and `end` never fire, since an in-process
 * connection neither drops nor ends while the database is open.
 */
import { EventEmitter } from 'node:events';
import { callbackOf, settle, statementOf } from './pg-call-forms.js';
import type { StatementConfig } from './session.js';

/** A result as pg's client returns it. */
export interface PgStyleResult {
  /** The command tag's first word (`SELECT`, `INSERT`, ...), as PGlite reports it. */
  command: string | null;
  /** The count of the command tag; `null` for a command without one (`CREATE`, `BEGIN`...). */
  rowCount: number | null;
  /** The rows: objects, or arrays with `rowMode: 'array'`. */
  rows: unknown[];
  /** The columns, each with its `name` and `dataTypeID`. */
  fields: unknown[];
}

/**
 * One checkout of PGlite's connection: how the client runs a statement, routed, and gives
 * the connection back.
 *
 * @internal
 */
export interface PgliteCheckout {
  run(config: StatementConfig, onNotice: ((notice: unknown) => void) | undefined): Promise<PgStyleResult>;
  /** Frees the connection; `discard` first rolls back what the client left open, as pg's discarded connection does. */
  release(discard: boolean): void;
}

/**
 * Which checkout holds PGlite's connection now, if any.
 *
 * @internal
 */
export interface PgliteLease {
  current: PgliteCheckout | undefined;
}

/**
 * The client `RoutedPglite.connect()` checks out: one object for PGlite's one connection,
 * as a pg pool hands out the same client for the same connection. Its statements are
 * routed, with one decision per migration from BEGIN to COMMIT or ROLLBACK.
 */
export class RoutedPgliteClient extends EventEmitter {
  readonly #lease: PgliteLease;

  /** @internal */
  constructor(lease: PgliteLease) {
    super();
    this.#lease = lease;
  }

  /**
   * Runs one statement, given as text or as a config (`text`, `values`, `rowMode`), with
   * `values` replacing the config's. Also takes pg's trailing callback, as TypeORM and Knex
   * pass it (`(text, callback)`, `(text, values, callback)`): the result goes to the
   * callback and `undefined` is returned. A single signature, so that code typed for either
   * pg's client or this one can call it.
   */
  query(textOrConfig: string | StatementConfig, values?: readonly unknown[]): Promise<PgStyleResult>;
  query(
    textOrConfig: string | StatementConfig,
    values?: unknown,
    callback?: unknown,
  ): Promise<PgStyleResult> | undefined {
    let run: Promise<PgStyleResult>;
    try {
      const config = statementOf(textOrConfig, values);
      if (config.types !== undefined) {
        throw new TypeError("routed PGlite: pg's per-query `types` are not supported; give PGlite its own `parsers`");
      }
      const checkout = this.#lease.current;
      if (checkout === undefined) {
        throw new Error('routed PGlite: query on a client released to the database; check one out with connect()');
      }
      const onNotice = this.listenerCount('notice') > 0 ? (notice: unknown) => this.emit('notice', notice) : undefined;
      run = checkout.run(config, onNotice);
    } catch (error) {
      run = Promise.reject(error);
    }
    return settle(run, callbackOf(values, callback));
  }

  /**
   * Gives PGlite's connection back. With an error (or `true`), pg discards the connection
   * and the server rolls back its open transaction: PGlite's one connection stays, so
   * whatever transaction is open on it is rolled back before it is given back.
   */
  release(error?: Error | boolean): void {
    const checkout = this.#lease.current;
    // pg's own message for the same mistake.
    if (checkout === undefined)
      throw new Error('Release called on client which has already been released to the pool.');
    this.#lease.current = undefined;
    checkout.release(error !== undefined && error !== false);
  }
}
