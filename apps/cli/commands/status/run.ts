import { getMigrationFlags, type MigrationFlagState } from '../../../../adapters/postgres-flags/migration-flags.js';
import type { Migration, Queryable } from '../../../../src/index.js';
import {
  type BackfillStatus,
  backfillStatus,
  lastSchemaChange,
  lastVerification,
  stateTablesExist,
  type VerificationRecord,
} from '../../../../src/internal.js';
import {
  type ContractGate,
  contractGate,
  type FleetMetrics,
  planExpand,
  readMetrics,
} from '../../../../src/lifecycle/index.js';
import type { CliContext } from '../../cli-context.js';
import { ExitCode, errorLine } from '../../cli-error.js';

/** Everything `status` knows about one migration. */
interface MigrationStatus {
  readonly migration: Migration;
  readonly flags: MigrationFlagState;
  /** Expand steps still to run (0 once expanded); `undefined` once contracted. */
  readonly expandPending: number | undefined;
  /** Expand steps that only bring objects of an earlier flagshift up to date (`refresh` steps). */
  readonly refreshPending: number;
  /** When the contract ran, if it did. */
  readonly contractedAt: Date | undefined;
  readonly backfill: BackfillStatus | undefined;
  readonly verification: VerificationRecord | undefined;
  readonly gate: ContractGate;
  readonly fleet: FleetMetrics['migrations'][string] | undefined;
}

/** Whether the state tables exist: status reads them, and never creates them. */
function stateExists(db: Queryable, schema: string): Promise<boolean> {
  return stateTablesExist(db, schema, ['backfill_checkpoints', 'verifications']);
}

/** When the migration was last contracted, unless an expand ran after it. */
async function lastContract(db: Queryable, migration: Migration, schema: string): Promise<Date | undefined> {
  const change = await lastSchemaChange(db, migration.name, schema);
  return change?.kind === 'contract' ? change.at : undefined;
}

async function statusOf(
  ctx: CliContext,
  db: Queryable,
  migration: Migration,
  hasState: boolean,
  fleet: FleetMetrics,
): Promise<MigrationStatus> {
  const schema = ctx.options.stateSchema;
  const contractedAt = hasState ? await lastContract(db, migration, schema) : undefined;
  const flags = await getMigrationFlags(db, migration, ctx.flagTable);
  // Once contracted the old columns are gone, and there is nothing left to expand.
  const steps = contractedAt === undefined ? await planExpand(db, migration, { stateSchema: schema }) : undefined;
  return {
    migration,
    flags,
    expandPending: steps?.filter((step) => step.refresh !== true).length,
    refreshPending: steps?.filter((step) => step.refresh === true).length ?? 0,
    contractedAt,
    backfill: hasState ? await backfillStatus(db, migration.name, schema) : undefined,
    verification: hasState ? await lastVerification(db, migration.name, schema) : undefined,
    // The gate `flagshift contract` would find, stage included (a stage flag kept in another
    // flag system counts as not given, as it does for contract without --stage).
    gate: await contractGate(db, migration, { stateSchema: schema, stage: flags.stage }),
    fleet: fleet.migrations[migration.name],
  };
}

function stageLine(status: MigrationStatus, where: string): string {
  const { flags, migration } = status;
  if (flags.stage === undefined) {
    return flags.raw.stage === undefined
      ? `not set in ${where} (processes use the default, ${migration.defaultStage})`
      : `invalid value ${JSON.stringify(flags.raw.stage)} in ${where}`;
  }
  const percent = flags.percent ?? migration.defaultPercent;
  const ramp = flags.stage === 'live' ? `, read ${percent}% from new` : '';
  const by =
    flags.updatedAt === undefined ? '' : ` (set ${flags.updatedAt.toISOString()} by ${flags.updatedBy ?? '?'})`;
  return `${flags.stage}${ramp}${by}`;
}

function schemaLine(status: MigrationStatus): string {
  if (status.contractedAt !== undefined)
    return `contracted at ${status.contractedAt.toISOString()}: old columns dropped`;
  if (status.expandPending === 0 && status.refreshPending > 0) {
    return `expanded; ${status.refreshPending} sync trigger(s) from an earlier flagshift to replace, so the backfill skips them (flagshift expand ${status.migration.name})`;
  }
  if (status.expandPending === 0) return 'expanded';
  return `not expanded: ${status.expandPending} step(s) to run (flagshift expand ${status.migration.name})`;
}

function backfillLine(backfill: BackfillStatus | undefined): string {
  if (backfill === undefined) return 'not started';
  const percent =
    backfill.totalEstimate > 0 ? Math.min(100, Math.floor((backfill.rowsDone * 100) / backfill.totalEstimate)) : 100;
  const rows = `${backfill.rowsDone}/${backfill.totalEstimate} rows (${percent}%), ${backfill.rowsChanged} changed`;
  if (backfill.status === 'done') {
    return `done, pass ${backfill.pass}: ${rows}, finished ${backfill.finishedAt?.toISOString() ?? '?'}`;
  }
  const workers =
    backfill.activeWorkers === 0 ? 'no worker running (resumable)' : `${backfill.activeWorkers} worker(s) running`;
  return `in progress, pass ${backfill.pass}: ${rows}, ${backfill.rangesDone}/${backfill.rangeCount} ranges, ${workers}`;
}

function verificationLine(verification: VerificationRecord | undefined): string {
  if (verification === undefined) return 'never run';
  const sample =
    verification.sample !== undefined && verification.sample < 1
      ? ` (a ${Number((verification.sample * 100).toPrecision(12))}% sample)`
      : '';
  const nulls = (verification.nullColumns ?? []).map(({ column, rows }) => `, ${rows} NULL in ${column}`).join('');
  const counts = `${verification.checkedRows} rows checked${sample}, ${verification.mismatchedRows} mismatched, ${verification.missingRows} missing${nulls}`;
  const when = `started ${verification.startedAt.toISOString()}, finished ${verification.at.toISOString()}`;
  return `${verification.passed ? 'passed' : 'FAILED'} (${when}): ${counts}`;
}

function readsLine(fleet: MigrationStatus['fleet']): string {
  if (fleet === undefined) return 'no process published metrics';
  const rate = (fleet.mismatchRate * 100).toFixed(2);
  return `${fleet.comparisons} comparisons, ${fleet.mismatches} mismatches (${rate}%) across ${fleet.processes} process(es); ${fleet.reads.total} reads, ${fleet.flagFallbacks.total} flag fallbacks`;
}

/**
 * The gate's reason in the terms of what the operator sees. Status asks the gate with the
 * flags table's stage, so a stage the gate calls "not given" is a stage flag that is unset
 * (or holds no stage) in the flags table.
 */
function gateReason(status: MigrationStatus, where: string): string {
  const { gate, flags } = status;
  if (gate.closedBy !== 'stage' || flags.stage !== undefined) return gate.reason;
  const seen =
    flags.raw.stage === undefined
      ? `the stage flag is not set in ${where}`
      : `the stage flag in ${where} holds an invalid value (${JSON.stringify(flags.raw.stage)})`;
  return gate.reason.replace('no stage given', seen);
}

function statusJson(status: MigrationStatus, where: string): Record<string, unknown> {
  const { migration, flags, backfill, verification, gate, fleet } = status;
  return {
    migration: migration.name,
    description: migration.description,
    stage: flags.stage ?? null,
    percent: flags.percent ?? null,
    stageFlag: { key: flags.stageFlagKey, value: flags.raw.stage ?? null },
    percentFlag: { key: flags.percentFlagKey, value: flags.raw.percent ?? null },
    defaultStage: migration.defaultStage,
    expanded: status.expandPending === 0 || status.contractedAt !== undefined,
    expandStepsPending: status.expandPending ?? 0,
    syncTriggersToReplace: status.refreshPending,
    contractedAt: status.contractedAt?.toISOString() ?? null,
    backfill: backfill ?? null,
    verification: verification ?? null,
    contractGate: { open: gate.ok, reason: gateReason(status, where), closedBy: gate.closedBy ?? null },
    shadowReads:
      fleet === undefined
        ? null
        : {
            comparisons: fleet.comparisons,
            mismatches: fleet.mismatches,
            mismatchRate: fleet.mismatchRate,
            processes: fleet.processes,
          },
  };
}

/**
 * `flagshift status [migration]`: stage and read percentage, expand, backfill progress,
 * the last verification with its mismatch counts, the contract gate, and the shadow-read
 * mismatches the application processes published. Reads only; creates nothing.
 */
export async function runStatus(ctx: CliContext, name: string | undefined): Promise<number> {
  const migrations =
    name === undefined
      ? [...(await ctx.migrations()).values()].sort((a, b) => a.name.localeCompare(b.name))
      : [await ctx.migration(name)];
  const driver = await ctx.driver();
  const hasState = await stateExists(driver, ctx.options.stateSchema);
  const fleet = await readMetrics(driver, { schema: ctx.options.stateSchema });
  const where = `${ctx.options.flagsSchema}.${ctx.options.flagsTable}`;
  const results: (MigrationStatus | { migration: Migration; error: unknown })[] = [];
  for (const migration of migrations) {
    try {
      results.push(await statusOf(ctx, driver, migration, hasState, fleet));
    } catch (error) {
      // One migration's status: its error is the answer. Several: report it and go on.
      if (name !== undefined) throw error;
      results.push({ migration, error });
    }
  }
  const failed = results.some((result) => 'error' in result);
  if (ctx.options.json) {
    ctx.printJson(
      results.map((result) =>
        'error' in result
          ? { migration: result.migration.name, error: errorLine(result.error) }
          : statusJson(result, where),
      ),
    );
    return failed ? ExitCode.Failure : ExitCode.Ok;
  }
  results.forEach((result, index) => {
    if (index > 0) ctx.print();
    const { migration } = result;
    ctx.print(`migration ${migration.name}${migration.description ? `: ${migration.description}` : ''}`);
    if ('error' in result) {
      ctx.print(`  error:          ${errorLine(result.error)}`);
      return;
    }
    ctx.print(`  stage:          ${stageLine(result, where)}`);
    ctx.print(`  schema:         ${schemaLine(result)}`);
    ctx.print(`  backfill:       ${backfillLine(result.backfill)}`);
    ctx.print(`  verification:   ${verificationLine(result.verification)}`);
    if (result.contractedAt === undefined) {
      ctx.print(`  contract gate:  ${result.gate.ok ? 'open' : 'closed'}: ${gateReason(result, where)}`);
    }
    ctx.print(`  shadow reads:   ${readsLine(result.fleet)}`);
  });
  return failed ? ExitCode.Failure : ExitCode.Ok;
}
