import type { Migration, Stage } from '../../../src/index.js';
import { nextPosition } from '../../../src/lifecycle/index.js';

/**
 * The next move of the ramp from `stage` (and, in `live`, the read percentage), as the
 * command that makes it: one stage at a time, and within `live` the next read percentage
 * of the ramp (`nextPosition`), so a hint never skips a stage nor steps back.
 */
export function nextMove(migration: Migration, stage: Stage, percent: number | undefined): string {
  const set = `flagshift flags set ${migration.name}`;
  const next = nextPosition({ stage, percent: percent ?? migration.defaultPercent });
  if (next === undefined) return `contract (flagshift contract ${migration.name})`;
  if (stage === 'shadow')
    return `move to live at a small read percentage (${set} --stage live --percent ${next.percent})`;
  if (stage === 'live' && next.stage === 'live') return `raise the read percentage (${set} --percent ${next.percent})`;
  return `move the stage to ${next.stage} (${set} --stage ${next.stage})`;
}
