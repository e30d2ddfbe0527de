/**
 * A sliding window of one migration's guardrail counters, in ten time slots: recording
 * adds to the newest slot and to running totals, and a slot that falls out of the window
 * is subtracted from the totals once, so recording and reading are O(1) (latency
 * percentiles walk a fixed histogram of {@link LATENCY_BINS} bins).
 */

/** Time slots per window. The window advances in steps of `windowMs / SLOTS`. */
const SLOTS = 10;

/** Smallest latency told apart, in ms; anything at or below lands in the first bin. */
const LATENCY_MIN_MS = 0.001;
/** Growth of bin bounds: a bin's middle is within about 5% of anything in it. */
const LATENCY_GROWTH = 1.1;
const LOG_GROWTH = Math.log(LATENCY_GROWTH);
/** Bins from 1 µs to past 100 s; slower measurements share the last bin. */
export const LATENCY_BINS = Math.ceil(Math.log(100_000 / LATENCY_MIN_MS) / LOG_GROWTH) + 2;

/** Latency measurements of one side. */
class LatencyCounts {
  readonly bins = new Uint32Array(LATENCY_BINS);
  count = 0;
  sum = 0;

  add(bin: number, ms: number): void {
    this.bins[bin]!++;
    this.count++;
    this.sum += ms;
  }

  subtract(other: LatencyCounts): void {
    if (other.count === 0) return;
    for (let i = 0; i < LATENCY_BINS; i++) this.bins[i]! -= other.bins[i]!;
    this.count -= other.count;
    // Float sums drift by subtraction; an empty side is exactly empty.
    this.sum = this.count === 0 ? 0 : this.sum - other.sum;
  }

  clear(): void {
    if (this.count === 0) return;
    this.bins.fill(0);
    this.count = 0;
    this.sum = 0;
  }

  mean(): number {
    return this.count === 0 ? 0 : this.sum / this.count;
  }

  /** The `q` quantile (0 < q <= 1) by nearest rank, as the middle of its bin. */
  quantile(q: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(this.count * q));
    let seen = 0;
    for (let i = 0; i < LATENCY_BINS; i++) {
      seen += this.bins[i]!;
      if (seen >= rank) return i === 0 ? LATENCY_MIN_MS : LATENCY_MIN_MS * LATENCY_GROWTH ** (i - 0.5);
    }
    return LATENCY_MIN_MS * LATENCY_GROWTH ** (LATENCY_BINS - 1.5);
  }
}

function latencyBin(ms: number): number {
  if (ms <= LATENCY_MIN_MS) return 0;
  return Math.min(LATENCY_BINS - 1, Math.ceil(Math.log(ms / LATENCY_MIN_MS) / LOG_GROWTH));
}

/** Counters of one slot, or the totals over the window. */
class Counts {
  comparisons = 0;
  mismatches = 0;
  newReads = 0;
  newErrors = 0;
  readonly latency: { readonly old: LatencyCounts; readonly new: LatencyCounts } | undefined;

  constructor(withLatency: boolean) {
    this.latency = withLatency ? { old: new LatencyCounts(), new: new LatencyCounts() } : undefined;
  }

  subtract(other: Counts): void {
    this.comparisons -= other.comparisons;
    this.mismatches -= other.mismatches;
    this.newReads -= other.newReads;
    this.newErrors -= other.newErrors;
    if (this.latency !== undefined && other.latency !== undefined) {
      this.latency.old.subtract(other.latency.old);
      this.latency.new.subtract(other.latency.new);
    }
  }

  clear(): void {
    this.comparisons = 0;
    this.mismatches = 0;
    this.newReads = 0;
    this.newErrors = 0;
    this.latency?.old.clear();
    this.latency?.new.clear();
  }
}

/** Latency of one side over the window, in ms. */
export interface GuardrailWindowLatency {
  readonly count: number;
  readonly p99: number;
  readonly mean: number;
}

/** What the window holds now. */
export interface GuardrailWindowFigures {
  readonly comparisons: number;
  readonly mismatches: number;
  readonly newReads: number;
  readonly newErrors: number;
  /** `undefined` when latency is not tracked. */
  readonly latency: { readonly old: GuardrailWindowLatency; readonly new: GuardrailWindowLatency } | undefined;
}

/** The sliding window of one migration. */
export class GuardrailWindow {
  private readonly slotMs: number;
  private readonly slots: Counts[];
  private readonly totals: Counts;
  /** Absolute index (time / slotMs) of the newest slot. */
  private newest = Number.NEGATIVE_INFINITY;

  constructor(windowMs: number, withLatency: boolean) {
    this.slotMs = windowMs / SLOTS;
    this.slots = Array.from({ length: SLOTS }, () => new Counts(withLatency));
    this.totals = new Counts(withLatency);
  }

  addComparison(now: number, matched: boolean): void {
    const slot = this.slotAt(now);
    slot.comparisons++;
    this.totals.comparisons++;
    if (!matched) {
      slot.mismatches++;
      this.totals.mismatches++;
    }
  }

  addNewReads(now: number, entities: number): void {
    this.slotAt(now).newReads += entities;
    this.totals.newReads += entities;
  }

  addNewError(now: number): void {
    this.slotAt(now).newErrors++;
    this.totals.newErrors++;
  }

  addLatency(now: number, side: 'old' | 'new', ms: number): void {
    const slot = this.slotAt(now);
    if (slot.latency === undefined || this.totals.latency === undefined) return;
    const bin = latencyBin(ms);
    slot.latency[side].add(bin, ms);
    this.totals.latency[side].add(bin, ms);
  }

  get comparisons(): number {
    return this.totals.comparisons;
  }

  get mismatches(): number {
    return this.totals.mismatches;
  }

  get newReads(): number {
    return this.totals.newReads;
  }

  get newErrors(): number {
    return this.totals.newErrors;
  }

  /** Count and the chosen statistic of `side`'s latency. */
  latencyOf(side: 'old' | 'new', statistic: 'p99' | 'mean'): { count: number; value: number } {
    const counts = this.totals.latency?.[side];
    if (counts === undefined) return { count: 0, value: 0 };
    return { count: counts.count, value: statistic === 'p99' ? counts.quantile(0.99) : counts.mean() };
  }

  /** The totals after expiring what fell out of the window by `now`. */
  figures(now: number): GuardrailWindowFigures {
    this.expire(now);
    const { latency } = this.totals;
    const side = (counts: LatencyCounts): GuardrailWindowLatency => ({
      count: counts.count,
      p99: counts.quantile(0.99),
      mean: counts.mean(),
    });
    return {
      comparisons: this.totals.comparisons,
      mismatches: this.totals.mismatches,
      newReads: this.totals.newReads,
      newErrors: this.totals.newErrors,
      latency: latency === undefined ? undefined : { old: side(latency.old), new: side(latency.new) },
    };
  }

  /** Forgets everything. */
  clear(): void {
    for (const slot of this.slots) slot.clear();
    this.totals.clear();
    this.newest = Number.NEGATIVE_INFINITY;
  }

  private slotAt(now: number): Counts {
    this.expire(now);
    return this.slots[ringIndex(this.newest)]!;
  }

  /** Moves the newest slot up to `now`, subtracting each reused slot from the totals. */
  private expire(now: number): void {
    const index = Math.floor(now / this.slotMs);
    // A clock that steps back keeps recording into the newest slot.
    if (!(index > this.newest)) return;
    for (let i = Math.max(this.newest + 1, index - SLOTS + 1); i <= index; i++) {
      const slot = this.slots[ringIndex(i)]!;
      this.totals.subtract(slot);
      slot.clear();
    }
    this.newest = index;
  }
}

function ringIndex(index: number): number {
  return ((index % SLOTS) + SLOTS) % SLOTS;
}
