/**
 * Identifier validation and quoting. Every table and column name flagshift puts into SQL
 * passes through here: it must match a conservative pattern (ASCII letters, digits,
 * underscore; at most 63 bytes, PostgreSQL's limit) and is always double-quoted, so a
 * hostile or mistyped name is rejected when the migration is defined, never executed.
 */
import { ConfigurationError, describeValue } from '../kernel/index.js';

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const MAX_IDENTIFIER_LENGTH = 63;

/** Why `name` is not an acceptable identifier, or `undefined` when it is. */
export function identifierProblem(name: unknown): string | undefined {
  if (typeof name !== 'string') return `expected a string, got ${describeValue(name)}`;
  if (name.length === 0) return 'is empty';
  if (name.length > MAX_IDENTIFIER_LENGTH) return `is ${name.length} characters long; PostgreSQL allows at most 63`;
  if (!IDENTIFIER.test(name)) {
    return 'may contain only ASCII letters, digits and underscores, and must not start with a digit';
  }
  return undefined;
}

/** Double-quotes a validated identifier. Throws a {@link ConfigurationError} when it is not valid. */
export function quoteIdentifier(name: string, what = 'identifier'): string {
  const problem = identifierProblem(name);
  if (problem !== undefined) throw new ConfigurationError(`${what} ${JSON.stringify(name)} ${problem}`);
  return `"${name}"`;
}

/** A table name, optionally schema-qualified. */
export interface QualifiedName {
  readonly schema: string | undefined;
  readonly name: string;
  /** `"schema"."name"` or `"name"`, ready for SQL. */
  readonly quoted: string;
  /** `schema.name` or `name`, for messages. */
  readonly display: string;
}

/** Parses and validates `table` or `schema.table`. */
export function parseQualifiedName(value: string, what = 'table name'): QualifiedName {
  const parts = value.split('.');
  if (parts.length > 2) {
    throw new ConfigurationError(`${what} ${JSON.stringify(value)} has more than one dot; use "schema.table"`);
  }
  for (const part of parts) {
    const problem = identifierProblem(part);
    if (problem !== undefined) {
      throw new ConfigurationError(`${what} ${JSON.stringify(value)}: part ${JSON.stringify(part)} ${problem}`);
    }
  }
  const schema = parts.length === 2 ? parts[0] : undefined;
  const name = parts.length === 2 ? parts[1]! : parts[0]!;
  return {
    schema,
    name,
    quoted: schema === undefined ? `"${name}"` : `"${schema}"."${name}"`,
    display: value,
  };
}

// Type names of more than one word are spelled out: a free sequence of words could carry
// a clause (`text or true`) into a cast.
const MULTI_WORD_TYPES = new Set([
  'bit varying',
  'character varying',
  'double precision',
  'time with time zone',
  'time without time zone',
  'timestamp with time zone',
  'timestamp without time zone',
]);
const SQL_TYPE =
  /^([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?|[A-Za-z ]+?)\s*(\(\s*\d+\s*(?:,\s*\d+\s*)?\))?\s*((?:\[\])*)$/;

/**
 * Why `type` is not an acceptable SQL type name, or `undefined`. Accepted: one (optionally
 * schema-qualified) word such as `bigint`, `jsonb` or a user-defined type, or one of the
 * standard multi-word names (`character varying`, `timestamp with time zone`, ...), each
 * with an optional `(precision, scale)` and `[]`.
 */
export function sqlTypeProblem(type: unknown): string | undefined {
  if (typeof type !== 'string') return `expected a string, got ${describeValue(type)}`;
  const match = type.length <= 63 ? SQL_TYPE.exec(type.trim()) : null;
  const name = match?.[1]?.trim().toLowerCase().replace(/\s+/g, ' ');
  if (name === undefined || (name.includes(' ') && !MULTI_WORD_TYPES.has(name))) {
    return 'is not a plain SQL type name (one word such as bigint or jsonb, or a standard name such as "character varying", with an optional (precision, scale) and [])';
  }
  return undefined;
}
