/**
 * The lifecycle's state in the database itself: an event log, verification results,
 * backfill checkpoints and the key ranges that backfill workers claim. Keeping it next to
 * the data (not in a file or a flag service) lets every process and every operator see
 * the same truth, and lets a batch and its checkpoint commit in one transaction.
 */
import { z } from 'zod';
import { ConfigurationError, previewValue, type Queryable } from '../../kernel/index.js';
import { identifierProblem } from '../../model/index.js';

/** Options every lifecycle step accepts. */
export interface LifecycleOptions {
  /**
   * Schema of flagshift's state tables (events, verifications, backfill checkpoints and
   * ranges). Created when missing.
   * @default 'flagshift'
   */
  readonly stateSchema?: string;
  /**
   * Called with each lifecycle event (a batch done, a retry, a verification result, ...).
   * Exceptions it throws are ignored: reporting never stops a migration step.
   * @default no listener
   */
  readonly onEvent?: (event: LifecycleEvent) => void;
}

/** One thing a lifecycle step did or saw, for logs and progress displays. */
export type LifecycleEvent = { type: string; migration: string; message: string; [k: string]: unknown };

/** What kind of step an entry of the event log records. */
export type LifecycleEventKind = 'expand' | 'contract' | 'backfill' | 'verify' | 'stage' | 'force';

/** The default schema of the state tables. */
export const DEFAULT_STATE_SCHEMA = 'flagshift';

const EVENT_KINDS = ['expand', 'contract', 'backfill', 'verify', 'stage', 'force'] as const;
/** Kinds that change how the application writes: a verification older than one of these proves nothing. */
const WRITE_PATH_KINDS = ['expand', 'contract', 'stage'] as const;

/** The zod schema of {@link LifecycleOptions}, for steps that extend it. */
export const lifecycleOptionsShape = {
  stateSchema: z
    .string()
    .refine((value) => identifierProblem(value) === undefined, 'must be a plain identifier (letters, digits, _)')
    .optional(),
  onEvent: z.function().optional(),
};

/** Validates `schema` (a state schema name) and returns it double-quoted. */
export function quoteStateSchema(schema: string = DEFAULT_STATE_SCHEMA): string {
  const problem = identifierProblem(schema);
  if (problem !== undefined) {
    throw new ConfigurationError(`option "stateSchema": ${JSON.stringify(schema)} ${problem}`, {
      path: 'stateSchema',
    });
  }
  return `"${schema}"`;
}

/** Calls `options.onEvent`, never letting a listener's failure reach the step. */
export function emitEvent(options: LifecycleOptions | undefined, event: LifecycleEvent): void {
  try {
    options?.onEvent?.(event);
  } catch {
    // A broken listener must not stop a backfill half-way.
  }
}

const TABLES = ['events', 'verifications', 'backfill_checkpoints', 'backfill_ranges'] as const;
/** Columns that tell flagshift's state tables from an application's tables of the same name. */
const REQUIRED_COLUMNS: Record<(typeof TABLES)[number], readonly string[]> = {
  events: ['migration', 'kind', 'details', 'at'],
  verifications: ['migration', 'passed', 'checked_rows', 'mismatched_rows', 'missing_rows'],
  backfill_checkpoints: ['migration', 'status', 'pass', 'upper_key', 'range_count'],
  backfill_ranges: ['migration', 'range_id', 'owner', 'lease_until', 'last_key'],
};

/** Whether `table` of the state schema exists. Reads never create the state tables. */
async function stateTableExists(db: Queryable, schema: string, table: (typeof TABLES)[number]): Promise<boolean> {
  const result = await db.query<{ present: boolean }>('SELECT to_regclass($1) IS NOT NULL AS present', [
    `${quoteStateSchema(schema)}.${table}`,
  ]);
  return result.rows[0]?.present === true;
}

/**
 * Creates the state schema and tables when missing. Idempotent, and safe when several
 * processes call it at once: the creation runs as one statement under a transaction-level
 * advisory lock, so two callers never race on `CREATE TABLE IF NOT EXISTS` (which can
 * fail with a unique violation on the catalog when two sessions create the same table).
 */
export async function ensureStateTables(db: Queryable, schema: string = DEFAULT_STATE_SCHEMA): Promise<void> {
  const s = quoteStateSchema(schema);
  const present = await db.query<{ name: string; columns: string[] }>(
    `SELECT c.relname AS name, array_agg(a.attname::text) AS columns
       FROM pg_catalog.pg_class c
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      WHERE n.nspname = $1 AND c.relname = ANY($2::text[])
      GROUP BY c.relname`,
    [schema, [...TABLES]],
  );
  // A state schema shared with the application may hold a table of the same name (an
  // `events` table is common): say so, rather than fail later on a missing column.
  for (const row of present.rows) {
    const columns = parseTextArray(row.columns);
    const lacking = REQUIRED_COLUMNS[row.name as (typeof TABLES)[number]].find((column) => !columns.includes(column));
    if (lacking !== undefined) {
      throw new ConfigurationError(
        `option "stateSchema": table "${schema}.${row.name}" exists but is not flagshift's (it has no column "${lacking}"); choose a schema of flagshift's own (the default is "${DEFAULT_STATE_SCHEMA}")`,
        { path: 'stateSchema' },
      );
    }
  }
  if (present.rows.length === TABLES.length) return;
  // One DO block is one statement, so it is one transaction even on a pool, and the xact
  // lock covers every CREATE in it.
  await db.query(`DO $flagshift$
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('flagshift.state-tables'), hashtext(${sqlLiteral(schema)}));
  CREATE SCHEMA IF NOT EXISTS ${s};
  CREATE TABLE IF NOT EXISTS ${s}.events (
    id bigserial PRIMARY KEY,
    migration text NOT NULL,
    kind text NOT NULL CHECK (kind IN (${EVENT_KINDS.map(sqlLiteral).join(', ')})),
    details jsonb NOT NULL DEFAULT '{}'::jsonb,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
  );
  CREATE INDEX IF NOT EXISTS events_migration_at ON ${s}.events (migration, at);
  CREATE TABLE IF NOT EXISTS ${s}.verifications (
    id bigserial PRIMARY KEY,
    migration text NOT NULL,
    passed boolean NOT NULL,
    checked_rows bigint NOT NULL,
    mismatched_rows bigint NOT NULL,
    missing_rows bigint NOT NULL,
    sample double precision,
    details jsonb NOT NULL DEFAULT '{}'::jsonb,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
  );
  CREATE INDEX IF NOT EXISTS verifications_migration_at ON ${s}.verifications (migration, at);
  CREATE TABLE IF NOT EXISTS ${s}.backfill_checkpoints (
    migration text PRIMARY KEY,
    status text NOT NULL CHECK (status IN ('running', 'done')),
    pass integer NOT NULL DEFAULT 1,
    upper_key jsonb,
    range_count integer NOT NULL,
    total_estimate bigint NOT NULL,
    rows_done bigint NOT NULL DEFAULT 0,
    last_key jsonb,
    started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at timestamptz
  );
  CREATE TABLE IF NOT EXISTS ${s}.backfill_ranges (
    migration text NOT NULL REFERENCES ${s}.backfill_checkpoints (migration) ON DELETE CASCADE,
    range_id integer NOT NULL,
    lower_key jsonb,
    upper_key jsonb NOT NULL,
    last_key jsonb,
    status text NOT NULL CHECK (status IN ('pending', 'running', 'done')),
    owner text,
    lease_until timestamptz,
    rows_done bigint NOT NULL DEFAULT 0,
    rows_changed bigint NOT NULL DEFAULT 0,
    batches integer NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (migration, range_id)
  );
END
$flagshift$`);
}

/** Appends an entry to the event log (creating the state tables when missing). */
export async function recordEvent(
  db: Queryable,
  migration: string,
  kind: LifecycleEventKind,
  details: Record<string, unknown>,
  schema: string = DEFAULT_STATE_SCHEMA,
): Promise<void> {
  if (!(EVENT_KINDS as readonly string[]).includes(kind)) {
    throw new ConfigurationError(`event kind ${JSON.stringify(kind)} is not one of ${EVENT_KINDS.join(', ')}`);
  }
  await ensureStateTables(db, schema);
  await db.query(`INSERT INTO ${quoteStateSchema(schema)}.events (migration, kind, details) VALUES ($1, $2, $3)`, [
    migration,
    kind,
    JSON.stringify(details),
  ]);
}

/** One entry of the event log. */
export interface RecordedEvent {
  readonly id: number;
  readonly migration: string;
  readonly kind: LifecycleEventKind;
  readonly details: Record<string, unknown>;
  readonly at: Date;
}

/** The event log of `migration`, oldest first (at most `limit` latest entries); empty when there are no state tables. */
export async function listEvents(
  db: Queryable,
  migration: string,
  schema: string = DEFAULT_STATE_SCHEMA,
  limit = 1000,
): Promise<RecordedEvent[]> {
  if (!(await stateTableExists(db, schema, 'events'))) return [];
  const result = await db.query<{
    id: string;
    migration: string;
    kind: LifecycleEventKind;
    details: unknown;
    at: unknown;
  }>(
    `SELECT * FROM (SELECT id, migration, kind, details, at FROM ${quoteStateSchema(schema)}.events
       WHERE migration = $1 ORDER BY id DESC LIMIT $2) e ORDER BY id`,
    [migration, limit],
  );
  return result.rows.map((row) => ({
    id: Number(row.id),
    migration: row.migration,
    kind: row.kind,
    details: parseJson(row.details) as Record<string, unknown>,
    at: toDate(row.at),
  }));
}

/**
 * Forgets `migration`'s backfill passes (their checkpoint and ranges): expand added new
 * columns, so whatever an earlier pass filled is gone and none counts as done. Returns
 * whether there was one.
 */
export async function forgetBackfill(
  db: Queryable,
  migration: string,
  schema: string = DEFAULT_STATE_SCHEMA,
): Promise<boolean> {
  if (!(await stateTableExists(db, schema, 'backfill_checkpoints'))) return false;
  const deleted = await db.query(`DELETE FROM ${quoteStateSchema(schema)}.backfill_checkpoints WHERE migration = $1`, [
    migration,
  ]);
  return (deleted.rowCount ?? 0) > 0;
}

/** The result of the latest verification of a migration. */
export interface VerificationRecord {
  readonly passed: boolean;
  readonly at: Date;
  readonly checkedRows: number;
  readonly mismatchedRows: number;
  readonly missingRows: number;
  /** The fraction of rows checked when verification sampled; `undefined` when it checked every row. */
  readonly sample?: number | undefined;
  /** New columns contract makes `NOT NULL` that held NULL, with how many rows (none when absent). */
  readonly nullColumns?: readonly { readonly column: string; readonly rows: number }[];
}

/** Stores a verification result (used by `verify`). */
export async function recordVerification(
  db: Queryable,
  migration: string,
  result: Omit<VerificationRecord, 'at'> & { readonly sample?: number | undefined; readonly details?: object },
  schema: string = DEFAULT_STATE_SCHEMA,
): Promise<Date> {
  await ensureStateTables(db, schema);
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
      JSON.stringify(result.details ?? {}),
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
  if (!(await stateTableExists(db, schema, 'verifications'))) return undefined;
  const result = await db.query<{
    passed: boolean;
    at: unknown;
    checked_rows: unknown;
    mismatched_rows: unknown;
    missing_rows: unknown;
    sample: unknown;
    null_columns: unknown;
  }>(
    `SELECT passed, at, checked_rows, mismatched_rows, missing_rows, sample, details->'nullColumns' AS null_columns
       FROM ${quoteStateSchema(schema)}.verifications
      WHERE migration = $1 ORDER BY at DESC, id DESC LIMIT 1`,
    [migration],
  );
  const row = result.rows[0];
  if (row === undefined) return undefined;
  return {
    passed: row.passed,
    at: toDate(row.at),
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

/**
 * When `migration`'s write path last changed (its latest expand, contract or stage
 * event), or `undefined` when it never did. A verification older than this proves
 * nothing about the data written since.
 */
export async function lastWritePathChange(
  db: Queryable,
  migration: string,
  schema: string = DEFAULT_STATE_SCHEMA,
): Promise<Date | undefined> {
  if (!(await stateTableExists(db, schema, 'events'))) return undefined;
  const result = await db.query<{ at: unknown }>(
    // A stage event that says it left the write path alone (a percentage change, or
    // shadow to live: both write old and new) doesn't invalidate a verification.
    `SELECT max(at) AS at FROM ${quoteStateSchema(schema)}.events
      WHERE migration = $1 AND kind = ANY($2::text[])
        AND (kind <> 'stage' OR details->>'writePathChanged' IS DISTINCT FROM 'false')`,
    [migration, [...WRITE_PATH_KINDS]],
  );
  const at = result.rows[0]?.at;
  return at === null || at === undefined ? undefined : toDate(at);
}

/** Where a migration's backfill stands, summed over its key ranges. */
export interface BackfillStatus {
  /** `running` until every range is done (a stopped or killed backfill stays `running`). */
  readonly status: 'running' | 'done';
  /** Passes started so far: a new run after a finished one starts pass + 1. */
  readonly pass: number;
  /** Rows scanned in this pass, by all workers. */
  readonly rowsDone: number;
  /** Rows whose new columns this pass changed. */
  readonly rowsChanged: number;
  /** Estimated rows up to the bound taken at the start of the pass. */
  readonly totalEstimate: number;
  readonly rangesDone: number;
  readonly rangeCount: number;
  /** Ranges claimed by a worker whose lease has not expired. */
  readonly activeWorkers: number;
  /** The key bound taken at start (key values as text), or `null` for an empty table. */
  readonly upperKey: readonly string[] | null;
  readonly startedAt: Date;
  readonly updatedAt: Date;
  readonly finishedAt: Date | undefined;
}

/** The backfill state of `migration`, or `undefined` when it never started one (or there are no state tables). */
export async function backfillStatus(
  db: Queryable,
  migration: string,
  schema: string = DEFAULT_STATE_SCHEMA,
): Promise<BackfillStatus | undefined> {
  if (!(await stateTableExists(db, schema, 'backfill_ranges'))) return undefined;
  const s = quoteStateSchema(schema);
  const result = await db.query<Record<string, unknown>>(
    `SELECT c.status, c.pass, c.total_estimate, c.range_count, c.upper_key, c.started_at, c.updated_at, c.finished_at,
            coalesce(sum(r.rows_done), 0)::bigint AS rows_done,
            coalesce(sum(r.rows_changed), 0)::bigint AS rows_changed,
            count(r.*) FILTER (WHERE r.status = 'done')::int AS ranges_done,
            count(DISTINCT r.owner) FILTER (WHERE r.status = 'running' AND r.lease_until > clock_timestamp())::int AS active,
            max(r.updated_at) AS ranges_updated_at
       FROM ${s}.backfill_checkpoints c LEFT JOIN ${s}.backfill_ranges r USING (migration)
      WHERE c.migration = $1
      GROUP BY c.migration`,
    [migration],
  );
  const row = result.rows[0];
  if (row === undefined) return undefined;
  const updated = toDate(row['updated_at']);
  const rangesUpdated = row['ranges_updated_at'] == null ? undefined : toDate(row['ranges_updated_at']);
  return {
    status: row['status'] as 'running' | 'done',
    pass: Number(row['pass']),
    rowsDone: Number(row['rows_done']),
    rowsChanged: Number(row['rows_changed']),
    totalEstimate: Number(row['total_estimate']),
    rangesDone: Number(row['ranges_done']),
    rangeCount: Number(row['range_count']),
    activeWorkers: Number(row['active']),
    upperKey: (parseJson(row['upper_key']) as string[] | null) ?? null,
    startedAt: toDate(row['started_at']),
    updatedAt: rangesUpdated !== undefined && rangesUpdated > updated ? rangesUpdated : updated,
    finishedAt: row['finished_at'] == null ? undefined : toDate(row['finished_at']),
  };
}

/** A single-quoted SQL string literal, for the few places (DO blocks) parameters can't go. */
function sqlLiteral(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

/** Drivers return jsonb parsed (pg) or as text in some setups; accept both. */
export function parseJson(value: unknown): unknown {
  if (typeof value === 'string') {
    try {
      return JSON.parse(value);
    } catch {
      return value;
    }
  }
  return value;
}

/** A text[] as pg (an array) or some drivers (`{a,b}`) return it. */
function parseTextArray(value: unknown): string[] {
  if (Array.isArray(value)) return value.map(String);
  if (typeof value === 'string')
    return value
      .replace(/^\{|\}$/g, '')
      .split(',')
      .map((part) => part.replace(/^"|"$/g, ''));
  return [];
}

/** Timestamps arrive as `Date` (pg, PGlite) or text; normalise to `Date`. */
export function toDate(value: unknown): Date {
  if (value instanceof Date) return value;
  return new Date(String(value));
}

/**
 * Validates `options` with `schema`, throwing a {@link ConfigurationError} that names the
 * step, the option and the offending value.
 */
export function parseStepOptions<T>(schema: z.ZodType<T>, options: unknown, label: string): T {
  const parsed = schema.safeParse(options ?? {});
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const path = issue.path.map(String).join('.');
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((key) => `"${key}"`).join(', ');
    throw new ConfigurationError(`${label}: unknown option${issue.keys.length > 1 ? 's' : ''} ${keys}`, {
      path: issue.keys[0] ?? path,
    });
  }
  if (issue.path.length === 0) throw new ConfigurationError(`${label}: options ${issue.message}`, { path });
  const value = issue.path.reduce<unknown>(
    (at, key) => (at as Record<PropertyKey, unknown> | undefined)?.[key as PropertyKey],
    options,
  );
  throw new ConfigurationError(`${label}: option "${path}": ${issue.message} (got ${previewValue(value, 80)})`, {
    path,
  });
}
