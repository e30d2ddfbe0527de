/**
 * The shape of the in-memory sink's snapshot: plain JSON, per migration and in total.
 * `flagshift/lifecycle`'s metrics store publishes it and the dashboard reads it, so a field
 * here is a field there.
 */
import type { Side, Stage } from '../model/index.js';
import type { FieldDiff } from '../shadow/index.js';
import type { FallbackReason, Operation } from './events.js';

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
  /** Operations by the migration's stage flag. */
  readonly byStage: Readonly<Record<Stage, number>>;
  /**
   * Operations by the stage they behaved as: in `live`, entities outside the read
   * percentage count under `shadow` here and under `live` in `byStage`.
   */
  readonly byRoute: Readonly<Record<Stage, number>>;
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
  /** The migration's stage flag. */
  readonly stage: Stage;
  /** The stage the read behaved as (`shadow` for `live` outside the read percentage). */
  readonly route: Stage;
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

/** A point-in-time copy of an in-memory sink (`createMemoryMetrics`), safe to `JSON.stringify`. */
export interface MetricsSnapshot {
  /** ISO-8601 time the snapshot was taken. */
  readonly takenAt: string;
  /** By migration name, in name order. */
  readonly migrations: Readonly<Record<string, MigrationMetrics>>;
  readonly totals: MetricsTotals;
  /** Most recent mismatch samples of all migrations, newest last. */
  readonly recentMismatches: readonly MismatchSampleSnapshot[];
}

/**
 * Operations that ran on `side`: reads it served, writes to it, shadow comparisons (which
 * read both sides) and its failed statements. The one meaning of "operations per side"
 * that error rates are computed over (the promotion gate, the fleet's side history).
 */
export function sideOperations(
  totals: Pick<MetricsTotals, 'reads' | 'writes' | 'comparisons' | 'errors'>,
  side: Side,
): number {
  return totals.reads.bySide[side] + totals.writes.bySide[side] + totals.comparisons + totals.errors.bySide[side];
}
