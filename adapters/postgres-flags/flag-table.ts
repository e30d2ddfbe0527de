/**
 * The flags table: where it is, how it is created, read and written. Every write notifies
 * the table's channel in the same transaction, so listeners hear of a change exactly when
 * it becomes visible, and never of one that rolled back.
 */
import { z } from 'zod';
import { ConfigurationError, type Queryable, ValidationError } from '../../src/index.js';
import { describeValue, identifierProblem, parseOptions } from '../../src/internal.js';

/** A flag value: any JSON value but a top-level `null` (remove the flag instead). */
export type FlagValue = string | number | boolean | readonly FlagJson[] | { readonly [key: string]: FlagJson };

/** A JSON value nested in a {@link FlagValue}; `null` is allowed there. */
export type FlagJson = null | string | number | boolean | readonly FlagJson[] | { readonly [key: string]: FlagJson };

/** Where the flags live. Shared by the provider and the write helpers. */
export interface FlagTableOptions {
  /**
   * Schema of the flags table; created when missing.
   * @default 'flagshift'
   */
  readonly schema?: string;
  /**
   * Name of the flags table; created when missing.
   * @default 'flags'
   */
  readonly table?: string;
  /**
   * The `LISTEN`/`NOTIFY` channel writes are announced on (at most 63 bytes). Writers and
   * providers of one table must agree on it; the default derives it from the table.
   * @default `${schema}.${table}`
   */
  readonly channel?: string;
}

/** A resolved {@link FlagTableOptions}. */
export interface FlagTable {
  readonly schema: string;
  readonly table: string;
  /** `"schema"."table"`, ready for SQL. */
  readonly quoted: string;
  /** `schema.table`, for messages. */
  readonly display: string;
  readonly channel: string;
}

/** One stored flag. */
export interface FlagRecord {
  readonly key: string;
  readonly value: FlagValue;
  readonly updatedAt: Date;
  /** Who wrote it: the `actor` of the write, else the database user. */
  readonly updatedBy: string | null;
}

/** Longest flag key accepted; a key is also a `NOTIFY` payload (at most 8000 bytes). */
export const MAX_FLAG_KEY_LENGTH = 500;

/** Where the flags table lives unless told otherwise: `flagshift.flags`. */
export const DEFAULT_FLAG_TABLE = Object.freeze({ schema: 'flagshift', table: 'flags' } as const);

const tableOptionsSchema = z.object({
  schema: z.string().optional(),
  table: z.string().optional(),
  channel: z.string().optional(),
});

/** Resolves and checks where the flags live. `what` names the caller in messages. */
export function resolveFlagTable(options: FlagTableOptions | undefined, what: string): FlagTable {
  const valid = parseOptions(what, tableOptionsSchema, options ?? {}, {
    schema: 'a string',
    table: 'a string',
    channel: 'a string',
  });
  const schema = valid.schema ?? DEFAULT_FLAG_TABLE.schema;
  const table = valid.table ?? DEFAULT_FLAG_TABLE.table;
  for (const [path, name] of [
    ['schema', schema],
    ['table', table],
  ] as const) {
    const problem = identifierProblem(name);
    if (problem !== undefined) {
      throw new ConfigurationError(`${what} option "${path}" ${JSON.stringify(name)} ${problem}`, { path });
    }
  }
  const channel = valid.channel ?? `${schema}.${table}`;
  if (channel.length === 0 || Buffer.byteLength(channel) > 63 || channel.includes('\0')) {
    throw new ConfigurationError(
      `${what} option "channel" ${JSON.stringify(channel)} must be 1-63 bytes without NUL${
        valid.channel === undefined ? '; the default is schema.table, too long here: give a channel' : ''
      }`,
      { path: 'channel' },
    );
  }
  return { schema, table, quoted: `"${schema}"."${table}"`, display: `${schema}.${table}`, channel };
}

/** `"channel"` for `LISTEN`: quoted, so case and dots survive. */
export function quotedChannel(table: FlagTable): string {
  return `"${table.channel.replaceAll('"', '""')}"`;
}

/** Checks a flag key; throws a {@link ValidationError} naming it. */
export function checkFlagKey(key: unknown): string {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_FLAG_KEY_LENGTH) {
    throw new ValidationError(
      `flag key must be a string of 1-${MAX_FLAG_KEY_LENGTH} characters, got ${describeValue(key)}`,
      { fields: ['key'] },
    );
  }
  return key;
}

const flagValueSchema: z.ZodType<FlagJson> = z.lazy(() =>
  z.union([
    z.null(),
    z.string(),
    z.number().refine(Number.isFinite, 'must be finite'),
    z.boolean(),
    z.array(flagValueSchema),
    z.record(z.string(), flagValueSchema),
  ]),
);

/** Checks a flag value is JSON (and not `null`); throws a {@link ValidationError} naming the key. */
export function checkFlagValue(key: string, value: unknown): FlagValue {
  const parsed = flagValueSchema.safeParse(value);
  if (value === null || value === undefined || !parsed.success) {
    throw new ValidationError(
      `value of flag "${key}" must be a JSON string, number, boolean, array or object, got ${describeValue(value)}`,
      { fields: ['value'] },
    );
  }
  return value as FlagValue;
}

/** PostgreSQL reports a lost creation race as a duplicate in the catalog. */
function isDuplicate(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === '23505' || code === '42P07' || code === '42P06';
}

/** Whether the flags table exists (a look that never creates it). */
export async function flagTableExists(db: Queryable, table: FlagTable): Promise<boolean> {
  const { rows } = await db.query<{ found: string | null }>('SELECT to_regclass($1)::text AS found', [table.quoted]);
  return rows[0]?.found != null;
}

/**
 * Creates the schema and table when missing. Safe to run from several processes at once:
 * the loser of a creation race finds the winner's table on its next look.
 */
export async function ensureFlagTable(db: Queryable, table: FlagTable): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    // Checked first so a role without CREATE can use a table an administrator made.
    if (await flagTableExists(db, table)) return;
    try {
      await db.query(`CREATE SCHEMA IF NOT EXISTS "${table.schema}"`);
      await db.query(
        `CREATE TABLE IF NOT EXISTS ${table.quoted} (
  key text PRIMARY KEY,
  value jsonb NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  updated_by text
)`,
      );
      return;
    } catch (error) {
      if (!isDuplicate(error) || attempt >= 3) throw error;
    }
  }
}

interface FlagRow {
  key: string;
  value: unknown;
  updated_at: Date | string;
  updated_by: string | null;
}

function toRecord(row: FlagRow): FlagRecord {
  return {
    key: row.key,
    value: row.value as FlagValue,
    updatedAt: row.updated_at instanceof Date ? row.updated_at : new Date(row.updated_at),
    updatedBy: row.updated_by,
  };
}

/** Every flag, by key. */
export async function readFlagTable(db: Queryable, table: FlagTable): Promise<Map<string, FlagRecord>> {
  const { rows } = await db.query<FlagRow>(
    `SELECT key, value, updated_at, updated_by FROM ${table.quoted} ORDER BY key`,
  );
  return new Map(rows.map((row) => [row.key, toRecord(row)]));
}

/** The flags named by `keys` (missing ones absent), optionally locked until the transaction ends. */
export async function readFlags(
  db: Queryable,
  table: FlagTable,
  keys: readonly string[],
  lock = false,
): Promise<Map<string, FlagRecord>> {
  const found = new Map<string, FlagRecord>();
  // One key per statement: no array parameters, which not every driver serializes alike.
  for (const key of keys) {
    const { rows } = await db.query<FlagRow>(
      `SELECT key, value, updated_at, updated_by FROM ${table.quoted} WHERE key = $1${lock ? ' FOR UPDATE' : ''}`,
      [key],
    );
    if (rows[0] !== undefined) found.set(key, toRecord(rows[0]));
  }
  return found;
}

/** A change to one flag: a new value, or `undefined` to remove it. */
export interface FlagChange {
  readonly key: string;
  readonly value: FlagValue | undefined;
}

/**
 * Applies `changes` and notifies the channel once per key, inside the caller's transaction
 * `tx`: the notifications are delivered when, and only if, it commits.
 */
export async function writeFlags(
  tx: Queryable,
  table: FlagTable,
  changes: readonly FlagChange[],
  actor: string | undefined,
): Promise<void> {
  for (const { key, value } of changes) {
    if (value === undefined) {
      await tx.query(`DELETE FROM ${table.quoted} WHERE key = $1`, [key]);
    } else {
      await tx.query(
        `INSERT INTO ${table.quoted} AS f (key, value, updated_at, updated_by)
VALUES ($1, $2::jsonb, now(), COALESCE($3, current_user))
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by`,
        [key, JSON.stringify(value), actor ?? null],
      );
    }
    await tx.query('SELECT pg_notify($1, $2)', [table.channel, key]);
  }
}
