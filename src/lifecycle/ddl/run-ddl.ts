/**
 * Runs schema changes without stalling the application. Every statement runs under a
 * short `lock_timeout`: an `ALTER TABLE` queued behind a long transaction would otherwise
 * block every query on the table behind it for as long as it waits. A statement that
 * times out on a lock is retried with exponential backoff and full jitter, and an
 * interrupted `CREATE INDEX CONCURRENTLY` (which leaves an invalid index behind) is
 * cleaned up before the next attempt.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { loadIndexValidity } from '../../catalog/index.js';
import {
  type Driver,
  DriverError,
  FlagshiftError,
  parseOptions,
  type Queryable,
  toDriverError,
} from '../../kernel/index.js';
import {
  emitEvent,
  type LifecycleOptions,
  lifecycleOptionExpectations,
  lifecycleOptionsShape,
} from '../state/index.js';

/** One schema change: a single SQL statement and how to run it. */
export interface DdlStep {
  /** Which half of the lifecycle the step belongs to. */
  readonly phase: 'expand' | 'contract';
  /** What the step does, for logs and plans: `add column "users"."username"`. */
  readonly description: string;
  /** Exactly one SQL statement. */
  readonly sql: string;
  /** Whether it runs in a transaction; false for `CREATE/DROP INDEX CONCURRENTLY`. */
  readonly transactional: boolean;
  /** Whether it adds new columns (empty until the backfill fills them). */
  readonly addsColumns?: boolean;
  /**
   * Whether it only brings up to date an object an earlier flagshift created (a sync
   * trigger without the backfill's skip condition): the migration works without it.
   */
  readonly refresh?: boolean;
  /** SQL (or, when no SQL can undo it, an instruction) that reverses the step. */
  readonly rollback?: string;
}

/** Options of `runDdl`. */
export interface DdlOptions extends LifecycleOptions {
  /** `lock_timeout` of every statement, in milliseconds. @default 500 */
  readonly lockTimeoutMs?: number;
  /** `statement_timeout` of every statement, in milliseconds; 0 means none. @default 60000 */
  readonly statementTimeoutMs?: number;
  /** Attempts per step when it times out on a lock (SQLSTATE 55P03) or deadlocks (40P01). @default 8 */
  readonly maxAttempts?: number;
  /** Backoff before the second attempt; it doubles with each further attempt. @default 100 */
  readonly baseDelayMs?: number;
  /** Upper bound of the backoff. The wait is a random time between 0 and the bound (full jitter). @default 5000 */
  readonly maxDelayMs?: number;
  /** Return the SQL that would run, in order, and run nothing (not even the settings). @default false */
  readonly dryRun?: boolean;
  /** Migration named in the events. @default '' */
  readonly migration?: string;
}

/** What happened to one step. */
export interface DdlStepReport {
  readonly step: DdlStep;
  /** Attempts made; 0 in a dry run. */
  readonly attempts: number;
  /**
   * Every statement sent for this step, in order, over all attempts: transaction control,
   * settings, the step's statement, and the drop of an invalid index left by an interrupted
   * attempt. Catalog reads are not listed. Empty in a dry run.
   */
  readonly executed: readonly string[];
  /** Wall time of the step including backoff, in milliseconds; 0 in a dry run. */
  readonly durationMs: number;
}

/** The result of `runDdl`. */
export interface DdlReport {
  readonly dryRun: boolean;
  readonly steps: readonly DdlStepReport[];
  /**
   * One attempt of every step, in order, transaction control and settings included: in a
   * dry run exactly what a run without retries sends. What each step really sent, retries
   * and invalid-index drops included, is in `steps[i].executed`.
   */
  readonly sql: readonly string[];
}

/** Zod shape of {@link DdlOptions}, for the steps that extend it. */
export const ddlOptionsShape = {
  ...lifecycleOptionsShape,
  lockTimeoutMs: z.number().int().min(1).max(2_147_483_647).optional(),
  statementTimeoutMs: z.number().int().min(0).max(2_147_483_647).optional(),
  maxAttempts: z.number().int().min(1).max(1000).optional(),
  baseDelayMs: z.number().min(0).max(3_600_000).optional(),
  maxDelayMs: z.number().min(0).max(3_600_000).optional(),
  dryRun: z.boolean().optional(),
  migration: z.string().optional(),
};

/** What each of {@link DdlOptions} must be, for the steps that extend them. */
export const ddlOptionExpectations = {
  ...lifecycleOptionExpectations,
  lockTimeoutMs: 'an integer from 1 to 2147483647',
  statementTimeoutMs: 'an integer from 0 to 2147483647',
  maxAttempts: 'an integer from 1 to 1000',
  baseDelayMs: 'a number from 0 to 3600000',
  maxDelayMs: 'a number from 0 to 3600000',
  dryRun: 'a boolean',
  migration: 'a string',
};

const ddlOptionsSchema = z.strictObject(ddlOptionsShape);

/** The {@link DdlOptions} part of an options object of a step that extends them. */
export function ddlOptionsOf(options: DdlOptions): DdlOptions {
  const keys = Object.keys(ddlOptionsShape) as (keyof DdlOptions)[];
  return Object.fromEntries(
    keys.filter((key) => options[key] !== undefined).map((key) => [key, options[key]]),
  ) as DdlOptions;
}

/** The DDL settings with their defaults. */
interface Settings {
  readonly lockTimeoutMs: number;
  readonly statementTimeoutMs: number;
  readonly maxAttempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

function settingsOf(options: DdlOptions): Settings {
  return {
    lockTimeoutMs: options.lockTimeoutMs ?? 500,
    statementTimeoutMs: options.statementTimeoutMs ?? 60_000,
    maxAttempts: options.maxAttempts ?? 8,
    baseDelayMs: options.baseDelayMs ?? 100,
    maxDelayMs: options.maxDelayMs ?? 5_000,
  };
}

/** SQLSTATEs after which the same statement may well succeed: lock_not_available, deadlock_detected. */
const RETRYABLE = new Set(['55P03', '40P01']);

/**
 * The statements one attempt of `step` sends, in order: for a transactional step
 * `BEGIN`, `SET LOCAL` of both timeouts, the statement, `COMMIT`; otherwise `SET`, the
 * statement, `RESET`.
 */
export function ddlStatements(step: DdlStep, options: DdlOptions = {}): string[] {
  const settings = settingsOf(options);
  const local = step.transactional ? 'LOCAL ' : '';
  const sets = [
    `SET ${local}lock_timeout = '${settings.lockTimeoutMs}ms'`,
    `SET ${local}statement_timeout = '${settings.statementTimeoutMs}ms'`,
  ];
  return step.transactional
    ? ['BEGIN', ...sets, step.sql, 'COMMIT']
    : [...sets, step.sql, 'RESET lock_timeout', 'RESET statement_timeout'];
}

/** A script of `statements` for psql: one statement per paragraph, each ending in `;`. */
export function formatSql(statements: readonly string[]): string {
  return statements.map((statement) => `${statement};`).join('\n');
}

/**
 * Runs `steps` in order, each under `lock_timeout` and `statement_timeout` set on the
 * connection that runs it (`SET LOCAL` in the step's transaction, or `SET` ... `RESET`
 * around a non-transactional statement on one pinned connection). A step that fails on a
 * lock time-out or a deadlock is retried after a random wait of up to
 * `min(maxDelayMs, baseDelayMs * 2^(attempt - 1))`; other errors, and the last failed
 * attempt, stop the run with a {@link DriverError} carrying the SQLSTATE.
 *
 * `beforeStep`, when given, runs in each transactional step's transaction, under its
 * `lock_timeout`, before the step's statement: what it locks is held until the step
 * commits, and a flagshift error it throws stops the run as it is (a lock time-out in it is
 * retried like the step's own).
 *
 * @example
 * ```ts
 * import { runDdl } from 'flagshift/lifecycle';
 *
 * const report = await runDdl(driver, [
 *   { phase: 'expand', description: 'add column', sql: 'ALTER TABLE users ADD COLUMN username text', transactional: true },
 * ], { lockTimeoutMs: 200 });
 * console.log(report.steps[0]?.attempts);
 * ```
 */
export async function runDdl(
  driver: Driver,
  steps: readonly DdlStep[],
  options: DdlOptions = {},
  beforeStep?: BeforeStep,
): Promise<DdlReport> {
  parseOptions('runDdl', ddlOptionsSchema, options ?? {}, ddlOptionExpectations);
  const sql = steps.flatMap((step) => ddlStatements(step, options));
  if (options.dryRun === true) {
    return { dryRun: true, steps: steps.map((step) => ({ step, attempts: 0, executed: [], durationMs: 0 })), sql };
  }
  const reports: DdlStepReport[] = [];
  for (const step of steps) reports.push(await runStep(driver, step, options, beforeStep));
  return { dryRun: false, steps: reports, sql };
}

/** A check run in a transactional step's transaction before its statement (see `runDdl`). */
export type BeforeStep = (tx: Queryable, step: DdlStep) => Promise<void>;

async function runStep(
  driver: Driver,
  step: DdlStep,
  options: DdlOptions,
  beforeStep: BeforeStep | undefined,
): Promise<DdlStepReport> {
  const settings = settingsOf(options);
  const migration = options.migration ?? '';
  const executed: string[] = [];
  const started = performance.now();
  const index = concurrentIndexOf(step.sql);
  for (let attempt = 1; ; attempt++) {
    try {
      await runAttempt(driver, step, options, index, executed, migration, beforeStep);
      const durationMs = performance.now() - started;
      emitEvent(options, {
        type: 'ddl-step',
        migration,
        message: `${step.description}: done${attempt > 1 ? ` after ${attempt} attempts` : ''}`,
        step: step.description,
        attempts: attempt,
        durationMs,
      });
      return { step, attempts: attempt, executed, durationMs };
    } catch (error) {
      // A refusal of `beforeStep` is not a database error: it stops the run as it is.
      if (error instanceof FlagshiftError && !(error instanceof DriverError)) throw error;
      const failure = toDriverError(error, step.sql);
      const retryable = failure.sqlState !== undefined && RETRYABLE.has(failure.sqlState);
      if (!retryable) throw failure;
      if (attempt >= settings.maxAttempts) {
        throw new DriverError(
          `${step.description}: gave up after ${attempt} attempt${attempt > 1 ? 's' : ''} (lock_timeout ${settings.lockTimeoutMs} ms): ${failure.message}`,
          { cause: error, sqlState: failure.sqlState },
        );
      }
      const bound = Math.min(settings.maxDelayMs, settings.baseDelayMs * 2 ** (attempt - 1));
      const delayMs = Math.round(Math.random() * bound);
      emitEvent(options, {
        type: 'ddl-retry',
        migration,
        message: `${step.description}: SQLSTATE ${failure.sqlState} on attempt ${attempt} of ${settings.maxAttempts}; retrying in ${delayMs} ms`,
        step: step.description,
        attempt,
        sqlState: failure.sqlState,
        delayMs,
      });
      await sleep(delayMs);
    }
  }
}

/** One attempt of `step`, appending what it sends to `executed`. */
async function runAttempt(
  driver: Driver,
  step: DdlStep,
  options: DdlOptions,
  index: string | undefined,
  executed: string[],
  migration: string,
  beforeStep: BeforeStep | undefined,
): Promise<void> {
  const statements = ddlStatements(step, options);
  const send = async (db: Queryable, statement: string) => {
    executed.push(statement);
    await db.query(statement);
  };
  if (step.transactional) {
    // BEGIN and COMMIT are sent by the driver; they are listed for a faithful record.
    executed.push('BEGIN');
    try {
      await driver.transaction(async (tx) => {
        const [setLock, setStatement, ...rest] = statements.slice(1, -1);
        await send(tx, setLock!);
        await send(tx, setStatement!);
        await beforeStep?.(tx, step);
        for (const statement of rest) await send(tx, statement);
      });
    } catch (error) {
      executed.push('ROLLBACK');
      throw error;
    }
    executed.push('COMMIT');
    return;
  }
  const [setLock, setStatement, , ...resets] = statements;
  await driver.session(async (connection) => {
    try {
      await send(connection, setLock!);
      await send(connection, setStatement!);
      if (index !== undefined) await dropInvalidIndex(connection, index, options, executed, migration);
      try {
        await send(connection, step.sql);
      } catch (error) {
        // Left invalid by the failed build: it must go before a retry can create the index again.
        if (index !== undefined) {
          await dropInvalidIndex(connection, index, options, executed, migration).catch(() => undefined);
        }
        throw error;
      }
    } finally {
      for (const reset of resets) await send(connection, reset).catch(() => undefined);
    }
  });
}

/** Drops the index named `index` (an SQL name) if it exists and is invalid. */
async function dropInvalidIndex(
  connection: Queryable,
  index: string,
  options: DdlOptions,
  executed: string[],
  migration: string,
): Promise<void> {
  const valid = await loadIndexValidity(connection, index);
  if (valid === undefined || valid) return;
  const drop = `DROP INDEX CONCURRENTLY IF EXISTS ${index}`;
  emitEvent(options, {
    type: 'ddl-invalid-index',
    migration,
    message: `index ${index} is invalid (left by an interrupted build); dropping it`,
    index,
  });
  executed.push(drop);
  await connection.query(drop);
}

const NAME = `(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)`;
const CREATE_INDEX_CONCURRENTLY = new RegExp(
  String.raw`^\s*CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+(?:IF\s+NOT\s+EXISTS\s+)?(${NAME})\s+ON\s+(?:ONLY\s+)?(${NAME})(?:\s*\.\s*(${NAME}))?`,
  'i',
);

/**
 * The SQL name (qualified with the table's schema when the statement qualifies the
 * table) of the index a `CREATE INDEX CONCURRENTLY` statement builds, or `undefined` for
 * another statement or an unnamed index.
 */
export function concurrentIndexOf(sql: string): string | undefined {
  const match = CREATE_INDEX_CONCURRENTLY.exec(sql);
  if (match === null) return undefined;
  const [, index, first, second] = match;
  return second === undefined ? index : `${first}.${index}`;
}
