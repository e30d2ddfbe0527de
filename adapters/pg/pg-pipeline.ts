/**
 * Several statements in one round trip on node-postgres's JavaScript client: each bound to
 * its prepared statement and executed, with one Sync after the last, so PostgreSQL runs
 * them as one implicit transaction (the driver's `pipeline`).
 */
import type { QueryResult, Statement } from '../../src/index.js';
import {
  decodeRow,
  describeFields,
  NOT_WIRE,
  type PgWire,
  rowCountOf,
  type TypeParsers,
  type WireField,
  wireText,
  writeExecution,
} from './pg-wire.js';
import type { PreparedStatements } from './prepared-statements.js';

/** The JavaScript `pg.Client`, as a pipeline uses it. */
interface PgWireClient {
  readonly connection?: Partial<PgWire>;
  /** node-postgres's own pipeline mode (`pipeline: true`), which takes only its own queries. */
  readonly pipeline?: unknown;
  getTypeParser?: TypeParsers['getTypeParser'];
  query(submittable: PgPipeline): unknown;
}

/**
 * Sends `statements` on `client` in one round trip, each bound to its prepared statement
 * (prepared in the same round trip the first time) and executed, with one Sync after the
 * last: PostgreSQL runs them in one implicit transaction and commits it at the Sync, or
 * rolls it back at the first error, skipping the rest. A pipeline that failed because of
 * a statement's preparation committed nothing, and is sent once more. `undefined` when the
 * client is not node-postgres's JavaScript client, or runs in node-postgres's own
 * pipeline mode.
 */
export function sendPipeline(
  client: object,
  statements: readonly Statement[],
  prepared: PreparedStatements,
): Promise<QueryResult[]> | undefined {
  const wire = client as unknown as PgWireClient;
  const connection = wire.connection;
  if (
    wire.pipeline === true ||
    typeof connection?.parse !== 'function' ||
    typeof connection.bind !== 'function' ||
    typeof connection.describe !== 'function' ||
    typeof connection.execute !== 'function' ||
    typeof connection.close !== 'function' ||
    typeof connection.sync !== 'function' ||
    typeof wire.getTypeParser !== 'function'
  ) {
    return undefined;
  }
  const send = () =>
    new Promise<QueryResult[]>((resolve, reject) => {
      wire.query(
        new PgPipeline(statements, prepared, wire as TypeParsers, (error, results) =>
          error === null ? resolve(results!) : reject(error),
        ),
      );
    });
  // The second send in a reaction, in the caller's async context (see `sendNamed`).
  return send().then(undefined, (error: unknown) => {
    if (!preparationFailures.has(error as object)) throw error;
    return send();
  });
}

/** Whether `error` is the server's report that it ended the session (severity `FATAL` or `PANIC`). */
export function endsSession(error: unknown): boolean {
  const { severity } = (error ?? {}) as { severity?: unknown };
  return severity === 'FATAL' || severity === 'PANIC';
}

/** Errors of pipelines that failed because of a statement's preparation: sent again. */
const preparationFailures = new WeakSet<object>();

/** A pipeline's value as the protocol carries it: text, or `null`. */
function wireValue(value: unknown): string | null {
  const text = wireText(value);
  if (text === NOT_WIRE) {
    throw new TypeError(`a pipeline's parameters are strings, numbers, booleans, bigints or null, got ${typeof value}`);
  }
  return text;
}

/**
 * node-postgres's query contract (a "submittable": `submit`, then the `handle*` calls the
 * client makes for each message until ReadyForQuery) for several statements at once.
 */
class PgPipeline {
  readonly #statements: readonly Statement[];
  readonly #prepared: PreparedStatements;
  readonly #types: TypeParsers;
  readonly #results: QueryResult[] = [];
  /** Each statement's prepared name, `''` for one sent unnamed. */
  #names: string[] = [];
  /** The statements this pipeline prepares: by index, the ones `pg` learns of once they're parsed. */
  #parsing: number[] = [];
  #parsed: Record<string, string> | undefined;
  #fields: WireField[] = [];
  #rows: Record<string, unknown>[] = [];
  #failure: Error | undefined;
  /** Called once: with the error, or with every statement's result. */
  callback: (error: Error | null, results?: QueryResult[]) => void;

  constructor(
    statements: readonly Statement[],
    prepared: PreparedStatements,
    types: TypeParsers,
    callback: (error: Error | null, results?: QueryResult[]) => void,
  ) {
    this.#statements = statements;
    this.#prepared = prepared;
    this.#types = types;
    this.callback = callback;
  }

  submit(connection: PgWire): Error | null {
    let values: (string | null)[][];
    try {
      // Before anything is written: a value the protocol can't carry fails the pipeline unsent.
      values = this.#statements.map((statement) => (statement.params ?? []).map(wireValue));
    } catch (error) {
      return error as Error;
    }
    this.#parsed = connection.parsedStatements;
    const preparing = new Set<string>();
    connection.stream?.cork?.();
    try {
      for (const [index, { sql }] of this.#statements.entries()) {
        let name = this.#parsed === undefined ? undefined : this.#prepared.nameOf(sql);
        const known = name === undefined ? undefined : this.#parsed![name];
        if (name !== undefined && known === undefined && !preparing.has(name)) {
          // A statement of a pipeline that failed may be prepared without `pg` knowing:
          // closing a statement that doesn't exist is no error.
          connection.close({ type: 'S', name });
          connection.parse({ text: sql, name });
          preparing.add(name);
          this.#parsing.push(index);
        } else if (name === undefined || (known !== undefined && known !== sql)) {
          name = undefined;
          connection.parse({ text: sql });
        }
        this.#names.push(name ?? '');
        writeExecution(connection, name ?? '', values[index]!);
      }
      connection.sync();
    } finally {
      connection.stream?.uncork?.();
    }
    return null;
  }

  handleRowDescription(message: { fields: readonly { name: string; dataTypeID: number; format?: string }[] }): void {
    this.#fields = describeFields(message, this.#types);
  }

  handleDataRow(message: { fields: readonly (string | null)[] }): void {
    if (this.#failure !== undefined) return;
    try {
      this.#rows.push(decodeRow(this.#fields, message.fields));
    } catch (error) {
      this.#failure = error as Error;
    }
  }

  handleCommandComplete(message: { text?: string }): void {
    this.#results.push({ rows: this.#rows, rowCount: rowCountOf(message.text) });
    this.#rows = [];
    this.#fields = [];
  }

  handleEmptyQuery(): void {
    this.#results.push({ rows: [], rowCount: null });
  }

  handlePortalSuspended(): void {
    // Never: every statement is executed without a row limit.
  }

  handleCopyInResponse(connection: PgWire): void {
    connection.sendCopyFail('flagshift: COPY is not supported in a pipeline');
  }

  handleCopyData(): void {
    // Nothing: a pipeline never starts COPY TO.
  }

  handleError(error: Error): void {
    // The statements before the failing one were parsed; the failing one may have been.
    const failing = this.#results.length;
    this.#remember((index) => index < failing);
    const name = this.#names[failing];
    if (name !== undefined && name !== '' && this.#prepared.failed(this.#statements[failing]!.sql, name, error)) {
      preparationFailures.add(error);
    }
    // The server's error (or the lost connection) says what became of the transaction,
    // rather than a value of an earlier statement that failed to decode.
    this.callback(error);
  }

  handleReadyForQuery(): void {
    this.#remember(() => true);
    if (this.#failure !== undefined) this.callback(this.#failure);
    else this.callback(null, this.#results);
  }

  /** Tells `pg` which of the statements this pipeline prepared now exist on the connection. */
  #remember(parsed: (index: number) => boolean): void {
    for (const index of this.#parsing) {
      if (parsed(index)) this.#parsed![this.#names[index]!] = this.#statements[index]!.sql;
    }
  }
}
