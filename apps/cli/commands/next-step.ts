import { type Migration, STAGES, type Stage } from '../../../src/index.js';

/** Read percentages of the `live` ramp, the ones `flagshift plan` shows. */
export const RAMP_PERCENTS = [1, 10, 50, 100] as const;

/** The stage after `stage` in the lifecycle, or `undefined` after `complete`. */
export function stageAfter(stage: Stage): Stage | undefined {
  return STAGES[STAGES.indexOf(stage) + 1];
}

/**
 * The next move of the ramp from `stage` (and, in `live`, the read percentage), as the
 * command that makes it: one stage at a time, and within `live` the next read percentage,
 * so a hint never skips a stage nor steps back.
 */
export function nextMove(migration: Migration, stage: Stage, percent: number | undefined): string {
  const set = `flagshift flags set ${migration.name}`;
  if (stage === 'complete') return `contract (flagshift contract ${migration.name})`;
  if (stage === 'shadow')
    return `move to live at a small read percentage (${set} --stage live --percent ${RAMP_PERCENTS[0]})`;
  if (stage === 'live') {
    const current = percent ?? migration.defaultPercent;
    const higher = RAMP_PERCENTS.find((p) => p > current);
    if (higher !== undefined) return `raise the read percentage (${set} --percent ${higher})`;
  }
  const next = stageAfter(stage)!;
  return `move the stage to ${next} (${set} --stage ${next})`;
}
