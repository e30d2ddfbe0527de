/**
 * Comparison of one entity's logical values as read from the old side and the new side,
 * and of whole result sets. Runs on the hot path of every sampled shadow read, so the
 * equal case (by far the common one) compares primitives first and allocates nothing.
 */
import { bytesOf, canonicalize, redactValue } from './redact.js';

/** How one logical field differs between old and new. */
export type DiffKind = 'missing-old' | 'missing-new' | 'type' | 'value';

/** One field's difference. `old` and `new` are redacted (`sha256:...`) unless raw values were enabled. */
export interface FieldDiff {
  readonly field: string;
  readonly kind: DiffKind;
  readonly old: unknown;
  readonly new: unknown;
}

/**
 * How a migration compares old and new values. Every field is optional; without options
 * values are compared by `deepEqual`, and `null` and `undefined` count as equal.
 */
export interface CompareOptions {
  /**
   * Decides whether the (normalized) old and new values of `field` are equal, in place of
   * `deepEqual`. Return `undefined` to fall back to the default for this field, so
   * one comparator can special-case a few fields. Called for every compared field of an
   * entity present on both sides, including when a value is `null` or `undefined`.
   * @default deep structural equality, with `null` equal to `undefined`
   */
  readonly comparator?: (field: string, oldValue: unknown, newValue: unknown) => boolean | undefined;
  /**
   * Applied to each side's value of each field before comparing (trim, lowercase, round,
   * map `''` to `null`...). Diffs still report the values as read, so a sample shows what
   * is stored.
   * @default identity
   */
  readonly normalize?: (field: string, value: unknown) => unknown;
  /**
   * Fields never compared, or a predicate called for each difference found (with the
   * normalized values) that returns `true` to drop it. The predicate is not consulted for
   * an entity missing on one side: a missing entity is always reported.
   * @default nothing ignored
   */
  readonly ignore?: readonly string[] | ((field: string, oldValue: unknown, newValue: unknown) => boolean);
}

type Entity = Readonly<Record<string, unknown>>;

const NO_DIFFS: readonly FieldDiff[] = Object.freeze([]);

/**
 * Compares the `fields` of one entity as read from the old side and the new side.
 *
 * Returns one {@link FieldDiff} per differing field, in `fields` order, and the same
 * frozen empty array when nothing differs. Kinds:
 * - `missing-old` / `missing-new`: the entity is absent (`undefined`) on that side (one
 *   diff per field), or the field is `null`/`undefined` on that side only;
 * - `type`: the values are of different runtime kinds (number vs string, number vs
 *   bigint, `Date` vs string, array vs object, ...); the core normalizes driver types
 *   first, so a number and a numeric string really are different types here;
 * - `value`: same kind, different value.
 *
 * Unless `raw` is true, the `old` and `new` of each diff are {@link redactValue | redacted};
 * `null` and `undefined` are never hashed, since absence is no secret and the kind says it
 * anyway. Exceptions thrown by the option callbacks propagate to the caller.
 *
 * @example
 * ```ts
 * diffEntities(['name'], { name: 'Ada ' }, { name: 'Ada' }, { normalize: (_f, v) => (typeof v === 'string' ? v.trim() : v) }, false);
 * // => []
 * ```
 */
export function diffEntities(
  fields: readonly string[],
  oldEntity: Entity | undefined,
  newEntity: Entity | undefined,
  options: CompareOptions | undefined,
  raw: boolean,
): readonly FieldDiff[] {
  if (oldEntity === undefined || newEntity === undefined) {
    if (oldEntity === newEntity) return NO_DIFFS;
    return missingEntity(fields, oldEntity, newEntity, options, raw);
  }
  const normalize = options?.normalize;
  const comparator = options?.comparator;
  const ignore = options?.ignore;
  const ignoredFields = typeof ignore === 'function' ? undefined : ignore;
  let diffs: FieldDiff[] | undefined;

  for (let i = 0; i < fields.length; i++) {
    const field = fields[i]!;
    if (ignoredFields?.includes(field)) continue;
    const oldRead = read(oldEntity, field);
    const newRead = read(newEntity, field);
    const oldValue = normalize === undefined ? oldRead : normalize(field, oldRead);
    const newValue = normalize === undefined ? newRead : normalize(field, newRead);
    let equal = comparator?.(field, oldValue, newValue);
    if (equal === undefined) equal = oldValue == null ? newValue == null : deepEqual(oldValue, newValue);
    if (equal) continue;
    if (typeof ignore === 'function' && ignore(field, oldValue, newValue)) continue;
    diffs ??= [];
    diffs.push({
      field,
      kind: diffKind(oldValue, newValue),
      old: reported(oldRead, raw),
      new: reported(newRead, raw),
    });
  }
  return diffs ?? NO_DIFFS;
}

function missingEntity(
  fields: readonly string[],
  oldEntity: Entity | undefined,
  newEntity: Entity | undefined,
  options: CompareOptions | undefined,
  raw: boolean,
): readonly FieldDiff[] {
  const ignore = options?.ignore;
  const kind = oldEntity === undefined ? 'missing-old' : 'missing-new';
  const diffs: FieldDiff[] = [];
  for (const field of fields) {
    if (Array.isArray(ignore) && ignore.includes(field)) continue;
    diffs.push({
      field,
      kind,
      old: oldEntity === undefined ? undefined : reported(read(oldEntity, field), raw),
      new: newEntity === undefined ? undefined : reported(read(newEntity, field), raw),
    });
  }
  return diffs;
}

// Own properties only: a logical field named `constructor` must not read Object's. Every
// inherited property of a plain object is a function or an object, so primitives (the
// common case) skip the own-property check.
function read(entity: Entity, field: string): unknown {
  const value = entity[field];
  if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return value;
  return Object.hasOwn(entity, field) ? value : undefined;
}

function reported(value: unknown, raw: boolean): unknown {
  return raw || value == null ? value : redactValue(value);
}

function diffKind(oldValue: unknown, newValue: unknown): FieldDiff['kind'] {
  if (oldValue == null && newValue != null) return 'missing-old';
  if (newValue == null && oldValue != null) return 'missing-new';
  return valueKind(oldValue) === valueKind(newValue) ? 'value' : 'type';
}

/** The runtime kind of a value, as the `type` diff kind and {@link deepEqual} see it. */
export type ValueKind =
  | 'undefined'
  | 'null'
  | 'boolean'
  | 'number'
  | 'bigint'
  | 'string'
  | 'symbol'
  | 'function'
  | 'date'
  | 'bytes'
  | 'array'
  | 'map'
  | 'set'
  | 'object';

/** The {@link ValueKind} of `value`. `Buffer` and every typed array are `bytes`. */
export function valueKind(value: unknown): ValueKind {
  const type = typeof value;
  if (type !== 'object') return type;
  if (value === null) return 'null';
  return objectKind(value as object);
}

function objectKind(value: object): ValueKind {
  if (Array.isArray(value)) return 'array';
  if (value instanceof Date) return 'date';
  if (value instanceof Uint8Array || ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return 'bytes';
  if (value instanceof Map) return 'map';
  if (value instanceof Set) return 'set';
  return 'object';
}

/**
 * Deep structural equality, with the semantics of {@link canonicalize}: `NaN` equals
 * `NaN`, `-0` equals `0`, dates by instant, binary values by bytes, arrays by position,
 * objects by own enumerable keys in any order (an `undefined` property equals a missing
 * one), maps and sets by content. Primitives are compared first and without allocation.
 * Exported so a {@link CompareOptions.comparator} can delegate to it.
 */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) {
    if (typeof a === 'number') return typeof b === 'number' && Number.isNaN(a) && Number.isNaN(b);
    if (typeof a === 'symbol') return typeof b === 'symbol' && (a.description ?? '') === (b.description ?? '');
    return false;
  }
  return objectsEqual(a, b, 0);
}

/** Past this depth a structure may be cyclic; compare canonical forms, which detect cycles. */
const MAX_DEPTH = 100;

function objectsEqual(a: object, b: object, depth: number): boolean {
  if (a === b) return true;
  if (depth > MAX_DEPTH) return canonicalize(a) === canonicalize(b);
  const kind = objectKind(a);
  if (kind !== objectKind(b)) return false;
  switch (kind) {
    case 'array':
      return arraysEqual(a as unknown[], b as unknown[], depth);
    case 'date': {
      const x = (a as Date).getTime();
      const y = (b as Date).getTime();
      return x === y || (Number.isNaN(x) && Number.isNaN(y));
    }
    case 'bytes':
      return bytesEqual(bytesOf(a)!, bytesOf(b)!);
    case 'map':
    case 'set':
      return canonicalize(a) === canonicalize(b);
    default:
      return recordsEqual(a as Record<string, unknown>, b as Record<string, unknown>, depth);
  }
}

function valuesEqual(a: unknown, b: unknown, depth: number): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return deepEqual(a, b);
  return objectsEqual(a, b, depth + 1);
}

function arraysEqual(a: readonly unknown[], b: readonly unknown[], depth: number): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!valuesEqual(a[i], b[i], depth)) return false;
  return true;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

// for...in with an own check walks the keys without allocating Object.keys arrays.
function recordsEqual(a: Record<string, unknown>, b: Record<string, unknown>, depth: number): boolean {
  let defined = 0;
  for (const key in a) {
    if (!Object.hasOwn(a, key)) continue;
    const x = a[key];
    if (x === undefined) continue;
    defined++;
    if (!Object.hasOwn(b, key) || !valuesEqual(x, b[key], depth)) return false;
  }
  for (const key in b) {
    if (Object.hasOwn(b, key) && b[key] !== undefined) defined--;
  }
  return defined === 0;
}

/** The field diffs of one entity present in both result sets. */
export interface EntityDiff {
  /** The entity's key, redacted unless raw values were enabled. */
  readonly key: unknown;
  readonly diffs: readonly FieldDiff[];
}

/**
 * How two result sets of the same query differ, rows matched by key.
 *
 * Whether order matters depends on the query (a query without `ORDER BY` has no defined
 * order), so `orderDiffers` is reported separately and not folded into `matched`.
 */
export interface ResultSetDiff {
  /** No row is missing on either side and every common row's fields agree. Order is not considered. */
  readonly matched: boolean;
  /** Keys of rows returned by the new side only, in new order (redacted unless raw). */
  readonly missingOld: readonly unknown[];
  /** Keys of rows returned by the old side only, in old order (redacted unless raw). */
  readonly missingNew: readonly unknown[];
  /** Rows on both sides whose fields differ, in old order; rows that agree are left out. */
  readonly diffs: readonly EntityDiff[];
  /** Whether the rows present on both sides come in a different relative order. */
  readonly orderDiffers: boolean;
  /** Number of rows each side returned. */
  readonly oldCount: number;
  readonly newCount: number;
}

/**
 * Compares two result sets of the same logical query, pairing rows by `keyOf`: reports
 * keys present on one side only, the {@link diffEntities | field diffs} of each row present
 * on both, and whether the common rows come in a different order.
 *
 * When a key occurs several times on a side (a query without a unique key), the n-th
 * occurrence on one side is paired with the n-th on the other.
 *
 * @example
 * ```ts
 * const result = diffResultSets((row) => String(row.id), ['name'], [{ id: 1, name: 'a' }], [{ id: 1, name: 'a' }], undefined, false);
 * result.matched; // true
 * ```
 */
export function diffResultSets<Row extends Entity>(
  keyOf: (row: Row) => string,
  fields: readonly string[],
  oldRows: readonly Row[],
  newRows: readonly Row[],
  options: CompareOptions | undefined,
  raw: boolean,
): ResultSetDiff {
  const newIndex = indexByKey(keyOf, newRows);
  const oldKeys = new Set<string>();
  const missingNew: unknown[] = [];
  const diffs: EntityDiff[] = [];
  let orderDiffers = false;
  let lastNewPosition = -1;
  const seen = new Map<string, number>();

  for (const row of oldRows) {
    const key = keyOf(row);
    const slot = occurrence(seen, key);
    oldKeys.add(slot);
    const position = newIndex.get(slot);
    if (position === undefined) {
      missingNew.push(raw ? key : redactValue(key));
      continue;
    }
    if (position < lastNewPosition) orderDiffers = true;
    lastNewPosition = position;
    const rowDiffs = diffEntities(fields, row, newRows[position], options, raw);
    if (rowDiffs.length > 0) diffs.push({ key: raw ? key : redactValue(key), diffs: rowDiffs });
  }

  const missingOld: unknown[] = [];
  seen.clear();
  for (const row of newRows) {
    const key = keyOf(row);
    if (!oldKeys.has(occurrence(seen, key))) missingOld.push(raw ? key : redactValue(key));
  }

  return {
    matched: missingOld.length === 0 && missingNew.length === 0 && diffs.length === 0,
    missingOld,
    missingNew,
    diffs,
    orderDiffers,
    oldCount: oldRows.length,
    newCount: newRows.length,
  };
}

function indexByKey<Row>(keyOf: (row: Row) => string, rows: readonly Row[]): Map<string, number> {
  const index = new Map<string, number>();
  const seen = new Map<string, number>();
  for (let i = 0; i < rows.length; i++) index.set(occurrence(seen, keyOf(rows[i]!)), i);
  return index;
}

// The first occurrence of a key is the key itself, so only duplicated keys pay for a new
// string. The suffix starts with NUL, which PostgreSQL text values cannot contain.
function occurrence(seen: Map<string, number>, key: string): string {
  const count = seen.get(key);
  if (count === undefined) {
    seen.set(key, 1);
    return key;
  }
  seen.set(key, count + 1);
  return `${key}\u0000#${count}`;
}

/** Field name used for a whole row in {@link resultSetFieldDiffs}. */
export const ROW_FIELD = '$row';
/** Field name used for the order of rows in {@link resultSetFieldDiffs}. */
export const ORDER_FIELD = '$order';

/**
 * Flattens a {@link ResultSetDiff} into the `diffs` of one mismatch sample (whose `key`
 * is `null` for a result set): a row missing on one side becomes
 * `{ field: '$row', kind: 'missing-old' | 'missing-new' }` carrying its key on the side
 * that has it; a field diff of a common row becomes `<key>.<field>`; with
 * `includeOrder`, a different order becomes `{ field: '$order', kind: 'value' }`.
 */
export function resultSetFieldDiffs(
  diff: ResultSetDiff,
  options?: { readonly includeOrder?: boolean },
): readonly FieldDiff[] {
  const out: FieldDiff[] = [];
  for (const key of diff.missingNew) out.push({ field: ROW_FIELD, kind: 'missing-new', old: key, new: undefined });
  for (const key of diff.missingOld) out.push({ field: ROW_FIELD, kind: 'missing-old', old: undefined, new: key });
  for (const entity of diff.diffs) {
    for (const d of entity.diffs) out.push({ ...d, field: `${String(entity.key)}.${d.field}` });
  }
  if (options?.includeOrder === true && diff.orderDiffers) {
    out.push({ field: ORDER_FIELD, kind: 'value', old: undefined, new: undefined });
  }
  return out;
}
