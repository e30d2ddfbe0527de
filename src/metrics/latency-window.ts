/** The most recent latency measurements of one migration and side, and their percentiles. */
import type { LatencySummary } from './metrics-snapshot.js';

/** Latency measurements of one migration and side, in a ring of doubles. */
export class LatencyWindow {
  private readonly values: Float64Array;
  private next = 0;
  private size = 0;
  count = 0;

  constructor(capacity: number) {
    this.values = new Float64Array(capacity);
  }

  add(milliseconds: number): void {
    this.values[this.next] = milliseconds;
    this.next = this.next + 1 === this.values.length ? 0 : this.next + 1;
    if (this.size < this.values.length) this.size++;
    this.count++;
  }

  summary(): LatencySummary {
    const n = this.size;
    if (n === 0) return { count: this.count, window: 0, p50: 0, p90: 0, p99: 0, max: 0, mean: 0 };
    const sorted = this.values.slice(0, n).sort();
    let sum = 0;
    for (let i = 0; i < n; i++) sum += sorted[i]!;
    return {
      count: this.count,
      window: n,
      p50: nearestRank(sorted, 50),
      p90: nearestRank(sorted, 90),
      p99: nearestRank(sorted, 99),
      max: sorted[n - 1]!,
      mean: sum / n,
    };
  }
}

// Integer arithmetic: (n * 90) / 100 is exact whenever it is a whole number.
function nearestRank(sorted: Float64Array, percent: number): number {
  const rank = Math.max(1, Math.ceil((sorted.length * percent) / 100));
  return sorted[rank - 1]!;
}
