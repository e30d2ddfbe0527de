/**
 * Latency samples and their summaries. Samples are kept in a growable Float64Array, in
 * microseconds, so recording one allocates nothing.
 */

/** A summary of one side of a comparison, in microseconds. */
export interface LatencySummary {
  readonly count: number;
  readonly medianUs: number;
  readonly p90Us: number;
  readonly p99Us: number;
  readonly p999Us: number;
  readonly meanUs: number;
  readonly minUs: number;
  readonly maxUs: number;
}

/** Collects latencies (in microseconds). */
export class Samples {
  #values: Float64Array;
  #count = 0;

  constructor(capacity = 1024) {
    this.#values = new Float64Array(Math.max(16, capacity));
  }

  get count(): number {
    return this.#count;
  }

  /** Records one latency in microseconds. */
  add(us: number): void {
    if (this.#count === this.#values.length) {
      const grown = new Float64Array(this.#values.length * 2);
      grown.set(this.#values);
      this.#values = grown;
    }
    this.#values[this.#count++] = us;
  }

  /** Median, p90, p99, mean, min and max. */
  summary(): LatencySummary {
    const sorted = this.#values.slice(0, this.#count).sort();
    const n = sorted.length;
    let sum = 0;
    for (let i = 0; i < n; i++) sum += sorted[i]!;
    return {
      count: n,
      medianUs: round(quantile(sorted, 0.5)),
      p90Us: round(quantile(sorted, 0.9)),
      p99Us: round(quantile(sorted, 0.99)),
      p999Us: round(quantile(sorted, 0.999)),
      meanUs: round(n === 0 ? Number.NaN : sum / n),
      minUs: round(n === 0 ? Number.NaN : sorted[0]!),
      maxUs: round(n === 0 ? Number.NaN : sorted[n - 1]!),
    };
  }
}

/** The `q` quantile of sorted values, interpolated linearly between the closest ranks. */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const position = (n - 1) * q;
  const below = Math.floor(position);
  const above = Math.min(n - 1, below + 1);
  const weight = position - below;
  return sorted[below]! * (1 - weight) + sorted[above]! * weight;
}

/** The median of a small list of numbers. */
export function median(values: readonly number[]): number {
  return quantile(Float64Array.from(values).sort(), 0.5);
}

/** `a / b` to three decimals. */
export function ratio(a: number, b: number): number {
  return Math.round((a / b) * 1000) / 1000;
}

/** Two decimals. */
export function round(value: number): number {
  return Math.round(value * 100) / 100;
}

/** Elapsed microseconds since `start`, a `performance.now()` reading. */
export function since(start: number): number {
  return (performance.now() - start) * 1000;
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
