/**
 * Entity keys: the normalized key of an entity, parsing a caller's key input into one, and
 * the text forms of key values used as map ids and as flag targeting keys.
 */
import type { z } from 'zod';
import { previewValue, ValidationError } from '../kernel/index.js';
import type { BoundColumn } from '../model/index.js';
import type { RepositoryCore } from './core.js';
import type { Entity } from './types.js';
import { rejectUnpairedSurrogates } from './validation.js';

/** A normalized entity key: encoded column values, and its string forms. */
export interface Key {
  /** Encoded for bind parameters, in key field order. */
  readonly params: readonly unknown[];
  /** Map key (unambiguous). */
  readonly id: string;
  /** Targeting key for flags and bucketing: the values joined by `:`. */
  readonly targeting: string;
}

/** The normalized key of a caller's key input (a key value, or an object of the key fields); validated. */
export function validateKey(core: RepositoryCore, input: unknown): Key {
  // One key field given as a number (the common `get(42)`): no records or loops to build,
  // and no parse where the schema's definition shows it accepts the number as it is.
  // Anything else, and any value the schema refuses, takes the general path.
  if (typeof input === 'number' && core.table.keyFields.length === 1) {
    let value: unknown = input;
    if (core.keyNumberCheck?.(input) !== true) {
      const result = core.keySchema!.safeParse(input);
      value = result.success ? result.data : undefined;
    }
    if (typeof value === 'number') {
      const text = String(value);
      return { params: [core.keyColumns[0]!.codec.encode(value)], id: text, targeting: text };
    }
  }
  return parseKey(core, input);
}

/**
 * {@link validateKey}'s general path. Apart from it, so that the numeric key's way
 * allocates no scope for the closures here.
 */
function parseKey(core: RepositoryCore, input: unknown): Key {
  const { table } = core;
  const fields = table.keyFields;
  let values: unknown[];
  if (input !== null && typeof input === 'object' && !(input instanceof Date)) {
    const object = input as Record<string, unknown>;
    values = fields.map((field) => object[field]);
    const extra = Object.keys(object).filter((field) => !fields.includes(field));
    if (extra.length > 0) {
      throw new ValidationError(
        `key of ${table.table.display}: ${extra.map((f) => `"${f}"`).join(', ')} is not a key field`,
        {
          fields: extra,
        },
      );
    }
  } else if (fields.length === 1) {
    values = [input];
  } else {
    throw new ValidationError(
      `key of ${table.table.display}: expected an object with ${fields.map((f) => `"${f}"`).join(', ')}`,
      {
        fields,
      },
    );
  }
  const params: unknown[] = [];
  for (let index = 0; index < fields.length; index++) {
    const field = fields[index]!;
    const schema = table.entity.shape[field] as z.ZodType;
    const result = schema.safeParse(values[index]);
    if (!result.success || values[index] === undefined || values[index] === null) {
      const message = result.success ? 'a key field is required' : result.error.issues[0]!.message;
      throw new ValidationError(
        `key of ${table.table.display}: field "${field}": ${message} (got ${previewValue(values[index])})`,
        {
          fields: [field],
        },
      );
    }
    const column = table.columns[field]!;
    values[index] = canonicalKeyValue(column, result.data);
    params.push(column.codec.encode(values[index]));
  }
  // Only a string can hold a surrogate: a numeric key skips building the record.
  let strings = false;
  for (const value of values) if (typeof value === 'string') strings = true;
  if (strings) {
    rejectUnpairedSurrogates(
      Object.fromEntries(fields.map((field, index) => [field, values[index]])),
      `key of ${table.table.display}`,
    );
  }
  return makeKey(values, params);
}

const UUID_TYPE = /^(?:pg_catalog\.)?uuid$/i;
const UUID_TEXT = /^\{?([0-9a-f]{8})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{4})-?([0-9a-f]{12})\}?$/i;

/**
 * A key value in the form the database returns it. A uuid column accepts upper case,
 * braces and missing hyphens but returns the lower-case hyphenated form: without this,
 * one entity would have two ids (rows read back wouldn't meet the caller's key) and two
 * targeting keys (bucketing would depend on the spelling).
 */
function canonicalKeyValue(column: BoundColumn, value: unknown): unknown {
  if (typeof value !== 'string' || column.type === undefined || !UUID_TYPE.test(column.type)) return value;
  const parts = UUID_TEXT.exec(value);
  return parts === null ? value : parts.slice(1).join('-').toLowerCase();
}

/**
 * The text of one key value: the same for equal values in every process. `String` would
 * not do for a Date (second precision, the local time zone) or bytes.
 */
/** The text of one key value: as a flag targeting key and in map ids. */
export function keyText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
  return String(value);
}

/**
 * The map id of a key's values: one value's text, or the JSON array of several values'
 * texts (unambiguous where a joined string would not be). Keys from callers, from
 * entities and from rows all take their id here, so equal keys always meet.
 */
function keyId(values: readonly unknown[]): string {
  return values.length === 1 ? keyText(values[0]) : JSON.stringify(values.map(keyText));
}

export function makeKey(values: readonly unknown[], params: readonly unknown[]): Key {
  const id = keyId(values);
  return { params, id, targeting: values.length === 1 ? id : values.map(keyText).join(':') };
}

export function keyFromEntity(entity: Entity, core: RepositoryCore): Key {
  const values = core.table.keyFields.map((field) => canonicalKeyValue(core.table.columns[field]!, entity[field]));
  return makeKey(
    values,
    core.table.keyFields.map((field, index) => core.table.columns[field]!.codec.encode(values[index])),
  );
}

export function keyOfEntity(entity: Entity, keyFields: readonly string[]): string {
  return keyId(keyFields.map((field) => entity[field]));
}

/** The map id of a row's key, decoded the same way as the caller's key. */
export function rowKeyId(row: Entity, keyColumns: readonly BoundColumn[]): string {
  if (keyColumns.length === 1) {
    const column = keyColumns[0]!;
    return keyText(column.codec.decode(row[column.name]));
  }
  return keyId(keyColumns.map((column) => column.codec.decode(row[column.name])));
}
