/**
 * Keyset pagination: the cursor of a page's last entity (its values of the sort fields and
 * the key, which breaks ties), and the condition that selects the rows after it. A page
 * starts after a row's values rather than at an offset, so rows written or deleted before
 * it don't shift the next page: no row is returned twice or skipped.
 */
import type { z } from 'zod';
import { previewValue, ValidationError } from '../kernel/index.js';
import type { BoundColumn } from '../model/index.js';
import type { RepositoryCore } from './core.js';
import type { Params } from './statements.js';
import type { Entity } from './types.js';

/** One sort column of a keyset: the SQL expression, its column, its direction and the cursor's value. */
export interface KeysetColumn {
  readonly sql: string;
  readonly column: BoundColumn;
  readonly direction: 'ASC' | 'DESC';
  readonly value: unknown;
  /** A key column: never NULL, so the condition needs no NULL branch (which would keep its index out of use). */
  readonly notNull?: boolean;
  /**
   * A timestamp: the column keeps microseconds, the cursor's `Date` milliseconds. The
   * condition compares with the cursor row's own value (see {@link afterCondition}).
   */
  readonly instant?: boolean;
}

/** Where a cursor row's exact values are: its table, and its key columns (the last of the keyset's). */
export interface CursorRow {
  /** The table, quoted. */
  readonly table: string;
  readonly keys: number;
}

/** The fields a cursor holds values of, in order: the sort fields, then the key fields. */
function cursorFields(core: RepositoryCore, orderBy: readonly { field: string }[]): string[] {
  return [...orderBy.map((order) => order.field), ...core.table.keyFields];
}

/** What a cursor says about the order it was made for: `field:ASC` per sort field. */
function orderSignature(orderBy: readonly { field: string; direction: string }[]): string[] {
  return orderBy.map((order) => `${order.field}:${order.direction}`);
}

/** The cursor of `entity`: its sort and key values, and the order they belong to, as URL-safe text. */
export function cursorOf(
  core: RepositoryCore,
  orderBy: readonly { field: string; direction: 'ASC' | 'DESC' }[],
  entity: Entity,
): string {
  const values = cursorFields(core, orderBy).map((field) => entity[field] ?? null);
  const json = JSON.stringify({ o: orderSignature(orderBy), v: values }, (_, value: unknown) =>
    typeof value === 'bigint'
      ? { $b: value.toString() }
      : value instanceof Uint8Array
        ? { $x: Buffer.from(value).toString('hex') }
        : value,
  );
  return Buffer.from(json, 'utf8').toString('base64url');
}

/**
 * The values of a caller's cursor, in {@link cursorFields} order, each checked against its
 * field's schema; a cursor of another order, or not of a page at all, is refused.
 */
export function parseCursor(
  core: RepositoryCore,
  orderBy: readonly { field: string; direction: 'ASC' | 'DESC' }[],
  cursor: unknown,
  what: string,
): unknown[] {
  const invalid = (why: string) => new ValidationError(`${what}: after: ${why} (got ${previewValue(cursor)})`);
  if (typeof cursor !== 'string') throw invalid('expected the cursor of a page, a string');
  let parsed: { o?: unknown; v?: unknown };
  try {
    // Values JSON has no form for come tagged: a bigint as `$b` (digits), bytes as `$x` (hex).
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'), (_, value: unknown) => {
      const tagged = value as { $b?: unknown; $x?: unknown } | null;
      if (tagged === null || typeof tagged !== 'object') return value;
      if (typeof tagged.$b === 'string') return BigInt(tagged.$b);
      if (typeof tagged.$x === 'string') return new Uint8Array(Buffer.from(tagged.$x, 'hex'));
      return value;
    }) as { o?: unknown; v?: unknown };
  } catch {
    throw invalid('not a cursor of a page');
  }
  const fields = cursorFields(core, orderBy);
  if (!Array.isArray(parsed?.v) || parsed.v.length !== fields.length || !Array.isArray(parsed.o)) {
    throw invalid('not a cursor of a page');
  }
  if (parsed.o.join(',') !== orderSignature(orderBy).join(',')) {
    throw invalid(`the cursor was made for the order ${parsed.o.join(', ') || '(key)'}, not this query's`);
  }
  return fields.map((field, index) => {
    const raw = parsed.v as unknown[];
    const value =
      core.table.fieldKinds[field] === 'date' && typeof raw[index] === 'string'
        ? new Date(raw[index] as string)
        : raw[index];
    if (value === null && !core.table.keyFields.includes(field)) return null;
    const result = (core.table.entity.shape[field] as z.ZodType).safeParse(value);
    if (!result.success) throw invalid(`value of "${field}": ${result.error.issues[0]!.message}`);
    return result.data;
  });
}

/**
 * The rows after the cursor's in the order of `columns` (the sort columns, then the key):
 * `(a > $1) OR (a = $1 AND b > $2) ...`. NULLs sort as PostgreSQL sorts them by default:
 * last ascending, first descending.
 */
export function afterCondition(columns: readonly KeysetColumn[], params: Params, row: CursorRow): string {
  const ors: string[] = [];
  const placeholders = new Map<KeysetColumn, string>();
  const keys = columns.slice(columns.length - row.keys);
  // The cursor's value of a column; for a timestamp, the cursor row's own value while it
  // still falls in the cursor's millisecond (a primary-key lookup, run once), else the
  // cursor's: rows sharing a millisecond neither repeat nor go missing.
  const cursorValue = (item: KeysetColumn): string => {
    const known = placeholders.get(item);
    if (known !== undefined) return known;
    const { column, value } = item;
    let placeholder = params.add(column.codec.encode(value), column.codec.cast);
    if (item.instant) {
      const match = keys.map((key) => `c.${key.column.quoted} = ${cursorValue(key)}`).join(' AND ');
      const own = `c.${column.quoted}`;
      placeholder = `coalesce((SELECT ${own} FROM ${row.table} c WHERE ${match} AND ${own} >= ${placeholder} AND ${own} < ${placeholder} + interval '1 millisecond'), ${placeholder})`;
    }
    placeholders.set(item, placeholder);
    return placeholder;
  };
  const same = (item: KeysetColumn) =>
    item.value === null ? `${item.sql} IS NULL` : `${item.sql} = ${cursorValue(item)}`;
  const beyond = (item: KeysetColumn): string | undefined => {
    const { sql, direction, value, notNull } = item;
    if (value === null) return direction === 'ASC' ? undefined : `${sql} IS NOT NULL`;
    const placeholder = cursorValue(item);
    if (direction === 'DESC') return `${sql} < ${placeholder}`;
    return notNull ? `${sql} > ${placeholder}` : `(${sql} > ${placeholder} OR ${sql} IS NULL)`;
  };
  for (let index = 0; index < columns.length; index++) {
    const strict = beyond(columns[index]!);
    if (strict === undefined) continue;
    ors.push([...columns.slice(0, index).map(same), strict].join(' AND '));
  }
  return ors.length === 0 ? 'FALSE' : `(${ors.map((part) => `(${part})`).join(' OR ')})`;
}
