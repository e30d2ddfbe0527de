import {
  getMigrationFlags,
  killMigration,
  type MigrationFlagState,
  setMigrationFlags,
} from '../../../../adapters/postgres-flags/migration-flags.js';
import { ErrorCode, type Migration, STAGE_BEHAVIOUR, STAGES, type Stage } from '../../../../src/index.js';
import { backfillStatus } from '../../../../src/lifecycle/index.js';
import type { CliContext } from '../../cli-context.js';
import { CliError, ExitCode } from '../../cli-error.js';
import { schemaState } from '../schema-state.js';

function describeState(migration: Migration, state: MigrationFlagState): string {
  const stage =
    state.stage ??
    (state.raw.stage === undefined
      ? `unset (processes use the default, ${migration.defaultStage})`
      : `invalid: ${JSON.stringify(state.raw.stage)}`);
  const percent =
    state.percent !== undefined
      ? `${state.percent}%`
      : state.raw.percent === undefined
        ? `unset (default ${migration.defaultPercent}%)`
        : `invalid: ${JSON.stringify(state.raw.percent)}`;
  return `stage ${stage}, read ${percent}`;
}

function stateJson(migration: Migration, state: MigrationFlagState): Record<string, unknown> {
  return {
    migration: migration.name,
    stageFlagKey: state.stageFlagKey,
    percentFlagKey: state.percentFlagKey,
    stage: state.stage ?? null,
    percent: state.percent ?? null,
    raw: { stage: state.raw.stage ?? null, percent: state.raw.percent ?? null },
    defaultStage: migration.defaultStage,
    updatedAt: state.updatedAt?.toISOString() ?? null,
    updatedBy: state.updatedBy ?? null,
  };
}

/** `flagshift flags get [migration]`: the stored stage and read percentage. */
export async function runFlagsGet(ctx: CliContext, name: string | undefined): Promise<number> {
  const migrations =
    name === undefined
      ? [...(await ctx.migrations()).values()].sort((a, b) => a.name.localeCompare(b.name))
      : [await ctx.migration(name)];
  const driver = await ctx.driver();
  const states = [];
  for (const migration of migrations) {
    states.push({ migration, state: await getMigrationFlags(driver, migration, ctx.flagTable) });
  }
  if (ctx.options.json) {
    ctx.printJson(states.map(({ migration, state }) => stateJson(migration, state)));
    return ExitCode.Ok;
  }
  const width = Math.max(...states.map(({ migration }) => migration.name.length));
  for (const { migration, state } of states) {
    const changed =
      state.updatedAt === undefined ? '' : `  (changed ${state.updatedAt.toISOString()} by ${state.updatedBy ?? '?'})`;
    ctx.print(`${migration.name.padEnd(width)}  ${describeState(migration, state)}${changed}`);
  }
  return ExitCode.Ok;
}

/** Options of `flagshift flags set`. */
export interface FlagsSetOptions {
  readonly stage?: Stage;
  readonly percent?: number;
  readonly force?: boolean;
  readonly reason?: string;
}

/** `flagshift flags set <migration> --stage <stage> [--percent <p>]`: every process follows at once. */
export async function runFlagsSet(ctx: CliContext, name: string, options: FlagsSetOptions): Promise<number> {
  const migration = await ctx.migration(name);
  const driver = await ctx.driver();
  const before = await getMigrationFlags(driver, migration, ctx.flagTable);
  const from = before.stage ?? migration.defaultStage;
  const move =
    options.stage === undefined || options.stage === from
      ? undefined
      : await checkMove(ctx, migration, from, options.stage, options.force === true);
  if (move?.overridden !== undefined) ctx.note(`warning: overridden with --force (logged): ${move.overridden}`);
  const after = await setMigrationFlags(
    driver,
    migration,
    {
      ...(options.stage === undefined ? {} : { stage: options.stage }),
      ...(options.percent === undefined ? {} : { percent: options.percent }),
    },
    {
      ...ctx.flagTable,
      stateSchema: ctx.options.stateSchema,
      actor: ctx.actor,
      ...(options.reason === undefined ? {} : { reason: options.reason }),
      ...(options.force === true ? { force: true } : {}),
      // The library can't see the sync triggers: it refuses leaving complete unless forced.
      ...(move?.safeLeavingComplete === true && options.force !== true
        ? {
            force: true,
            reason: `${options.reason === undefined ? '' : `${options.reason}; `}left complete for rampdown, which reads new only, with the sync triggers installed`,
          }
        : {}),
    },
  );
  if (ctx.options.json) {
    ctx.printJson({ before: stateJson(migration, before), after: stateJson(migration, after) });
    return ExitCode.Ok;
  }
  ctx.print(`${migration.name}: ${describeState(migration, before)} -> ${describeState(migration, after)}`);
  if (after.stage !== 'live' && options.percent !== undefined) {
    ctx.note('note: the read percentage only applies in stage live');
  }
  return ExitCode.Ok;
}

/** What {@link checkMove} found about a stage move it lets through. */
interface MoveCheck {
  /** What was wrong, when `--force` let it through anyway. */
  readonly overridden?: string;
  /**
   * Leaving `complete` for `rampdown` with the sync triggers installed: rampdown reads new
   * only, and the triggers filled old from new on every write, so nothing stale is served.
   */
  readonly safeLeavingComplete?: boolean;
}

/**
 * Refuses (unless `--force`) a stage move that would break the applications or serve
 * wrong values: a stage using the new columns before expand added them, a stage using the
 * old columns after contract dropped them, reading new before the backfill finished, and
 * leaving `complete` other than for `rampdown` while the sync triggers run.
 */
async function checkMove(
  ctx: CliContext,
  migration: Migration,
  from: Stage,
  to: Stage,
  force = false,
): Promise<MoveCheck> {
  const driver = await ctx.driver();
  const subject = `moving migration "${migration.name}" from ${from} to ${to}`;
  const schema = await schemaState(driver, migration);
  const uses = (stage: Stage) => new Set([...STAGE_BEHAVIOUR[stage].reads, ...STAGE_BEHAVIOUR[stage].writes]);
  const problems: string[] = [];
  let safeLeavingComplete = false;
  if (schema.tableExists && schema.missingNew.length === 0 && schema.missingOld.length > 0 && uses(to).has('old')) {
    problems.push(
      `the old column${schema.missingOld.length > 1 ? 's' : ''} ${schema.missingOld.join(', ')} ${schema.missingOld.length > 1 ? 'are' : 'is'} gone (contract dropped ${schema.missingOld.length > 1 ? 'them' : 'it'}), and stage ${to} reads or writes ${schema.missingOld.length > 1 ? 'them' : 'it'}: every application read or write would fail; a contracted migration stays at complete`,
    );
  } else if (schema.tableExists && schema.missingNew.length > 0 && uses(to).has('new')) {
    problems.push(
      `the new column${schema.missingNew.length > 1 ? 's' : ''} ${schema.missingNew.join(', ')} ${schema.missingNew.length > 1 ? 'do' : 'does'} not exist yet, and stage ${to} writes ${schema.missingNew.length > 1 ? 'them' : 'it'}: every application write would fail; run flagshift expand ${migration.name} first`,
    );
  } else if (from === 'complete') {
    if (to === 'rampdown' && schema.syncTriggers && schema.missingOld.length === 0) {
      safeLeavingComplete = true;
    } else {
      problems.push(
        schema.syncTriggers
          ? `stage ${to} reads the old columns, which since complete only the sync triggers have filled; step back to rampdown first (it reads new only)`
          : 'writes since complete went to the new columns only and no sync trigger fills old from new, so the old columns may hold stale values',
      );
    }
  }
  if (STAGES.indexOf(to) > STAGES.indexOf(from) && STAGE_BEHAVIOUR[to].reads.includes('new')) {
    const backfill = await backfillStatus(driver, migration.name, ctx.options.stateSchema);
    if (backfill?.status !== 'done' && schema.tableExists && schema.missingOld.length === 0) {
      const where =
        backfill === undefined
          ? 'has not started'
          : `has not finished (pass ${backfill.pass}: ${backfill.rowsDone}/${backfill.totalEstimate} rows)`;
      problems.push(
        `the backfill ${where}, so rows no dual write touched have no new value and stage ${to} reads new; run flagshift backfill ${migration.name} first`,
      );
    }
  }
  if (problems.length === 0) return safeLeavingComplete ? { safeLeavingComplete } : {};
  if (!force) {
    throw new CliError(`${subject} refused: ${problems.join('; and ')}; or pass --force, which is logged`, {
      code: ErrorCode.StageTransition,
      exitCode: ExitCode.Failure,
    });
  }
  return { overridden: `${subject}: ${problems.join('; and ')}` };
}

/** Options of `flagshift flags kill`. */
export interface FlagsKillOptions {
  /** Why, recorded in the event log. */
  readonly reason?: string;
}

/** `flagshift flags kill <migration>`: reads back to old at once, dual writes kept. */
export async function runFlagsKill(ctx: CliContext, name: string, options: FlagsKillOptions): Promise<number> {
  const migration = await ctx.migration(name);
  const driver = await ctx.driver();
  const result = await killMigration(driver, migration, {
    ...ctx.flagTable,
    stateSchema: ctx.options.stateSchema,
    actor: ctx.actor,
    ...(options.reason === undefined ? {} : { reason: options.reason }),
  });
  if (ctx.options.json) {
    ctx.printJson({
      changed: result.changed,
      before: stateJson(migration, result.before),
      after: stateJson(migration, result.after),
    });
    return ExitCode.Ok;
  }
  if (!result.changed) {
    ctx.print(
      `${migration.name}: ${describeState(migration, result.before)}: reads already come from the old columns; nothing changed`,
    );
    return ExitCode.Ok;
  }
  ctx.print(
    `${migration.name}: killed: ${describeState(migration, result.before)} -> ${describeState(migration, result.after)}; reads are served from the old columns, writes still go to both`,
  );
  return ExitCode.Ok;
}
