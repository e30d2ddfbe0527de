/**
 * Field mappings: how one or more logical fields are stored in the old physical columns
 * and in the new ones. Logical fields correspond one to one to the new columns (the
 * entity has the shape the migration moves to); the old columns are derived from them by
 * `backward`, and they by `forward`. Each built-in kind also carries SQL forms of both
 * transforms, which the sync triggers, the backfill and verification run in the database.
 */
import { castType, type LogicalKind, WALL_CLOCK_TYPES } from './column-codec.js';

/** A physical column and, optionally, its SQL type. */
export interface ColumnRef {
  readonly column: string;
  /** SQL type, e.g. `bigint`, `jsonb`. Needed to create the column on expand and to cast parameters. */
  readonly type?: string;
}

/** The kinds of mapping flagshift ships helpers for. */
export type MappingKind = 'rename' | 'change-type' | 'split' | 'merge' | 'move' | 'custom';

/** An unbound mapping, as the helpers return it; {@link defineMigration} binds it to a table. */
export interface MappingSpec {
  readonly kind: MappingKind;
  /** Logical fields, one per new column, in the same order. */
  readonly fields: readonly string[];
  readonly old: readonly ColumnRef[];
  readonly new: readonly ColumnRef[];
  /** For a cross-table move: the table that holds the new columns, keyed like the main table. */
  readonly newTable?: { readonly name: string; readonly key?: readonly string[] };
  /** Logical kind of each old column; `'field'` decodes each old column as its field. */
  readonly oldKinds: 'field' | readonly LogicalKind[];
  /** Old values to new (logical) values. Absent means identity. */
  readonly forward?: (old: readonly unknown[]) => unknown[];
  /** New (logical) values to old values. Absent means identity. */
  readonly backward?: (values: readonly unknown[]) => unknown[];
  /**
   * SQL forms: `forward[i]` computes new column i from the old columns, `backward[j]` old
   * column j from the new ones. Columns are referenced as `{column_name}`.
   */
  readonly sql?: { readonly forward: readonly string[]; readonly backward: readonly string[] };
  /** `split` and `merge`: the text between the parts, checked by {@link defineMigration}. */
  readonly separator?: string;
}

function columnRef(value: string | ColumnRef): ColumnRef {
  return typeof value === 'string' ? { column: value } : value;
}

function withType(ref: ColumnRef, type: string | undefined): ColumnRef {
  return ref.type !== undefined || type === undefined ? ref : { column: ref.column, type };
}

/** Options of {@link rename}. */
export interface RenameOptions {
  /** Logical field. */
  readonly field: string;
  /** Old column. */
  readonly from: string;
  /** New column. */
  readonly to: string;
  /** SQL type of both columns; needed by `expand` to create the new one. @default unknown */
  readonly type?: string;
}

/**
 * Renames a column: the field moves from `from` to `to`, values unchanged.
 *
 * @example
 * ```ts
 * rename({ field: 'username', from: 'user_name', to: 'username', type: 'text' })
 * ```
 */
export function rename(options: RenameOptions): MappingSpec {
  return {
    kind: 'rename',
    fields: [options.field],
    old: [withType({ column: options.from }, options.type)],
    new: [withType({ column: options.to }, options.type)],
    oldKinds: 'field',
    sql: { forward: [`{${options.from}}`], backward: [`{${options.to}}`] },
  };
}

/** Options of {@link changeType}. */
export interface ChangeTypeOptions {
  readonly field: string;
  /** Old column and its type, e.g. `{ column: 'visits', type: 'integer' }`. */
  readonly from: ColumnRef & { readonly type: string };
  /** New column and its type, e.g. `{ column: 'visits_big', type: 'bigint' }`. */
  readonly to: ColumnRef & { readonly type: string };
  /** SQL computing the new column from `{old}`. @default a cast, `{old}::newtype` */
  readonly forwardSql?: string;
  /** SQL computing the old column from `{new}`. @default a cast, `{new}::oldtype` */
  readonly backwardSql?: string;
}

/**
 * Changes a column's type through a new column: `int` to `bigint`, `text` to `jsonb`,
 * `numeric` to `bigint`. The logical value keeps the kind of the entity field; each side
 * is converted by its column's type (a `text` column holding JSON is parsed).
 *
 * @example
 * ```ts
 * changeType({ field: 'visits', from: { column: 'visits', type: 'integer' }, to: { column: 'visits_big', type: 'bigint' } })
 * ```
 */
export function changeType(options: ChangeTypeOptions): MappingSpec {
  const { from, to } = options;
  return {
    kind: 'change-type',
    fields: [options.field],
    old: [from],
    new: [to],
    oldKinds: 'field',
    sql: {
      forward: [options.forwardSql ?? convertSql(`{${from.column}}`, from.type, to.type)],
      backward: [options.backwardSql ?? convertSql(`{${to.column}}`, to.type, from.type)],
    },
  };
}

const INSTANT = /^(timestamptz\s*(\(\s*\d+\s*\))?|timestamp\s*(\(\s*\d+\s*\))?\s+with\s+time\s+zone)$/i;

/**
 * `expression` of type `from` as type `to`. Without a length: a value too long for the new
 * column is an error, not truncated. Between `timestamp` and `timestamptz` the wall clock
 * is UTC's, as the SDK writes it, not the database session's `TimeZone`.
 */
function convertSql(expression: string, from: string, to: string): string {
  const between = (a: RegExp, b: RegExp) => a.test(from.trim()) && b.test(to.trim());
  if (between(WALL_CLOCK_TYPES, INSTANT) || between(INSTANT, WALL_CLOCK_TYPES)) {
    return `((${expression}) AT TIME ZONE 'UTC')::${castType(to)}`;
  }
  return `(${expression})::${castType(to)}`;
}

/** Options of {@link split}. */
export interface SplitOptions {
  /** The old column holding the combined value. */
  readonly from: string | ColumnRef;
  /** Logical field to new column, in order: `{ firstName: 'first_name', lastName: 'last_name' }`. */
  readonly into: Readonly<Record<string, string | ColumnRef>>;
  /** Separator between the parts; not empty, or the parts could not be told apart. @default ' ' */
  readonly separator?: string;
}

/**
 * Splits one text column into several at the first separators: `name` into
 * `first_name` and `last_name`. The last part takes the rest of the text; a part that
 * is absent is `null`. Joining puts the separator only between present parts, so every
 * text survives the round trip.
 *
 * @example
 * ```ts
 * split({ from: 'name', into: { firstName: 'first_name', lastName: 'last_name' } })
 * ```
 */
export function split(options: SplitOptions): MappingSpec {
  const separator = options.separator ?? ' ';
  const from = withType(columnRef(options.from), 'text');
  const entries = Object.entries(options.into);
  const to = entries.map(([, ref]) => withType(columnRef(ref), 'text'));
  const parts = to.length;
  return {
    kind: 'split',
    separator,
    fields: entries.map(([field]) => field),
    old: [from],
    new: to,
    oldKinds: ['string'],
    forward: (old) => splitText(old[0] as string | null, separator, parts),
    backward: (values) => [joinText(values as readonly (string | null)[], separator)],
    sql: {
      forward: to.map((_, index) => splitSql(`{${from.column}}`, separator, index, parts)),
      backward: [
        joinSql(
          to.map((ref) => `{${ref.column}}`),
          separator,
        ),
      ],
    },
  };
}

/** Options of {@link merge}. */
export interface MergeOptions {
  /** Old columns, in order. */
  readonly from: readonly (string | ColumnRef)[];
  /** The logical field and the new column that holds the joined value. */
  readonly into: { readonly field: string; readonly column: string; readonly type?: string };
  /** Separator between the parts; not empty, or the parts could not be told apart. @default ' ' */
  readonly separator?: string;
}

/**
 * Merges several text columns into one: `first_name` and `last_name` into `full_name`.
 * The inverse of {@link split}, with the same rules.
 *
 * @example
 * ```ts
 * merge({ from: ['first_name', 'last_name'], into: { field: 'fullName', column: 'full_name' } })
 * ```
 */
export function merge(options: MergeOptions): MappingSpec {
  const separator = options.separator ?? ' ';
  const from = options.from.map((ref) => withType(columnRef(ref), 'text'));
  const into = withType({ column: options.into.column }, options.into.type ?? 'text');
  return {
    kind: 'merge',
    separator,
    fields: [options.into.field],
    old: from,
    new: [into],
    oldKinds: from.map(() => 'string' as const),
    forward: (old) => [joinText(old as readonly (string | null)[], separator)],
    backward: (values) => splitText(values[0] as string | null, separator, from.length),
    sql: {
      forward: [
        joinSql(
          from.map((ref) => `{${ref.column}}`),
          separator,
        ),
      ],
      backward: from.map((_, index) => splitSql(`{${into.column}}`, separator, index, from.length)),
    },
  };
}

/** Options of {@link moveColumn}. */
export interface MoveColumnOptions {
  readonly field: string;
  /** Old column, in the main table. */
  readonly from: string;
  /** The other table, its column, and its key columns (matching the main table's key). */
  readonly to: {
    readonly table: string;
    readonly column: string;
    /** Key columns of the other table, in the main key's order. @default the main table's key columns */
    readonly key?: readonly string[];
  };
  /** SQL type of the column. @default unknown */
  readonly type?: string;
}

/**
 * Moves a column to another table that shares the key (`users.bio` to
 * `user_profiles.bio`). Dual writes to both tables run in one transaction.
 *
 * @example
 * ```ts
 * moveColumn({ field: 'bio', from: 'bio', to: { table: 'user_profiles', column: 'bio', key: ['user_id'] } })
 * ```
 */
export function moveColumn(options: MoveColumnOptions): MappingSpec {
  return {
    kind: 'move',
    fields: [options.field],
    old: [withType({ column: options.from }, options.type)],
    new: [withType({ column: options.to.column }, options.type)],
    newTable:
      options.to.key === undefined ? { name: options.to.table } : { name: options.to.table, key: options.to.key },
    oldKinds: 'field',
    sql: { forward: [`{${options.from}}`], backward: [`{${options.to.column}}`] },
  };
}

/** Options of {@link customMapping}. */
export interface CustomMappingOptions {
  /** Logical field to new column, in order. */
  readonly fields: Readonly<Record<string, string | ColumnRef>>;
  /** Old columns and the logical kind each is read as. */
  readonly old: readonly (ColumnRef & { readonly kind?: LogicalKind })[];
  /** Old values (in `old` order) to new values (in `fields` order). */
  readonly forward: (old: readonly unknown[]) => unknown[];
  /** New values to old values. */
  readonly backward: (values: readonly unknown[]) => unknown[];
  /** SQL forms of both transforms, for sync triggers, backfill and verification. */
  readonly sql?: {
    /** New column name to an SQL expression over `{old_column}` references. */
    readonly forward: Readonly<Record<string, string>>;
    /** Old column name to an SQL expression over `{new_column}` references. */
    readonly backward: Readonly<Record<string, string>>;
  };
}

/**
 * A mapping with your own transforms, for what the built-in kinds don't cover. Give SQL
 * forms that compute exactly what the functions compute, so sync triggers, backfill and
 * verification agree with the SDK (a test in your suite should check it, as flagshift's
 * own tests do for the built-in kinds).
 *
 * @example
 * ```ts
 * const codes = ['active', 'suspended', 'deleted'];
 * customMapping({
 *   fields: { status: { column: 'status_label', type: 'text' } },
 *   old: [{ column: 'status_code', type: 'smallint', kind: 'number' }],
 *   forward: ([code]) => [code == null ? null : codes[code as number]],
 *   backward: ([label]) => [label == null ? null : codes.indexOf(label as string)],
 *   sql: {
 *     forward: { status_label: "(ARRAY['active', 'suspended', 'deleted'])[{status_code} + 1]" },
 *     backward: { status_code: "array_position(ARRAY['active', 'suspended', 'deleted'], {status_label}) - 1" },
 *   },
 * })
 * ```
 */
export function customMapping(options: CustomMappingOptions): MappingSpec {
  const entries = Object.entries(options.fields);
  const to = entries.map(([, ref]) => columnRef(ref));
  const old = options.old.map((ref) =>
    ref.type === undefined ? { column: ref.column } : { column: ref.column, type: ref.type },
  );
  const base: MappingSpec = {
    kind: 'custom',
    fields: entries.map(([field]) => field),
    old,
    new: to,
    oldKinds: options.old.map((ref) => ref.kind ?? 'json'),
    forward: options.forward,
    backward: options.backward,
  };
  if (options.sql === undefined) return base;
  const sql = options.sql;
  return {
    ...base,
    sql: {
      forward: to.map((ref) => sql.forward[ref.column] ?? ''),
      backward: old.map((ref) => sql.backward[ref.column] ?? ''),
    },
  };
}

/** Splits at the first `parts - 1` separators; absent parts are `null`. */
export function splitText(value: string | null | undefined, separator: string, parts: number): (string | null)[] {
  const out: (string | null)[] = new Array(parts).fill(null);
  if (value == null) return out;
  let rest = value;
  for (let index = 0; index < parts - 1; index++) {
    const at = rest.indexOf(separator);
    if (at < 0) {
      out[index] = rest;
      return out;
    }
    out[index] = rest.slice(0, at);
    rest = rest.slice(at + separator.length);
  }
  out[parts - 1] = rest;
  return out;
}

/** Joins the parts up to the last present one; `null` when all are absent. */
export function joinText(values: readonly (string | null | undefined)[], separator: string): string | null {
  let last = values.length - 1;
  while (last >= 0 && values[last] == null) last--;
  if (last < 0) return null;
  let out = values[0] ?? '';
  for (let index = 1; index <= last; index++) out += separator + (values[index] ?? '');
  return out;
}

function literal(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

/** SQL form of {@link splitText} for part `index` of `parts`. */
function splitSql(column: string, separator: string, index: number, parts: number): string {
  const sep = literal(separator);
  // The text after the first `index` separators, or NULL when there are fewer.
  let rest = column;
  for (let step = 0; step < index; step++) {
    rest = `CASE WHEN strpos(${rest}, ${sep}) > 0 THEN substr(${rest}, strpos(${rest}, ${sep}) + length(${sep})) END`;
  }
  if (index === parts - 1) return rest;
  return `CASE WHEN strpos(${rest}, ${sep}) > 0 THEN substr(${rest}, 1, strpos(${rest}, ${sep}) - 1) ELSE ${rest} END`;
}

/** SQL form of {@link joinText}. */
function joinSql(columns: readonly string[], separator: string): string {
  const sep = literal(separator);
  const cases: string[] = [];
  for (let last = columns.length - 1; last >= 0; last--) {
    const present = `${columns[last]} IS NOT NULL`;
    const parts = columns.slice(0, last + 1).map((column) => `coalesce(${column}, '')`);
    cases.push(`WHEN ${present} THEN ${parts.join(` || ${sep} || `)}`);
  }
  return `CASE ${cases.join(' ')} END`;
}
