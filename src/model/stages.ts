/**
 * The six migration stages and what each one reads, serves, writes and compares. This
 * file is the executable form of the stage table in the stage contract, docs/STAGES.md.
 */

/** All stages, in lifecycle order. */
export const STAGES = ['off', 'dualwrite', 'shadow', 'live', 'rampdown', 'complete'] as const;

/** A migration's lifecycle stage. */
export type Stage = (typeof STAGES)[number];

/** A side of a migration: the old physical columns or the new ones. */
export type Side = 'old' | 'new';

/** What one stage does. */
export interface StageBehaviour {
  /** Sides whose columns a read fetches. */
  readonly reads: readonly Side[];
  /** Side whose value the caller gets. */
  readonly serves: Side;
  /** Sides a write sets. */
  readonly writes: readonly Side[];
  /** Whether reads compare old and new (subject to sampling). */
  readonly compares: boolean;
}

const OLD: readonly Side[] = ['old'];
const NEW: readonly Side[] = ['new'];
const BOTH: readonly Side[] = ['old', 'new'];

/** The stage table. Frozen: routing reads it on every operation. */
export const STAGE_BEHAVIOUR: Readonly<Record<Stage, StageBehaviour>> = Object.freeze({
  off: { reads: OLD, serves: 'old', writes: OLD, compares: false },
  dualwrite: { reads: OLD, serves: 'old', writes: BOTH, compares: false },
  shadow: { reads: BOTH, serves: 'old', writes: BOTH, compares: true },
  live: { reads: BOTH, serves: 'new', writes: BOTH, compares: true },
  rampdown: { reads: NEW, serves: 'new', writes: BOTH, compares: false },
  complete: { reads: NEW, serves: 'new', writes: NEW, compares: false },
});

const STAGE_SET: ReadonlySet<string> = new Set(STAGES);

/** Whether `value` names a stage. */
export function isStage(value: unknown): value is Stage {
  return typeof value === 'string' && STAGE_SET.has(value);
}

/**
 * The effective behaviour for one entity. In `live`, an entity outside the read
 * percentage behaves as in `shadow` (served old, new compared); every other stage
 * ignores the percentage.
 */
export function effectiveStage(stage: Stage, inRamp: boolean): Stage {
  return stage === 'live' && !inRamp ? 'shadow' : stage;
}

/**
 * The kill switch: where a migration's flags go when an operator (or a guardrail) kills
 * it, the one meaning flagshift gives the word everywhere (docs/STAGES.md, "Kill"). Reads
 * go back to the old columns at once and writes keep reaching both sides, so nothing the
 * backfill and the dual writes built is lost; the read percentage returns to 0, so a later
 * return to `live` starts from nobody. `off` and `dualwrite` already read old only and are
 * left alone; `complete` can't be killed (its writes reached new only).
 */
export const KILL_SWITCH: Readonly<{ stage: 'dualwrite'; percent: 0 }> = Object.freeze({
  stage: 'dualwrite',
  percent: 0,
});
