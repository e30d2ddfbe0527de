import { getMigrationFlags } from '../../../../adapters/postgres-flags/migration-flags.js';
import type { Driver } from '../../../../src/index.js';
import { ErrorCode, type Migration, type Stage } from '../../../../src/index.js';
import {
  type Backfill,
  type BackfillOptions,
  type BackfillProgress,
  createBackfill,
  recordEvent,
} from '../../../../src/lifecycle/index.js';
import { combineProgress, createProgressDisplay, formatDuration } from '../../backfill-progress.js';
import { type CliContext, isPostgresUrl, redactUrl } from '../../cli-context.js';
import { CliError, ExitCode } from '../../cli-error.js';
import { stageSource } from '../contract/run.js';
import { preflightNotes } from '../preflight/run.js';

/** Options of `flagshift backfill`. */
export interface BackfillCommandOptions {
  readonly batchSize?: number;
  readonly targetMs?: number;
  readonly pauseRatio?: number;
  readonly delayMs?: number;
  readonly workers?: number;
  readonly restart?: boolean;
  readonly lockTimeoutMs?: number;
  /** Connection strings of replicas to yield to. */
  readonly replica?: readonly string[];
  /** 0 turns the limit off; so for the next two. */
  readonly maxReplicaLagMs?: number;
  readonly maxTransactionAgeMs?: number;
  readonly maxLockWaitMs?: number;
  readonly healthCheckMs?: number;
  /** `--no-standbys` sets it false. */
  readonly standbys?: boolean;
  readonly preflight?: boolean;
  /** Run at stage `complete`, where the new columns are authoritative (logged as a warning). */
  readonly force?: boolean;
  /** The stage every application is at, for a stage flag kept in another flag system. */
  readonly stage?: Stage;
}

/**
 * Refuses a backfill at stage `complete` unless forced: applications then write the new
 * columns only and the sync triggers derive old from them, so new := forward(old) runs
 * the wrong way and could overwrite the authoritative values. At `live` and `rampdown`
 * both sides are written, so the backfill is safe there. The stage is read as `contract`
 * reads it: the flags table, else `--stage`. Resolves what `--force` overrides, if
 * anything, for {@link recordForce} to log once the backfill starts: a command refused
 * later (a bad option) must leave no override in the log.
 */
async function checkStage(
  ctx: CliContext,
  migration: Migration,
  options: BackfillCommandOptions,
): Promise<string | undefined> {
  const flags = await getMigrationFlags(await ctx.driver(), migration, ctx.flagTable);
  const where = `${ctx.options.flagsSchema}.${ctx.options.flagsTable}`;
  const source = stageSource(flags, options.stage);
  if (source === 'table' && options.stage !== undefined && options.stage !== flags.stage) {
    throw new CliError(
      `backfill of migration "${migration.name}": --stage ${options.stage} disagrees with its stage flag in ${where} ("${flags.stage}"); --stage is for a stage flag kept in another flag system`,
      { exitCode: ExitCode.Usage },
    );
  }
  const stage = flags.stage ?? (source === 'option' ? options.stage : undefined);
  if (stage !== 'complete') return undefined;
  const why = `backfill of migration "${migration.name}" at stage complete: the new columns are authoritative (applications write only them, and the sync triggers derive old from them), so a backfill from the old ones could overwrite them`;
  if (options.force !== true) {
    throw new CliError(`${why}; refused: pass --force to run it anyway`, {
      code: ErrorCode.StageTransition,
      exitCode: ExitCode.Failure,
    });
  }
  return why;
}

/** Logs the override `checkStage` allowed, as the backfill starts. */
async function recordForce(ctx: CliContext, migration: Migration, why: string): Promise<void> {
  ctx.note(`warning: ${why}; running it because of --force (logged)`);
  await recordEvent(
    await ctx.driver(),
    migration.name,
    'force',
    { action: 'backfill', overridden: why, actor: ctx.actor },
    ctx.options.stateSchema,
  );
}

/** Refuses a `--replica` that is not a PostgreSQL URL, before anything runs or is logged. */
function checkReplicaUrls(urls: readonly string[]): void {
  for (const url of urls) {
    if (!isPostgresUrl(url)) {
      throw new CliError(`--replica ${JSON.stringify(redactUrl(url))} is not a PostgreSQL URL`, {
        exitCode: ExitCode.Usage,
      });
    }
  }
}

/** Pools to `--replica` URLs, each behind a driver, and how to end them. */
async function replicaDrivers(urls: readonly string[]): Promise<{ drivers: Driver[]; close(): Promise<void> }> {
  if (urls.length === 0) return { drivers: [], close: async () => undefined };
  checkReplicaUrls(urls);
  const pg = (await import('pg')).default;
  const { createPgDriver } = await import('../../../../adapters/pg/index.js');
  const pools = urls.map((connectionString) => {
    const pool = new pg.Pool({ connectionString, max: 1, application_name: 'flagshift-cli' });
    pool.on('error', () => undefined);
    return pool;
  });
  return {
    drivers: pools.map((pool) => createPgDriver(pool, { kind: 'pool' })),
    close: async () => {
      await Promise.all(pools.map((pool) => pool.end().catch(() => undefined)));
    },
  };
}

/** The health options the command line gives, 0 turning a limit off. */
function healthOptions(options: BackfillCommandOptions, replicas: readonly Driver[]): BackfillOptions {
  const limit = (ms: number | undefined) => (ms === 0 ? false : ms);
  const chosen: BackfillOptions = {
    replicas,
    standbys: options.standbys,
    maxReplicaLagMs: limit(options.maxReplicaLagMs),
    maxTransactionAgeMs: limit(options.maxTransactionAgeMs),
    maxLockWaitMs: limit(options.maxLockWaitMs),
    healthCheckMs: options.healthCheckMs,
  };
  return Object.fromEntries(Object.entries(chosen).filter(([, value]) => value !== undefined));
}

/**
 * Says when the workers start and stop yielding to the database's health: `paused:` with
 * the first worker's reason, `resumed` once none is held.
 */
function yieldNotes(ctx: CliContext, label: string): (workers: readonly BackfillProgress[]) => void {
  let paused = false;
  return (workers) => {
    const held = workers.find((progress) => progress.state === 'throttled');
    if (held !== undefined && !paused) ctx.note(`${label} paused: ${held.throttledBy}`);
    else if (held === undefined && paused) ctx.note(`${label} resumed`);
    paused = held !== undefined;
  };
}

/** Resolves once the first worker has started or joined the pass (or finished, or failed). */
function started(worker: Backfill): Promise<void> {
  return new Promise((resolve) => {
    const check = () => {
      if (worker.progress.state !== 'idle' && worker.progress.state !== 'starting') resolve();
      else setTimeout(check, 20);
    };
    check();
  });
}

/**
 * `flagshift backfill <migration>`: fills the new columns from the old in keyset batches,
 * resumable. `--workers N` runs N workers in this process, each batch on its own pooled
 * connection; they share the pass through the ranges table exactly as workers in separate
 * processes would (start more `flagshift backfill` processes, on other hosts too, to add
 * more).
 */
export async function runBackfill(ctx: CliContext, name: string, options: BackfillCommandOptions): Promise<number> {
  const migration = await ctx.migration(name);
  const driver = await ctx.driver();
  checkReplicaUrls(options.replica ?? []);
  const forced = await checkStage(ctx, migration, options);
  if (options.preflight !== false) await preflightNotes(ctx, driver, migration);
  const workerCount = options.workers ?? 1;
  const display = ctx.options.json ? undefined : createProgressDisplay(ctx.streams, `backfill ${migration.name}`);
  const workers: Backfill[] = [];
  const replicas = await replicaDrivers(options.replica ?? []);
  const noteYield = yieldNotes(ctx, `backfill ${migration.name}`);
  const onProgress = () => {
    const progress = workers.map((worker) => worker.progress);
    noteYield(progress);
    display?.update(combineProgress(progress));
  };
  const onEvent = ctx.onEvent;
  const base: BackfillOptions = {
    stateSchema: ctx.options.stateSchema,
    onProgress,
    // A batch size given on the command line is where the adaptive sizing starts, within wider bounds if needed.
    ...(options.batchSize === undefined
      ? {}
      : {
          batchSize: options.batchSize,
          minBatchSize: Math.min(10, options.batchSize),
          maxBatchSize: Math.max(10_000, options.batchSize),
        }),
    ...(options.targetMs === undefined ? {} : { targetBatchMs: options.targetMs }),
    ...(options.pauseRatio === undefined ? {} : { pauseRatio: options.pauseRatio }),
    ...(options.delayMs === undefined ? {} : { delayMs: options.delayMs }),
    ...(options.lockTimeoutMs === undefined ? {} : { lockTimeoutMs: options.lockTimeoutMs }),
    ...healthOptions(options, replicas.drivers),
    ...(onEvent === undefined ? {} : { onEvent }),
  };

  let interrupts = 0;
  const onSignal = () => {
    interrupts++;
    if (interrupts > 1) process.exit(ExitCode.Interrupted);
    ctx.note('\ncancelling after the current batch; progress is kept, and running backfill again resumes');
    for (const worker of workers) worker.cancel();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const startedAt = performance.now();
  try {
    const first = createBackfill(driver, migration, {
      ...base,
      ...(options.restart === true ? { restart: true } : {}),
    });
    workers.push(first);
    // Its options are valid (createBackfill checked them): the override is what runs now.
    if (forced !== undefined) await recordForce(ctx, migration, forced);
    const runs = [first.run()];
    if (workerCount > 1) {
      // Joiners come after the first worker decided the pass, and skip rather than start
      // another pass if it is over by the time they look.
      await Promise.race([started(first), runs[0]!.catch(() => undefined)]);
      for (let i = 1; i < workerCount; i++) {
        const worker = createBackfill(driver, migration, { ...base, whenDone: 'skip' });
        workers.push(worker);
        runs.push(worker.run());
      }
    }
    const reports = await Promise.all(runs);
    onProgress();
    display?.stop();
    const cancelled = reports.some((report) => report.status === 'cancelled');
    const changed = reports.reduce((sum, report) => sum + report.rowsChanged, 0);
    const scanned = Math.max(...reports.map((report) => report.totalRowsDone));
    const elapsed = performance.now() - startedAt;
    if (ctx.options.json) {
      ctx.printJson({
        migration: migration.name,
        status: cancelled ? 'cancelled' : 'done',
        pass: reports[0]!.pass,
        rowsDone: scanned,
        rowsChanged: changed,
        workers: reports.map((report) => ({
          workerId: report.workerId,
          status: report.status,
          rowsDone: report.rowsDone,
          rowsChanged: report.rowsChanged,
          batches: report.batches,
          retries: report.retries,
          skipped: report.skipped,
        })),
        durationMs: Math.round(elapsed),
      });
    } else if (cancelled) {
      ctx.print(
        `backfill of migration "${migration.name}" cancelled: pass ${reports[0]!.pass}, ${scanned} rows done so far; run it again to resume`,
      );
    } else {
      ctx.print(
        `backfill of migration "${migration.name}" done: pass ${reports[0]!.pass}, ${scanned} rows scanned, ${changed} changed by ${workerCount === 1 ? 'this worker' : `${workerCount} workers`} in ${formatDuration(elapsed)}`,
      );
      ctx.note(`next: flagshift verify ${migration.name}`);
    }
    return cancelled ? ExitCode.Interrupted : ExitCode.Ok;
  } catch (error) {
    for (const worker of workers) worker.cancel();
    display?.stop();
    throw error;
  } finally {
    await replicas.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
