/**
 * The promotion gate's progress on the dashboard: for a migration's next step forward,
 * what the gate says now (the comparisons recorded since the last stage change, or from
 * rampdown those of the last live step, and anything else that would refuse it), so the on-call sees how far a ramp
 * is from allowed before clicking, in the same words a refusal would use.
 */
import type { Migration, Stage } from '../../src/index.js';
import { describePosition, type FlagPosition, nextPosition } from '../../src/lifecycle/index.js';
import type { DashboardFlagControl } from './flag-control.js';

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
