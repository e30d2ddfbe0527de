/**
 * What the pg driver's own protocol messages need of node-postgres's JavaScript client: its
 * connection's message writers, and the shapes of the messages it hands a submitted query
 * (node-postgres's "submittable": `submit`, then a `handle*` call for each message until
 * ReadyForQuery). Shared by the named statement (`named-send.ts`) and the pipeline.
 */

/** node-postgres's protocol connection (`client.connection`): the messages the driver writes. */
export interface PgWire {
  parse(message: { text: string; name?: string }): void;
  bind(message: { statement?: string; values: (string | null)[]; binary?: boolean }): void;
  describe(message: { type: 'P'; name?: string }): void;
  execute(message: { portal?: string; rows?: number }): void;
  close(message: { type: 'S'; name: string }): void;
  sync(): void;
  sendCopyFail(message: string): void;
  /** The statements `pg` knows this connection has prepared, by name: their text. */
  readonly parsedStatements?: Record<string, string>;
  /** The statements sent to be prepared whose ParseComplete hasn't arrived, by name: their text. */
  readonly submittedNamedStatements?: Record<string, string>;
  readonly stream?: { cork?(): void; uncork?(): void };
}

/**
 * Writes the Bind of `values` to the prepared statement `name` (`''`: the unnamed one),
 * then Describe and Execute of its portal: one statement's execution, its rows described,
 * in binary when `binary` (as `pg` asks for them on a client in binary mode), else text.
 */
export function writeExecution(connection: PgWire, name: string, values: (string | null)[], binary = false): void {
  connection.bind({ statement: name, values, binary });
  connection.describe({ type: 'P' });
  connection.execute({});
}

/** node-postgres's type parsers: a `pg.Client` (`getTypeParser`), or the ones it hands a submitted query. */
export interface TypeParsers {
  getTypeParser(oid: number, format: 'text' | 'binary'): (value: string | Buffer) => unknown;
}

/** A column of a RowDescription: its name, and the parser of its values. */
export interface WireField {
  readonly name: string;
  readonly parse: (value: string | Buffer) => unknown;
  /** Values in binary, which `pg` hands its parser as a `Buffer` of the text it decoded. */
  readonly binary: boolean;
  /** A name an assignment would not make an own property of a row (`__proto__`). */
  readonly defined: boolean;
}

/** The columns a RowDescription announces, with the client's parsers for their types. */
export function describeFields(
  message: { readonly fields: readonly { name: string; dataTypeID: number; format?: string }[] },
  types: TypeParsers,
): WireField[] {
  const fields: WireField[] = new Array(message.fields.length);
  for (let index = 0; index < fields.length; index++) {
    const field = message.fields[index]!;
    const binary = field.format === 'binary';
    fields[index] = {
      name: field.name,
      parse: types.getTypeParser(field.dataTypeID, binary ? 'binary' : 'text'),
      binary,
      defined: field.name === '__proto__',
    };
  }
  return fields;
}

/**
 * One DataRow as node-postgres's own queries give it: an object of the columns by name,
 * each an own property (a later column of the same name wins), `null` for SQL NULL. A
 * parser's error is thrown.
 */
export function decodeRow(fields: readonly WireField[], values: readonly (string | null)[]): Record<string, unknown> {
  const row: Record<string, unknown> = {};
  for (let index = 0; index < fields.length; index++) {
    const field = fields[index]!;
    const raw = values[index];
    const value = raw === null || raw === undefined ? null : field.parse(field.binary ? Buffer.from(raw) : raw);
    if (field.defined)
      Object.defineProperty(row, field.name, { value, enumerable: true, writable: true, configurable: true });
    else row[field.name] = value;
  }
  return row;
}

/** The row count of a CommandComplete tag (`SELECT 1`, `INSERT 0 3`), `null` for one without (`BEGIN`). */
export function rowCountOf(tag: string | undefined): number | null {
  if (tag === undefined) return null;
  const count = /(\d+)$/.exec(tag);
  return count === null ? null : Number(count[1]);
}

/** Marks a value {@link wireText} can't carry. */
export const NOT_WIRE: unique symbol = Symbol('not a wire value');

/**
 * A parameter as the protocol carries it, written as node-postgres writes it (`String` of
 * a number, boolean or bigint; `null` for `null` and `undefined`). Other values (dates,
 * buffers, arrays, objects) are {@link NOT_WIRE}: node-postgres's own serialization applies.
 */
export function wireText(value: unknown): string | null | typeof NOT_WIRE {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case 'string':
      return value;
    case 'number':
    case 'bigint':
    case 'boolean':
      return String(value);
    default:
      return NOT_WIRE;
  }
}

/** Each of `values` as the protocol carries it, or `undefined` when one needs node-postgres's serialization. */
export function wireValues(values: readonly unknown[]): (string | null)[] | undefined {
  const wire: (string | null)[] = new Array(values.length);
  for (let index = 0; index < values.length; index++) {
    const text = wireText(values[index]);
    if (text === NOT_WIRE) return undefined;
    wire[index] = text;
  }
  return wire;
}
