import { describe, expect, it } from 'vitest';
import { pooledP99, windowP99s } from '../../bench/backfill.js';

describe('bench backfill baseline windows', () => {
  it('cuts the baseline into windows of as many samples as the run had, one p99 each', () => {
    // Three windows of 100 samples; only the second holds a slow tail.
    const samples = Float64Array.from({ length: 300 }, (_, index) => (index >= 100 && index < 110 ? 1000 : 10));
    const p99s = windowP99s(samples, 100, 2);
    expect(p99s).toHaveLength(3);
    expect(p99s[0]).toBe(10);
    expect(p99s[1]).toBe(1000);
    expect(p99s[2]).toBe(10);
  });

  it('leaves out a shorter remainder rather than reading a p99 of fewer samples', () => {
    expect(windowP99s(new Float64Array(250).fill(5), 100, 1)).toEqual([5, 5]);
  });

  it('keeps at least the asked-for windows when the run had more operations than the baseline', () => {
    expect(windowP99s(new Float64Array(90).fill(7), 500, 3)).toHaveLength(3);
    expect(windowP99s(new Float64Array(0), 500, 3)).toEqual([]);
  });

  // Runs of 100 operations: one with 4 slow operations (its own p99 slow), and quiet ones.
  const slowFirst = Float64Array.from({ length: 100 }, (_, index) => (index < 4 ? 900 : 100));
  const quiet = () => new Float64Array(100).fill(100);
  // A baseline of 600 operations: 300 at 50 us, then 300 at 70.
  const baseline = Float64Array.from({ length: 600 }, (_, index) => (index < 300 ? 50 : 70));

  it('pools every run before reading the p99, so one bad run counts instead of being outvoted', () => {
    // Pooled, 4 of 300 are slow, more than the slowest 1%: the p99 is slow; a median of the
    // runs' p99s would not be. Two baseline windows of 300: p99s 50 and 70.
    const pooled = pooledP99([slowFirst, quiet(), quiet()], [baseline.slice(0, 200), baseline.slice(200)], 2);
    expect(pooled.operations).toBe(300);
    expect(pooled.p99Us).toBe(900);
    expect(pooled.baselineP99Us).toEqual([50, 70]);
    expect(pooled.ratio).toBe(15);
    // Without the slow run, the same baseline: 100 over 60.
    expect(pooledP99([quiet(), quiet(), quiet()], [baseline], 2).ratio).toBe(1.667);
  });

  it('spreads the ratio over the rounds left out in turn and the baseline windows', () => {
    // Each subset of two rounds has 200 operations: three baseline windows of 200 (p99s 50,
    // 70, 70). Without the slow round the p99 is 100; with it, 900.
    const { spread } = pooledP99([slowFirst, quiet(), quiet()], [baseline], 2);
    expect(spread).toEqual([2, 1.429, 1.429, 18, 12.857, 12.857, 18, 12.857, 12.857]);
    // One round: that round against each window.
    expect(pooledP99([quiet()], [baseline], 2).spread).toEqual([2, 2, 2, 1.429, 1.429, 1.429]);
  });
});
