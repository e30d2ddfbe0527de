import { getMigrationFlags, type MigrationFlagState } from '../../../../adapters/postgres-flags/migration-flags.js';
import { ErrorCode, type Stage } from '../../../../src/index.js';
import {
  type ContractGate,
  ContractRefusedError,
  type ContractReport,
  ContractStoppedError,
  contract,
} from '../../../../src/lifecycle/index.js';
import type { CliContext } from '../../cli-context.js';
import { CliError, ExitCode } from '../../cli-error.js';
import { type DdlCommandOptions, ddlOptionsFrom, printDdlReport } from '../ddl-output.js';
import { nextMove } from '../next-step.js';
import { reportIfContracted } from '../schema-state.js';

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
 * and is logged. Each step runs under the migration's lock, which `flags set` takes too,
 * and stops the run when the stage moved since the gate was checked.
 */
export async function runContract(ctx: CliContext, name: string, options: ContractCommandOptions): Promise<number> {
  const migration = await ctx.migration(name);
  const driver = await ctx.driver();
  if (await reportIfContracted(ctx, driver, migration, '; nothing to do')) return ExitCode.Ok;
  const flags = await getMigrationFlags(driver, migration, ctx.flagTable);
  const where = `${ctx.options.flagsSchema}.${ctx.options.flagsTable}`;
  const source = stageSource(flags, options.stage);
  if (source === 'invalid' && options.stage !== undefined) {
    throw new CliError(
      `contract of migration "${migration.name}": its stage flag in ${where} holds an invalid value (${JSON.stringify(flags.raw.stage)}), which --stage can't override; set it first (flagshift flags set ${migration.name} --stage ...)`,
      { exitCode: ExitCode.Usage },
    );
  }
  if (source === 'table' && options.stage !== undefined && options.stage !== flags.stage) {
    throw new CliError(
      `contract of migration "${migration.name}": --stage ${options.stage} disagrees with its stage flag in ${where} ("${flags.stage}"); --stage is for a stage flag kept in another flag system`,
      { exitCode: ExitCode.Usage },
    );
  }
  const stage = flags.stage ?? options.stage;
  const force = options.force === true;
  const ddlOptions = ddlOptionsFrom(ctx, options);
  let report: ContractReport;
  try {
    report = await contract(driver, migration, {
      ...ddlOptions,
      ...(stage === undefined ? {} : { stage }),
      ...(force ? { force: true, actor: ctx.actor } : {}),
      // Read again before each step, under the lock a flag change takes too.
      ...(source === 'table'
        ? { currentStage: async (tx) => (await getMigrationFlags(tx, migration, ctx.flagTable)).stage }
        : {}),
    });
  } catch (error) {
    if (error instanceof ContractStoppedError) {
      throw new CliError(error.message, { code: ErrorCode.StageTransition, exitCode: ExitCode.Failure });
    }
    if (!(error instanceof ContractRefusedError)) throw error;
    const next = flags.stage === undefined ? undefined : nextMove(migration, flags.stage, flags.percent);
    const hint = refusalHint(error.gate.closedBy, source, migration.name, where, flags.raw.stage, next);
    throw new CliError(`${error.gate.reason}; ${hint}`, {
      code: ErrorCode.StageTransition,
      exitCode: ExitCode.Failure,
    });
  }
  if (report.forced) {
    // A dry run changes nothing and records nothing: the override is what a real run would log.
    const override = report.ddl.dryRun
      ? 'is closed and would be overridden with --force (a run without --dry-run logs the override)'
      : 'was closed and overridden with --force (logged)';
    ctx.note(`warning: the contract gate ${override}: ${report.gate.reason}`);
  }
  if (report.ddl.dryRun && !ctx.options.json) {
    ctx.print(`-- contract gate: ${report.gate.ok ? 'open' : 'closed'}: ${report.gate.reason}`);
  }
  printDdlReport(ctx, 'contract', migration.name, report.ddl, ddlOptions, {
    forced: report.forced,
    gate: { open: report.gate.ok, reason: report.gate.reason, closedBy: report.gate.closedBy ?? null },
  });
  return ExitCode.Ok;
}

/**
 * Where the stage comes from: the flags table (`table`), a value there that is not a
 * stage (`invalid`), the operator's `--stage` for a flag kept elsewhere (`option`), or
 * nowhere (`none`).
 */
export function stageSource(
  flags: MigrationFlagState,
  option: Stage | undefined,
): 'table' | 'invalid' | 'option' | 'none' {
  if (flags.stage !== undefined) return 'table';
  if (flags.raw.stage !== undefined) return 'invalid';
  return option === undefined ? 'none' : 'option';
}

/** What the operator can do about a closed gate. */
function refusalHint(
  closedBy: ContractGate['closedBy'],
  source: ReturnType<typeof stageSource>,
  name: string,
  where: string,
  raw: unknown,
  next: string | undefined,
): string {
  if (closedBy !== 'stage') return 'or pass --force, which is logged';
  switch (source) {
    case 'table':
      // One stage at a time: jumping to complete would skip the comparisons of shadow and live.
      return `move it on towards complete one stage at a time: next, ${next}; or pass --force, which is logged`;
    case 'invalid':
      return `its stage flag in ${where} holds an invalid value (${JSON.stringify(raw)}): set it (flagshift flags set ${name} --stage ...) and move to complete first, or pass --force, which is logged`;
    case 'option':
      return 'move every application to complete in your flag system first, then pass --stage complete (or --force, which is logged)';
    case 'none':
      return `its stage flag is not in ${where}: once every application is at stage complete, pass --stage complete (or --force, which is logged)`;
  }
}
