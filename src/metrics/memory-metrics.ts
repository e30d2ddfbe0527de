/**
 * An in-process metrics sink: counters, bounded latency windows and the most recent
 * mismatch samples, per migration, read back as a plain JSON-serializable snapshot for
 * the CLI, a dashboard or a test. Also {@link combineSinks}, to feed it alongside an
 * exporter.
 */
import { z } from 'zod';
import { ConfigurationError } from '../kernel/index.js';
import { type Side, STAGES, type Stage } from '../model/index.js';
import { bytesOf, type FieldDiff } from '../shadow/index.js';
import type { FallbackReason, MetricEvent, MetricsSink, MismatchSample, Operation } from './events.js';

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

/** Side a latency was measured on: `both` is one statement that served old and new. */
export type LatencySide = Side | 'both';

/** A JSON value: what a snapshot is made of. */
export type JsonValue = null | boolean | number | string | readonly JsonValue[] | { readonly [key: string]: JsonValue };

/** Latency of one migration and side, in milliseconds. All zero when nothing was measured. */
export interface LatencySummary {
  /** Measurements since creation or the last reset. */
  readonly count: number;
  /** Most recent measurements the figures below are computed over (at most `latencyWindow`). */
  readonly window: number;
  /** Nearest-rank percentiles over the window. */
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

/** Reads served. */
export interface ReadMetrics {
  /** Read operations. */
  readonly total: number;
  /** Entities served by them. */
  readonly entities: number;
  /** Operations by the side whose value the caller got. */
  readonly bySide: Readonly<Record<Side, number>>;
  /** Operations by the stage the entity was routed by. */
  readonly byStage: Readonly<Record<Stage, number>>;
}

/** Writes acknowledged. */
export interface WriteMetrics {
  /** Write operations. */
  readonly total: number;
  /** Entities written by them. */
  readonly entities: number;
  /** Operations by side written; a dual write counts once on each side. */
  readonly bySide: Readonly<Record<Side, number>>;
  /** Operations by kind; operations never seen are absent. */
  readonly byOperation: Readonly<Partial<Record<Operation, number>>>;
}

/** Statements that failed. */
export interface ErrorMetrics {
  readonly total: number;
  readonly bySide: Readonly<Record<Side, number>>;
  /** By SQLSTATE or flagshift error code. */
  readonly byCode: Readonly<Record<string, number>>;
}

/** Flag evaluations that fell back to a last known good or default decision. */
export interface FlagFallbackMetrics {
  readonly total: number;
  readonly byReason: Readonly<Record<FallbackReason, number>>;
  readonly bySource: Readonly<Record<'last-known-good' | 'default', number>>;
  readonly byFlag: Readonly<Record<string, number>>;
}

/** A field diff as it appears in a snapshot. */
export interface FieldDiffSnapshot {
  readonly field: string;
  readonly kind: FieldDiff['kind'];
  readonly old: JsonValue;
  readonly new: JsonValue;
}

/**
 * A mismatch sample as it appears in a snapshot. Redacted values are unchanged. Raw values
 * are made JSON-safe: `undefined` becomes `null`, a bigint or non-finite number its decimal
 * string, a `Date` its ISO string, binary data PostgreSQL's `\x` hex form, a `Map` its
 * entries and a `Set` its members.
 */
export interface MismatchSampleSnapshot {
  readonly migration: string;
  readonly stage: Stage;
  readonly operation: Operation;
  readonly key: JsonValue;
  readonly diffs: readonly FieldDiffSnapshot[];
  readonly at: string;
}

/** Counters that add up across migrations. */
export interface MetricsTotals {
  readonly reads: ReadMetrics;
  readonly writes: WriteMetrics;
  /** Shadow comparisons made (one per entity or result set). */
  readonly comparisons: number;
  /** Comparisons whose sides agreed. */
  readonly matched: number;
  /** Comparisons whose sides disagreed. */
  readonly mismatches: number;
  /** `mismatches / comparisons`, `0` before the first comparison. */
  readonly mismatchRate: number;
  readonly errors: ErrorMetrics;
  readonly flagFallbacks: FlagFallbackMetrics;
}

/** Everything known about one migration. */
export interface MigrationMetrics extends MetricsTotals {
  readonly latency: Readonly<Record<LatencySide, LatencySummary>>;
  /** Most recent mismatch samples of this migration, newest last. */
  readonly recentMismatches: readonly MismatchSampleSnapshot[];
}

/** A point-in-time copy of a {@link MemoryMetrics}, safe to `JSON.stringify`. */
export interface MetricsSnapshot {
  /** ISO-8601 time the snapshot was taken. */
  readonly takenAt: string;
  /** By migration name, in name order. */
  readonly migrations: Readonly<Record<string, MigrationMetrics>>;
  readonly totals: MetricsTotals;
  /** Most recent mismatch samples of all migrations, newest last. */
  readonly recentMismatches: readonly MismatchSampleSnapshot[];
}

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
 * metrics.record({ type: 'comparison', migration: 'users-rename', stage: 'shadow', matched: true });
 * console.log(JSON.stringify(metrics.snapshot().totals));
 * ```
 */
export function createMemoryMetrics(options?: MemoryMetricsOptions): MemoryMetrics {
  const parsed = optionsSchema.safeParse(options ?? {});
  if (!parsed.success) throw optionsError(parsed.error, options);
  const sampleCapacity = parsed.data.sampleCapacity ?? 100;
  const latencyWindow = parsed.data.latencyWindow ?? 2048;

  const migrations = new Map<string, MigrationState>();
  let recent = new Ring<MismatchSample>(sampleCapacity);

  function stateOf(migration: string): MigrationState {
    let state = migrations.get(migration);
    if (state === undefined) {
      state = newMigrationState(sampleCapacity, latencyWindow);
      migrations.set(migration, state);
    }
    return state;
  }

  return {
    record(event: MetricEvent): void {
      try {
        apply(stateOf, event, recent);
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
        recentMismatches: recent.toArray().map(sampleSnapshot),
      };
    },
    reset(): void {
      migrations.clear();
      recent = new Ring<MismatchSample>(sampleCapacity);
    },
  };
}

function optionsError(error: z.ZodError, options: unknown): ConfigurationError {
  const issue = error.issues[0]!;
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0] ?? '';
    return new ConfigurationError(`memory metrics option "${key}" is not a known option`, { path: key });
  }
  const path = issue.path.join('.');
  if (path === '') {
    return new ConfigurationError(`memory metrics options must be an object, got ${describe(options)}`);
  }
  const value = (options as Record<string, unknown>)[path];
  const range = path === 'sampleCapacity' ? 'between 0 and 1000000' : 'between 1 and 1000000';
  return new ConfigurationError(`memory metrics option "${path}" must be an integer ${range}, got ${describe(value)}`, {
    path,
    cause: error,
  });
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? 'an array' : 'an object';
}

/**
 * A sink that passes every event to each of `sinks` in order. A sink that throws is
 * skipped for that event; the others still receive it. `undefined` entries are dropped,
 * so optional exporters can be listed directly.
 *
 * @throws {ConfigurationError} when an entry is not a sink.
 * @example
 * ```ts
 * import { combineSinks, createMemoryMetrics } from 'flagshift';
 * const memory = createMemoryMetrics();
 * const sink = combineSinks(memory, undefined);
 * ```
 */
export function combineSinks(...sinks: readonly (MetricsSink | undefined)[]): MetricsSink {
  const targets: MetricsSink[] = [];
  sinks.forEach((sink, index) => {
    if (sink === undefined) return;
    if (typeof (sink as Partial<MetricsSink> | null)?.record !== 'function') {
      throw new ConfigurationError(`metrics sink at position ${index} has no record() function`, {
        path: `sinks[${index}]`,
      });
    }
    targets.push(sink);
  });
  return {
    record(event: MetricEvent): void {
      for (const sink of targets) {
        try {
          sink.record(event);
        } catch {
          // Isolated by contract: one failing exporter must not starve the others.
        }
      }
    },
  };
}

/** A fixed-capacity ring; adding past capacity overwrites the oldest. */
class Ring<T> {
  private readonly items: (T | undefined)[];
  private next = 0;
  private size = 0;

  constructor(readonly capacity: number) {
    this.items = new Array<T | undefined>(capacity).fill(undefined);
  }

  add(item: T): void {
    if (this.capacity === 0) return;
    this.items[this.next] = item;
    this.next = this.next + 1 === this.capacity ? 0 : this.next + 1;
    if (this.size < this.capacity) this.size++;
  }

  /** Oldest first. */
  toArray(): T[] {
    const out: T[] = [];
    const start = this.size < this.capacity ? 0 : this.next;
    for (let i = 0; i < this.size; i++) out.push(this.items[(start + i) % this.capacity] as T);
    return out;
  }
}

/** Latency measurements of one migration and side, in a ring of doubles. */
class LatencyWindow {
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

interface SideCounts {
  old: number;
  new: number;
}

interface MigrationState {
  readonly reads: { total: number; entities: number; bySide: SideCounts; byStage: Record<Stage, number> };
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
    reads: { total: 0, entities: 0, bySide: { old: 0, new: 0 }, byStage: stageCounts() },
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
 * Applies one event. Each case checks what it is about to index by before changing
 * anything, so a malformed event (from untyped code) is dropped whole instead of leaving
 * `NaN` or stray keys in the counters.
 */
function apply(stateOf: (migration: string) => MigrationState, event: MetricEvent, recent: Ring<MismatchSample>): void {
  if (typeof event.migration !== 'string') return;
  switch (event.type) {
    case 'read': {
      const reads = stateOf(event.migration).reads;
      if (!Object.hasOwn(reads.bySide, event.served) || !Object.hasOwn(reads.byStage, event.stage)) return;
      reads.total++;
      reads.entities += countOf(event.count);
      reads.bySide[event.served]++;
      reads.byStage[event.stage]++;
      return;
    }
    case 'write': {
      const writes = stateOf(event.migration).writes;
      for (const side of event.sides) if (!Object.hasOwn(writes.bySide, side)) return;
      writes.total++;
      writes.entities += countOf(event.count);
      for (const side of event.sides) writes.bySide[side]++;
      increment(writes.byOperation, event.operation);
      return;
    }
    case 'comparison': {
      const state = stateOf(event.migration);
      state.comparisons++;
      if (event.matched) state.matched++;
      else state.mismatches++;
      return;
    }
    case 'mismatch':
      if (typeof event.sample !== 'object' || event.sample === null) return;
      stateOf(event.migration).samples.add(event.sample);
      recent.add(event.sample);
      return;
    case 'error': {
      const errors = stateOf(event.migration).errors;
      if (!Object.hasOwn(errors.bySide, event.side)) return;
      errors.total++;
      errors.bySide[event.side]++;
      increment(errors.byCode, String(event.code));
      return;
    }
    case 'latency': {
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
      return;
    }
    case 'flag-fallback': {
      const fallbacks = stateOf(event.migration).fallbacks;
      if (!Object.hasOwn(fallbacks.byReason, event.reason) || !Object.hasOwn(fallbacks.bySource, event.source)) return;
      fallbacks.total++;
      fallbacks.byReason[event.reason]++;
      fallbacks.bySource[event.source]++;
      increment(fallbacks.byFlag, String(event.flagKey));
      return;
    }
  }
}

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

function sampleSnapshot(sample: MismatchSample): MismatchSampleSnapshot {
  return {
    migration: sample.migration,
    stage: sample.stage,
    operation: sample.operation,
    key: toJson(sample.key, 0),
    diffs: sample.diffs.map((d) => ({ field: d.field, kind: d.kind, old: toJson(d.old, 0), new: toJson(d.new, 0) })),
    at: sample.at,
  };
}

/** Past this depth a raw value is cut off, which also ends cycles. */
const MAX_JSON_DEPTH = 32;

function toJson(value: unknown, depth: number): JsonValue {
  switch (typeof value) {
    case 'undefined':
      return null;
    case 'boolean':
    case 'string':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : String(value);
    case 'bigint':
      return value.toString();
    case 'symbol':
      return value.toString();
    case 'function':
      return `[function ${value.name}]`;
  }
  if (value === null) return null;
  if (depth >= MAX_JSON_DEPTH) return '[too deep]';
  const object = value as object;
  if (object instanceof Date) return Number.isNaN(object.getTime()) ? 'Invalid Date' : object.toISOString();
  const bytes = bytesOf(object);
  if (bytes !== undefined) return '\\x' + Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
  if (Array.isArray(object)) return object.map((v: unknown) => toJson(v, depth + 1));
  if (object instanceof Map) return [...object].map(([k, v]) => [toJson(k, depth + 1), toJson(v, depth + 1)]);
  if (object instanceof Set) return [...object].map((v) => toJson(v, depth + 1));
  const out: Record<string, JsonValue> = {};
  for (const [k, v] of Object.entries(object)) {
    if (v !== undefined)
      Object.defineProperty(out, k, { value: toJson(v, depth + 1), enumerable: true, writable: true });
  }
  return out;
}
