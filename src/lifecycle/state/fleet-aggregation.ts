/**
 * Sums the snapshots of many processes into one view per migration. The snapshots are
 * other processes' JSON, read back from the database: every count is checked (anything
 * but a finite non-negative number counts 0), every sample shape-checked, and keys from
 * the data never land on an object's prototype.
 */
import type {
  JsonValue,
  LatencySide,
  LatencySummary,
  MetricsTotals,
  MismatchSampleSnapshot,
} from '../../metrics/index.js';
import { type Side, STAGES, type Stage } from '../../model/index.js';
import type { HistoryBucket, SideBucket, SideFigures } from './metrics-tables.js';

const LATENCY_SIDES: readonly LatencySide[] = ['old', 'new', 'both'];

/** One point of the mismatch-rate series: the comparisons made in `[at, at + bucketMs)`. */
export interface MismatchRatePoint {
  /** Start of the bucket, ISO-8601. */
  readonly at: string;
  readonly comparisons: number;
  readonly mismatches: number;
  /** `mismatches / comparisons`. */
  readonly rate: number;
}

/** One side in one bucket of the side series. */
export interface SidePoint extends SideFigures {
  /** `errors / operations`; `0` without operations. */
  readonly errorRate: number;
}

/**
 * One point of the per-side series: what each side did in `[at, at + bucketMs)`, as the
 * processes published it (the p99 is the highest any process published in the bucket).
 */
export interface SideSeriesPoint {
  /** Start of the bucket, ISO-8601. */
  readonly at: string;
  readonly old: SidePoint;
  readonly new: SidePoint;
}

/**
 * One migration over every fresh process. Counters are sums (since each process started
 * or last reset its metrics), so `mismatchRate` is the fleet's, recomputed from the sums.
 */
export interface FleetMigrationMetrics extends MetricsTotals {
  /**
   * Latency per side over all processes. Percentiles can't be merged exactly from
   * summaries, so `p50`, `p90`, `p99` and `max` are the highest of any process: an upper
   * bound of the fleet's own percentile (a pooled percentile never exceeds the largest
   * per-process one), and the slow process is the one to look at. `mean` is weighted by
   * each process's window; `count` and `window` are sums.
   */
  readonly latency: Readonly<Record<LatencySide, LatencySummary>>;
  /** The most recent mismatch samples of every process, newest first. */
  readonly recentMismatches: readonly MismatchSampleSnapshot[];
  /** Fresh processes that reported this migration. */
  readonly processes: number;
  /** Mismatch rate over time, oldest first; buckets without comparisons are absent. */
  readonly series: readonly MismatchRatePoint[];
  /**
   * Error rate and p99 latency per side over time, oldest first; buckets where no process
   * published either side's figures are absent, and so is all of it on an install whose
   * processes don't publish them (see `ensureMetricsTables`).
   */
  readonly sideSeries: readonly SideSeriesPoint[];
}

/**
 * The fleet's metrics per migration, in name order: `snapshots` (each a process's
 * snapshot as decoded JSON) summed, with each migration's mismatch-rate series from
 * `history`, its per-side series from `sideHistory`, and at most `sampleLimit` mismatch
 * samples each.
 */
export function aggregateFleet(
  snapshots: readonly unknown[],
  history: readonly HistoryBucket[],
  sideHistory: readonly SideBucket[],
  sampleLimit: number,
): Record<string, FleetMigrationMetrics> {
  const merged = new Map<string, MigrationAccumulator>();
  for (const snapshot of snapshots) {
    const migrations = (snapshot as { migrations?: unknown } | null | undefined)?.migrations;
    if (typeof migrations !== 'object' || migrations === null) continue;
    for (const [name, metrics] of Object.entries(migrations)) {
      if (typeof metrics !== 'object' || metrics === null) continue;
      let acc = merged.get(name);
      if (acc === undefined) {
        acc = newAccumulator();
        merged.set(name, acc);
      }
      accumulate(acc, metrics as Record<string, unknown>);
    }
  }
  const points = new Map<string, MismatchRatePoint[]>();
  for (const row of history) {
    const comparisons = row.comparisons;
    if (!(comparisons > 0)) continue;
    const mismatches = row.mismatches;
    let list = points.get(row.migration);
    if (list === undefined) {
      list = [];
      points.set(row.migration, list);
    }
    list.push({
      at: new Date(row.bucket).toISOString(),
      comparisons,
      mismatches,
      rate: mismatches / comparisons,
    });
  }

  const sidePoints = new Map<string, SideSeriesPoint[]>();
  for (const row of sideHistory) {
    let list = sidePoints.get(row.migration);
    if (list === undefined) {
      list = [];
      sidePoints.set(row.migration, list);
    }
    list.push({ at: new Date(row.bucket).toISOString(), old: sidePoint(row.old), new: sidePoint(row.new) });
  }

  const names = [...new Set([...merged.keys(), ...points.keys(), ...sidePoints.keys()])].sort();
  const migrations: Record<string, FleetMigrationMetrics> = {};
  for (const name of names) {
    const acc = merged.get(name) ?? newAccumulator();
    Object.defineProperty(migrations, name, {
      value: { ...finish(acc, points.get(name) ?? [], sampleLimit), sideSeries: sidePoints.get(name) ?? [] },
      enumerable: true,
      writable: true,
    });
  }
  return migrations;
}

function sidePoint(figures: SideFigures): SidePoint {
  return { ...figures, errorRate: figures.operations > 0 ? Math.min(1, figures.errors / figures.operations) : 0 };
}

interface LatencyAccumulator {
  count: number;
  window: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  weightedMean: number;
}

interface MigrationAccumulator {
  processes: number;
  reads: {
    total: number;
    entities: number;
    bySide: Record<Side, number>;
    byStage: Record<Stage, number>;
    byRoute: Record<Stage, number>;
  };
  writes: { total: number; entities: number; bySide: Record<Side, number>; byOperation: Record<string, number> };
  comparisons: number;
  matched: number;
  mismatches: number;
  errors: { total: number; bySide: Record<Side, number>; byCode: Record<string, number> };
  fallbacks: {
    total: number;
    byReason: Record<string, number>;
    bySource: Record<string, number>;
    byFlag: Record<string, number>;
  };
  latency: Record<LatencySide, LatencyAccumulator>;
  samples: MismatchSampleSnapshot[];
}

function zeroLatency(): LatencyAccumulator {
  return { count: 0, window: 0, p50: 0, p90: 0, p99: 0, max: 0, weightedMean: 0 };
}

function newAccumulator(): MigrationAccumulator {
  return {
    processes: 0,
    reads: {
      total: 0,
      entities: 0,
      bySide: { old: 0, new: 0 },
      byStage: Object.fromEntries(STAGES.map((stage) => [stage, 0])) as Record<Stage, number>,
      byRoute: Object.fromEntries(STAGES.map((stage) => [stage, 0])) as Record<Stage, number>,
    },
    writes: { total: 0, entities: 0, bySide: { old: 0, new: 0 }, byOperation: {} },
    comparisons: 0,
    matched: 0,
    mismatches: 0,
    errors: { total: 0, bySide: { old: 0, new: 0 }, byCode: {} },
    fallbacks: {
      total: 0,
      byReason: { error: 0, timeout: 0, type: 0 },
      bySource: { 'last-known-good': 0, default: 0 },
      byFlag: {},
    },
    latency: { old: zeroLatency(), new: zeroLatency(), both: zeroLatency() },
    samples: [],
  };
}

/** A count from another process's JSON: anything but a finite non-negative number is 0. */
function count(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : 0;
}

function record(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

/** Adds `source`'s counts into `target`: only known keys when `open` is false. */
function addCounts(target: Record<string, number>, source: unknown, open: boolean): void {
  for (const [key, value] of Object.entries(record(source))) {
    if (!open && !Object.hasOwn(target, key)) continue;
    const n = count(value);
    if (n === 0 && Object.hasOwn(target, key)) continue;
    // defineProperty: a key like "__proto__" from the database stays a plain key.
    Object.defineProperty(target, key, {
      value: (Object.hasOwn(target, key) ? target[key]! : 0) + n,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
}

function accumulate(acc: MigrationAccumulator, m: Record<string, unknown>): void {
  acc.processes++;
  const reads = record(m['reads']);
  acc.reads.total += count(reads['total']);
  acc.reads.entities += count(reads['entities']);
  addCounts(acc.reads.bySide, reads['bySide'], false);
  addCounts(acc.reads.byStage, reads['byStage'], false);
  addCounts(acc.reads.byRoute, reads['byRoute'], false);
  const writes = record(m['writes']);
  acc.writes.total += count(writes['total']);
  acc.writes.entities += count(writes['entities']);
  addCounts(acc.writes.bySide, writes['bySide'], false);
  addCounts(acc.writes.byOperation, writes['byOperation'], true);
  acc.comparisons += count(m['comparisons']);
  acc.matched += count(m['matched']);
  acc.mismatches += count(m['mismatches']);
  const errors = record(m['errors']);
  acc.errors.total += count(errors['total']);
  addCounts(acc.errors.bySide, errors['bySide'], false);
  addCounts(acc.errors.byCode, errors['byCode'], true);
  const fallbacks = record(m['flagFallbacks']);
  acc.fallbacks.total += count(fallbacks['total']);
  addCounts(acc.fallbacks.byReason, fallbacks['byReason'], false);
  addCounts(acc.fallbacks.bySource, fallbacks['bySource'], false);
  addCounts(acc.fallbacks.byFlag, fallbacks['byFlag'], true);
  const latency = record(m['latency']);
  for (const side of LATENCY_SIDES) {
    const l = record(latency[side]);
    const target = acc.latency[side];
    const window = count(l['window']);
    target.count += count(l['count']);
    target.window += window;
    target.weightedMean += count(l['mean']) * window;
    target.p50 = Math.max(target.p50, count(l['p50']));
    target.p90 = Math.max(target.p90, count(l['p90']));
    target.p99 = Math.max(target.p99, count(l['p99']));
    target.max = Math.max(target.max, count(l['max']));
  }
  const samples = m['recentMismatches'];
  if (Array.isArray(samples)) {
    for (const sample of samples) {
      const checked = checkSample(sample);
      if (checked !== undefined) acc.samples.push(checked);
    }
  }
}

/** A sample from another process's JSON, or `undefined` when it is not one. */
function checkSample(value: unknown): MismatchSampleSnapshot | undefined {
  const sample = record(value);
  if (typeof sample['migration'] !== 'string' || typeof sample['at'] !== 'string' || !Array.isArray(sample['diffs'])) {
    return undefined;
  }
  const diffs = sample['diffs'].map((diff) => {
    const d = record(diff);
    return {
      field: String(d['field'] ?? ''),
      kind: String(d['kind'] ?? 'value') as MismatchSampleSnapshot['diffs'][number]['kind'],
      old: (d['old'] ?? null) as JsonValue,
      new: (d['new'] ?? null) as JsonValue,
    };
  });
  return {
    migration: sample['migration'],
    stage: String(sample['stage'] ?? '') as Stage,
    // Snapshots published before samples carried a route behaved as their stage.
    route: String(sample['route'] ?? sample['stage'] ?? '') as Stage,
    operation: String(sample['operation'] ?? '') as MismatchSampleSnapshot['operation'],
    key: (sample['key'] ?? null) as JsonValue,
    diffs,
    at: sample['at'],
  };
}

function finish(
  acc: MigrationAccumulator,
  series: MismatchRatePoint[],
  sampleLimit: number,
): Omit<FleetMigrationMetrics, 'sideSeries'> {
  const latency = Object.fromEntries(
    LATENCY_SIDES.map((side) => {
      const l = acc.latency[side];
      return [
        side,
        {
          count: l.count,
          window: l.window,
          p50: l.p50,
          p90: l.p90,
          p99: l.p99,
          max: l.max,
          mean: l.window === 0 ? 0 : l.weightedMean / l.window,
        },
      ];
    }),
  ) as Record<LatencySide, LatencySummary>;
  const samples = acc.samples
    .map((sample, index) => ({ sample, index, time: Date.parse(sample.at) }))
    // Newest first; unparseable times last; ties keep the order they came in.
    .sort(
      (a, b) =>
        (Number.isNaN(b.time) ? -Infinity : b.time) - (Number.isNaN(a.time) ? -Infinity : a.time) || a.index - b.index,
    )
    .slice(0, sampleLimit)
    .map(({ sample }) => sample);
  return {
    reads: acc.reads,
    writes: { ...acc.writes, byOperation: sortedKeys(acc.writes.byOperation) },
    comparisons: acc.comparisons,
    matched: acc.matched,
    mismatches: acc.mismatches,
    mismatchRate: acc.comparisons === 0 ? 0 : Math.min(1, acc.mismatches / acc.comparisons),
    errors: { ...acc.errors, byCode: sortedKeys(acc.errors.byCode) },
    flagFallbacks: {
      total: acc.fallbacks.total,
      byReason: acc.fallbacks.byReason as MetricsTotals['flagFallbacks']['byReason'],
      bySource: acc.fallbacks.bySource as MetricsTotals['flagFallbacks']['bySource'],
      byFlag: sortedKeys(acc.fallbacks.byFlag),
    },
    latency,
    recentMismatches: samples,
    processes: acc.processes,
    series,
  };
}

function sortedKeys(map: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const key of Object.keys(map).sort()) {
    Object.defineProperty(out, key, { value: map[key], enumerable: true, writable: true, configurable: true });
  }
  return out;
}
