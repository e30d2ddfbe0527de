import { getMigrationFlags } from '../../../../adapters/postgres-flags/migration-flags.js';
import { ErrorCode, type Migration, type Stage } from '../../../../src/index.js';
import { type Backfill, type BackfillOptions, createBackfill, recordEvent } from '../../../../src/lifecycle/index.js';
import {
  type CombinedProgress,
  combineProgress,
  createProgressDisplay,
  formatDuration,
} from '../../backfill-progress.js';
import type { CliContext } from '../../cli-context.js';
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
 * reads it: the flags table, else `--stage`.
 */
async function checkStage(ctx: CliContext, migration: Migration, options: BackfillCommandOptions): Promise<void> {
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
  if (stage !== 'complete') return;
  const why = `backfill of migration "${migration.name}" at stage complete: the new columns are authoritative (applications write only them, and the sync triggers derive old from them), so a backfill from the old ones could overwrite them`;
  if (options.force !== true) {
    throw new CliError(`${why}; refused: pass --force to run it anyway`, {
      code: ErrorCode.StageTransition,
      exitCode: ExitCode.Failure,
    });
  }
  ctx.note(`warning: ${why}; running it because of --force (logged)`);
  await recordEvent(
    await ctx.driver(),
    migration.name,
    'force',
    { action: 'backfill', overridden: why, actor: ctx.actor },
    ctx.options.stateSchema,
  );
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
  await checkStage(ctx, migration, options);
  if (options.preflight !== false) await preflightNotes(ctx, driver, migration);
  const workerCount = options.workers ?? 1;
  const display = ctx.options.json ? undefined : createProgressDisplay(ctx.streams, `backfill ${migration.name}`);
  const workers: Backfill[] = [];
  let latest: CombinedProgress | undefined;
  const onProgress = () => {
    latest = combineProgress(workers.map((worker) => worker.progress));
    display?.update(latest);
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
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
