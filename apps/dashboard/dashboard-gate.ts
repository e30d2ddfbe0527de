/**
 * The promotion gate's progress on the dashboard: for a migration's next step forward,
 * what the gate says now (the evidence the fleet has published since the last stage
 * change, and anything else that would refuse it), so the on-call sees how far a ramp
 * is from allowed before clicking, in the same words a refusal would use.
 */
import { type Migration, STAGES, type Stage } from '../../src/index.js';
import { describePosition, type FlagPosition } from '../../src/lifecycle/index.js';
import type { DashboardFlagControl } from './flag-control.js';

/**
 * Read percentages of the `live` ramp the next step goes through: those `flagshift plan`
 * shows (the CLI's next-step hint keeps the same list in `apps/cli/commands/next-step.ts`).
 */
const RAMP_PERCENTS = [1, 10, 50, 100] as const;

/** What the gate says of a migration's next step. */
export interface GateView {
  /** `shadow`, `live 10%`: where the migration stands, as processes use it. */
  readonly from: string;
  /** The next step forward. */
  readonly to: string;
  /** Whether the step serves more new data, so the gate asks for evidence. */
  readonly gated: boolean;
  /** Why the step would be refused now, one sentence each; empty when it would be made. */
  readonly problems: readonly string[];
  /** `412 of 1000 comparisons since 14:02:07 UTC; 0 mismatches`, for a gated step. */
  readonly evidence: string | null;
}

/** The step after `from`: the next stage, or in `live` the next read percentage of the ramp. */
export function nextPosition(from: FlagPosition): FlagPosition | undefined {
  if (from.stage === 'live') {
    const higher = RAMP_PERCENTS.find((p) => p > from.percent);
    if (higher !== undefined) return { stage: 'live', percent: higher };
  }
  const stage = STAGES[STAGES.indexOf(from.stage) + 1];
  if (stage === undefined) return undefined;
  return { stage, percent: stage === 'live' ? RAMP_PERCENTS[0] : from.percent };
}

/**
 * The gate for `migration`'s next step from its stored flags (`null` where unset or not
 * valid), or `null` when there is no step forward (at `complete`) or the control can't
 * check moves.
 */
export async function readGate(
  control: DashboardFlagControl | undefined,
  migration: Migration,
  flags: { readonly stage: Stage | null; readonly percent: number | null },
): Promise<GateView | null> {
  if (control?.checkMove === undefined) return null;
  // As setMigrationFlags reads them: what processes use when a flag is unset.
  const from: FlagPosition = {
    stage: flags.stage ?? migration.defaultStage,
    percent: flags.percent ?? migration.defaultPercent,
  };
  const to = nextPosition(from);
  if (to === undefined) return null;
  const check = await control.checkMove(migration, from, to);
  return {
    from: describePosition(from),
    to: describePosition(to),
    gated: check.gated,
    problems: check.problems,
    evidence: check.evidence?.summary ?? null,
  };
}
