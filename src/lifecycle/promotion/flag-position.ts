/**
 * Where a migration's flags stand, and which moves between two positions serve more new
 * data: the moves the promotion gate holds until the fleet has shown evidence.
 */
import { STAGES, type Stage } from '../../model/index.js';

/** A migration's stage and read percentage, as processes use them. */
export interface FlagPosition {
  readonly stage: Stage;
  /** Share of entities read from new in `live`, 0 to 100. */
  readonly percent: number;
}

/** The share of reads (0 to 100) served from the new columns at `position`. */
export function newShare(position: FlagPosition): number {
  switch (position.stage) {
    case 'live':
      return position.percent;
    case 'rampdown':
    case 'complete':
      return 100;
    default:
      return 0;
  }
}

/**
 * Whether moving from `from` to `to` serves more new data: forward into `live`,
 * `rampdown` or `complete`, or a higher read percentage within `live`. Moving back is
 * never such a move.
 */
export function servesMoreNew(from: FlagPosition, to: FlagPosition): boolean {
  const fromIndex = STAGES.indexOf(from.stage);
  const toIndex = STAGES.indexOf(to.stage);
  if (toIndex > fromIndex) return to.stage === 'live' || to.stage === 'rampdown' || to.stage === 'complete';
  return toIndex === fromIndex && to.stage === 'live' && to.percent > from.percent;
}

/** Read percentages of the `live` ramp, the default steps of a plan and of the next-step hints. */
export const RAMP_PERCENTS: readonly number[] = Object.freeze([1, 10, 50, 100]);

/**
 * The step after `from`: the next stage, or in `live` the next read percentage of the
 * ramp (`live` is entered at its first). `undefined` after `complete`.
 */
export function nextPosition(from: FlagPosition): FlagPosition | undefined {
  if (from.stage === 'live') {
    const higher = RAMP_PERCENTS.find((p) => p > from.percent);
    if (higher !== undefined) return { stage: 'live', percent: higher };
  }
  const stage = STAGES[STAGES.indexOf(from.stage) + 1];
  if (stage === undefined) return undefined;
  return { stage, percent: stage === 'live' ? RAMP_PERCENTS[0]! : from.percent };
}

/** `live 10%`, `shadow`: a position as operators read it. */
export function describePosition(position: FlagPosition): string {
  return position.stage === 'live' ? `live ${position.percent}%` : position.stage;
}
