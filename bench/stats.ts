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

  /** A copy of the samples `from` to `to` (exclusive), in the order they were recorded. */
  range(from: number, to: number): Float64Array {
    return this.#values.slice(from, Math.min(to, this.#count));
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

/**
 * How far a ratio moved between the blocks (or rounds) of one measurement: its middle half
 * (the interquartile range, what a verdict is judged on) and its whole range.
 */
export interface Spread {
  /** First quartile of the per-block values (linear interpolation between ranks). */
  readonly q1: number;
  /** Third quartile. */
  readonly q3: number;
  readonly min: number;
  readonly max: number;
  /** Blocks or rounds the spread is taken over. */
  readonly n: number;
}

/** `met`: the spread's middle half is on the target's side; `missed`: none of it; else `inconclusive`. */
export type Verdict = 'met' | 'missed' | 'inconclusive';

/** A target: a bound and which side of it is good. */
export interface Target {
  readonly bound: number;
  readonly better: 'lower' | 'higher';
}

/** A headline number: its value, its spread, its target and the verdict the spread gives. */
export interface Measure {
  readonly value: number;
  readonly spread: Spread;
  /** `<= 1.05` or `>= 0.95`. */
  readonly target: string;
  readonly verdict: Verdict;
}

/**
 * The verdict of a spread against a target: inconclusive when its middle half (the
 * interquartile range) crosses it. The whole range is reported beside it: over ten blocks
 * of a third of a second on two shared cores, one block caught by a scheduling stall
 * moves the minimum or maximum by 0.1 to 0.2, whichever side is measured.
 */
export function verdictOf(spread: Spread, target: Target): Verdict {
  const good = (value: number) => (target.better === 'lower' ? value <= target.bound : value >= target.bound);
  if (good(spread.q1) && good(spread.q3)) return 'met';
  if (!good(spread.q1) && !good(spread.q3)) return 'missed';
  return 'inconclusive';
}

/** A {@link Measure} from a headline value and the per-block (or per-round) values around it. */
export function measureOf(value: number, perBlock: readonly number[], target: Target): Measure {
  const sorted = Float64Array.from(perBlock).sort();
  const spread: Spread = {
    q1: ratio(quantile(sorted, 0.25), 1),
    q3: ratio(quantile(sorted, 0.75), 1),
    min: ratio(sorted[0]!, 1),
    max: ratio(sorted[sorted.length - 1]!, 1),
    n: perBlock.length,
  };
  return {
    value: ratio(value, 1),
    spread,
    target: `${target.better === 'lower' ? '<=' : '>='} ${target.bound.toLocaleString('en-US')}`,
    verdict: verdictOf(spread, target),
  };
}

/**
 * Per-block median ratios of two sides recorded in step (sample i of `b` taken next to
 * sample i of `a`): the run cut into `blocks` consecutive blocks, `b`'s median over `a`'s
 * in each. Drift in the machine moves a block's two sides together, so the blocks' ratios
 * show how much the ratio itself moves.
 */
export function blockRatios(a: Samples, b: Samples, blocks: number): number[] {
  const n = Math.min(a.count, b.count);
  const size = Math.floor(n / blocks);
  if (size === 0) return [];
  const out: number[] = [];
  for (let block = 0; block < blocks; block++) {
    const from = block * size;
    const to = block === blocks - 1 ? n : from + size;
    out.push(ratio(quantile(b.range(from, to).sort(), 0.5), quantile(a.range(from, to).sort(), 0.5)));
  }
  return out;
}
