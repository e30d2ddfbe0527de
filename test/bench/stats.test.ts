import { describe, expect, it } from 'vitest';
import { blockRatios, measureOf, Samples, verdictOf } from '../../bench/stats.js';

describe('bench verdicts', () => {
  const atMost = { bound: 1.05, better: 'lower' } as const;
  const atLeast = { bound: 0.95, better: 'higher' } as const;

  it('met only when the middle half of the spread meets the target, missed when none of it does', () => {
    expect(verdictOf({ q1: 1.01, q3: 1.04, min: 1.0, max: 1.09, n: 10 }, atMost)).toBe('met');
    expect(verdictOf({ q1: 1.06, q3: 1.2, min: 1.02, max: 1.3, n: 10 }, atMost)).toBe('missed');
    expect(verdictOf({ q1: 0.96, q3: 0.99, min: 0.9, max: 1.0, n: 10 }, atLeast)).toBe('met');
    expect(verdictOf({ q1: 0.8, q3: 0.94, min: 0.7, max: 0.97, n: 10 }, atLeast)).toBe('missed');
  });

  it('inconclusive when the interquartile range crosses the target, whatever the headline value says', () => {
    expect(verdictOf({ q1: 1.0, q3: 1.08, min: 1.0, max: 1.08, n: 10 }, atMost)).toBe('inconclusive');
    const measure = measureOf(1.02, [1.0, 1.02, 1.07], atMost);
    expect(measure).toEqual({
      value: 1.02,
      // Quartiles interpolated between ranks: halfway from 1.0 to 1.02, and from 1.02 to 1.07.
      spread: { q1: 1.01, q3: 1.045, min: 1, max: 1.07, n: 3 },
      target: '<= 1.05',
      verdict: 'met',
    });
    expect(measureOf(1.04, [1.0, 1.03, 1.04, 1.06, 1.1], atMost)).toMatchObject({
      spread: { q1: 1.03, q3: 1.06, min: 1, max: 1.1, n: 5 },
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
