/**
 * Typed events every repository operation emits, and the sink interface that exporters
 * (in-memory, Prometheus, OpenTelemetry) implement. Events never carry entity keys or
 * values except inside a mismatch sample, where they are redacted unless the user opted in.
 */
import type { Side, Stage } from '../model/index.js';
import type { FieldDiff } from '../shadow/index.js';

/** Which repository operation produced an event. */
export type Operation = 'get' | 'getMany' | 'find' | 'insert' | 'update' | 'upsert' | 'delete';

/** A read was served. */
export interface ReadEvent {
  readonly type: 'read';
  readonly migration: string;
  /** The migration's stage flag, as the process evaluated it for this operation. */
  readonly stage: Stage;
  /**
   * The stage the operation behaved as: `live` outside the read percentage, or held back
   * by a guardrail, behaves as `shadow`; otherwise the flag's stage.
   */
  readonly route: Stage;
  readonly served: Side;
  readonly operation: Operation;
  /** Entities served by this operation. */
  readonly count: number;
}

/** A write was acknowledged. */
export interface WriteEvent {
  readonly type: 'write';
  readonly migration: string;
  /** The migration's stage flag, as the process evaluated it for this operation. */
  readonly stage: Stage;
  /**
   * The stage the operation behaved as: `live` outside the read percentage, or held back
   * by a guardrail, behaves as `shadow`; otherwise the flag's stage.
   */
  readonly route: Stage;
  readonly sides: readonly Side[];
  readonly operation: Operation;
  readonly count: number;
}

/** Old and new were compared for one entity or one result set. */
export interface ComparisonEvent {
  readonly type: 'comparison';
  readonly migration: string;
  /** The migration's stage flag, as the process evaluated it for this operation. */
  readonly stage: Stage;
  /**
   * The stage the operation behaved as: `live` outside the read percentage, or held back
   * by a guardrail, behaves as `shadow`; otherwise the flag's stage.
   */
  readonly route: Stage;
  readonly matched: boolean;
}

/** A detected mismatch with its field diffs. */
export interface MismatchSample {
  readonly migration: string;
  /** The migration's stage flag, as the process evaluated it for this operation. */
  readonly stage: Stage;
  /**
   * The stage the operation behaved as: `live` outside the read percentage, or held back
   * by a guardrail, behaves as `shadow`; otherwise the flag's stage.
   */
  readonly route: Stage;
  readonly operation: Operation;
  /** Entity key, redacted unless raw values were enabled; for a result-set comparison, `null`. */
  readonly key: unknown;
  readonly diffs: readonly FieldDiff[];
  /** ISO-8601 time the mismatch was seen. */
  readonly at: string;
}

/** Old and new disagreed. */
export interface MismatchEvent {
  readonly type: 'mismatch';
  readonly migration: string;
  /** The migration's stage flag, as the process evaluated it for this operation. */
  readonly stage: Stage;
  /**
   * The stage the operation behaved as: `live` outside the read percentage, or held back
   * by a guardrail, behaves as `shadow`; otherwise the flag's stage.
   */
  readonly route: Stage;
  readonly sample: MismatchSample;
}

/** A statement failed on one side. In `shadow` a new-side error never reaches the caller. */
export interface ErrorEvent {
  readonly type: 'error';
  readonly migration: string;
  /** The migration's stage flag, as the process evaluated it for this operation. */
  readonly stage: Stage;
  /**
   * The stage the operation behaved as: `live` outside the read percentage, or held back
   * by a guardrail, behaves as `shadow`; otherwise the flag's stage.
   */
  readonly route: Stage;
  readonly side: Side;
  readonly operation: Operation;
  /** SQLSTATE when the database sent one, else a flagshift error code or `unknown`. */
  readonly code: string;
}

/** Time spent on the database for one side (or both, for a single dual statement). */
export interface LatencyEvent {
  readonly type: 'latency';
  readonly migration: string;
  readonly side: Side | 'both';
  readonly operation: Operation;
  readonly milliseconds: number;
}

/** Why a flag decision fell back. */
export type FallbackReason = 'error' | 'timeout' | 'type';

/** A flag evaluation failed and a fallback decision was used. */
export interface FlagFallbackEvent {
  readonly type: 'flag-fallback';
  readonly migration: string;
  readonly flagKey: string;
  readonly reason: FallbackReason;
  /** `last-known-good` or `default`. */
  readonly source: 'last-known-good' | 'default';
}

/** Every event a repository emits. */
export type MetricEvent =
  | ReadEvent
  | WriteEvent
  | ComparisonEvent
  | MismatchEvent
  | ErrorEvent
  | LatencyEvent
  | FlagFallbackEvent;

/** The event of type `T`. */
export type MetricEventOf<T extends MetricEvent['type']> = Extract<MetricEvent, { readonly type: T }>;

/**
 * Every {@link MetricEvent} type. Written as a record, so that the compiler catches a type
 * added to the union but not here.
 */
export const METRIC_EVENT_TYPES: readonly MetricEvent['type'][] = Object.freeze(
  Object.keys({
    read: true,
    write: true,
    comparison: true,
    mismatch: true,
    error: true,
    latency: true,
    'flag-fallback': true,
  } satisfies Record<MetricEvent['type'], true>) as MetricEvent['type'][],
);

const EVENT_TYPES: ReadonlySet<string> = new Set(METRIC_EVENT_TYPES);

/**
 * Whether `type` is one of {@link MetricEvent}'s, so that a sink never treats an
 * untyped caller's `{ type: 'toString' }` as something it keeps.
 */
export function isMetricEventType(type: unknown): type is MetricEvent['type'] {
  return typeof type === 'string' && EVENT_TYPES.has(type);
}

/** Receives events. Must be fast and must not throw; flagshift drops what a sink throws. */
export interface MetricsSink {
  /** Takes one event. */
  record(event: MetricEvent): void;
}
