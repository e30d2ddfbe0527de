/**
 * An in-process metrics sink: counters, bounded latency windows and the most recent
 * mismatch samples, per migration, read back as a plain JSON-serializable snapshot for
 * the CLI, a dashboard or a test. It keeps what the series table doesn't describe (the
 * snapshot's own shape), so it takes events through the shared dispatch.
 */
import { z } from 'zod';
import { parseOptions } from '../kernel/index.js';
import { STAGES, type Stage } from '../model/index.js';
import { dispatchMetricEvent, type MetricEventHandlers } from './dispatch-metric-event.js';
import type { FallbackReason, MetricEvent, MetricsSink, MismatchSample, Operation } from './events.js';
import { LatencyWindow } from './latency-window.js';
import type {
  LatencySide,
  LatencySummary,
  MetricsSnapshot,
  MetricsTotals,
  MigrationMetrics,
} from './metrics-snapshot.js';
import { Ring } from './ring.js';
import { sampleSnapshot } from './sample-snapshot.js';

/** Options of {@link createMemoryMetrics}. */
export interface MemoryMetricsOptions {
  /**
   * Mismatch samples kept, globally and per migration; the oldest is dropped first.
   * `0` keeps counts only.
   * @default 100
   */
  readonly sampleCapacity?: number;
  /**
   * Latency measurements kept per migration and side; percentiles are computed over them.
   * @default 2048
   */
  readonly latencyWindow?: number;
}

const optionsSchema = z.strictObject({
  sampleCapacity: z.number().int().min(0).max(1_000_000).optional(),
  latencyWindow: z.number().int().min(1).max(1_000_000).optional(),
});

const expected = {
  sampleCapacity: 'an integer between 0 and 1000000',
  latencyWindow: 'an integer between 1 and 1000000',
};

/** A {@link MetricsSink} that keeps its metrics in memory. */
export interface MemoryMetrics extends MetricsSink {
  /** A copy of the metrics now. Percentiles are computed here, not on `record`. */
  snapshot(): MetricsSnapshot;
  /** Forgets everything recorded so far. */
  reset(): void;
}

/**
 * Creates an in-memory metrics sink. `record` is O(1) and does not allocate once a
 * migration has been seen (mismatch samples are kept by reference).
 *
 * Mismatches are counted from `comparison` events with `matched: false`; `mismatch`
 * events supply the samples. So `mismatchRate` stays within 0..1 even when the emitter
 * samples or rate-limits what it reports.
 *
 * @throws {ConfigurationError} when an option is invalid, naming it.
 * @example
 * ```ts
 * import { createMemoryMetrics } from 'flagshift';
 * const metrics = createMemoryMetrics({ sampleCapacity: 20 });
 * metrics.record({ type: 'comparison', migration: 'users-rename', stage: 'live', route: 'shadow', matched: true });
 * console.log(JSON.stringify(metrics.snapshot().totals));
 * ```
 */
export function createMemoryMetrics(options?: MemoryMetricsOptions): MemoryMetrics {
  const valid = parseOptions('memory metrics', optionsSchema, options ?? {}, expected);
  const sampleCapacity = valid.sampleCapacity ?? 100;
  const latencyWindow = valid.latencyWindow ?? 2048;

  const migrations = new Map<string, MigrationState>();
  const store: Store = {
    stateOf(migration: string): MigrationState {
      let state = migrations.get(migration);
      if (state === undefined) {
        state = newMigrationState(sampleCapacity, latencyWindow);
        migrations.set(migration, state);
      }
      return state;
    },
    recent: new Ring<MismatchSample>(sampleCapacity),
  };

  return {
    record(event: MetricEvent): void {
      try {
        if (typeof event.migration === 'string') dispatchMetricEvent(HANDLERS, event, store);
      } catch {
        // A sink must never throw into the data path; a malformed event is dropped.
      }
    },
    snapshot(): MetricsSnapshot {
      const names = [...migrations.keys()].sort();
      const perMigration = names.map((name) => [name, migrationSnapshot(migrations.get(name)!)] as const);
      return {
        takenAt: new Date().toISOString(),
        migrations: Object.fromEntries(perMigration),
        totals: totalsOf(names.map((name) => migrations.get(name)!)),
        recentMismatches: store.recent.toArray().map(sampleSnapshot),
      };
    },
    reset(): void {
      migrations.clear();
      store.recent = new Ring<MismatchSample>(sampleCapacity);
    },
  };
}

/** What the handlers change: each migration's state, and the most recent samples of all. */
interface Store {
  stateOf(migration: string): MigrationState;
  recent: Ring<MismatchSample>;
}

interface SideCounts {
  old: number;
  new: number;
}

interface MigrationState {
  readonly reads: {
    total: number;
    entities: number;
    bySide: SideCounts;
    byStage: Record<Stage, number>;
    byRoute: Record<Stage, number>;
  };
  readonly writes: {
    total: number;
    entities: number;
    bySide: SideCounts;
    byOperation: Map<Operation, number>;
  };
  comparisons: number;
  matched: number;
  mismatches: number;
  readonly errors: { total: number; bySide: SideCounts; byCode: Map<string, number> };
  readonly fallbacks: {
    total: number;
    byReason: Record<FallbackReason, number>;
    bySource: Record<'last-known-good' | 'default', number>;
    byFlag: Map<string, number>;
  };
  readonly latency: Record<LatencySide, LatencyWindow | undefined>;
  readonly latencyWindow: number;
  readonly samples: Ring<MismatchSample>;
}

function stageCounts(): Record<Stage, number> {
  return Object.fromEntries(STAGES.map((stage) => [stage, 0])) as Record<Stage, number>;
}

function newMigrationState(sampleCapacity: number, latencyWindow: number): MigrationState {
  return {
    reads: { total: 0, entities: 0, bySide: { old: 0, new: 0 }, byStage: stageCounts(), byRoute: stageCounts() },
    writes: { total: 0, entities: 0, bySide: { old: 0, new: 0 }, byOperation: new Map() },
    comparisons: 0,
    matched: 0,
    mismatches: 0,
    errors: { total: 0, bySide: { old: 0, new: 0 }, byCode: new Map() },
    fallbacks: {
      total: 0,
      byReason: { error: 0, timeout: 0, type: 0 },
      bySource: { 'last-known-good': 0, default: 0 },
      byFlag: new Map(),
    },
    // Allocated on first use: most migrations never measure all three.
    latency: { old: undefined, new: undefined, both: undefined },
    latencyWindow,
    samples: new Ring(sampleCapacity),
  };
}

function increment<K>(map: Map<K, number>, key: K, by = 1): void {
  map.set(key, (map.get(key) ?? 0) + by);
}

/**
 * What each event changes. Each handler checks what it is about to index by before
 * changing anything, so a malformed event (from untyped code) is dropped whole instead of
 * leaving `NaN` or stray keys in the counters.
 */
const HANDLERS: MetricEventHandlers<Store> = {
  read(event, { stateOf }) {
    const reads = stateOf(event.migration).reads;
    if (
      !Object.hasOwn(reads.bySide, event.served) ||
      !Object.hasOwn(reads.byStage, event.stage) ||
      !Object.hasOwn(reads.byRoute, event.route)
    )
      return;
    reads.total++;
    reads.entities += countOf(event.count);
    reads.bySide[event.served]++;
    reads.byStage[event.stage]++;
    reads.byRoute[event.route]++;
  },
  write(event, { stateOf }) {
    const writes = stateOf(event.migration).writes;
    for (const side of event.sides) if (!Object.hasOwn(writes.bySide, side)) return;
    writes.total++;
    writes.entities += countOf(event.count);
    for (const side of event.sides) writes.bySide[side]++;
    increment(writes.byOperation, event.operation);
  },
  comparison(event, { stateOf }) {
    const state = stateOf(event.migration);
    state.comparisons++;
    if (event.matched) state.matched++;
    else state.mismatches++;
  },
  mismatch(event, store) {
    if (typeof event.sample !== 'object' || event.sample === null) return;
    store.stateOf(event.migration).samples.add(event.sample);
    store.recent.add(event.sample);
  },
  error(event, { stateOf }) {
    const errors = stateOf(event.migration).errors;
    if (!Object.hasOwn(errors.bySide, event.side)) return;
    errors.total++;
    errors.bySide[event.side]++;
    increment(errors.byCode, String(event.code));
  },
  latency(event, { stateOf }) {
    const ms = event.milliseconds;
    if (!Number.isFinite(ms) || ms < 0) return;
    const state = stateOf(event.migration);
    if (!Object.hasOwn(state.latency, event.side)) return;
    let window = state.latency[event.side];
    if (window === undefined) {
      window = new LatencyWindow(state.latencyWindow);
      state.latency[event.side] = window;
    }
    window.add(ms);
  },
  'flag-fallback'(event, { stateOf }) {
    const fallbacks = stateOf(event.migration).fallbacks;
    if (!Object.hasOwn(fallbacks.byReason, event.reason) || !Object.hasOwn(fallbacks.bySource, event.source)) return;
    fallbacks.total++;
    fallbacks.byReason[event.reason]++;
    fallbacks.bySource[event.source]++;
    increment(fallbacks.byFlag, String(event.flagKey));
  },
};

function countOf(count: number): number {
  return Number.isFinite(count) && count > 0 ? count : 0;
}

const EMPTY_LATENCY: LatencySummary = Object.freeze({
  count: 0,
  window: 0,
  p50: 0,
  p90: 0,
  p99: 0,
  max: 0,
  mean: 0,
});

function sortedRecord<K extends string>(map: ReadonlyMap<K, number>): Record<K, number> {
  return Object.fromEntries([...map.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) as Record<K, number>;
}

function rate(mismatches: number, comparisons: number): number {
  return comparisons === 0 ? 0 : mismatches / comparisons;
}

function countersOf(state: MigrationState): MetricsTotals {
  return {
    reads: {
      total: state.reads.total,
      entities: state.reads.entities,
      bySide: { ...state.reads.bySide },
      byStage: { ...state.reads.byStage },
      byRoute: { ...state.reads.byRoute },
    },
    writes: {
      total: state.writes.total,
      entities: state.writes.entities,
      bySide: { ...state.writes.bySide },
      byOperation: sortedRecord(state.writes.byOperation),
    },
    comparisons: state.comparisons,
    matched: state.matched,
    mismatches: state.mismatches,
    mismatchRate: rate(state.mismatches, state.comparisons),
    errors: {
      total: state.errors.total,
      bySide: { ...state.errors.bySide },
      byCode: sortedRecord(state.errors.byCode),
    },
    flagFallbacks: {
      total: state.fallbacks.total,
      byReason: { ...state.fallbacks.byReason },
      bySource: { ...state.fallbacks.bySource },
      byFlag: sortedRecord(state.fallbacks.byFlag),
    },
  };
}

function migrationSnapshot(state: MigrationState): MigrationMetrics {
  return {
    ...countersOf(state),
    latency: {
      old: state.latency.old?.summary() ?? { ...EMPTY_LATENCY },
      new: state.latency.new?.summary() ?? { ...EMPTY_LATENCY },
      both: state.latency.both?.summary() ?? { ...EMPTY_LATENCY },
    },
    recentMismatches: state.samples.toArray().map(sampleSnapshot),
  };
}

function totalsOf(states: readonly MigrationState[]): MetricsTotals {
  const sum = newMigrationState(0, 1);
  for (const s of states) {
    sum.reads.total += s.reads.total;
    sum.reads.entities += s.reads.entities;
    addInto(sum.reads.bySide, s.reads.bySide);
    addInto(sum.reads.byStage, s.reads.byStage);
    addInto(sum.reads.byRoute, s.reads.byRoute);
    sum.writes.total += s.writes.total;
    sum.writes.entities += s.writes.entities;
    addInto(sum.writes.bySide, s.writes.bySide);
    for (const [k, v] of s.writes.byOperation) increment(sum.writes.byOperation, k, v);
    sum.comparisons += s.comparisons;
    sum.matched += s.matched;
    sum.mismatches += s.mismatches;
    sum.errors.total += s.errors.total;
    addInto(sum.errors.bySide, s.errors.bySide);
    for (const [k, v] of s.errors.byCode) increment(sum.errors.byCode, k, v);
    sum.fallbacks.total += s.fallbacks.total;
    addInto(sum.fallbacks.byReason, s.fallbacks.byReason);
    addInto(sum.fallbacks.bySource, s.fallbacks.bySource);
    for (const [k, v] of s.fallbacks.byFlag) increment(sum.fallbacks.byFlag, k, v);
  }
  return countersOf(sum);
}

function addInto<K extends string>(target: Record<K, number>, source: Readonly<Record<K, number>>): void {
  for (const key of Object.keys(source) as K[]) target[key] = (target[key] ?? 0) + source[key];
}
