import type { PgDriver } from '../../../../adapters/pg/index.js';
import type { Migration } from '../../../../src/index.js';
import { DEFAULT_MAX_PAUSE_RATIO } from '../../../../src/internal.js';
import { PreflightCode, type PreflightReport, preflight } from '../../../../src/lifecycle/index.js';
import { formatDuration, shortCount } from '../../backfill-progress.js';
import type { CliContext } from '../../cli-context.js';
import { ExitCode } from '../../cli-error.js';

/** Options of `flagshift preflight`. */
export interface PreflightCommandOptions {
  readonly sampleBatch?: boolean;
  readonly sampleBatchSize?: number;
}

function bytes(n: number): string {
  if (n < 1024 * 1024) return `${Math.round(n / 1024)} kB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(1)} GB`;
}

/** `flagshift preflight <migration>`: row estimate, backfill time, and what makes it dangerous now. */
export async function runPreflight(ctx: CliContext, name: string, options: PreflightCommandOptions): Promise<number> {
  const migration = await ctx.migration(name);
  const driver = await ctx.driver();
  const report = await preflight(driver, migration, {
    stateSchema: ctx.options.stateSchema,
    ...(options.sampleBatch === false ? { sampleBatch: false } : {}),
    ...(options.sampleBatchSize === undefined ? {} : { sampleBatchSize: options.sampleBatchSize }),
  });
  if (ctx.options.json) {
    ctx.printJson(report);
    return report.ok ? ExitCode.Ok : ExitCode.Failure;
  }
  ctx.print(`pre-flight of migration "${migration.name}": ${report.ok ? 'ok' : 'NOT OK'}`);
  ctx.print(
    `  rows:      about ${shortCount(report.rowEstimate)} (${report.rowEstimateSource === 'count' ? 'counted' : `from ${report.rowEstimateSource}`}), ${bytes(report.tableBytes)} with indexes`,
  );
  if (report.sampleBatch !== undefined) {
    const sample = report.sampleBatch;
    ctx.print(
      `  sample:    ${sample.rows} rows in ${Math.round(sample.ms)} ms (${sample.method === 'update' ? 'a real batch, rolled back' : 'read and transformed only'})`,
    );
  }
  if (report.estimatedBackfillMs !== undefined) {
    // The estimate is for batches back to back, as the default pacing runs them on an idle
    // server; on a contended one it pauses up to its maximum after each.
    const contended = report.estimatedBackfillMs * (1 + DEFAULT_MAX_PAUSE_RATIO);
    ctx.print(
      `  backfill:  about ${formatDuration(report.estimatedBackfillMs)} back to back on an idle server, up to ${formatDuration(contended)} while it is contended; one worker`,
    );
  }
  printFindings(ctx, report, '  ');
  return report.ok ? ExitCode.Ok : ExitCode.Failure;
}

function printFindings(ctx: CliContext, report: PreflightReport, indent: string): void {
  if (report.warnings.length === 0) ctx.print(`${indent}no warnings`);
  for (const warning of report.warnings)
    ctx.print(`${indent}${warning.severity}: ${warning.message} [${warning.code}]`);
}

/**
 * The quick pre-flight `expand` and `backfill` run first (catalog and activity only, no
 * sample batch): its warnings and errors go to stderr, and the step goes on; the step
 * itself refuses what it can't do.
 */
export async function preflightNotes(ctx: CliContext, driver: PgDriver, migration: Migration): Promise<void> {
  const report = await preflight(driver, migration, { stateSchema: ctx.options.stateSchema, sampleBatch: false });
  // A missing table is the step's own first error: said once, by the step.
  const worth = report.warnings.filter(
    (warning) => warning.severity !== 'info' && warning.code !== PreflightCode.TableMissing,
  );
  for (const warning of worth) ctx.note(`pre-flight ${warning.severity}: ${warning.message}`);
}
