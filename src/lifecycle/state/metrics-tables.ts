/**
 * The fleet metrics tables: `metrics_snapshots` (each publishing process's latest
 * in-memory snapshot, one row per process), `metrics_history` (comparisons and
 * mismatches per migration over time) and `metrics_sides` (operations, errors and p99
 * latency per side, per migration over time). Every statement over them is here.
 */
import { type Queryable, toDate } from '../../kernel/index.js';
import { DEFAULT_STATE_SCHEMA, existingStateTables, quoteStateSchema, stateTablesExist } from './state-schema.js';
import { createInStateSchema } from './state-tables.js';

/** The tables of installs from before `metrics_sides`: publishing needs these. */
const CORE_TABLES = ['metrics_snapshots', 'metrics_history'] as const;
const METRICS_TABLES = [...CORE_TABLES, 'metrics_sides'] as const;

/**
 * Creates `metrics_snapshots`, `metrics_history` and `metrics_sides` when missing. One DO
 * block under an advisory lock, so processes starting together don't race on `CREATE TABLE
 * IF NOT EXISTS`. An administrator can run it once (or the same DDL) and grant a publishing
 * role only `INSERT, UPDATE, DELETE` on the three tables.
 *
 * Resolves whether this role can write `metrics_sides`. An install from before it (only
 * the two other tables), whose publishing role can't create it or wasn't granted it yet,
 * keeps publishing comparisons: it resolves `false` then, and rejects only when the core
 * tables are missing and can't be created.
 */
export async function ensureMetricsTables(db: Queryable, schema: string = DEFAULT_STATE_SCHEMA): Promise<boolean> {
  const s = quoteStateSchema(schema);
  // Looked up first, so a role without CREATE can publish into tables an administrator made.
  const present = await existingStateTables(db, schema, METRICS_TABLES);
  if (present.size < METRICS_TABLES.length) {
    try {
      await createTables(db, schema, s);
    } catch (error) {
      if (CORE_TABLES.every((table) => present.has(table))) return false;
      throw error;
    }
  }
  const { rows } = await db.query<{ writable: boolean }>(
    `SELECT has_table_privilege($1, 'INSERT') AND has_table_privilege($1, 'DELETE') AS writable`,
    [`${s}.metrics_sides`],
  );
  return rows[0]?.writable === true;
}

function createTables(db: Queryable, schema: string, s: string): Promise<void> {
  // A new table rather than columns on metrics_history: CREATE TABLE IF NOT EXISTS upgrades
  // an existing install in the same idempotent DDL, where ADD COLUMN would need the table's
  // owner and a second check of its columns on every start.
  return createInStateSchema(
    db,
    schema,
    'flagshift.metrics-tables',
    `CREATE TABLE IF NOT EXISTS ${s}.metrics_snapshots (
    process_id text PRIMARY KEY,
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    interval_ms integer NOT NULL,
    snapshot jsonb NOT NULL
  );
  CREATE TABLE IF NOT EXISTS ${s}.metrics_history (
    migration text NOT NULL,
    process_id text NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    comparisons bigint NOT NULL,
    mismatches bigint NOT NULL
  );
  CREATE INDEX IF NOT EXISTS metrics_history_at ON ${s}.metrics_history (at);
  CREATE INDEX IF NOT EXISTS metrics_history_migration_at ON ${s}.metrics_history (migration, at);
  CREATE TABLE IF NOT EXISTS ${s}.metrics_sides (
    migration text NOT NULL,
    process_id text NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    old_operations bigint NOT NULL,
    old_errors bigint NOT NULL,
    old_p99_ms double precision,
    new_operations bigint NOT NULL,
    new_errors bigint NOT NULL,
    new_p99_ms double precision
  );
  CREATE INDEX IF NOT EXISTS metrics_sides_at ON ${s}.metrics_sides (at);`,
  );
}

/** One publish of one process. */
export interface SnapshotPublish {
  readonly processId: string;
  readonly intervalMs: number;
  /** The process's metrics snapshot, as JSON text. */
  readonly snapshot: string;
  /** Comparisons and mismatches per migration since the previous publish, as JSON text (`{"m": [3, 1]}`). */
  readonly deltas: string;
  /**
   * When the window of `deltas` began: the previous successful publish, by the database's
   * clock (what this function resolved then). History rows are stamped with it, so the
   * promotion gate attributes comparisons by when they were recorded, not when they were
   * published.
   */
  readonly windowStart: Date | undefined;
  /**
   * Without `windowStart` (a publisher's first publish): how long ago, measured by the
   * process, its window began; the rows are stamped with the database's clock less this.
   */
  readonly windowMs: number;
  /**
   * Per migration since the previous publish, as JSON text: old-side operations, errors and
   * p99 latency (ms, `null` without new measurements), then the same of the new side
   * (`{"m": [40, 0, 1.5, 40, 2, null]}`). Absent when `metrics_sides` can't be written.
   */
  readonly sides?: string;
  /** History rows, and rows of processes that stopped publishing, older than this (milliseconds) are pruned. */
  readonly retentionMs: number;
}

/**
 * Upserts the process's snapshot row, appends its history rows and prunes what is older
 * than the retention, in one statement (so one round trip, and one transaction on a pool).
 * Resolves the database's time of the publish (`at`) and the start its history rows were
 * stamped with (`windowAt`).
 */
export async function publishSnapshot(
  db: Queryable,
  schema: string,
  publish: SnapshotPublish,
): Promise<{ readonly at: Date; readonly windowAt: Date }> {
  const s = quoteStateSchema(schema);
  const { rows } = await db.query<{ at: unknown; window_at: unknown }>(
    `WITH snap AS (
  INSERT INTO ${s}.metrics_snapshots AS m (process_id, updated_at, interval_ms, snapshot)
  VALUES ($1, clock_timestamp(), $2, $3::jsonb)
  ON CONFLICT (process_id) DO UPDATE
    SET updated_at = EXCLUDED.updated_at, interval_ms = EXCLUDED.interval_ms, snapshot = EXCLUDED.snapshot
  RETURNING 1
), history AS (
  INSERT INTO ${s}.metrics_history (migration, process_id, at, comparisons, mismatches)
  SELECT d.key, $1, coalesce($6::timestamptz, statement_timestamp() - $7::double precision * interval '1 millisecond'),
         (d.value->>0)::bigint, (d.value->>1)::bigint
    FROM jsonb_each($4::jsonb) AS d
  RETURNING 1
), pruned_history AS (
  DELETE FROM ${s}.metrics_history WHERE at < clock_timestamp() - $5::double precision * interval '1 millisecond'
  RETURNING 1
)${publish.sides === undefined ? '' : sidesStatements(s)}, pruned_processes AS (
  DELETE FROM ${s}.metrics_snapshots
   WHERE updated_at < clock_timestamp() - $5::double precision * interval '1 millisecond' AND process_id <> $1
  RETURNING 1
)
SELECT (SELECT count(*) FROM history)::int AS history, statement_timestamp() AS at,
       coalesce($6::timestamptz, statement_timestamp() - $7::double precision * interval '1 millisecond') AS window_at`,
    [
      publish.processId,
      publish.intervalMs,
      publish.snapshot,
      publish.deltas,
      publish.retentionMs,
      publish.windowStart?.toISOString() ?? null,
      publish.windowMs,
      ...(publish.sides === undefined ? [] : [publish.sides]),
    ],
  );
  return { at: toDate(rows[0]?.at), windowAt: toDate(rows[0]?.window_at) };
}

/** The part of {@link publishSnapshot} over `metrics_sides`, whose rows are `$8`. */
function sidesStatements(s: string): string {
  return `, sides AS (
  INSERT INTO ${s}.metrics_sides
    (migration, process_id, at, old_operations, old_errors, old_p99_ms, new_operations, new_errors, new_p99_ms)
  SELECT d.key, $1, clock_timestamp(), (d.value->>0)::bigint, (d.value->>1)::bigint, (d.value->>2)::double precision,
         (d.value->>3)::bigint, (d.value->>4)::bigint, (d.value->>5)::double precision
    FROM jsonb_each($8::jsonb) AS d
  RETURNING 1
), pruned_sides AS (
  DELETE FROM ${s}.metrics_sides WHERE at < clock_timestamp() - $5::double precision * interval '1 millisecond'
  RETURNING 1
)`;
}

/** The database's clock, whether the core metrics tables exist, and whether `metrics_sides` does. */
export async function readMetricsClock(
  db: Queryable,
  schema: string,
): Promise<{ now: unknown; published: boolean; sides: boolean }> {
  const s = quoteStateSchema(schema);
  const clock = await db.query<{ now: unknown; tables: number; sides: boolean }>(
    `SELECT clock_timestamp() AS now,
            ((to_regclass($1) IS NOT NULL)::int + (to_regclass($2) IS NOT NULL)::int) AS tables,
            to_regclass($3) IS NOT NULL AS sides`,
    METRICS_TABLES.map((table) => `${s}.${table}`),
  );
  const row = clock.rows[0];
  return { now: row?.now, published: row?.tables === 2, sides: row?.sides === true };
}

/** A process's snapshot row, newest first. */
export interface SnapshotRow {
  readonly processId: string;
  readonly updatedAt: unknown;
  /** The snapshot as the driver returns `jsonb` (parsed or text). */
  readonly snapshot: unknown;
  /** Younger than `maxAgeMs`, or, without it, than three of the process's own intervals plus a second. */
  readonly fresh: boolean;
}

/** Every process's snapshot row, most recent first. */
export async function readSnapshots(db: Queryable, schema: string, maxAgeMs: number | null): Promise<SnapshotRow[]> {
  const { rows } = await db.query<{ process_id: string; updated_at: unknown; snapshot: unknown; fresh: boolean }>(
    `SELECT process_id, updated_at, snapshot,
            updated_at >= clock_timestamp() - coalesce($1::double precision, interval_ms * 3.0 + 1000) * interval '1 millisecond' AS fresh
       FROM ${quoteStateSchema(schema)}.metrics_snapshots ORDER BY updated_at DESC`,
    [maxAgeMs],
  );
  return rows.map((row) => ({
    processId: row.process_id,
    updatedAt: row.updated_at,
    snapshot: row.snapshot,
    fresh: row.fresh,
  }));
}

/** Comparisons and mismatches of one migration in one bucket of time. */
export interface HistoryBucket {
  readonly migration: string;
  /** Start of the bucket, in milliseconds since the epoch. */
  readonly bucket: number;
  readonly comparisons: number;
  readonly mismatches: number;
}

/** The history of the last `windowMs`, summed per migration and bucket of `bucketMs`, in order. */
export async function readHistory(
  db: Queryable,
  schema: string,
  bucketMs: number,
  windowMs: number,
): Promise<HistoryBucket[]> {
  const { rows } = await db.query<{ migration: string; bucket: unknown; comparisons: unknown; mismatches: unknown }>(
    `SELECT migration,
            floor(extract(epoch FROM at)::double precision * 1000 / $1::double precision) * $1::double precision AS bucket,
            sum(comparisons)::bigint AS comparisons, sum(mismatches)::bigint AS mismatches
       FROM ${quoteStateSchema(schema)}.metrics_history
      WHERE at >= clock_timestamp() - $2::double precision * interval '1 millisecond'
      GROUP BY 1, 2 ORDER BY 1, 2`,
    [bucketMs, windowMs],
  );
  return rows.map((row) => ({
    migration: row.migration,
    bucket: Number(row.bucket),
    comparisons: Number(row.comparisons),
    mismatches: Number(row.mismatches),
  }));
}

/** One side's operations, errors and p99 latency in one bucket of time. */
export interface SideFigures {
  readonly operations: number;
  readonly errors: number;
  /** The highest p99 (ms) any process published in the bucket; `null` when none measured. */
  readonly p99: number | null;
}

/** Both sides of one migration in one bucket of time. */
export interface SideBucket {
  readonly migration: string;
  /** Start of the bucket, in milliseconds since the epoch. */
  readonly bucket: number;
  readonly old: SideFigures;
  readonly new: SideFigures;
}

/**
 * `metrics_sides` over the last `windowMs`, summed (operations, errors) or maximised (p99)
 * per migration and bucket of `bucketMs`, in order. The caller checks the table exists.
 */
export async function readSideHistory(
  db: Queryable,
  schema: string,
  bucketMs: number,
  windowMs: number,
): Promise<SideBucket[]> {
  const { rows } = await db.query<Record<string, unknown> & { migration: string }>(
    `SELECT migration,
            floor(extract(epoch FROM at)::double precision * 1000 / $1::double precision) * $1::double precision AS bucket,
            sum(old_operations)::bigint AS old_operations, sum(old_errors)::bigint AS old_errors, max(old_p99_ms) AS old_p99,
            sum(new_operations)::bigint AS new_operations, sum(new_errors)::bigint AS new_errors, max(new_p99_ms) AS new_p99
       FROM ${quoteStateSchema(schema)}.metrics_sides
      WHERE at >= clock_timestamp() - $2::double precision * interval '1 millisecond'
      GROUP BY 1, 2 ORDER BY 1, 2`,
    [bucketMs, windowMs],
  );
  const side = (row: Record<string, unknown>, prefix: 'old' | 'new'): SideFigures => ({
    operations: Number(row[`${prefix}_operations`]),
    errors: Number(row[`${prefix}_errors`]),
    p99: row[`${prefix}_p99`] == null ? null : Number(row[`${prefix}_p99`]),
  });
  return rows.map((row) => ({
    migration: row.migration,
    bucket: Number(row.bucket),
    old: side(row, 'old'),
    new: side(row, 'new'),
  }));
}

/** Comparisons and mismatches the fleet published for one migration. */
export interface PublishedComparisons {
  readonly comparisons: number;
  readonly mismatches: number;
}

/**
 * The comparisons and mismatches of `migration` recorded at or after `since` (all
 * retained history without it): history rows are stamped with the start of the window
 * they cover, so a publish after `since` of comparisons made before it doesn't count.
 * Zero when no process ever published.
 */
export async function comparisonsSince(
  db: Queryable,
  schema: string,
  migration: string,
  since: Date | undefined,
): Promise<PublishedComparisons> {
  if (!(await stateTablesExist(db, schema, ['metrics_history']))) return { comparisons: 0, mismatches: 0 };
  const { rows } = await db.query<{ comparisons: unknown; mismatches: unknown }>(
    `SELECT coalesce(sum(comparisons), 0)::bigint AS comparisons, coalesce(sum(mismatches), 0)::bigint AS mismatches
       FROM ${quoteStateSchema(schema)}.metrics_history
      WHERE migration = $1 AND ($2::timestamptz IS NULL OR at >= $2::timestamptz)`,
    [migration, since?.toISOString() ?? null],
  );
  return { comparisons: Number(rows[0]?.comparisons ?? 0), mismatches: Number(rows[0]?.mismatches ?? 0) };
}
