import { formatPlan, planMigration } from '../../../../src/lifecycle/index.js';
import type { CliContext } from '../../cli-context.js';
import { ExitCode } from '../../cli-error.js';

/** Options of `flagshift plan`. */
export interface PlanCommandOptions {
  readonly percents?: readonly number[];
}

/** `flagshift plan <migration>`: every phase in order, with its SQL or flag change and its rollback. */
export async function runPlan(ctx: CliContext, name: string, options: PlanCommandOptions): Promise<number> {
  const migration = await ctx.migration(name);
  const driver = await ctx.driver();
  const phases = await planMigration(driver, migration, {
    stateSchema: ctx.options.stateSchema,
    ...(options.percents === undefined ? {} : { percents: options.percents }),
  });
  if (ctx.options.json) {
    ctx.printJson({ migration: migration.name, phases });
    return ExitCode.Ok;
  }
  ctx.print(`plan of migration "${migration.name}"${migration.description ? `: ${migration.description}` : ''}`);
  ctx.print(`(stage flag "${migration.stageFlagKey}", read-percentage flag "${migration.percentFlagKey}")`);
  ctx.print();
  ctx.print(formatPlan(phases));
  return ExitCode.Ok;
}
