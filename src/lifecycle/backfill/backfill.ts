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
 * - Durable: the key space is cut into ranges (each a row of the state tables); a batch
 *   and the advance of its range's last key commit in one transaction, so a process
 *   killed at any moment resumes where it stopped, skipping nothing.
 * - Shared: workers (threads of one process or many processes) claim ranges with
 *   `FOR UPDATE SKIP LOCKED` and hold them by a lease renewed with every batch; a range
 *   whose worker died is taken over when its lease expires.
 */

import { type Driver, FlagshiftError, toDriverError } from '../../kernel/index.js';
import type { Migration } from '../../model/index.js';
import {
  claimRange,
  DEFAULT_STATE_SCHEMA,
  emitEvent,
  ensureStateTables,
  finishPass,
  lockPassStart,
  openRangeCount,
  passRowsDone,
  readCheckpoint,
  recordEvent,
  releaseRange,
  startPass,
} from '../state/index.js';
import {
  type Backfill,
  type BackfillOptions,
  type BackfillProgress,
  type BackfillReport,
  type BackfillSettings,
  type BackfillState,
  backfillSettings,
} from './backfill-options.js';
import {
  isConnectionLost,
  LostRangeError,
  RETRYABLE_SQLSTATES,
  refuseInsideTransaction,
  sqlStateOf,
} from './batch-errors.js';
import { sendBatch } from './batch-round-trip.js';
import { type BatchStatements, batchStatements } from './batch-sql.js';
import { cutRanges } from './cut-ranges.js';
import { loadDataPlan } from './data-plan.js';
import { type HealthBreach, HealthGate } from './health.js';
import { nextBatchSize, type Pause, pacingSummary, pauseAfterBatch, RecentFloor, sleep } from './pacing.js';
import type { DataPlan } from './types.js';

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
  return new BackfillRunner(driver, migration, options, backfillSettings(migration, options));
}

/** A claimed range. */
interface Claim {
  readonly rangeId: number;
  /** The range's upper key, inclusive. */
  readonly upper: unknown;
  /** The key its next batch starts after (`null`: the start of the first range). */
  cursor: unknown[] | null;
}

class BackfillRunner implements Backfill {
  readonly workerId: string;
  readonly #driver: Driver;
  readonly #migration: Migration;
  readonly #options: BackfillOptions;
  readonly #settings: BackfillSettings;
  readonly #schema: string;
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
  #throttledBy: string | undefined;
  #health: HealthGate | undefined;
  readonly #floor = new RecentFloor();

  constructor(driver: Driver, migration: Migration, options: BackfillOptions, settings: BackfillSettings) {
    this.#driver = driver;
    this.#migration = migration;
    this.#options = options;
    this.#settings = settings;
    this.#schema = options.stateSchema ?? DEFAULT_STATE_SCHEMA;
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
      throttledBy: this.#state === 'throttled' ? this.#throttledBy : undefined,
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
      refuseInsideTransaction(this.#driver, this.#migration.name);
      // The migration's columns first: a backfill refused before expand writes nothing, not even the state tables.
      const plan = await loadDataPlan(this.#driver, this.#migration);
      const { replicas = [], latencyMs: latency } = this.#options;
      const sources = { primary: this.#driver, table: plan.table.quoted, replicas, latency };
      this.#health = new HealthGate({ ...sources, standbys: this.#settings.standbys }, this.#settings);
      await ensureStateTables(this.#driver, this.#schema);
      const start = await this.#startOrJoin(plan);
      const statements = batchStatements(plan, this.#schema);
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
    const schema = this.#schema;
    const name = this.#migration.name;
    const outcome = await this.#driver.transaction(async (tx) => {
      // One worker at a time decides: the first cuts the ranges, the others join them.
      await lockPassStart(tx, name);
      const checkpoint = await readCheckpoint(tx, schema, name);
      if (checkpoint !== undefined && !this.#settings.restart) {
        if (checkpoint.status === 'running' || this.#settings.whenDone === 'skip') {
          this.#pass = checkpoint.pass;
          this.#totalEstimate = checkpoint.totalEstimate;
          this.#rangeCount = checkpoint.rangeCount;
          this.#rowsDone = await passRowsDone(tx, schema, name);
          return checkpoint.status === 'running' ? ('joined' as const) : ('skip' as const);
        }
      }
      const { upper, estimate, ranges } = await cutRanges(tx, plan, this.#settings.ranges);
      this.#pass = await startPass(tx, schema, name, { upper, estimate, ranges });
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
          ? `started pass ${this.#pass}: ${this.#rangeCount} ranges, about ${this.#totalEstimate} rows; ${pacingSummary(this.#settings, this.#options.throttle !== undefined)}`
          : outcome === 'joined'
            ? `joined pass ${this.#pass} (${this.#rowsDone} rows already done); ${pacingSummary(this.#settings, this.#options.throttle !== undefined)}`
            : `pass ${this.#pass} is finished`,
      outcome,
      pass: this.#pass,
      workerId: this.workerId,
    });
    return outcome;
  }

  /** Waits while the database or the application is under strain; says why, and when it resumes. */
  async #yieldToHealth(): Promise<void> {
    const onBreach = (breach: HealthBreach) => {
      const first = this.#state !== 'throttled';
      this.#throttledBy = breach.message;
      if (first) this.#setState('throttled', `paused: ${breach.message}`);
      else this.#notify(this.progress);
    };
    const onClear = (afterMs: number) => {
      this.#setState(
        this.#paused ? 'paused' : 'running',
        `resumed after ${Math.round(afterMs)} ms paused (${this.#throttledBy})`,
      );
      this.#throttledBy = undefined;
    };
    await this.#health?.pass(this.#stop.signal, onBreach, onClear);
  }

  /** Claims a pending range, or one whose lease lapsed, or our own again. */
  async #claim(): Promise<Claim | undefined> {
    const claimed = await claimRange(
      this.#driver,
      this.#schema,
      this.#migration.name,
      this.workerId,
      this.#settings.leaseMs,
    );
    if (claimed === undefined) return undefined;
    const { rangeId, previousOwner } = claimed;
    const takenOver = previousOwner !== null && previousOwner !== this.workerId;
    emitEvent(this.#options, {
      type: 'backfill-claim',
      migration: this.#migration.name,
      message: takenOver
        ? `took over range ${rangeId} from ${previousOwner}, whose lease lapsed`
        : `claimed range ${rangeId}${claimed.resumed ? ' (resuming after its last key)' : ''}`,
      workerId: this.workerId,
      rangeId,
      takenOver,
    });
    return { rangeId, upper: claimed.upper, cursor: claimed.cursor };
  }

  async #remaining(): Promise<{ open: number }> {
    return { open: await openRangeCount(this.#driver, this.#schema, this.#migration.name) };
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
      await this.#yieldToHealth();
      if (this.#cancelled || this.#paused) continue;
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
      if (outcome.done) this.#workerRangesDone++;
      // A range's last batch, smaller than asked for, is no measure of the server's pace.
      else this.#batchSize = nextBatchSize(size, batchMs, this.#settings);
      const floorMsPerRow = outcome.done ? this.#floor.floor : this.#floor.add(batchMs / outcome.scanned);
      // After a range's last batch the worker claims the next range at once.
      const pause = outcome.done ? undefined : this.#pause(outcome.scanned, batchMs, floorMsPerRow);
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
        pauseMs: pause?.ms,
        pauseCause: pause?.cause,
        rowsDone: progress.rowsDone,
        totalEstimate: progress.totalEstimate,
        rowsPerSecond: progress.rowsPerSecond,
        etaMs: progress.etaMs,
      });
      if (outcome.done) return;
      await this.#throttle(outcome.scanned, batchMs, pause);
    }
  }

  /**
   * One batch ({@link sendBatch}). A batch that finds its range moved on (one that committed
   * as its answer was lost) wrote nothing, and runs again from there, once.
   */
  async #batch(
    statements: BatchStatements,
    claim: Claim,
    size: number,
    resent = false,
  ): Promise<{ scanned: number; changed: number; done: boolean; totalDone: number }> {
    const { rangeId, upper, cursor } = claim;
    const at = { migration: this.#migration.name, rangeId, workerId: this.workerId, upper, cursor, size };
    const outcome = await sendBatch(this.#driver, this.#schema, statements, at, this.#settings);
    if (outcome.kind === 'lost' || (outcome.kind === 'moved' && resent)) throw new LostRangeError();
    if (outcome.kind === 'moved') {
      claim.cursor = outcome.cursor;
      return this.#batch(statements, claim, size, true);
    }
    const { scanned, changed } = outcome;
    if (outcome.lastKey !== null) claim.cursor = outcome.lastKey;
    // As the statement decided it (fewer rows than asked for).
    return { scanned, changed, done: scanned < size, totalDone: outcome.rowsBefore + scanned };
  }

  /** Gives a claimed range back (keeping its last key) so another worker can go on at once. */
  async #release(claim: Claim): Promise<void> {
    await releaseRange(this.#driver, this.#schema, this.#migration.name, claim.rangeId, this.workerId);
  }

  /** Marks the pass done when every range is; the worker that flips it records the event. */
  async #finish(): Promise<void> {
    const finished = await finishPass(this.#driver, this.#schema, this.#migration.name);
    this.#rowsDone = await passRowsDone(this.#driver, this.#schema, this.#migration.name);
    if (finished !== undefined) {
      await recordEvent(
        this.#driver,
        this.#migration.name,
        'backfill',
        {
          action: 'finished',
          pass: finished.pass,
          rowsDone: finished.rowsDone,
          rowsChanged: finished.rowsChanged,
          workerId: this.workerId,
        },
        this.#schema,
      );
    }
  }

  /** The pause after a full batch (none when a `throttle` hook decides instead). */
  #pause(rows: number, batchMs: number, floorMsPerRow: number | undefined): Pause | undefined {
    if (this.#options.throttle !== undefined) return undefined;
    return pauseAfterBatch({ batchMs, rows, floorMsPerRow, latencyMs: this.#health?.latencyMs }, this.#settings);
  }

  /** Waits after a batch: for the throttle hook when there is one, else for `pause`. */
  async #throttle(batchRows: number, batchMs: number, pause: Pause | undefined): Promise<void> {
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
    if (pause !== undefined) await sleep(pause.ms, this.#stop.signal);
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
