import { describe, expect, it } from 'vitest';
import { windowP99s } from '../../bench/backfill.js';

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
});
