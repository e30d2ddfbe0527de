/**
 * Verification results (`<stateSchema>.verifications`): what `verify` found, kept for
 * the contract gate, status and the dashboard.
 */
import { parseJson, type Queryable, toDate } from '../../kernel/index.js';
import { DEFAULT_STATE_SCHEMA, existingStateTables, quoteStateSchema } from './state-schema.js';
import { ensureStateTables } from './state-tables.js';

/** The result of the latest verification of a migration. */
export interface VerificationRecord {
  readonly passed: boolean;
  /** When it finished (when its result was recorded). */
  readonly at: Date;
  /**
   * When it started, by the database's clock, before it read its first row: a write-path
   * change after that may have touched rows it had already passed, so it stands only
   * against changes before it. One recorded by a flagshift that didn't record starts
   * counts from its end less its duration.
   */
  readonly startedAt: Date;
  readonly checkedRows: number;
  readonly mismatchedRows: number;
  readonly missingRows: number;
  /** The fraction of rows checked when verification sampled; `undefined` when it checked every row. */
  readonly sample?: number | undefined;
  /** New columns contract makes `NOT NULL` that held NULL, with how many rows (none when absent). */
  readonly nullColumns?: readonly { readonly column: string; readonly rows: number }[];
}

/**
 * A verification's start: as recorded, or, for a row from before starts were recorded, its
 * end less its duration (measured from before its first chunk, so never later than the
 * real start), or its end when neither is known.
 */
const START_SQL = `COALESCE((details->>'startedAt')::timestamptz,
            at - COALESCE((details->>'durationMs')::double precision, 0) * interval '1 millisecond')`;

/**
 * Whether `verification` is stale against the write-path change at `changed`: it started
 * at or before it, so rows it had passed may have been written differently since.
 */
export function verifiedBefore(verification: VerificationRecord, changed: Date | undefined): boolean {
  return changed !== undefined && verification.startedAt.getTime() <= changed.getTime();
}

/** Stores a verification result (used by `verify`), and resolves when it was recorded. */
export async function recordVerification(
  db: Queryable,
  migration: string,
  result: Omit<VerificationRecord, 'at' | 'startedAt'> & {
    /** When it started reading rows; without it, the start counts as the moment it is recorded. */
    readonly startedAt?: Date;
    readonly sample?: number | undefined;
    readonly details?: object;
  },
  schema: string = DEFAULT_STATE_SCHEMA,
): Promise<Date> {
  await ensureStateTables(db, schema);
  // The start goes in `details` rather than a column of its own: existing installs need no
  // ALTER TABLE (nor its owner), and readers of older rows fall back as `startOf` says.
  const details = {
    ...(result.details ?? {}),
    ...(result.startedAt === undefined ? {} : { startedAt: result.startedAt.toISOString() }),
  };
  const inserted = await db.query<{ at: unknown }>(
    `INSERT INTO ${quoteStateSchema(schema)}.verifications
       (migration, passed, checked_rows, mismatched_rows, missing_rows, sample, details)
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING at`,
    [
      migration,
      result.passed,
      result.checkedRows,
      result.mismatchedRows,
      result.missingRows,
      result.sample ?? null,
      JSON.stringify(details),
    ],
  );
  return toDate(inserted.rows[0]?.at);
}

/**
 * The latest verification of `migration`, or `undefined` when it was never verified.
 * Like every read here, it never creates the state tables (a read-only replica can run it).
 */
export async function lastVerification(
  db: Queryable,
  migration: string,
  schema: string = DEFAULT_STATE_SCHEMA,
): Promise<VerificationRecord | undefined> {
  if (!(await existingStateTables(db, schema, ['verifications'])).has('verifications')) return undefined;
  const result = await db.query<{
    passed: boolean;
    at: unknown;
    checked_rows: unknown;
    mismatched_rows: unknown;
    missing_rows: unknown;
    sample: unknown;
    null_columns: unknown;
    started_at: unknown;
  }>(
    `SELECT passed, at, ${START_SQL} AS started_at, checked_rows, mismatched_rows, missing_rows, sample,
            details->'nullColumns' AS null_columns
       FROM ${quoteStateSchema(schema)}.verifications
      WHERE migration = $1 ORDER BY at DESC, id DESC LIMIT 1`,
    [migration],
  );
  const row = result.rows[0];
  if (row === undefined) return undefined;
  return {
    passed: row.passed,
    at: toDate(row.at),
    startedAt: toDate(row.started_at),
    checkedRows: Number(row.checked_rows),
    mismatchedRows: Number(row.mismatched_rows),
    missingRows: Number(row.missing_rows),
    sample: row.sample === null || row.sample === undefined ? undefined : Number(row.sample),
    ...nullColumnsOf(row.null_columns),
  };
}

/** The `nullColumns` a verification recorded in its details, when it found any. */
function nullColumnsOf(raw: unknown): Pick<VerificationRecord, 'nullColumns'> {
  const parsed = parseJson(raw);
  if (!Array.isArray(parsed) || parsed.length === 0) return {};
  return {
    nullColumns: parsed.map((entry: { column?: unknown; rows?: unknown }) => ({
      column: String(entry.column),
      rows: Number(entry.rows),
    })),
  };
}
