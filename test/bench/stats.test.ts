import { describe, expect, it } from 'vitest';
import { blockRatios, measureOf, Samples, verdictOf } from '../../bench/stats.js';

describe('bench verdicts', () => {
  const atMost = { bound: 1.05, better: 'lower' } as const;
  const atLeast = { bound: 0.95, better: 'higher' } as const;

  it('met only when the whole spread meets the target, missed when none of it does', () => {
    expect(verdictOf({ min: 1.01, max: 1.04, n: 10 }, atMost)).toBe('met');
    expect(verdictOf({ min: 1.06, max: 1.2, n: 10 }, atMost)).toBe('missed');
    expect(verdictOf({ min: 0.96, max: 0.99, n: 10 }, atLeast)).toBe('met');
    expect(verdictOf({ min: 0.8, max: 0.94, n: 10 }, atLeast)).toBe('missed');
  });

  it('inconclusive when the spread crosses the target, whatever the headline value says', () => {
    expect(verdictOf({ min: 1.0, max: 1.08, n: 10 }, atMost)).toBe('inconclusive');
    const measure = measureOf(1.02, [1.0, 1.02, 1.07], atMost);
    expect(measure).toEqual({
      value: 1.02,
      spread: { min: 1, max: 1.07, n: 3 },
      target: '<= 1.05',
      verdict: 'inconclusive',
    });
  });

  it('block ratios compare the medians of samples recorded in step, block by block', () => {
    const a = new Samples();
    const b = new Samples();
    for (let i = 0; i < 30; i++) {
      a.add(100);
      b.add(i < 15 ? 110 : 130);
    }
    expect(blockRatios(a, b, 2)).toEqual([1.1, 1.3]);
    // The middle block straddles the change: half 110, half 130.
    expect(blockRatios(a, b, 3)).toEqual([1.1, 1.2, 1.3]);
    expect(blockRatios(new Samples(), new Samples(), 3)).toEqual([]);
  });
});
