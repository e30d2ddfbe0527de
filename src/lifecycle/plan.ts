/**
 * The whole lifecycle of a migration, in order, before any of it runs: the exact SQL of
 * expand and contract (read off the catalog as it is now), the flag changes of the ramp,
 * and how to step back from each step.
 */
import { z } from 'zod';
import { parseOptions, type Queryable } from '../kernel/index.js';
import type { Migration, Stage } from '../model/index.js';
import { type DdlStep, type ExpandOptions, planContract, planExpand } from './ddl/index.js';
import { RAMP_PERCENTS } from './promotion/index.js';
import { nullableSources } from './required-columns.js';

/** One step of a phase: SQL to run, a flag to change, or a command to run. */
export interface PlanStep {
  /** What the step does, one line. */
  readonly action: string;
  /** The exact SQL of a schema change. */
  readonly sql?: string;
  /** The flag change of a stage step: the stage flag's new value, and the read percentage in `live`. */
  readonly flagChange?: { readonly stage: Stage; readonly percent?: number };
  /** How to step back: SQL, a flag change, or why there is nothing to undo. */
  readonly rollback: string;
}

/** A phase of the lifecycle. */
export interface Phase {
  readonly name: 'expand' | 'backfill' | 'ramp' | 'verify' | 'contract';
  readonly steps: readonly PlanStep[];
  /** What the phase will run into as the database stands, and how to resolve it. */
  readonly warnings?: readonly string[];
}

/** Options of {@link planMigration}. */
export interface PlanOptions extends ExpandOptions {
  /** Read percentages of the `live` ramp, increasing, each in (0, 100]. @default [1, 10, 50, 100] */
  readonly percents?: readonly number[];
}

/**
 * Every phase of `migration`, in order: expand (the SQL {@link planExpand} plans now),
 * backfill (dual writes on, then the backfill), ramp (shadow, live at each read
 * percentage, rampdown, complete), verify, and contract (the SQL {@link planContract}
 * plans, as if expand had run). Each step names its rollback.
 *
 * @example
 * ```ts
 * import { formatPlan, planMigration } from 'flagshift/lifecycle';
 *
 * console.log(formatPlan(await planMigration(driver, usernameRename)));
 * ```
 */
export async function planMigration(db: Queryable, migration: Migration, options: PlanOptions = {}): Promise<Phase[]> {
  // The rest of the options are expand's, checked by planExpand.
  parseOptions('plan', percentsSchema, options, { percents: 'increasing numbers in (0, 100]' });
  const { percents = RAMP_PERCENTS, ...expandOptions } = options;
  const expandSteps = await planExpand(db, migration, expandOptions);
  const contractSteps = await planContract(db, migration, {
    assumeExpanded: true,
    ...(options.stateSchema === undefined ? {} : { stateSchema: options.stateSchema }),
  });
  const stageFlag = `"${migration.stageFlagKey}"`;
  const percentFlag = `"${migration.percentFlagKey}"`;
  const stage = (to: Stage, back: string, why: string): PlanStep => ({
    action: `set ${stageFlag} to ${to}: ${why}`,
    flagChange: { stage: to },
    rollback: back,
  });
  const ramp: PlanStep[] = [
    stage('shadow', `set ${stageFlag} back to dualwrite`, 'reads still served old, new compared on every read'),
    ...percents.map((percent, index): PlanStep => {
      const previous = percents[index - 1];
      return {
        action: `set ${stageFlag} to live and ${percentFlag} to ${percent}: ${percent}% of entities served new, all still compared`,
        flagChange: { stage: 'live', percent },
        rollback:
          previous === undefined
            ? `set ${stageFlag} back to shadow (everyone served old at once)`
            : `set ${percentFlag} back to ${previous}`,
      };
    }),
    stage('rampdown', `set ${stageFlag} back to live`, 'reads served new only, writes still go to both sides'),
    stage(
      'complete',
      `set ${stageFlag} back to rampdown: safe while the sync triggers run (rampdown reads new only, and they fill old from new), so flags set needs no --force for it; a stage before rampdown reads old and needs --force`,
      'only new is read and written; the sync triggers keep old filled until contract',
    ),
  ];
  return [
    { name: 'expand', steps: expandSteps.map(ddlPlanStep) },
    {
      name: 'backfill',
      steps: [
        stage(
          'dualwrite',
          `set ${stageFlag} back to off (the sync triggers keep both sides consistent meanwhile)`,
          'every SDK write sets old and new',
        ),
        {
          action: `run the backfill (flagshift backfill ${migration.name}): new := forward(old) for rows written before dual writes, in keyset batches`,
          rollback:
            'stop it (pause or cancel): rows done are consistent with old, nothing to undo; a later run resumes from its checkpoint',
        },
      ],
    },
    { name: 'ramp', steps: ramp },
    {
      name: 'verify',
      steps: [
        {
          action: `run verify (flagshift verify ${migration.name}): compare new with forward(old) on every row; contract requires it to pass after the last stage change`,
          rollback: 'nothing to undo: verify only reads (and records its result)',
        },
      ],
    },
    {
      name: 'contract',
      steps: contractSteps.map(ddlPlanStep),
      warnings: (await nullableSources(db, migration)).map((source) => source.message),
    },
  ];
}

function ddlPlanStep(step: DdlStep): PlanStep {
  return { action: step.description, sql: step.sql, rollback: step.rollback ?? 'nothing to undo' };
}

/** Read percentages of a ramp: at least one, increasing, each in (0, 100]. */
function isRamp(percents: unknown): boolean {
  return (
    Array.isArray(percents) &&
    percents.length > 0 &&
    percents.every(
      (percent, index) =>
        typeof percent === 'number' && percent > 0 && percent <= 100 && (index === 0 || percent > percents[index - 1]!),
    )
  );
}

const percentsSchema = z.looseObject({ percents: z.custom<readonly number[]>(isRamp).optional() });

/**
 * A plan as text for a terminal: numbered phases and steps, each with its SQL (or flag
 * change) and its rollback.
 */
export function formatPlan(phases: readonly Phase[]): string {
  const lines: string[] = [];
  const block = (label: string, text: string) => {
    const [first = '', ...rest] = text.split('\n');
    lines.push(`      ${label.padEnd(9)} ${first}`);
    for (const line of rest) lines.push(`      ${' '.repeat(9)} ${line}`);
  };
  phases.forEach((phase, p) => {
    lines.push(`${p + 1}. ${phase.name}`);
    for (const warning of phase.warnings ?? []) lines.push(`   warning: ${warning}`);
    if (phase.steps.length === 0) lines.push('   (nothing to do)');
    phase.steps.forEach((step, s) => {
      lines.push(`   ${p + 1}.${s + 1} ${step.action}`);
      if (step.sql !== undefined) block('sql:', `${step.sql};`);
      if (step.flagChange !== undefined) {
        const { stage, percent } = step.flagChange;
        block('flag:', `stage=${stage}${percent === undefined ? '' : ` read-percent=${percent}`}`);
      }
      block('rollback:', step.rollback);
    });
  });
  return lines.join('\n');
}
