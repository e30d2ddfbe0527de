/**
 * Online backfill: fills a migration's new columns from the old ones, in the database,
 * through the SQL forward forms, while the application keeps running.
 *
 * - Keyset batches on the key (row comparison for composite keys, never OFFSET), each an
 *   `UPDATE ... WHERE new IS DISTINCT FROM forward(old)` (an upsert for side tables), so a
 *   re-run changes nothing that is already right.
 * - Bounded at start: the largest key is recorded when a pass starts and the pass stops
 *   there. Rows inserted later are written by dual writes and sync triggers, so a pass
 *   terminates however fast rows arrive.
 * - Durable: the key space is cut into ranges (a row each in `backfill_ranges`); a batch
 *   and the advance of its range's last key commit in one transaction, so a process
 *   killed at any moment resumes where it stopped, skipping nothing.
 * - Shared: workers (threads of one process or many processes) claim ranges with
 *   `FOR UPDATE SKIP LOCKED` and hold them by a lease renewed with every batch; a range
 *   whose worker died is taken over when its lease expires.
 */

import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { z } from 'zod';
import { type Driver, FlagshiftError, toDriverError } from '../../kernel/index.js';
import type { Migration } from '../../model/index.js';
import {
  DEFAULT_STATE_SCHEMA,
  emitEvent,
  ensureStateTables,
  type LifecycleOptions,
  lifecycleOptionsShape,
  parseJson,
  parseStepOptions,
  quoteStateSchema,
  recordEvent,
} from '../state/index.js';
import {
  batchSql,
  cutRanges,
  type DataPlan,
  isConnectionLost,
  loadDataPlan,
  RETRYABLE_SQLSTATES,
  sleep,
  sqlStateOf,
} from './backfill-sql.js';

/** What a throttle hook learns about the batch that just finished. */
export interface BackfillThrottleInfo {
  readonly migration: string;
  readonly workerId: string;
  /** Rows in the batch that just ran. */
  readonly batchRows: number;
  /** Its duration, in milliseconds. */
  readonly batchMs: number;
  /** Size of the next batch. */
  readonly batchSize: number;
  /** Rows done in this pass by all workers, as far as this worker knows. */
  readonly rowsDone: number;
  /** Aborts when the backfill is cancelled: a hook that waits should stop waiting. */
  readonly signal: AbortSignal;
}

/** Options of {@link createBackfill}. */
export interface BackfillOptions extends LifecycleOptions {
  /** Rows in the first batch. @default 1000 */
  readonly batchSize?: number;
  /** Smallest batch the adaptive sizing chooses (a timed-out batch may go lower). @default 10, or `batchSize` when smaller */
  readonly minBatchSize?: number;
  /** Largest batch the adaptive sizing chooses. @default 10000, or `batchSize` when larger */
  readonly maxBatchSize?: number;
  /**
   * Batch duration, in milliseconds, the batch size adapts towards. A batch holds the row
   * locks of its rows until it commits, so an application write to one of them waits up to
   * this long; both the chance of that and the wait grow with the batch.
   * @default 25
   */
  readonly targetBatchMs?: number;
  /**
   * Pause after each batch, as a multiple of that batch's duration (rounded to a whole
   * millisecond): at 0.3 a worker waits 3 ms after a 10 ms batch (after a range's last
   * batch it claims the next range at once). A batch keeps one server core busy while it
   * runs; the pause gives that core back to the application, whose slowest requests feel
   * a busy core first. Added to `delayMs`; ignored when `throttle` is given; 0 runs
   * batches back to back. @default 0.3
   */
  readonly pauseRatio?: number;
  /** Fixed pause after each batch, in milliseconds, added to `pauseRatio`'s (ignored when `throttle` is given). @default 0 */
  readonly delayMs?: number;
  /**
   * Called after every batch; the next batch waits for it. Use it to back off on
   * replication lag (`pg_stat_replication`), load or business hours.
   * @default none: `pauseRatio` and `delayMs` apply
   */
  readonly throttle?: (info: BackfillThrottleInfo) => Promise<void> | void;
  /** `lock_timeout` of each batch, in milliseconds: a batch never queues long behind the application's locks. @default 1000 */
  readonly lockTimeoutMs?: number;
  /** `statement_timeout` of each batch, in milliseconds. @default 30000 */
  readonly statementTimeoutMs?: number;
  /**
   * Times one batch is retried, each time at half the size, after a lock or statement
   * timeout, a deadlock or a serialization failure, before the backfill fails.
   * @default 10
   */
  readonly maxRetries?: number;
  /**
   * Key ranges a new pass is cut into: the unit that workers claim. Fewer are made for
   * small tables (about one per 1000 rows).
   * @default 32
   */
  readonly ranges?: number;
  /**
   * How long a worker holds a claimed range without finishing a batch before another
   * worker may take it over (the time a killed worker's range waits).
   * @default 15000
   */
  readonly leaseMs?: number;
  /** This worker's name in the ranges table. @default `<hostname>:<pid>:<random>` */
  readonly workerId?: string;
  /**
   * When the migration's last pass finished: `rerun` starts a new pass (cheap: it changes
   * only rows that differ, and repairs drift a verification found); `skip` returns at
   * once, for extra workers joining a shared backfill that may have finished already.
   * @default 'rerun'
   */
  readonly whenDone?: 'rerun' | 'skip';
  /** Discard an unfinished pass (its progress, not its data) and start a new one. @default false */
  readonly restart?: boolean;
  /** Cancels the backfill when it aborts, like {@link Backfill.cancel}. @default none */
  readonly signal?: AbortSignal;
  /** Called after every batch and on every state change. Exceptions are ignored. @default none */
  readonly onProgress?: (progress: BackfillProgress) => void;
}

/** The lifecycle of one {@link Backfill} object. */
export type BackfillState = 'idle' | 'starting' | 'running' | 'paused' | 'waiting' | 'cancelled' | 'done' | 'failed';

/** Where a backfill stands, as this worker sees it. */
export interface BackfillProgress {
  readonly migration: string;
  readonly workerId: string;
  readonly state: BackfillState;
  /** Pass number (1 for the first backfill of the migration). */
  readonly pass: number;
  /** Rows scanned in this pass by all workers. */
  readonly rowsDone: number;
  /** Estimated rows of the pass (never less than `rowsDone`). */
  readonly totalEstimate: number;
  /** Rows this worker scanned. */
  readonly workerRowsDone: number;
  /** Rows whose new columns this worker changed. */
  readonly workerRowsChanged: number;
  /** Rows per second of the whole pass since this worker started. */
  readonly rowsPerSecond: number;
  /** Estimated time to finish, in milliseconds; `undefined` until there is a rate. */
  readonly etaMs: number | undefined;
  /** Size of the next batch. */
  readonly batchSize: number;
  /** Batches this worker committed. */
  readonly batches: number;
  /** Batches this worker retried after a timeout. */
  readonly retries: number;
  readonly rangeCount: number;
  /** Ranges this worker finished. */
  readonly workerRangesDone: number;
  readonly elapsedMs: number;
}

/** What {@link Backfill.run} returns. */
export interface BackfillReport {
  readonly migration: string;
  readonly workerId: string;
  /** `done`: every range of the pass is done; `cancelled`: stopped early, resumable. */
  readonly status: 'done' | 'cancelled';
  readonly pass: number;
  /** Rows this worker scanned / changed. */
  readonly rowsDone: number;
  readonly rowsChanged: number;
  /** Rows of the pass scanned by all workers. */
  readonly totalRowsDone: number;
  readonly batches: number;
  readonly retries: number;
  readonly rangeCount: number;
  readonly durationMs: number;
  /** Set when `whenDone: 'skip'` found the pass finished before this worker started. */
  readonly skipped: boolean;
}

/** A running or runnable backfill of one migration. */
export interface Backfill {
  /** Runs to the end of the pass (or until cancelled). Calling it again returns the same promise. */
  run(): Promise<BackfillReport>;
  /** Stops between batches until {@link resume}. The claimed range's lease may lapse meanwhile. */
  pause(): void;
  resume(): void;
  /** Stops after the current batch; `run()` resolves with status `cancelled`. Progress is kept. */
  cancel(): void;
  readonly progress: BackfillProgress;
  readonly workerId: string;
}

const optionsSchema = z.strictObject({
  ...lifecycleOptionsShape,
  batchSize: z.number().int().min(1).optional(),
  minBatchSize: z.number().int().min(1).optional(),
  maxBatchSize: z.number().int().min(1).max(1_000_000).optional(),
  targetBatchMs: z.number().positive().optional(),
  pauseRatio: z.number().min(0).max(100).optional(),
  delayMs: z.number().min(0).optional(),
  throttle: z.function().optional(),
  lockTimeoutMs: z.number().int().min(1).optional(),
  statementTimeoutMs: z.number().int().min(1).optional(),
  maxRetries: z.number().int().min(0).optional(),
  ranges: z.number().int().min(1).max(10_000).optional(),
  leaseMs: z.number().int().min(100).optional(),
  workerId: z.string().min(1).max(200).optional(),
  whenDone: z.enum(['rerun', 'skip']).optional(),
  restart: z.boolean().optional(),
  signal: z.custom<AbortSignal>((value) => value instanceof AbortSignal, 'must be an AbortSignal').optional(),
  onProgress: z.function().optional(),
});

/**
 * Creates a backfill of `migration`'s new columns. Nothing runs until {@link Backfill.run}.
 * The new columns must exist (run expand first); options are validated now.
 *
 * @example
 * ```ts
 * import { createBackfill } from 'flagshift/lifecycle';
 *
 * const backfill = createBackfill(driver, usernameRename, {
 *   targetBatchMs: 50,
 *   onProgress: (p) => console.log(`${p.rowsDone}/${p.totalEstimate} rows, eta ${p.etaMs} ms`),
 * });
 * process.on('SIGINT', () => backfill.cancel());
 * const report = await backfill.run();
 * ```
 */
export function createBackfill(driver: Driver, migration: Migration, options: BackfillOptions = {}): Backfill {
  const parsed = parseStepOptions(optionsSchema, options, `backfill of migration "${migration.name}"`);
  const settings = {
    batchSize: parsed.batchSize ?? 1000,
    // A chosen first batch size widens the default bounds rather than contradicting them.
    minBatchSize: parsed.minBatchSize ?? Math.min(10, parsed.batchSize ?? 10),
    maxBatchSize: parsed.maxBatchSize ?? Math.max(10_000, parsed.batchSize ?? 10_000),
    targetBatchMs: parsed.targetBatchMs ?? DEFAULT_TARGET_BATCH_MS,
    pauseRatio: parsed.pauseRatio ?? DEFAULT_PAUSE_RATIO,
    delayMs: parsed.delayMs ?? 0,
    lockTimeoutMs: parsed.lockTimeoutMs ?? 1000,
    statementTimeoutMs: parsed.statementTimeoutMs ?? 30_000,
    maxRetries: parsed.maxRetries ?? 10,
    ranges: parsed.ranges ?? 32,
    leaseMs: parsed.leaseMs ?? 15_000,
    workerId: parsed.workerId ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`,
    whenDone: parsed.whenDone ?? 'rerun',
    restart: parsed.restart ?? false,
  };
  const label = `backfill of migration "${migration.name}"`;
  if (settings.minBatchSize > settings.maxBatchSize) {
    parseStepOptions(
      z.object({ minBatchSize: z.number().max(settings.maxBatchSize, 'must not exceed maxBatchSize') }),
      options,
      label,
    );
  }
  if (settings.batchSize < settings.minBatchSize || settings.batchSize > settings.maxBatchSize) {
    parseStepOptions(
      z.object({
        batchSize: z
          .number()
          .min(settings.minBatchSize, 'must be within [minBatchSize, maxBatchSize]')
          .max(settings.maxBatchSize, 'must be within [minBatchSize, maxBatchSize]'),
      }),
      { batchSize: settings.batchSize },
      label,
    );
  }
  return new BackfillRunner(driver, migration, options, settings);
}

type Settings = {
  readonly batchSize: number;
  readonly minBatchSize: number;
  readonly maxBatchSize: number;
  readonly targetBatchMs: number;
  readonly pauseRatio: number;
  readonly delayMs: number;
  readonly lockTimeoutMs: number;
  readonly statementTimeoutMs: number;
  readonly maxRetries: number;
  readonly ranges: number;
  readonly leaseMs: number;
  readonly workerId: string;
  readonly whenDone: 'rerun' | 'skip';
  readonly restart: boolean;
};

/** A claimed range. */
interface Claim {
  readonly rangeId: number;
}

/** A run's batch statement, rendered once: for a range's first batch, and after a cursor. */
interface BatchStatements {
  readonly first: string;
  readonly afterCursor: string;
}

/**
 * Short enough that an application write stuck behind a batch's row locks waits a few
 * milliseconds, rarely; long enough that per-batch costs (five round trips, the checkpoint)
 * stay small. Measured with bench/ part 4's load (1,000,000 rows, 500 ops/s): at 200 ms the
 * load's slowest operation took 40 to 60 ms, and waits on the batch's transaction were most
 * of its waits; at 25 ms lock waits were about a tenth as frequent and the slowest operation
 * took 5 to 20 ms in most runs, for about 6% less throughput.
 */
const DEFAULT_TARGET_BATCH_MS = 25;

/**
 * The pause after a batch, as a multiple of its duration. Back to back, batches keep a
 * server core busy, and on a small server that alone moves the application's slowest
 * requests: with bench/ part 4's load on two cores, in paired runs (not counting each
 * process's first backfill), batches with no pause raised the load's p99 1.2 to 4.4 times
 * its baseline (median 1.9, over 2 in three runs of eight), a pause of 0.3 times each batch
 * 1.1 to 2.0 times (median 1.5, eleven runs), at 0.42 to 0.69 of a single statement's
 * throughput.
 */
export const DEFAULT_PAUSE_RATIO = 0.3;

/** Thrown inside a batch transaction when the range is no longer ours: rolls it back. */
class LostRangeError extends Error {}

/**
 * The pause, in milliseconds, after a batch that took `batchMs`, rounded to a whole
 * millisecond: timers count whole ones (a fractional delay is cut short), so 7.5 waits 8
 * and anything under half a millisecond not at all.
 */
export function pauseAfterBatch(
  batchMs: number,
  settings: { readonly pauseRatio: number; readonly delayMs: number },
): number {
  return Math.round(settings.delayMs + settings.pauseRatio * batchMs);
}

/** Chooses the next batch size from the last one's duration, at most halving or doubling. */
export function nextBatchSize(
  size: number,
  durationMs: number,
  settings: { readonly targetBatchMs: number; readonly minBatchSize: number; readonly maxBatchSize: number },
): number {
  // Halving or doubling at most: one slow batch (a checkpoint, a cold cache) must not
  // collapse the size, and one fast one must not make the next batch hold locks too long.
  const factor = Math.min(2, Math.max(0.5, settings.targetBatchMs / Math.max(durationMs, 1e-3)));
  return Math.min(settings.maxBatchSize, Math.max(settings.minBatchSize, Math.round(size * factor)));
}

class BackfillRunner implements Backfill {
  readonly workerId: string;
  readonly #driver: Driver;
  readonly #migration: Migration;
  readonly #options: BackfillOptions;
  readonly #settings: Settings;
  readonly #schema: string;
  readonly #s: string;
  readonly #stop = new AbortController();
  #run: Promise<BackfillReport> | undefined;
  #state: BackfillState = 'idle';
  #paused = false;
  #resumeWaiters: (() => void)[] = [];
  #pass = 0;
  #rowsDone = 0;
  #rowsDoneAtStart = 0;
  #totalEstimate = 0;
  #workerRowsDone = 0;
  #workerRowsChanged = 0;
  #batchSize: number;
  #batches = 0;
  #retries = 0;
  #rangeCount = 0;
  #workerRangesDone = 0;
  #startedAt = 0;

  constructor(driver: Driver, migration: Migration, options: BackfillOptions, settings: Settings) {
    this.#driver = driver;
    this.#migration = migration;
    this.#options = options;
    this.#settings = settings;
    this.#schema = options.stateSchema ?? DEFAULT_STATE_SCHEMA;
    this.#s = quoteStateSchema(this.#schema);
    this.#batchSize = settings.batchSize;
    this.workerId = settings.workerId;
    const signal = options.signal;
    if (signal !== undefined) {
      if (signal.aborted) this.cancel();
      else signal.addEventListener('abort', () => this.cancel(), { once: true });
    }
  }

  get progress(): BackfillProgress {
    const elapsedMs = this.#startedAt === 0 ? 0 : performance.now() - this.#startedAt;
    const done = this.#rowsDone - this.#rowsDoneAtStart;
    const rowsPerSecond = elapsedMs > 0 ? (done * 1000) / elapsedMs : 0;
    const total = Math.max(this.#totalEstimate, this.#rowsDone);
    return {
      migration: this.#migration.name,
      workerId: this.workerId,
      state: this.#state,
      pass: this.#pass,
      rowsDone: this.#rowsDone,
      totalEstimate: total,
      workerRowsDone: this.#workerRowsDone,
      workerRowsChanged: this.#workerRowsChanged,
      rowsPerSecond,
      etaMs:
        this.#state === 'done' ? 0 : rowsPerSecond > 0 ? ((total - this.#rowsDone) * 1000) / rowsPerSecond : undefined,
      batchSize: this.#batchSize,
      batches: this.#batches,
      retries: this.#retries,
      rangeCount: this.#rangeCount,
      workerRangesDone: this.#workerRangesDone,
      elapsedMs,
    };
  }

  run(): Promise<BackfillReport> {
    // Whatever the database threw on the way (claiming a range, a checkpoint) reaches the
    // caller as a DriverError with its SQLSTATE, like every other database error.
    this.#run ??= this.#execute().catch((error: unknown) => {
      throw error instanceof FlagshiftError ? error : toDriverError(error);
    });
    return this.#run;
  }

  pause(): void {
    if (this.#paused || this.#isOver()) return;
    this.#paused = true;
    this.#setState('paused', 'paused');
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    const waiters = this.#resumeWaiters;
    this.#resumeWaiters = [];
    for (const wake of waiters) wake();
    if (!this.#isOver()) this.#setState(this.#run === undefined ? 'idle' : 'running', 'resumed');
  }

  cancel(): void {
    if (this.#stop.signal.aborted) return;
    this.#stop.abort();
    // A paused run must wake up to notice.
    const waiters = this.#resumeWaiters;
    this.#resumeWaiters = [];
    for (const wake of waiters) wake();
  }

  #isOver(): boolean {
    return this.#state === 'done' || this.#state === 'cancelled' || this.#state === 'failed';
  }

  get #cancelled(): boolean {
    return this.#stop.signal.aborted;
  }

  async #execute(): Promise<BackfillReport> {
    this.#startedAt = performance.now();
    if (this.#cancelled) {
      // Cancelled before it began: touch nothing, not even the state tables.
      this.#setState('cancelled', 'cancelled before it started');
      return this.#report('cancelled', false);
    }
    try {
      this.#setState('starting', 'starting');
      // The migration's columns first: a backfill refused before expand writes nothing, not even the state tables.
      const plan = await loadDataPlan(this.#driver, this.#migration);
      await ensureStateTables(this.#driver, this.#schema);
      const start = await this.#startOrJoin(plan);
      const statements: BatchStatements = { first: batchSql(plan, false), afterCursor: batchSql(plan, true) };
      if (start === 'skip') {
        this.#setState('done', 'the last pass is finished; nothing to do');
        return this.#report('done', true);
      }
      this.#rowsDoneAtStart = this.#rowsDone;
      this.#setState(this.#paused ? 'paused' : 'running', `pass ${this.#pass}: ${this.#rangeCount} ranges`);
      let waitingSince: number | undefined;
      while (!this.#cancelled) {
        await this.#whilePaused();
        if (this.#cancelled) break;
        const claim = await this.#claim();
        if (claim !== undefined) {
          waitingSince = undefined;
          if (this.#state === 'waiting') this.#setState('running', 'running');
          await this.#work(statements, claim);
          continue;
        }
        const remaining = await this.#remaining();
        if (remaining.open === 0) break;
        // Other workers hold the remaining ranges: wait, to take over a range whose worker died.
        if (waitingSince === undefined) {
          waitingSince = performance.now();
          this.#setState('waiting', `waiting for ${remaining.open} range(s) held by other workers`);
        }
        await sleep(Math.min(1000, Math.max(50, this.#settings.leaseMs / 4)), this.#stop.signal);
      }
      if (this.#cancelled) {
        await recordEvent(
          this.#driver,
          this.#migration.name,
          'backfill',
          { action: 'cancelled', pass: this.#pass, workerId: this.workerId, rowsDone: this.#workerRowsDone },
          this.#schema,
        );
        this.#setState('cancelled', `cancelled after ${this.#workerRowsDone} rows; a new run resumes`);
        return this.#report('cancelled', false);
      }
      await this.#finish();
      this.#setState('done', `done: ${this.#rowsDone} rows`);
      return this.#report('done', false);
    } catch (error) {
      this.#state = 'failed';
      emitEvent(this.#options, {
        type: 'backfill-failed',
        migration: this.#migration.name,
        message: `backfill failed: ${(error as Error).message}`,
        workerId: this.workerId,
        error,
      });
      throw error;
    }
  }

  /** Joins the migration's unfinished pass, or starts a new one under an advisory lock. */
  async #startOrJoin(plan: DataPlan): Promise<'joined' | 'started' | 'skip'> {
    const s = this.#s;
    const name = this.#migration.name;
    const outcome = await this.#driver.transaction(async (tx) => {
      // One worker at a time decides: the first cuts the ranges, the others join them.
      await tx.query('SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))', ['flagshift.backfill', name]);
      const found = await tx.query<{ status: string; pass: number; total_estimate: unknown; range_count: number }>(
        `SELECT status, pass, total_estimate, range_count FROM ${s}.backfill_checkpoints WHERE migration = $1`,
        [name],
      );
      const checkpoint = found.rows[0];
      if (checkpoint !== undefined && !this.#settings.restart) {
        if (checkpoint.status === 'running' || this.#settings.whenDone === 'skip') {
          this.#pass = Number(checkpoint.pass);
          this.#totalEstimate = Number(checkpoint.total_estimate);
          this.#rangeCount = Number(checkpoint.range_count);
          const sum = await tx.query<{ n: unknown }>(
            `SELECT coalesce(sum(rows_done), 0) AS n FROM ${s}.backfill_ranges WHERE migration = $1`,
            [name],
          );
          this.#rowsDone = Number(sum.rows[0]?.n ?? 0);
          return checkpoint.status === 'running' ? ('joined' as const) : ('skip' as const);
        }
      }
      const { upper, estimate, bounds } = await cutRanges(tx, plan, this.#settings.ranges);
      const ranges: { lower: unknown; upper: unknown }[] = [];
      if (upper !== null) {
        const uppers = [...bounds, upper];
        for (const [index, bound] of uppers.entries())
          ranges.push({ lower: index === 0 ? null : uppers[index - 1], upper: bound });
      }
      const inserted = await tx.query<{ pass: number }>(
        `INSERT INTO ${s}.backfill_checkpoints AS c
           (migration, status, pass, upper_key, range_count, total_estimate, rows_done, last_key, started_at, updated_at, finished_at)
         VALUES ($1, $2, 1, $3, $4, $5, 0, NULL, clock_timestamp(), clock_timestamp(), $6)
         ON CONFLICT (migration) DO UPDATE SET status = EXCLUDED.status, pass = c.pass + 1,
           upper_key = EXCLUDED.upper_key, range_count = EXCLUDED.range_count, total_estimate = EXCLUDED.total_estimate,
           rows_done = 0, last_key = NULL, started_at = EXCLUDED.started_at, updated_at = EXCLUDED.updated_at,
           finished_at = EXCLUDED.finished_at
         RETURNING pass`,
        [
          name,
          ranges.length === 0 ? 'done' : 'running',
          upper === null ? null : JSON.stringify(upper),
          ranges.length,
          estimate,
          ranges.length === 0 ? new Date() : null,
        ],
      );
      await tx.query(`DELETE FROM ${s}.backfill_ranges WHERE migration = $1`, [name]);
      if (ranges.length > 0) {
        await tx.query(
          `INSERT INTO ${s}.backfill_ranges (migration, range_id, lower_key, upper_key, status)
           SELECT $1, ord::int, nullif(r->'lower', 'null'::jsonb), r->'upper', 'pending'
             FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY AS x(r, ord)`,
          [name, JSON.stringify(ranges)],
        );
      }
      this.#pass = Number(inserted.rows[0]!.pass);
      this.#totalEstimate = estimate;
      this.#rangeCount = ranges.length;
      this.#rowsDone = 0;
      return 'started' as const;
    });
    if (outcome === 'started') {
      await recordEvent(
        this.#driver,
        name,
        'backfill',
        {
          action: 'started',
          pass: this.#pass,
          workerId: this.workerId,
          ranges: this.#rangeCount,
          totalEstimate: this.#totalEstimate,
        },
        this.#schema,
      );
    }
    emitEvent(this.#options, {
      type: 'backfill-pass',
      migration: name,
      message:
        outcome === 'started'
          ? `started pass ${this.#pass}: ${this.#rangeCount} ranges, about ${this.#totalEstimate} rows; ${this.#pacing()}`
          : outcome === 'joined'
            ? `joined pass ${this.#pass} (${this.#rowsDone} rows already done); ${this.#pacing()}`
            : `pass ${this.#pass} is finished`,
      outcome,
      pass: this.#pass,
      workerId: this.workerId,
    });
    return outcome;
  }

  /** How this worker paces its batches, for its pass event. */
  #pacing(): string {
    const { targetBatchMs, pauseRatio, delayMs } = this.#settings;
    const batches = `batches of about ${targetBatchMs} ms`;
    if (this.#options.throttle !== undefined) return `${batches}, each followed by the throttle hook`;
    const pauses = [...(pauseRatio > 0 ? [`${pauseRatio}x its time`] : []), ...(delayMs > 0 ? [`${delayMs} ms`] : [])];
    return pauses.length === 0
      ? `${batches}, back to back`
      : `${batches}, each followed by a pause of ${pauses.join(' + ')}`;
  }

  /** Claims a pending range, or one whose lease lapsed, or our own again. */
  async #claim(): Promise<Claim | undefined> {
    const s = this.#s;
    const claimed = await this.#driver.query<{ range_id: number; previous: string | null; last_key: unknown }>(
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
       RETURNING r.range_id, c.previous, r.last_key`,
      [this.#migration.name, this.workerId, this.#settings.leaseMs],
    );
    const row = claimed.rows[0];
    if (row === undefined) return undefined;
    const rangeId = Number(row.range_id);
    const takenOver = row.previous !== null && row.previous !== this.workerId;
    emitEvent(this.#options, {
      type: 'backfill-claim',
      migration: this.#migration.name,
      message: takenOver
        ? `took over range ${rangeId} from ${row.previous}, whose lease lapsed`
        : `claimed range ${rangeId}${row.last_key == null ? '' : ' (resuming after its last key)'}`,
      workerId: this.workerId,
      rangeId,
      takenOver,
    });
    return { rangeId };
  }

  async #remaining(): Promise<{ open: number }> {
    const result = await this.#driver.query<{ open: number }>(
      `SELECT count(*) FILTER (WHERE status <> 'done')::int AS open FROM ${this.#s}.backfill_ranges WHERE migration = $1`,
      [this.#migration.name],
    );
    return { open: Number(result.rows[0]?.open ?? 0) };
  }

  /** Runs batches over a claimed range until it is done, lost or the backfill stops. */
  async #work(statements: BatchStatements, claim: Claim): Promise<void> {
    let attempts = 0;
    while (true) {
      await this.#whilePaused();
      if (this.#cancelled) {
        await this.#release(claim);
        return;
      }
      const size = this.#batchSize;
      const started = performance.now();
      let outcome: { scanned: number; changed: number; done: boolean; totalDone: number };
      try {
        outcome = await this.#batch(statements, claim, size);
      } catch (error) {
        if (error instanceof LostRangeError) {
          emitEvent(this.#options, {
            type: 'backfill-range-lost',
            migration: this.#migration.name,
            message: `range ${claim.rangeId} was taken over by another worker after this one's lease lapsed`,
            workerId: this.workerId,
            rangeId: claim.rangeId,
          });
          return;
        }
        const sqlState = sqlStateOf(error);
        const retryable = sqlState !== undefined && RETRYABLE_SQLSTATES.has(sqlState);
        if ((retryable || isConnectionLost(error)) && attempts < this.#settings.maxRetries) {
          attempts++;
          this.#retries++;
          // A batch that timed out, deadlocked or failed to serialize is retried smaller; one
          // whose connection was lost, as it was.
          if (retryable) this.#batchSize = Math.max(1, Math.floor(size / 2));
          emitEvent(this.#options, {
            type: 'backfill-retry',
            migration: this.#migration.name,
            message: `batch of ${size} rows failed with ${sqlState ?? 'a lost connection'}; retrying with ${this.#batchSize} rows (attempt ${attempts})`,
            workerId: this.workerId,
            sqlState,
            fromSize: size,
            toSize: this.#batchSize,
            attempt: attempts,
          });
          // Backoff with jitter: whatever held the lock gets time to finish.
          await sleep(Math.min(2000, 25 * 2 ** attempts) * (0.5 + Math.random() / 2), this.#stop.signal);
          continue;
        }
        await this.#release(claim).catch(() => undefined);
        throw toDriverError(error);
      }
      attempts = 0;
      const batchMs = performance.now() - started;
      this.#batches++;
      this.#workerRowsDone += outcome.scanned;
      this.#workerRowsChanged += outcome.changed;
      this.#rowsDone = Math.max(this.#rowsDone, outcome.totalDone);
      this.#batchSize = nextBatchSize(size, batchMs, this.#settings);
      if (outcome.done) this.#workerRangesDone++;
      const progress = this.progress;
      this.#notify(progress);
      emitEvent(this.#options, {
        type: 'backfill-batch',
        migration: this.#migration.name,
        message: `${progress.rowsDone}/${progress.totalEstimate} rows (${Math.round(progress.rowsPerSecond)} rows/s)`,
        workerId: this.workerId,
        rangeId: claim.rangeId,
        rows: outcome.scanned,
        changed: outcome.changed,
        batchMs,
        nextBatchSize: this.#batchSize,
        rowsDone: progress.rowsDone,
        totalEstimate: progress.totalEstimate,
        rowsPerSecond: progress.rowsPerSecond,
        etaMs: progress.etaMs,
      });
      if (outcome.done) return;
      await this.#throttle(outcome.scanned, batchMs);
    }
  }

  /**
   * One batch, in one transaction: renew the lease (which also proves the range is still
   * ours and locks its row), fill the next keys, advance the range's last key.
   */
  async #batch(
    statements: BatchStatements,
    claim: Claim,
    size: number,
  ): Promise<{ scanned: number; changed: number; done: boolean; totalDone: number }> {
    const s = this.#s;
    const name = this.#migration.name;
    return this.#driver.transaction(async (tx) => {
      // The batch's timeouts are set (for the rest of this transaction) by the statement
      // that renews the lease: joined to it, they are in force before the range row is
      // locked, and the batch costs one round trip less.
      const owned = await tx.query<{ cursor: unknown; upper_key: unknown }>(
        `WITH timeouts AS MATERIALIZED (
           SELECT set_config('lock_timeout', $5, true) AS lock_timeout, set_config('statement_timeout', $6, true) AS statement_timeout)
         UPDATE ${s}.backfill_ranges SET lease_until = clock_timestamp() + $4::int * interval '1 millisecond'
           FROM timeouts
          WHERE migration = $1 AND range_id = $2 AND owner = $3 AND status = 'running'
          RETURNING coalesce(last_key, lower_key) AS cursor, upper_key`,
        [
          name,
          claim.rangeId,
          this.workerId,
          this.#settings.leaseMs,
          `${this.#settings.lockTimeoutMs}ms`,
          `${this.#settings.statementTimeoutMs}ms`,
        ],
      );
      const range = owned.rows[0];
      if (range === undefined) throw new LostRangeError();
      const cursor = parseJson(range.cursor) as unknown[] | null;
      const params: unknown[] = [JSON.stringify(parseJson(range.upper_key)), size];
      if (cursor !== null) params.push(JSON.stringify(cursor));
      const result = await tx.query<{ scanned: number; changed: number; last_key: unknown }>(
        cursor === null ? statements.first : statements.afterCursor,
        params,
      );
      const row = result.rows[0]!;
      const scanned = Number(row.scanned);
      const changed = Number(row.changed);
      const lastKey = parseJson(row.last_key) as unknown[] | null;
      const done = scanned < size;
      const advanced = await tx.query<{ before: unknown }>(
        `UPDATE ${s}.backfill_ranges
            SET last_key = coalesce($3::jsonb, last_key), rows_done = rows_done + $4, rows_changed = rows_changed + $5,
                batches = batches + 1, updated_at = clock_timestamp(),
                status = CASE WHEN $6::boolean THEN 'done' ELSE 'running' END,
                lease_until = CASE WHEN $6::boolean THEN NULL ELSE lease_until END
          WHERE migration = $1 AND range_id = $2
          RETURNING (SELECT coalesce(sum(rows_done), 0) FROM ${s}.backfill_ranges WHERE migration = $1) AS before`,
        [name, claim.rangeId, lastKey === null ? null : JSON.stringify(lastKey), scanned, changed, done],
      );
      // The sum was read before this statement's own change.
      const totalDone = Number(advanced.rows[0]?.before ?? 0) + scanned;
      if (done) {
        // The checkpoint row is touched once per range, not per batch: workers never queue on it.
        await tx.query(
          `UPDATE ${s}.backfill_checkpoints SET updated_at = clock_timestamp(),
              rows_done = (SELECT coalesce(sum(rows_done), 0) FROM ${s}.backfill_ranges WHERE migration = $1),
              last_key = (SELECT r.upper_key FROM ${s}.backfill_ranges r
                           WHERE r.migration = $1 AND r.status = 'done' AND NOT EXISTS (
                             SELECT 1 FROM ${s}.backfill_ranges q
                              WHERE q.migration = $1 AND q.range_id < r.range_id AND q.status <> 'done')
                           ORDER BY r.range_id DESC LIMIT 1)
            WHERE migration = $1`,
          [name],
        );
      }
      return { scanned, changed, done, totalDone };
    });
  }

  /** Gives a claimed range back (keeping its last key) so another worker can go on at once. */
  async #release(claim: Claim): Promise<void> {
    await this.#driver.query(
      `UPDATE ${this.#s}.backfill_ranges SET owner = NULL, lease_until = NULL, status = 'pending', updated_at = clock_timestamp()
        WHERE migration = $1 AND range_id = $2 AND owner = $3 AND status = 'running'`,
      [this.#migration.name, claim.rangeId, this.workerId],
    );
  }

  /** Marks the pass done when every range is; the worker that flips it records the event. */
  async #finish(): Promise<void> {
    const s = this.#s;
    const finished = await this.#driver.query<{ pass: number; rows_done: unknown; rows_changed: unknown }>(
      `UPDATE ${s}.backfill_checkpoints SET status = 'done', finished_at = clock_timestamp(), updated_at = clock_timestamp(),
          rows_done = (SELECT coalesce(sum(rows_done), 0) FROM ${s}.backfill_ranges WHERE migration = $1),
          last_key = upper_key
        WHERE migration = $1 AND status = 'running'
          AND NOT EXISTS (SELECT 1 FROM ${s}.backfill_ranges WHERE migration = $1 AND status <> 'done')
        RETURNING pass, rows_done,
          (SELECT coalesce(sum(rows_changed), 0) FROM ${s}.backfill_ranges WHERE migration = $1) AS rows_changed`,
      [this.#migration.name],
    );
    const total = await this.#driver.query<{ n: unknown }>(
      `SELECT coalesce(sum(rows_done), 0) AS n FROM ${s}.backfill_ranges WHERE migration = $1`,
      [this.#migration.name],
    );
    this.#rowsDone = Number(total.rows[0]?.n ?? this.#rowsDone);
    const row = finished.rows[0];
    if (row !== undefined) {
      await recordEvent(
        this.#driver,
        this.#migration.name,
        'backfill',
        {
          action: 'finished',
          pass: Number(row.pass),
          rowsDone: Number(row.rows_done),
          rowsChanged: Number(row.rows_changed),
          workerId: this.workerId,
        },
        this.#schema,
      );
    }
  }

  async #throttle(batchRows: number, batchMs: number): Promise<void> {
    const hook = this.#options.throttle;
    if (hook !== undefined) {
      await hook({
        migration: this.#migration.name,
        workerId: this.workerId,
        batchRows,
        batchMs,
        batchSize: this.#batchSize,
        rowsDone: this.#rowsDone,
        signal: this.#stop.signal,
      });
      return;
    }
    await sleep(pauseAfterBatch(batchMs, this.#settings), this.#stop.signal);
  }

  async #whilePaused(): Promise<void> {
    while (this.#paused && !this.#cancelled) {
      await new Promise<void>((resolve) => this.#resumeWaiters.push(resolve));
    }
  }

  #setState(state: BackfillState, message: string): void {
    this.#state = state;
    emitEvent(this.#options, {
      type: `backfill-${state}`,
      migration: this.#migration.name,
      message,
      workerId: this.workerId,
    });
    this.#notify(this.progress);
  }

  #notify(progress: BackfillProgress): void {
    try {
      this.#options.onProgress?.(progress);
    } catch {
      // A broken progress display must not stop the backfill.
    }
  }

  #report(status: 'done' | 'cancelled', skipped: boolean): BackfillReport {
    return {
      migration: this.#migration.name,
      workerId: this.workerId,
      status,
      pass: this.#pass,
      rowsDone: this.#workerRowsDone,
      rowsChanged: this.#workerRowsChanged,
      totalRowsDone: this.#rowsDone,
      batches: this.#batches,
      retries: this.#retries,
      rangeCount: this.#rangeCount,
      durationMs: performance.now() - this.#startedAt,
      skipped,
    };
  }
}
