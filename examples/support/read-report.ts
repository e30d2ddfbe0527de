/**
 * Summarises the reads recorded since the last call: which side served them and whether
 * old and new were compared.
 */
import type { MemoryMetrics } from 'flagshift';

/** `served old, compared: match` and the like; resets `metrics`. */
export function readReport(metrics: MemoryMetrics): string {
  const totals = metrics.snapshot().totals;
  metrics.reset();
  const sides = (['old', 'new'] as const).filter((side) => totals.reads.bySide[side] > 0);
  const compared =
    totals.comparisons === 0
      ? 'not compared'
      : totals.mismatches === 0
        ? 'compared: match'
        : `compared: ${totals.mismatches} of ${totals.comparisons} mismatched`;
  return `served ${sides.join(' + ') || 'nothing'}, ${compared}`;
}
