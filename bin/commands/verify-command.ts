import { type VerificationReport, verify } from '../../src/lifecycle/verify.js';
import { formatDuration } from '../backfill-progress.js';
import type { CliContext } from '../cli-context.js';
import { ExitCode } from '../cli-error.js';

/** Options of `flagshift verify`. */
export interface VerifyCommandOptions {
  readonly sample?: number;
  readonly chunkSize?: number;
  readonly examples?: number;
  readonly rawValues?: boolean;
}

function summary(report: VerificationReport): string {
  const sampled = report.sample === undefined ? '' : ` (a ${report.sample * 100}% sample of ${report.scannedRows})`;
  return `${report.checkedRows} rows checked${sampled}, ${report.mismatchedRows} mismatched, ${report.missingRows} missing`;
}

/**
 * `flagshift verify <migration>`: compares every row's new columns with forward(old) in
 * the database and records the result for the contract gate. Exits 1 on any mismatch.
 */
export async function runVerify(ctx: CliContext, name: string, options: VerifyCommandOptions): Promise<number> {
  const migration = await ctx.migration(name);
  const driver = await ctx.driver();
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
  if (report.passed) {
    ctx.print(`verification of migration "${migration.name}" passed: ${summary(report)} (${took})`);
    ctx.note(
      `next: move the stage forward (flagshift flags set ${migration.name} --stage shadow), or contract once complete`,
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
  ctx.note(
    `fix the cause, run flagshift backfill ${migration.name} again (it changes only rows that differ), then verify`,
  );
  return ExitCode.Failure;
}
