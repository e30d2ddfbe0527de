/**
 * The backfill's durable state: one checkpoint per migration (`backfill_checkpoints`: the
 * pass, its key bound and estimate) and the key ranges its workers claim
 * (`backfill_ranges`: owner, lease, last key done). A batch and the advance of its range
 * commit in one transaction, so a worker killed at any moment resumes where it stopped.
 *
 * Keys travel as JSON arrays of the key values' text forms (see the backfill's key SQL);
 * they are stored as `jsonb` and come back decoded.
 */
import { parseJson, type Queryable, type QueryResult, type Statement, toDate } from '../../kernel/index.js';
import { xactLock } from './migration-lock.js';
import { DEFAULT_STATE_SCHEMA, existingStateTables, quoteStateSchema } from './state-schema.js';

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
  if (!(await existingStateTables(db, schema, ['backfill_ranges'])).has('backfill_ranges')) return undefined;
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
  if (!(await existingStateTables(db, schema, ['backfill_checkpoints'])).has('backfill_checkpoints')) return false;
  const deleted = await db.query(`DELETE FROM ${quoteStateSchema(schema)}.backfill_checkpoints WHERE migration = $1`, [
    migration,
  ]);
  return (deleted.rowCount ?? 0) > 0;
}

/** A migration's current pass, as its checkpoint records it. */
export interface BackfillCheckpoint {
  readonly status: 'running' | 'done';
  readonly pass: number;
  readonly totalEstimate: number;
  readonly rangeCount: number;
}

/**
 * Takes the transaction-level lock under which one worker at a time decides whether to
 * join `migration`'s pass or start a new one.
 */
export async function lockPassStart(tx: Queryable, migration: string): Promise<void> {
  await xactLock(tx, 'flagshift.backfill', migration);
}

/** `migration`'s checkpoint, or `undefined` when it never started a pass. */
export async function readCheckpoint(
  db: Queryable,
  schema: string,
  migration: string,
): Promise<BackfillCheckpoint | undefined> {
  const found = await db.query<{
    status: 'running' | 'done';
    pass: unknown;
    total_estimate: unknown;
    range_count: unknown;
  }>(
    `SELECT status, pass, total_estimate, range_count FROM ${quoteStateSchema(schema)}.backfill_checkpoints WHERE migration = $1`,
    [migration],
  );
  const row = found.rows[0];
  if (row === undefined) return undefined;
  return {
    status: row.status,
    pass: Number(row.pass),
    totalEstimate: Number(row.total_estimate),
    rangeCount: Number(row.range_count),
  };
}

/** Rows scanned in `migration`'s current pass, summed over its ranges. */
export async function passRowsDone(db: Queryable, schema: string, migration: string): Promise<number> {
  const sum = await db.query<{ n: unknown }>(
    `SELECT coalesce(sum(rows_done), 0) AS n FROM ${quoteStateSchema(schema)}.backfill_ranges WHERE migration = $1`,
    [migration],
  );
  return Number(sum.rows[0]?.n ?? 0);
}

/** A key range of a new pass: after `lower` (exclusive; `null` for the first) up to `upper` (inclusive). */
export interface NewRange {
  readonly lower: unknown;
  readonly upper: unknown;
}

/**
 * Starts a new pass of `migration` (pass 1, or the previous pass + 1): records its key
 * bound (`null` for an empty table), estimate and ranges, replacing the previous pass's
 * ranges. A pass without ranges is done at once. Returns the pass number.
 */
export async function startPass(
  tx: Queryable,
  schema: string,
  migration: string,
  pass: { readonly upper: unknown[] | null; readonly estimate: number; readonly ranges: readonly NewRange[] },
): Promise<number> {
  const s = quoteStateSchema(schema);
  const { upper, estimate, ranges } = pass;
  const inserted = await tx.query<{ pass: unknown }>(
    `INSERT INTO ${s}.backfill_checkpoints AS c
       (migration, status, pass, upper_key, range_count, total_estimate, rows_done, last_key, started_at, updated_at, finished_at)
     VALUES ($1, $2, 1, $3, $4, $5, 0, NULL, clock_timestamp(), clock_timestamp(), $6)
     ON CONFLICT (migration) DO UPDATE SET status = EXCLUDED.status, pass = c.pass + 1,
       upper_key = EXCLUDED.upper_key, range_count = EXCLUDED.range_count, total_estimate = EXCLUDED.total_estimate,
       rows_done = 0, last_key = NULL, started_at = EXCLUDED.started_at, updated_at = EXCLUDED.updated_at,
       finished_at = EXCLUDED.finished_at
     RETURNING pass`,
    [
      migration,
      ranges.length === 0 ? 'done' : 'running',
      upper === null ? null : JSON.stringify(upper),
      ranges.length,
      estimate,
      ranges.length === 0 ? new Date() : null,
    ],
  );
  await tx.query(`DELETE FROM ${s}.backfill_ranges WHERE migration = $1`, [migration]);
  if (ranges.length > 0) {
    await tx.query(
      `INSERT INTO ${s}.backfill_ranges (migration, range_id, lower_key, upper_key, status)
       SELECT $1, ord::int, nullif(r->'lower', 'null'::jsonb), r->'upper', 'pending'
         FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY AS x(r, ord)`,
      [migration, JSON.stringify(ranges)],
    );
  }
  return Number(inserted.rows[0]!.pass);
}

/** A range a worker claimed. */
export interface ClaimedRange {
  readonly rangeId: number;
  /** Who held it before, or `null` when nobody did. */
  readonly previousOwner: string | null;
  /** Whether part of it is done already (the claim resumes after its last key). */
  readonly resumed: boolean;
  /** Where its next batch starts, as {@link LeasedRange.cursor}. */
  readonly cursor: unknown[] | null;
  /** Its upper key, inclusive. */
  readonly upper: unknown;
}

/**
 * Claims a range of `migration` for `workerId`: its own again first, then a pending one,
 * then one whose lease lapsed, with `FOR UPDATE SKIP LOCKED` so workers never wait on each
 * other. `undefined` when every open range is held by a live worker.
 */
export async function claimRange(
  db: Queryable,
  schema: string,
  migration: string,
  workerId: string,
  leaseMs: number,
): Promise<ClaimedRange | undefined> {
  const s = quoteStateSchema(schema);
  const claimed = await db.query<{
    range_id: unknown;
    previous: string | null;
    last_key: unknown;
    cursor: unknown;
    upper_key: unknown;
  }>(
    `WITH candidate AS (
       SELECT range_id, owner AS previous FROM ${s}.backfill_ranges
        WHERE migration = $1 AND (status = 'pending'
              OR (status = 'running' AND (owner = $2 OR lease_until < clock_timestamp())))
        ORDER BY (owner IS NOT DISTINCT FROM $2) DESC, range_id
        LIMIT 1 FOR UPDATE SKIP LOCKED)
     UPDATE ${s}.backfill_ranges AS r
        SET owner = $2, status = 'running', updated_at = clock_timestamp(),
            lease_until = clock_timestamp() + $3::int * interval '1 millisecond'
       FROM candidate c
      WHERE r.migration = $1 AND r.range_id = c.range_id
     RETURNING r.range_id, c.previous, r.last_key, coalesce(r.last_key, r.lower_key) AS cursor, r.upper_key`,
    [migration, workerId, leaseMs],
  );
  const row = claimed.rows[0];
  if (row === undefined) return undefined;
  return {
    rangeId: Number(row.range_id),
    previousOwner: row.previous,
    resumed: row.last_key != null,
    cursor: parseJson(row.cursor) as unknown[] | null,
    upper: parseJson(row.upper_key),
  };
}

/** Ranges of `migration`'s pass that are not done. */
export async function openRangeCount(db: Queryable, schema: string, migration: string): Promise<number> {
  const result = await db.query<{ open: unknown }>(
    `SELECT count(*) FILTER (WHERE status <> 'done')::int AS open FROM ${quoteStateSchema(schema)}.backfill_ranges WHERE migration = $1`,
    [migration],
  );
  return Number(result.rows[0]?.open ?? 0);
}

/** A range as a batch sees it once its lease is renewed. */
export interface LeasedRange {
  /** The last key done (or the range's lower bound), exclusive; `null` at the start of the first range. */
  readonly cursor: unknown[] | null;
  /** The range's upper key, inclusive. */
  readonly upper: unknown;
}

/** A transaction-local setting and the value to give it (`set_config(setting, value, true)`). */
export interface TransactionMark {
  readonly setting: string;
  readonly value: string;
}

/** What {@link leaseRenewalStatement} needs to know about the batch. */
export interface LeaseRenewal {
  readonly migration: string;
  readonly rangeId: number;
  readonly workerId: string;
  readonly leaseMs: number;
  /** `lock_timeout` and `statement_timeout` for the rest of the batch's transaction, in milliseconds. */
  readonly lockTimeoutMs: number;
  readonly statementTimeoutMs: number;
  /**
   * A transaction-local setting and its value, set for the rest of the batch's
   * transaction: what the sync triggers' condition reads to skip the batch's own writes.
   */
  readonly mark: TransactionMark;
}

/**
 * The first statement of a batch's transaction: renews the lease of the range (which also
 * proves it is still the worker's, and locks its row) and sets the batch's timeouts and
 * its mark. Read its result with {@link leasedRangeOf}.
 */
export function leaseRenewalStatement(schema: string, renewal: LeaseRenewal): Statement {
  // Joined to the lease's renewal, the settings are in force before the range row is
  // locked, and the batch costs no round trip more.
  return {
    sql: `WITH settings AS MATERIALIZED (
       SELECT set_config('lock_timeout', $5, true) AS lock_timeout, set_config('statement_timeout', $6, true) AS statement_timeout,
              set_config($7, $8, true) AS mark)
     UPDATE ${quoteStateSchema(schema)}.backfill_ranges SET lease_until = clock_timestamp() + $4::int * interval '1 millisecond'
       FROM settings
      WHERE ${heldCondition('', { migration: '$1', rangeId: '$2', owner: '$3' })}
      RETURNING coalesce(last_key, lower_key) AS cursor, upper_key`,
    params: [
      renewal.migration,
      renewal.rangeId,
      renewal.workerId,
      renewal.leaseMs,
      `${renewal.lockTimeoutMs}ms`,
      `${renewal.statementTimeoutMs}ms`,
      renewal.mark.setting,
      renewal.mark.value,
    ],
  };
}

/** The range a {@link leaseRenewalStatement} renewed, `undefined` when it is no longer the worker's. */
export function leasedRangeOf(result: QueryResult): LeasedRange | undefined {
  const range = result.rows[0] as { cursor: unknown; upper_key: unknown } | undefined;
  if (range === undefined) return undefined;
  return { cursor: parseJson(range.cursor) as unknown[] | null, upper: parseJson(range.upper_key) };
}

/** Where {@link rangeHeldSql} finds the range and its holder, as SQL (parameters). */
export interface RangeHolderSql {
  readonly migration: string;
  readonly rangeId: string;
  readonly owner: string;
  /**
   * The key (jsonb, as {@link LeasedRange.cursor}) the range's next batch starts after;
   * `NULL` at the start of the first range. Left out, the cursor is not checked.
   */
  readonly cursor?: string;
}

/**
 * SQL true when `owner` holds the range and it is running, and (with `cursor`) its next
 * batch starts after that key. Sent in one round trip with the lease's renewal, a batch
 * checks it again: it writes nothing unless the range is as the worker left it, which its
 * renewal (earlier in the same transaction, holding the row's lock) saw.
 */
export function rangeHeldSql(schema: string, at: RangeHolderSql): string {
  return `EXISTS (SELECT 1 FROM ${quoteStateSchema(schema)}.backfill_ranges AS h WHERE ${heldCondition('h', at)})`;
}

/** {@link rangeHeldSql}'s condition over a `backfill_ranges` row of `alias` (unqualified when empty). */
function heldCondition(alias: string, at: RangeHolderSql): string {
  const c = alias === '' ? '' : `${alias}.`;
  const held = `${c}migration = ${at.migration} AND ${c}range_id = ${at.rangeId} AND ${c}owner = ${at.owner} AND ${c}status = 'running'`;
  return at.cursor === undefined
    ? held
    : `${held} AND coalesce(${c}last_key, ${c}lower_key) IS NOT DISTINCT FROM ${at.cursor}::jsonb`;
}

/** Where {@link rangeAdvanceSql} finds its range and what the batch did, as SQL. */
export interface RangeAdvanceSql extends RangeHolderSql {
  /**
   * A row source (a CTE's name) of one row: `last_key` (jsonb, the last key the batch
   * scanned, `NULL` when none), `scanned`, `changed` and `done` (whether the batch reached
   * the end of the range).
   */
  readonly batch: string;
}

/**
 * The `UPDATE` that records a batch in its range, for a data-modifying CTE of the batch's
 * own statement, so the batch and its progress are one statement and commit together: the
 * last key, the counts, and `done` when the batch reached the end of the range. It returns
 * `rows_before`, the rows done by the whole pass before this batch (the statement's
 * snapshot does not see its own change). {@link rangeDoneStatement}, after it in the same
 * transaction, brings the checkpoint up to date when it says `done`.
 */
export function rangeAdvanceSql(schema: string, at: RangeAdvanceSql): string {
  const s = quoteStateSchema(schema);
  return `UPDATE ${s}.backfill_ranges AS r
        SET last_key = coalesce(b.last_key, r.last_key), rows_done = r.rows_done + b.scanned,
            rows_changed = r.rows_changed + b.changed, batches = r.batches + 1, updated_at = clock_timestamp(),
            status = CASE WHEN b.done THEN 'done' ELSE 'running' END,
            lease_until = CASE WHEN b.done THEN NULL ELSE r.lease_until END
       FROM ${at.batch} AS b
      WHERE ${heldCondition('r', at)}
      RETURNING (SELECT coalesce(sum(q.rows_done), 0) FROM ${s}.backfill_ranges AS q WHERE q.migration = ${at.migration}) AS rows_before`;
}

/**
 * Brings `migration`'s checkpoint up to date when the batch before it in its transaction
 * finished range `rangeId` for `workerId`, and does nothing otherwise (once per range:
 * workers never queue on the checkpoint row): the rows done, and the upper key of the last
 * range before which every range is done.
 */
export function rangeDoneStatement(schema: string, migration: string, rangeId: number, workerId: string): Statement {
  const s = quoteStateSchema(schema);
  return {
    sql: `UPDATE ${s}.backfill_checkpoints SET updated_at = clock_timestamp(),
        rows_done = (SELECT coalesce(sum(rows_done), 0) FROM ${s}.backfill_ranges WHERE migration = $1),
        last_key = (SELECT r.upper_key FROM ${s}.backfill_ranges r
                     WHERE r.migration = $1 AND r.status = 'done' AND NOT EXISTS (
                       SELECT 1 FROM ${s}.backfill_ranges q
                        WHERE q.migration = $1 AND q.range_id < r.range_id AND q.status <> 'done')
                     ORDER BY r.range_id DESC LIMIT 1)
      WHERE migration = $1
        AND EXISTS (SELECT 1 FROM ${s}.backfill_ranges d
                     WHERE d.migration = $1 AND d.range_id = $2 AND d.status = 'done' AND d.owner = $3)`,
    params: [migration, rangeId, workerId],
  };
}

/** Gives a claimed range back (keeping its last key) so another worker can go on at once. */
export async function releaseRange(
  db: Queryable,
  schema: string,
  migration: string,
  rangeId: number,
  workerId: string,
): Promise<void> {
  await db.query(
    `UPDATE ${quoteStateSchema(schema)}.backfill_ranges SET owner = NULL, lease_until = NULL, status = 'pending', updated_at = clock_timestamp()
      WHERE migration = $1 AND range_id = $2 AND owner = $3 AND status = 'running'`,
    [migration, rangeId, workerId],
  );
}

/** A pass as it finished. */
export interface FinishedPass {
  readonly pass: number;
  readonly rowsDone: number;
  readonly rowsChanged: number;
}

/**
 * Marks `migration`'s pass done when every range is. Returns the finished pass to the one
 * caller that flipped it, `undefined` to every other (or while ranges are open).
 */
export async function finishPass(db: Queryable, schema: string, migration: string): Promise<FinishedPass | undefined> {
  const s = quoteStateSchema(schema);
  const finished = await db.query<{ pass: unknown; rows_done: unknown; rows_changed: unknown }>(
    `UPDATE ${s}.backfill_checkpoints SET status = 'done', finished_at = clock_timestamp(), updated_at = clock_timestamp(),
        rows_done = (SELECT coalesce(sum(rows_done), 0) FROM ${s}.backfill_ranges WHERE migration = $1),
        last_key = upper_key
      WHERE migration = $1 AND status = 'running'
        AND NOT EXISTS (SELECT 1 FROM ${s}.backfill_ranges WHERE migration = $1 AND status <> 'done')
      RETURNING pass, rows_done,
        (SELECT coalesce(sum(rows_changed), 0) FROM ${s}.backfill_ranges WHERE migration = $1) AS rows_changed`,
    [migration],
  );
  const row = finished.rows[0];
  if (row === undefined) return undefined;
  return { pass: Number(row.pass), rowsDone: Number(row.rows_done), rowsChanged: Number(row.rows_changed) };
}
