import { getMigrationFlags } from '../../adapters/postgres-flags/migration-flags.js';
import { ContractRefusedError, contract } from '../../src/lifecycle/contract.js';
import type { Stage } from '../../src/stages.js';
import type { CliContext } from '../cli-context.js';
import { CliError, ExitCode } from '../cli-error.js';
import { type DdlCommandOptions, ddlOptionsFrom, printDdlReport } from './ddl-output.js';

/** Options of `flagshift contract`. */
export interface ContractCommandOptions extends DdlCommandOptions {
  readonly force?: boolean;
  /** The stage every application is at, for a stage flag kept in another flag system. */
  readonly stage?: Stage;
}

/**
 * `flagshift contract <migration>`: drops the sync triggers and the old columns and makes
 * required new columns NOT NULL. Refused until every application is at stage `complete`
 * (the stage flag in flagshift's flags table, or `--stage` when the flag lives elsewhere)
 * and verification passed after the last write-path change; `--force` overrides the gate
 * and is logged.
 */
export async function runContract(ctx: CliContext, name: string, options: ContractCommandOptions): Promise<number> {
  const migration = await ctx.migration(name);
  const driver = await ctx.driver();
  const flags = await getMigrationFlags(driver, migration, ctx.flagTable);
  const where = `${ctx.options.flagsSchema}.${ctx.options.flagsTable}`;
  if (flags.stage !== undefined && options.stage !== undefined && options.stage !== flags.stage) {
    throw new CliError(
      `contract of migration "${migration.name}": --stage ${options.stage} disagrees with its stage flag in ${where} ("${flags.stage}"); --stage is for a stage flag kept in another flag system`,
      { exitCode: ExitCode.Usage },
    );
  }
  const stage = flags.stage ?? options.stage;
  const force = options.force === true;
  const ddlOptions = ddlOptionsFrom(ctx, options);
  let report: Awaited<ReturnType<typeof contract>>;
  try {
    report = await contract(driver, migration, {
      ...ddlOptions,
      ...(stage === undefined ? {} : { stage }),
      ...(force ? { force: true, actor: ctx.actor } : {}),
    });
  } catch (error) {
    if (!(error instanceof ContractRefusedError)) throw error;
    throw new CliError(`${error.gate.reason}; ${refusalHint(error.gate.closedBy, migration.name, where, stage)}`, {
      exitCode: ExitCode.Failure,
    });
  }
  if (!ctx.options.json) {
    if (report.ddl.dryRun) ctx.print(`-- contract gate: ${report.gate.ok ? 'open' : 'closed'}: ${report.gate.reason}`);
    else if (report.forced)
      ctx.note(`warning: the contract gate was closed and overridden with --force (logged): ${report.gate.reason}`);
  }
  printDdlReport(ctx, 'contract', migration.name, report.ddl, ddlOptions);
  return ExitCode.Ok;
}

/** What the operator can do about a closed gate. */
function refusalHint(
  closedBy: 'stage' | 'verification' | undefined,
  name: string,
  where: string,
  stage: Stage | undefined,
): string {
  if (closedBy !== 'stage') return 'or pass --force, which is logged';
  if (stage === undefined) {
    return `its stage flag is not in ${where}: once every application is at stage complete, pass --stage complete (or --force, which is logged)`;
  }
  return `set it to complete first (flagshift flags set ${name} --stage complete), or pass --force, which is logged`;
}
