import {
  changeMigrationFlags,
  getMigrationFlags,
  killMigration,
  type MigrationFlagState,
  type MigrationFlagsChanged,
} from '../../../../adapters/postgres-flags/migration-flags.js';
import { ErrorCode, type Migration, type Stage } from '../../../../src/index.js';
import { describeMove, PromotionRefusedError } from '../../../../src/lifecycle/index.js';
import type { CliContext } from '../../cli-context.js';
import { CliError, ExitCode } from '../../cli-error.js';

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

/**
 * `flagshift flags set <migration> --stage <stage> [--percent <p>]`: every process follows
 * at once. The change passes the promotion checks of `setMigrationFlags` (the schema the
 * stage needs, a finished backfill, the fleet's evidence for a move that serves more new
 * data); `--force` overrides them, and the override is logged with `--reason`.
 */
export async function runFlagsSet(ctx: CliContext, name: string, options: FlagsSetOptions): Promise<number> {
  const migration = await ctx.migration(name);
  const driver = await ctx.driver();
  let result: MigrationFlagsChanged;
  try {
    result = await changeMigrationFlags(
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
      },
    );
  } catch (error) {
    if (!(error instanceof PromotionRefusedError)) throw error;
    throw new CliError(error.withOverride('--force').message, {
      exitCode: ExitCode.Failure,
      code: ErrorCode.StageTransition,
      cause: error,
    });
  }
  const { before, after, check } = result;
  if (options.force === true && check !== undefined && check.problems.length > 0) {
    ctx.note(
      `warning: overridden with --force (logged): ${describeMove(migration, check.from, check.to)}: ${check.problems.join('; and ')}`,
    );
  }
  if (ctx.options.json) {
    ctx.printJson({
      before: stateJson(migration, before),
      after: stateJson(migration, after),
      ...(check?.evidence === undefined ? {} : { gate: check.evidence.summary }),
    });
    return ExitCode.Ok;
  }
  ctx.print(`${migration.name}: ${describeState(migration, before)} -> ${describeState(migration, after)}`);
  if (check?.evidence !== undefined && check.problems.length === 0) ctx.note(`gate: ${check.evidence.summary}`);
  if (after.stage !== 'live' && options.percent !== undefined) {
    ctx.note('note: the read percentage only applies in stage live');
  }
  return ExitCode.Ok;
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
