import { getMigrationFlags } from '../../adapters/postgres-flags/migration-flags.js';
import { contract } from '../../src/lifecycle/contract.js';
import { recordEvent } from '../../src/lifecycle/state.js';
import type { CliContext } from '../cli-context.js';
import { CliError, ExitCode } from '../cli-error.js';
import { type DdlCommandOptions, ddlOptionsFrom, printDdlReport } from './ddl-output.js';

/** Options of `flagshift contract`. */
export interface ContractCommandOptions extends DdlCommandOptions {
  readonly force?: boolean;
}

/**
 * `flagshift contract <migration>`: drops the sync triggers and the old columns and makes
 * required new columns NOT NULL. Refused until verification passed after the last
 * write-path change, and while the stage flag (when it lives in flagshift's flags table)
 * is not `complete`; `--force` overrides both and is logged.
 */
export async function runContract(ctx: CliContext, name: string, options: ContractCommandOptions): Promise<number> {
  const migration = await ctx.migration(name);
  const driver = await ctx.driver();
  const flags = await getMigrationFlags(driver, migration, ctx.flagTable);
  const where = `${ctx.options.flagsSchema}.${ctx.options.flagsTable}`;
  const force = options.force === true;
  if (flags.stage === undefined) {
    ctx.note(
      `warning: stage flag "${migration.stageFlagKey}" is not in ${where}; make sure every application is at stage complete before contracting`,
    );
  } else if (flags.stage !== 'complete') {
    if (!force && options.dryRun !== true) {
      throw new CliError(
        `contract of migration "${migration.name}" refused: its stage is "${flags.stage}" (${where}), so applications still read or write the old columns; set it to complete first (flagshift flags set ${migration.name} --stage complete), or pass --force`,
        { exitCode: ExitCode.Failure },
      );
    }
    if (force && options.dryRun !== true) {
      await recordEvent(
        driver,
        migration.name,
        'force',
        { action: 'contract', overridden: `stage is "${flags.stage}", not complete`, actor: ctx.actor },
        ctx.options.stateSchema,
      );
      ctx.note(`warning: contracting at stage "${flags.stage}" because of --force (logged)`);
    }
  }
  const ddlOptions = ddlOptionsFrom(ctx, options);
  const report = await contract(driver, migration, {
    ...ddlOptions,
    ...(flags.stage === undefined ? {} : { stage: flags.stage }),
    ...(force ? { force: true } : {}),
  });
  if (!ctx.options.json) {
    if (report.ddl.dryRun) ctx.print(`-- contract gate: ${report.gate.ok ? 'open' : 'closed'}: ${report.gate.reason}`);
    else if (report.forced)
      ctx.note(`warning: the contract gate was closed and overridden with --force (logged): ${report.gate.reason}`);
  }
  printDdlReport(ctx, 'contract', migration.name, report.ddl, ddlOptions);
  return ExitCode.Ok;
}
