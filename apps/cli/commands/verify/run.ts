import { getMigrationFlags } from '../../../../adapters/postgres-flags/migration-flags.js';
import { STAGES } from '../../../../src/index.js';
import { type VerificationReport, verify } from '../../../../src/lifecycle/index.js';
import { formatDuration } from '../../backfill-progress.js';
import type { CliContext } from '../../cli-context.js';
import { ExitCode } from '../../cli-error.js';
import { nextMove } from '../next-step.js';
import { reportIfContracted } from '../schema-state.js';

/** Options of `flagshift verify`. */
export interface VerifyCommandOptions {
  readonly sample?: number;
  readonly chunkSize?: number;
  readonly examples?: number;
  readonly rawValues?: boolean;
}

function summary(report: VerificationReport): string {
  const sampled = report.sample === undefined ? '' : ` (a ${report.sample * 100}% sample of ${report.scannedRows})`;
  const nulls = report.nullColumns.map(
    ({ column, rows }) => `, ${rows} NULL in ${column}, which contract makes NOT NULL`,
  );
  return `${report.checkedRows} rows checked${sampled}, ${report.mismatchedRows} mismatched, ${report.missingRows} missing${nulls.join('')}`;
}

/**
 * `flagshift verify <migration>`: compares every row's new columns with forward(old) in
 * the database and records the result for the contract gate. Exits 1 on any mismatch.
 */
export async function runVerify(ctx: CliContext, name: string, options: VerifyCommandOptions): Promise<number> {
  const migration = await ctx.migration(name);
  const driver = await ctx.driver();
  // Nothing left to compare: the old columns went with the contract, which verify gated.
  if (await reportIfContracted(ctx, driver, migration, ', so there is nothing to verify')) return ExitCode.Ok;
  const onEvent = ctx.onEvent;
  const report = await verify(driver, migration, {
    stateSchema: ctx.options.stateSchema,
    ...(options.sample === undefined ? {} : { sample: options.sample }),
    ...(options.chunkSize === undefined ? {} : { chunkSize: options.chunkSize }),
    ...(options.examples === undefined ? {} : { examples: options.examples }),
    ...(options.rawValues === true ? { rawValues: true } : {}),
    ...(onEvent === undefined ? {} : { onEvent }),
  });
  if (ctx.options.json) {
    ctx.printJson(report);
    return report.passed ? ExitCode.Ok : ExitCode.Failure;
  }
  const took = formatDuration(report.durationMs);
  // The hints follow the stage in the flags table; a stage flag kept elsewhere is not known here.
  const flags = await getMigrationFlags(driver, migration, ctx.flagTable);
  if (report.passed) {
    ctx.print(`verification of migration "${migration.name}" passed: ${summary(report)} (${took})`);
    ctx.note(
      flags.stage === undefined
        ? `next: move the stage on one at a time (${STAGES.join(' -> ')}), then contract once complete`
        : `next: ${nextMove(migration, flags.stage, flags.percent)}`,
    );
    return ExitCode.Ok;
  }
  ctx.print(`verification of migration "${migration.name}" FAILED: ${summary(report)} (${took})`);
  if (report.examples.length > 0) {
    ctx.print(`first failing rows${report.redacted ? ' (values redacted; --raw-values shows them)' : ''}:`);
    for (const example of report.examples) {
      ctx.print(`  key ${JSON.stringify(example.key)}: ${example.kind}`);
      for (const column of example.columns) {
        ctx.print(
          `    ${column.column}: has ${JSON.stringify(column.actual)}, expected ${JSON.stringify(column.expected)}`,
        );
      }
    }
  }
  for (const { column, rows, exampleKey } of report.nullColumns) {
    ctx.print(
      `${column}: ${rows} row${rows === 1 ? '' : 's'} NULL (first key ${JSON.stringify(exampleKey)}); contract would fail setting it NOT NULL: give ${rows === 1 ? 'it a value' : 'them values'} (in the new column, or in the old one while the sync triggers run) or make the field optional`,
    );
  }
  ctx.note(
    flags.stage === 'complete'
      ? // At complete the new columns are authoritative: a backfill from old would overwrite them.
        'at stage complete the new columns are authoritative: fix the cause in the new columns (not by a backfill from the old ones), then verify'
      : `fix the cause, run flagshift backfill ${migration.name} (it changes only rows that differ), then verify`,
  );
  return ExitCode.Failure;
}
