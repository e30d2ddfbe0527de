import { expand } from '../../../../src/lifecycle/index.js';
import type { CliContext } from '../../cli-context.js';
import { ExitCode } from '../../cli-error.js';
import { type DdlCommandOptions, ddlOptionsFrom, printDdlReport } from '../ddl-output.js';
import { preflightNotes } from '../preflight/run.js';

/** Options of `flagshift expand`. */
export interface ExpandCommandOptions extends DdlCommandOptions {
  /** `false` with `--no-preflight`: skip the pre-flight notes. */
  readonly preflight?: boolean;
}

/** `flagshift expand <migration>`: add the new columns, indexes and sync triggers (or print the SQL). */
export async function runExpand(ctx: CliContext, name: string, options: ExpandCommandOptions): Promise<number> {
  const migration = await ctx.migration(name);
  const driver = await ctx.driver();
  if (options.preflight !== false) await preflightNotes(ctx, driver, migration);
  const ddlOptions = ddlOptionsFrom(ctx, options);
  const report = await expand(driver, migration, ddlOptions);
  printDdlReport(ctx, 'expand', migration.name, report.ddl, ddlOptions);
  if (!report.ddl.dryRun && !ctx.options.json) {
    ctx.note(
      `next: flagshift flags set ${migration.name} --stage dualwrite (once every application runs the SDK), then flagshift backfill ${migration.name}`,
    );
  }
  return ExitCode.Ok;
}
