/**
 * The fleet metrics tables: `metrics_snapshots` (each publishing process's latest
 * in-memory snapshot, one row per process) and `metrics_history` (comparisons and
 * mismatches per migration over time). Every statement over them is here.
 */
import type { Queryable } from '../../kernel/index.js';
import { DEFAULT_STATE_SCHEMA, quoteStateSchema, stateTablesExist } from './state-schema.js';
import { createInStateSchema } from './state-tables.js';

const METRICS_TABLES = ['metrics_snapshots', 'metrics_history'] as const;

/**
 * Creates `metrics_snapshots` and `metrics_history` when missing. One DO block under an
 * advisory lock, so processes starting together don't race on `CREATE TABLE IF NOT EXISTS`.
 * An administrator can run it once (or the same DDL) and grant a publishing role only
 * `INSERT, UPDATE, DELETE` on the two tables.
 */
export async function ensureMetricsTables(db: Queryable, schema: string = DEFAULT_STATE_SCHEMA): Promise<void> {
  const s = quoteStateSchema(schema);
  // Looked up first, so a role without CREATE can publish into tables an administrator made.
  if (await stateTablesExist(db, schema, METRICS_TABLES)) return;
  await createInStateSchema(
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
  CREATE INDEX IF NOT EXISTS metrics_history_migration_at ON ${s}.metrics_history (migration, at);`,
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
  /** History rows, and rows of processes that stopped publishing, older than this (milliseconds) are pruned. */
  readonly retentionMs: number;
}

/**
 * Upserts the process's snapshot row, appends its history rows and prunes what is older
 * than the retention, in one statement (so one round trip, and one transaction on a pool).
 */
export async function publishSnapshot(db: Queryable, schema: string, publish: SnapshotPublish): Promise<void> {
  const s = quoteStateSchema(schema);
  await db.query(
    `WITH snap AS (
  INSERT INTO ${s}.metrics_snapshots AS m (process_id, updated_at, interval_ms, snapshot)
  VALUES ($1, clock_timestamp(), $2, $3::jsonb)
  ON CONFLICT (process_id) DO UPDATE
    SET updated_at = EXCLUDED.updated_at, interval_ms = EXCLUDED.interval_ms, snapshot = EXCLUDED.snapshot
  RETURNING 1
), history AS (
  INSERT INTO ${s}.metrics_history (migration, process_id, at, comparisons, mismatches)
  SELECT d.key, $1, clock_timestamp(), (d.value->>0)::bigint, (d.value->>1)::bigint
    FROM jsonb_each($4::jsonb) AS d
  RETURNING 1
), pruned_history AS (
  DELETE FROM ${s}.metrics_history WHERE at < clock_timestamp() - $5::double precision * interval '1 millisecond'
  RETURNING 1
), pruned_processes AS (
  DELETE FROM ${s}.metrics_snapshots
   WHERE updated_at < clock_timestamp() - $5::double precision * interval '1 millisecond' AND process_id <> $1
  RETURNING 1
)
SELECT (SELECT count(*) FROM history)::int AS history`,
    [publish.processId, publish.intervalMs, publish.snapshot, publish.deltas, publish.retentionMs],
  );
}

/** The database's clock, and whether both metrics tables exist. */
export async function readMetricsClock(db: Queryable, schema: string): Promise<{ now: unknown; published: boolean }> {
  const s = quoteStateSchema(schema);
  const clock = await db.query<{ now: unknown; tables: number }>(
    `SELECT clock_timestamp() AS now,
            ((to_regclass($1) IS NOT NULL)::int + (to_regclass($2) IS NOT NULL)::int) AS tables`,
    METRICS_TABLES.map((table) => `${s}.${table}`),
  );
  return { now: clock.rows[0]?.now, published: clock.rows[0]?.tables === 2 };
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

/** Comparisons and mismatches the fleet published for one migration. */
export interface PublishedComparisons {
  readonly comparisons: number;
  readonly mismatches: number;
}

/**
 * The comparisons and mismatches of `migration` that processes published at or after
 * `since` (all retained history without it). Zero when no process ever published.
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
