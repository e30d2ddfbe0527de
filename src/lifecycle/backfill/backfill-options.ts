/**
 * The options of a backfill, what each must be, and the settings they resolve to (each
 * option with its default), checked once when the backfill is created.
 */

import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { z } from 'zod';
import { parseOptions, type Queryable } from '../../kernel/index.js';
import type { Migration } from '../../model/index.js';
import { type LifecycleOptions, lifecycleOptionExpectations, lifecycleOptionsShape } from '../state/index.js';
import type { HealthLimits } from './health.js';
import { DEFAULT_MAX_PAUSE_RATIO, DEFAULT_TARGET_BATCH_MS } from './pacing.js';

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
   * @default 10
   */
  readonly targetBatchMs?: number;
  /**
   * A fixed pause after each batch, as a multiple of that batch's duration (rounded to a
   * whole millisecond), instead of the adaptive one: at 0.3 a worker waits 3 ms after a
   * 10 ms batch, whatever the server is doing; 0 runs batches back to back. Added to
   * `delayMs`; ignored when `throttle` is given.
   * @default none: the pause adapts (see `maxPauseRatio`)
   */
  readonly pauseRatio?: number;
  /**
   * The most the adaptive pause waits after a batch, as a multiple of the batch's
   * duration. The pause follows evidence that the backfill is in the application's way,
   * and is 0 without any, so on an idle server batches run back to back: a batch that ran
   * `s` times slower per row than the fastest of the last 100 (over 1.25 times: the server
   * is busy, with the application or anything else) is followed by `s - 1` times its
   * duration, the time the contention cost it; with `latencyMs`, a reading over half of
   * `maxLatencyMs` lengthens the pause towards this maximum at the limit. (After a
   * range's last batch a worker claims the next range at once.) Not with `pauseRatio`;
   * ignored when `throttle` is given.
   * @default 1
   */
  readonly maxPauseRatio?: number;
  /** Fixed pause after each batch, in milliseconds, added to the pause (ignored when `throttle` is given). @default 0 */
  readonly delayMs?: number;
  /**
   * Called after every batch; the next batch waits for it. Use it for what the built-in
   * health checks (`replicas`, `maxTransactionAgeMs`, `maxLockWaitMs`, `latencyMs`, which
   * still apply) don't see: business hours, a queue's depth, another service's load.
   * @default none: the pause (adaptive, or `pauseRatio`) and `delayMs` apply
   */
  readonly throttle?: (info: BackfillThrottleInfo) => Promise<void> | void;
  /**
   * Replicas whose replay lag the backfill yields to, each a connection to the standby
   * (`createPgDriver(replicaPool)`). The lag is read on the replica itself, so cascaded
   * standbys and ones not connected right now count too; a replica that does not answer
   * holds the backfill until it does.
   * @default none: only the primary's streaming standbys (see `standbys`)
   */
  readonly replicas?: readonly Queryable[];
  /**
   * Also yield to the replay lag of every standby streaming from the primary, as the
   * primary sees it (`pg_stat_replication.replay_lag`, readable with `pg_read_all_stats`).
   * @default true
   */
  readonly standbys?: boolean;
  /**
   * Pause while a replica's replay is further behind than this, in milliseconds (`false`:
   * never). gh-ost keeps its replicas within about a second (`--max-lag-millis`), which
   * keeps reads from replicas close to fresh.
   * @default 1000
   */
  readonly maxReplicaLagMs?: number | false;
  /**
   * Pause while a transaction on the primary has been open longer than this, in
   * milliseconds (`false`: never). Its snapshot keeps vacuum from removing the old row
   * version every changed row leaves, so a backfill under it only grows the table.
   * @default 300000
   */
  readonly maxTransactionAgeMs?: number | false;
  /**
   * Pause while a session waiting on a lock, of the table or of a row in it, has waited
   * longer than this, in milliseconds (`false`: never). Half a batch's `lockTimeoutMs`: a
   * queue of writers, or a DDL statement, gets the table before the batches time out.
   * @default 500
   */
  readonly maxLockWaitMs?: number | false;
  /**
   * The application's latency, in milliseconds (say its p99 over the last seconds), read
   * with the database's health; `undefined` or a throw counts as no reading.
   * @default none
   */
  readonly latencyMs?: () => number | undefined | Promise<number | undefined>;
  /**
   * Pause while `latencyMs()` reads higher than this; required with `latencyMs`. From half
   * of it up, the adaptive pause after each batch grows towards `maxPauseRatio`.
   * @default none
   */
  readonly maxLatencyMs?: number;
  /** How often the health is read between batches, and while paused for it, in milliseconds. @default 500 */
  readonly healthCheckMs?: number;
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
export type BackfillState =
  | 'idle'
  | 'starting'
  | 'running'
  | 'paused'
  | 'throttled'
  | 'waiting'
  | 'cancelled'
  | 'done'
  | 'failed';

/** Where a backfill stands, as this worker sees it. */
export interface BackfillProgress {
  readonly migration: string;
  readonly workerId: string;
  readonly state: BackfillState;
  /** While `throttled`, why: `replica lag 1.8 s > 1 s`. */
  readonly throttledBy: string | undefined;
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
  /** Goes on after {@link Backfill.pause}. */
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
  maxPauseRatio: z.number().min(0).max(100).optional(),
  delayMs: z.number().min(0).optional(),
  throttle: z.function().optional(),
  replicas: z
    .array(z.custom<Queryable>((value) => typeof (value as Partial<Queryable>)?.query === 'function'))
    .optional(),
  standbys: z.boolean().optional(),
  maxReplicaLagMs: z.union([z.number().positive(), z.literal(false)]).optional(),
  maxTransactionAgeMs: z.union([z.number().positive(), z.literal(false)]).optional(),
  maxLockWaitMs: z.union([z.number().positive(), z.literal(false)]).optional(),
  latencyMs: z.function().optional(),
  maxLatencyMs: z.number().positive().optional(),
  healthCheckMs: z.number().int().min(1).max(600_000).optional(),
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

const EXPECTED = {
  ...lifecycleOptionExpectations,
  batchSize: 'an integer of at least 1',
  minBatchSize: 'an integer of at least 1',
  maxBatchSize: 'an integer from 1 to 1000000',
  targetBatchMs: 'a positive number',
  pauseRatio: 'a number from 0 to 100',
  maxPauseRatio: 'a number from 0 to 100',
  delayMs: 'a number of at least 0',
  throttle: 'a function',
  replicas: 'an array of drivers (objects with a query method)',
  standbys: 'a boolean',
  maxReplicaLagMs: 'a positive number or false',
  maxTransactionAgeMs: 'a positive number or false',
  maxLockWaitMs: 'a positive number or false',
  latencyMs: 'a function',
  maxLatencyMs: 'a positive number',
  healthCheckMs: 'an integer from 1 to 600000',
  lockTimeoutMs: 'an integer of at least 1',
  statementTimeoutMs: 'an integer of at least 1',
  maxRetries: 'an integer of at least 0',
  ranges: 'an integer from 1 to 10000',
  leaseMs: 'an integer of at least 100',
  workerId: 'a string of 1 to 200 characters',
  whenDone: '"rerun" or "skip"',
  restart: 'a boolean',
  signal: 'an AbortSignal',
  onProgress: 'a function',
};

/** A backfill's options with their defaults. */
export type BackfillSettings = HealthLimits & {
  readonly standbys: boolean;
  readonly healthCheckMs: number;
  readonly batchSize: number;
  readonly minBatchSize: number;
  readonly maxBatchSize: number;
  readonly targetBatchMs: number;
  /** A fixed pause ratio; `undefined`: the pause adapts, up to `maxPauseRatio`. */
  readonly pauseRatio: number | undefined;
  readonly maxPauseRatio: number;
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

/**
 * Checks `options` of a backfill of `migration` and resolves their defaults. Throws a
 * {@link ConfigurationError} naming the option and its value.
 */
export function backfillSettings(migration: Migration, options: BackfillOptions): BackfillSettings {
  const subject = `backfill of migration "${migration.name}"`;
  const parsed = parseOptions(subject, optionsSchema, options ?? {}, EXPECTED);
  const settings = {
    batchSize: parsed.batchSize ?? 1000,
    // A chosen first batch size widens the default bounds rather than contradicting them.
    minBatchSize: parsed.minBatchSize ?? Math.min(10, parsed.batchSize ?? 10),
    maxBatchSize: parsed.maxBatchSize ?? Math.max(10_000, parsed.batchSize ?? 10_000),
    targetBatchMs: parsed.targetBatchMs ?? DEFAULT_TARGET_BATCH_MS,
    pauseRatio: parsed.pauseRatio,
    maxPauseRatio: parsed.maxPauseRatio ?? DEFAULT_MAX_PAUSE_RATIO,
    delayMs: parsed.delayMs ?? 0,
    lockTimeoutMs: parsed.lockTimeoutMs ?? 1000,
    statementTimeoutMs: parsed.statementTimeoutMs ?? 30_000,
    maxRetries: parsed.maxRetries ?? 10,
    ranges: parsed.ranges ?? 32,
    leaseMs: parsed.leaseMs ?? 15_000,
    workerId: parsed.workerId ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`,
    whenDone: parsed.whenDone ?? 'rerun',
    restart: parsed.restart ?? false,
    standbys: parsed.standbys ?? true,
    maxReplicaLagMs: limit(parsed.maxReplicaLagMs, 1000),
    maxTransactionAgeMs: limit(parsed.maxTransactionAgeMs, 300_000),
    maxLockWaitMs: limit(parsed.maxLockWaitMs, 500),
    maxLatencyMs: parsed.maxLatencyMs ?? Number.POSITIVE_INFINITY,
    healthCheckMs: parsed.healthCheckMs ?? 500,
  };
  if (parsed.latencyMs !== undefined && parsed.maxLatencyMs === undefined) {
    parseOptions(subject, z.object({ maxLatencyMs: z.number() }), options, {
      maxLatencyMs: 'a positive number when latencyMs is given',
    });
  }
  if (parsed.pauseRatio !== undefined && parsed.maxPauseRatio !== undefined) {
    parseOptions(subject, z.object({ maxPauseRatio: z.undefined() }), options, {
      maxPauseRatio: 'left out with pauseRatio (a fixed pause does not adapt)',
    });
  }
  if (settings.minBatchSize > settings.maxBatchSize) {
    parseOptions(subject, z.object({ minBatchSize: z.number().max(settings.maxBatchSize) }), options, {
      minBatchSize: 'at most maxBatchSize',
    });
  }
  if (settings.batchSize < settings.minBatchSize || settings.batchSize > settings.maxBatchSize) {
    parseOptions(
      subject,
      z.object({ batchSize: z.number().min(settings.minBatchSize).max(settings.maxBatchSize) }),
      { batchSize: settings.batchSize },
      { batchSize: 'within [minBatchSize, maxBatchSize]' },
    );
  }
  return settings;
}

/** A health limit: `false` turns it off (never exceeded), absent takes the default. */
function limit(value: number | false | undefined, fallback: number): number {
  return value === false ? Number.POSITIVE_INFINITY : (value ?? fallback);
}
