/**
 * Converts between what a driver returns or accepts for a column and the logical value
 * an entity holds. Drivers disagree (`pg` returns `bigint` as a string, PGlite as a
 * number; a `text` column holding JSON comes back as a string), so each column gets a
 * codec, chosen once when the migration is defined, from its SQL type and the logical
 * kind of the entity field it serves.
 */
import type { z } from 'zod';

/** The runtime kind of a logical field, read off its zod schema. */
export type LogicalKind = 'string' | 'number' | 'bigint' | 'boolean' | 'date' | 'json';

interface ZodDefLike {
  readonly type?: string;
  readonly innerType?: unknown;
  readonly in?: unknown;
  readonly values?: readonly unknown[];
  readonly options?: readonly unknown[];
  readonly entries?: Readonly<Record<string, unknown>>;
}

function kindOfValue(value: unknown): LogicalKind {
  if (typeof value === 'string') return 'string';
  if (typeof value === 'number') return 'number';
  if (typeof value === 'bigint') return 'bigint';
  if (typeof value === 'boolean') return 'boolean';
  return 'json';
}

/** The one kind shared by every value, else json. */
function commonKind(kinds: readonly LogicalKind[]): LogicalKind {
  const first = kinds[0];
  return first !== undefined && kinds.every((kind) => kind === first) ? first : 'json';
}

function defOf(schema: unknown): ZodDefLike | undefined {
  const s = schema as { _zod?: { def?: ZodDefLike } } | undefined;
  return s?._zod?.def;
}

/** The logical kind of a zod schema, looking through optional, nullable, default and pipes. */
export function logicalKindOf(schema: z.ZodType): LogicalKind {
  let current: unknown = schema;
  for (let depth = 0; depth < 16; depth++) {
    const def = defOf(current);
    if (def === undefined) return 'json';
    switch (def.type) {
      case 'string':
      case 'template_literal':
        return 'string';
      case 'enum':
        // Native numeric enums list their numbers among the entries.
        return commonKind(
          Object.entries(def.entries ?? {})
            // A TypeScript numeric enum also maps its numbers back to its names.
            .filter(([key, value]) => !(typeof value === 'string' && /^-?\d+$/.test(key)))
            .map(([, value]) => kindOfValue(value)),
        );
      case 'union':
        return commonKind((def.options ?? []).map((option) => logicalKindOf(option as z.ZodType)));
      case 'number':
      case 'int':
        return 'number';
      case 'bigint':
        return 'bigint';
      case 'boolean':
        return 'boolean';
      case 'date':
        return 'date';
      case 'literal':
        return commonKind((def.values ?? []).map(kindOfValue));
      case 'optional':
      case 'nullable':
      case 'default':
      case 'prefault':
      case 'readonly':
      case 'catch':
      case 'nonoptional':
        current = def.innerType;
        break;
      case 'pipe':
        current = def.in;
        break;
      default:
        return 'json';
    }
  }
  return 'json';
}

const TEXT_TYPES = /^(text|character varying|varchar|character|char|bpchar|name|citext)\b/i;
const JSON_TYPES = /^jsonb?$/i;

// `char`, `character` and `bit` without a length mean a length of one: they truncate too.
// (`pg_catalog.char` is the one-byte internal `"char"`, not `character(1)`: left alone.)
const LENGTH_LIMITED =
  /^(?:(?:pg_catalog\.)?(character\s+varying|varchar|bpchar|bit\s+varying|varbit)\s*\(\s*\d+\s*\)|(?:pg_catalog\.)?(bit)(?:\s*\(\s*\d+\s*\))?|(character|char)(?:\s*\(\s*\d+\s*\))?)(?=\s*(?:\[|$))/i;
const UNLIMITED: Readonly<Record<string, string>> = {
  'character varying': 'varchar',
  varchar: 'varchar',
  character: 'bpchar',
  char: 'bpchar',
  bpchar: 'bpchar',
  'bit varying': 'varbit',
  varbit: 'varbit',
  bit: 'varbit',
};

/**
 * The type a value for a column of type `type` is cast to (a parameter, a transform's SQL
 * form): `type` itself, but a character or bit string type without its length. An
 * explicit cast to `varchar(3)` truncates silently, while assigning a longer value to the
 * column raises 22001; with the length left to the column, the database rejects the value
 * and nothing is written, and a comparison sees the whole value.
 * (`char` and `bit` alone mean a length of one, hence `bpchar` and `varbit`.)
 */
export function castType(type: string): string {
  const match = LENGTH_LIMITED.exec(type);
  if (match === null) return type;
  const name = (match[1] ?? match[2] ?? match[3])!;
  return UNLIMITED[name.toLowerCase().replace(/\s+/g, ' ')]! + type.slice(match[0].length);
}

/** Whether `sqlType` is one of PostgreSQL's text types (`text`, `varchar(n)`, `char(n)`, ...). */
export function isTextType(sqlType: string): boolean {
  return TEXT_TYPES.test(sqlType.trim());
}

/**
 * The same bytes as a plain `Uint8Array`, so both drivers read alike: `pg` returns a
 * `Buffer`, PGlite a `Uint8Array`. A view, not a copy.
 */
function asBytes(raw: Uint8Array): Uint8Array {
  return raw.constructor === Uint8Array ? raw : new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
}

/** A bytea in PostgreSQL's hex output form (`\\x00ff`), from a driver that returns it as text. */
function hexBytes(text: string): Uint8Array | string {
  if (!/^\\x(?:[0-9a-fA-F]{2})*$/.test(text)) return text;
  const bytes = new Uint8Array((text.length - 2) / 2);
  for (let index = 0; index < bytes.length; index++) {
    bytes[index] = Number.parseInt(text.slice(2 + index * 2, 4 + index * 2), 16);
  }
  return bytes;
}

/** `timestamp` without time zone, with or without a precision. */
export const WALL_CLOCK_TYPES = /^timestamp\s*(\(\s*\d+\s*\))?(\s+without\s+time\s+zone)?$/i;

/**
 * A `timestamp` column holds a wall-clock time and no zone. flagshift writes a Date's
 * UTC wall clock (`toISOString()`), but `pg` and PGlite read the wall clock back as the
 * process's local time: under `TZ=Asia/Tokyo`, 12:00Z would come back as 03:00Z. Reading
 * the local fields back as UTC undoes that, so a Date round-trips in any time zone. The
 * one wall-clock hour a local spring-forward skips can't be told from the hour after it.
 */
function utcWallClock(local: Date): Date {
  // Where local time is UTC at that instant (always, under TZ=UTC) there is nothing to undo.
  if (local.getTimezoneOffset() === 0 || Number.isNaN(local.getTime())) return local;
  const utc = new Date(0);
  utc.setUTCFullYear(local.getFullYear(), local.getMonth(), local.getDate());
  utc.setUTCHours(local.getHours(), local.getMinutes(), local.getSeconds(), local.getMilliseconds());
  return utc;
}

/**
 * A `date` column holds a calendar day, written as the Date's UTC day. PGlite reads it
 * back as UTC midnight, `pg` as local midnight: the day the local fields name, at UTC
 * midnight, is the same on both and in any time zone.
 */
function utcMidnight(day: Date): Date {
  if (
    (day.getUTCHours() === 0 &&
      day.getUTCMinutes() === 0 &&
      day.getUTCSeconds() === 0 &&
      day.getUTCMilliseconds() === 0) ||
    Number.isNaN(day.getTime())
  ) {
    return day;
  }
  const utc = new Date(0);
  utc.setUTCFullYear(day.getFullYear(), day.getMonth(), day.getDate());
  return utc;
}

/** A timestamp in PostgreSQL's text form (`2024-06-01 12:00:00.5`), as ISO text in UTC. */
function wallClockText(text: string): string {
  return /^\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d(\.\d+)?)?$/.test(text) ? `${text.replace(' ', 'T')}Z` : text;
}

/** Reads and writes one physical column for one logical kind. */
export interface ColumnCodec {
  /** Driver value to logical value. `null` and `undefined` become `null`. */
  decode(raw: unknown): unknown;
  /** Logical value to a bind parameter. */
  encode(value: unknown): unknown;
  /** `::type` appended to the placeholder so the server parses the parameter as the column's type, or ''. */
  readonly cast: string;
}

/**
 * Whether a date written to a column of type `type` is cast with the column's length: a
 * `varchar(10)` holds the day of the ISO form ('2024-06-01'), as the cast has always cut
 * it, and 24 or more hold the whole form. Any other length would keep part of the time
 * of day, read back as local time: that is an error instead.
 */
function keepsDateLength(type: string): boolean {
  const length = /\(\s*(\d+)\s*\)/.exec(type);
  if (length === null) return false;
  const n = Number(length[1]);
  return n === 10 || n >= 24;
}

/**
 * Builds the codec for a column of SQL type `sqlType` (unknown when `undefined`: the
 * driver's value is trusted, only normalized) serving a field of kind `kind`.
 */
export function columnCodec(sqlType: string | undefined, kind: LogicalKind): ColumnCodec {
  const type = sqlType?.trim();
  const isText = type !== undefined && TEXT_TYPES.test(type);
  const isJson = type !== undefined && JSON_TYPES.test(type);
  // An array column takes a JavaScript array, which the drivers send as an array literal.
  const isArray = type?.endsWith('[]') ?? false;
  const isBytea = type !== undefined && /^bytea$/i.test(type);
  const cast = type === undefined ? '' : `::${kind === 'date' && keepsDateLength(type) ? type : castType(type)}`;
  switch (kind) {
    case 'number':
      return {
        cast,
        decode: (raw) => (raw == null ? null : typeof raw === 'number' ? raw : Number(raw)),
        encode: (value) => (value == null ? null : isText ? String(value) : value),
      };
    case 'bigint':
      return {
        cast,
        decode: (raw) => (raw == null ? null : typeof raw === 'bigint' ? raw : BigInt(raw as string | number)),
        encode: (value) => (value == null ? null : String(value)),
      };
    case 'string':
      return {
        cast,
        decode: (raw) =>
          raw == null ? null : typeof raw === 'string' ? raw : isJson ? JSON.stringify(raw) : String(raw),
        encode: (value) => (value == null ? null : isJson ? JSON.stringify(value) : value),
      };
    case 'boolean':
      return { cast, decode: (raw) => (raw == null ? null : raw), encode: (value) => (value == null ? null : value) };
    case 'date':
      if (type !== undefined && /^date$/i.test(type)) {
        return {
          cast,
          decode: (raw) =>
            raw == null ? null : raw instanceof Date ? utcMidnight(raw) : new Date(raw as string | number),
          encode: (value) => (value == null ? null : value instanceof Date ? value.toISOString() : value),
        };
      }
      if (type !== undefined && WALL_CLOCK_TYPES.test(type)) {
        return {
          cast,
          decode: (raw) =>
            raw == null
              ? null
              : raw instanceof Date
                ? utcWallClock(raw)
                : new Date(typeof raw === 'string' ? wallClockText(raw) : (raw as number)),
          // PostgreSQL ignores the `Z` when it reads the text as a timestamp without time zone.
          encode: (value) => (value == null ? null : value instanceof Date ? value.toISOString() : value),
        };
      }
      return {
        cast,
        decode: (raw) => (raw == null ? null : raw instanceof Date ? raw : new Date(raw as string)),
        encode: (value) => (value == null ? null : value instanceof Date ? value.toISOString() : value),
      };
    case 'json':
      return {
        cast,
        decode: (raw) =>
          raw == null
            ? null
            : raw instanceof Uint8Array
              ? asBytes(raw)
              : typeof raw === 'string'
                ? isText
                  ? JSON.parse(raw)
                  : isBytea
                    ? hexBytes(raw)
                    : raw
                : raw,
        // Bytes go to the driver as they are: both drivers send them as bytea, never as JSON.
        encode: (value) =>
          value == null ? null : isArray || value instanceof Uint8Array ? value : JSON.stringify(value),
      };
  }
}
