/**
 * One named (prepared) statement sent on node-postgres, outside a driver's queue: on its
 * JavaScript client as the driver's own protocol messages, elsewhere through `pg`'s
 * callback form. Either way one object carries the statement, its outcome and what runs
 * next, and the caller's continuation runs in a reaction of one promise.
 */
import type { Continuation, Queryable, QueryResult } from '../../src/index.js';
import { queryInto } from '../../src/internal.js';
import type { PgClientLike, PgQueryResultLike } from './pg-client.js';
import {
  decodeRow,
  describeFields,
  type PgWire,
  rowCountOf,
  type TypeParsers,
  type WireField,
  wireValues,
  writeExecution,
} from './pg-wire.js';
import type { PreparedStatements } from './prepared-statements.js';

/** `pg`'s query config form, for a named prepared statement, and its submitted-query form. */
export interface PreparedQueryable {
  /** Runs one named (prepared) statement. */
  query(config: { name: string; text: string; values: unknown[] }): Promise<PgQueryResultLike>;
  /** The same with node-postgres's callback: no promise of `pg`'s own (nor `pg-pool`'s) is made. */
  query(
    config: { name: string; text: string; values: unknown[] } | { submit(connection: PgWire): Error | null },
    callback: (error: Error | null | undefined, result: unknown) => void,
  ): void;
}

/**
 * Sends the named statement `name` of `sql`, and hands its outcome to `next`.
 *
 * Where the driver writes its own messages (`prepared.messages`: node-postgres's JavaScript
 * client) and every value is text, a number, a boolean, a bigint or null, the statement
 * goes to `pg` as a submitted query (see {@link NamedSend}): Parse the first time on a
 * connection, then Bind, Describe, Execute and Sync in one write, and the rows decoded with
 * the client's type parsers, as `pg` decodes them. It does without `pg`'s own query
 * object (an event emitter, a result object, a promise and its `catch`): under load that
 * was about a fifth of the main thread's time per read by key. Other values go in `pg`'s
 * callback form, which serializes them as `pg` does.
 *
 * `next` runs in a reaction of the promise made here, never in `pg`'s callback: that
 * callback runs in the async context the connection's socket was opened in, which can be
 * another call chain's transaction (a connection the pool opened inside one), and a
 * statement issued from it would join that transaction. A reaction runs in the caller's.
 */
export function sendNamed<Row, T>(
  client: PgClientLike,
  name: string,
  sql: string,
  values: unknown[],
  prepared: PreparedStatements,
  retry: boolean,
  next: Continuation<Row, T>,
): Promise<T> {
  const sent = new Promise<NamedSend<Row, T>>(captureResolve);
  const wire = prepared.messages ? wireValues(values) : undefined;
  const send = new NamedSend<Row, T>(client, sql, values, wire, prepared, retry, next, name, resolveSend!);
  resolveSend = undefined;
  try {
    const callback = (error: Error | null | undefined, result: unknown) =>
      send.settleWith(error !== null && error !== undefined, error, result as QueryResult<Row>);
    (client as unknown as PreparedQueryable).query(wire === undefined ? { name, text: sql, values } : send, callback);
  } catch (error) {
    // A query node-postgres throws instead of queuing fails the statement like one it
    // reports: through `next.failed`, once the caller holds its promise.
    if (!send.settled) send.threw = true;
    send.settleWith(true, error, undefined);
  }
  return sent.then(finishSend) as Promise<T>;
}

/**
 * One statement {@link sendNamed} sent: what it needs to finish, and its outcome. The
 * promise resolves with it (whatever the outcome), so the reaction that finishes it is
 * one function for every statement, made once. It must never have a `then`: a promise
 * resolved with a thenable adopts it instead.
 *
 * With `wire` values it is also node-postgres's submitted query (`submit`, then the
 * client's `handle*` call for each message until ReadyForQuery, and `callback` once, as
 * pg-cursor is driven): the client gives it its type parsers through `_result`, and keeps
 * `name` and `text` to learn that the statement is prepared on the connection.
 */
class NamedSend<Row, T> {
  /** Whether the outcome is in: the first one stands. */
  settled = false;
  result: QueryResult<Row> | undefined = undefined;
  /** Whether the statement failed, with `error`. */
  failed = false;
  error: unknown = undefined;
  /** Whether `query` threw instead of taking the statement. */
  threw = false;
  /** Set by node-postgres: the callback `query` was given (the pool's, which releases the connection). */
  callback: ((error: unknown, result?: QueryResult<Row>) => void) | undefined = undefined;
  /** Set by node-postgres through {@link _result}: the client's type parsers. */
  _types: TypeParsers | undefined = undefined;
  /**
   * Set by node-postgres on a client in binary mode (one the driver took for a text one: a
   * pool's `Client` that says so itself, `pg.defaults.binary`): results are then asked for,
   * and decoded, in binary, as `pg`'s own query does.
   */
  binary = false;
  #fields: WireField[] = [];
  #rows: Row[] = [];
  #rowCount: number | null = null;
  /** A value no parser could decode: reported at ReadyForQuery, as `pg` does. */
  #undecodable: unknown = undefined;

  constructor(
    readonly client: PgClientLike,
    readonly sql: string,
    readonly values: unknown[],
    /** `values` as the protocol carries them, when the statement is sent as a submitted query. */
    readonly wire: (string | null)[] | undefined,
    readonly prepared: PreparedStatements,
    readonly retry: boolean,
    readonly next: Continuation<Row, T>,
    readonly name: string,
    /** Resolves {@link sendNamed}'s promise. */
    readonly settle: (send: NamedSend<Row, T>) => void,
  ) {}

  /**
   * Records the outcome and resolves the promise with this send. The first outcome stands:
   * a late callback after a throw, or a second one, changes nothing.
   */
  settleWith(failed: boolean, error: unknown, result: QueryResult<Row> | undefined): void {
    if (this.settled) return;
    this.settled = true;
    if (failed) {
      this.failed = true;
      this.error = error;
    } else {
      this.result = result;
    }
    this.settle(this);
  }

  // ---- node-postgres's submitted query ----

  /** The statement's text, under the name node-postgres reads it by. */
  get text(): string {
    return this.sql;
  }

  /** Where node-postgres puts the client's type parsers (`_result._types`). */
  get _result(): this {
    return this;
  }

  submit(connection: PgWire): Error | null {
    const { name, sql } = this;
    const known = connection.parsedStatements?.[name] ?? connection.submittedNamedStatements?.[name];
    if (known !== undefined && known !== sql) {
      return new Error(`Prepared statements must be unique - '${name}' was used for a different statement`);
    }
    connection.stream?.cork?.();
    try {
      if (known === undefined) {
        // The statement may exist without `pg` knowing (a failed pipeline prepared it):
        // closing a statement that doesn't exist is no error.
        connection.close({ type: 'S', name });
        connection.parse({ text: sql, name });
        const submitted = connection.submittedNamedStatements;
        if (submitted !== undefined) submitted[name] = sql;
      }
      writeExecution(connection, name, this.wire!, this.binary);
      connection.sync();
    } finally {
      connection.stream?.uncork?.();
    }
    return null;
  }

  handleRowDescription(message: { fields: readonly { name: string; dataTypeID: number; format?: string }[] }): void {
    if (this._types === undefined) {
      this.#undecodable ??= new Error('pg driver: node-postgres gave the statement no type parsers to decode its rows');
      return;
    }
    this.#fields = describeFields(message, this._types);
  }

  handleDataRow(message: { fields: readonly (string | null)[] }): void {
    if (this.#undecodable !== undefined) return;
    try {
      this.#rows.push(decodeRow(this.#fields, message.fields) as Row);
    } catch (error) {
      this.#undecodable = error;
    }
  }

  handleCommandComplete(message: { text?: string }): void {
    this.#rowCount = rowCountOf(message.text);
  }

  handleEmptyQuery(): void {
    // A statement of no text: no rows, no count.
  }

  handlePortalSuspended(): void {
    // Never: the statement is executed without a row limit.
  }

  handleCopyInResponse(connection: PgWire): void {
    connection.sendCopyFail('No source stream defined');
  }

  handleCopyData(): void {
    // Nothing: COPY TO's rows are not the statement's result.
  }

  handleError(error: unknown): void {
    // As `pg`: a value that failed to decode is the error reported.
    this.callback?.(this.#undecodable ?? error);
  }

  handleReadyForQuery(): void {
    if (this.#undecodable !== undefined) {
      this.callback?.(this.#undecodable);
      return;
    }
    try {
      this.callback?.(null, { rows: this.#rows, rowCount: this.#rowCount });
    } catch (error) {
      // As `pg`: what the callback throws (a pool's `release` listener) must not escape
      // into the client's message handling, which would leave its queue unpulsed.
      process.nextTick(() => {
        throw error;
      });
    }
  }
}

// The resolve function of the promise `new Promise(captureResolve)` just made: an executor
// that closes over nothing, so none is made per statement.
let resolveSend: ((send: unknown) => void) | undefined;

function captureResolve(resolve: (send: never) => void): void {
  resolveSend = resolve as (send: unknown) => void;
}

/** The reaction to a {@link NamedSend}: its continuation, or a resend after a failed preparation. */
function finishSend<Row, T>(send: NamedSend<Row, T>): T | Promise<T> {
  const { error, next } = send;
  if (!send.failed) return next.done(send.result!);
  // `failed` learns from the error (a new name, preparing off) whether or not it is resent.
  if (!send.threw && send.prepared.failed(send.sql, send.name, error) && send.retry) {
    // Unnamed, through `query` (the client has no `queryInto`): a client that throws
    // instead of rejecting still fails the statement through `next`.
    return queryInto(send.client as unknown as Queryable, send.sql, send.values, next);
  }
  return next.failed(error);
}
