/**
 * Guardrails: per-migration thresholds on the mismatch rate, the new side's error rate
 * and its latency relative to the old side, over a sliding window. A guardrail is both a
 * metrics sink (it watches the repository's events) and a read guard (it holds reads on
 * the old side once tripped). Coming back takes a person calling `reset`.
 */

import type { ReadGuard } from '../flags/index.js';
import { ConfigurationError, describeValue } from '../kernel/index.js';
import {
  dispatchMetricEvent,
  type GuardrailEvent,
  type GuardrailReason,
  type GuardrailTrip,
  type MetricEvent,
  type MetricEventHandlers,
  type MetricsSink,
  type Operation,
} from '../metrics/index.js';
import { isStage, STAGE_BEHAVIOUR } from '../model/index.js';
import {
  type GuardrailsOptions,
  type ResolvedThresholds,
  type ValidGuardrailsOptions,
  validateGuardrailsOptions,
} from './options.js';
import { GuardrailWindow, type GuardrailWindowFigures } from './window.js';

/** Where the call to `setSafeStage` of the current trip stands. */
export type SafeStageState = 'not-configured' | 'pending' | 'applied' | 'failed';

/** One migration's guardrail, as {@link Guardrails.status} reports it. */
export interface GuardrailStatus {
  readonly migration: string;
  /** Whether reads of the migration are held on the old side. */
  readonly tripped: boolean;
  /** The trip, while tripped. */
  readonly trip: GuardrailTrip | undefined;
  /** The `setSafeStage` call of the current trip; `not-configured` without the option or a trip. */
  readonly safeStage: SafeStageState;
  /** Why `setSafeStage` failed, when it did. */
  readonly safeStageError: unknown;
  /** The thresholds in force for this migration. */
  readonly thresholds: ResolvedThresholds;
  /** The window now: counts, and the rates and ratio the thresholds are judged on. */
  readonly window: GuardrailWindowFigures & {
    readonly mismatchRate: number;
    readonly newErrorRate: number;
    /** New over old latency (`latencyStatistic`), `0` while a side has no measurement. */
    readonly latencyRatio: number;
  };
}

/**
 * Guardrails over every migration whose events they receive. Pass the object as the
 * repository's `readGuard`, and feed it the repository's events (as `metrics`, or through
 * `combineSinks` with your exporters).
 */
export interface Guardrails extends MetricsSink, ReadGuard {
  /** Counts one event; may trip the event's migration. Never throws. */
  record(event: MetricEvent): void;
  /** `false` from the moment the migration's guardrail tripped until {@link Guardrails.reset}. */
  allowsNewReads(migration: string): boolean;
  /**
   * Trips the migration's guardrail by hand (reason `manual`), with the same effects as a
   * crossed threshold. Returns the trip, or `undefined` when it was already tripped.
   */
  trip(migration: string, note?: string): GuardrailTrip | undefined;
  /**
   * Lets the migration serve new reads again and starts its window afresh. Meant for a
   * person who has looked at the cause; it doesn't touch the stage flag that
   * `setSafeStage` set. Returns whether it was tripped.
   */
  reset(migration: string): boolean;
  /** Every migration seen (by an event, a trip or the options), sorted by name. */
  status(): GuardrailStatus[];
  /** Calls `listener` on every trip and reset. Returns an unsubscribe function. */
  subscribe(listener: (event: GuardrailEvent) => void): () => void;
}

const READ_OPERATIONS: ReadonlySet<Operation> = new Set<Operation>(['get', 'getMany', 'find']);

interface MigrationGuard {
  readonly name: string;
  readonly thresholds: ResolvedThresholds;
  readonly window: GuardrailWindow;
  trip: GuardrailTrip | undefined;
  safeStage: SafeStageState;
  safeStageError: unknown;
  /** Bumped by every trip and reset, so a late `setSafeStage` result can't update a newer trip. */
  generation: number;
}

/**
 * Creates guardrails. Once a threshold is crossed for a migration, reads of it that
 * would be served from the new side are served from the old side (and still compared)
 * in this process at once, while writes keep going to both sides; `onTrip` and every
 * subscriber hear of it, and `setSafeStage`, when given, is called once so other
 * processes follow through the flag system. The guardrail stays tripped until a person
 * calls {@link Guardrails.reset}.
 *
 * The tripped state lives in this process: a restarted process starts untripped, which is
 * why `setSafeStage` matters. Trips are judged only while events arrive; a window only
 * forgets what is older than `windowMs`.
 *
 * @throws {ConfigurationError} when an option is invalid.
 * @example
 * ```ts
 * import { combineSinks, createGuardrails, createMemoryMetrics, createRepository } from 'flagshift';
 * import { killMigration } from 'flagshift/postgres-flags';
 *
 * // usernameRename from defineMigration(), driver and flags as for any repository.
 * const guardrails = createGuardrails({
 *   thresholds: { maxMismatchRate: 0.001, minComparisons: 500, windowMs: 300_000 },
 *   migrations: { 'users-username': { maxMismatchRate: 0 } },
 *   onTrip: (trip) => console.error(trip.message),
 *   setSafeStage: async (_name, trip) => {
 *     await killMigration(driver, usernameRename, { reason: trip.message, actor: 'guardrail' });
 *   },
 * });
 * const repo = createRepository(usernameRename, {
 *   driver,
 *   flags,
 *   metrics: combineSinks(createMemoryMetrics(), guardrails),
 *   readGuard: guardrails,
 * });
 * // Later, by a person who fixed the cause (and set the stage flag back):
 * guardrails.reset('users-username');
 * ```
 */
export function createGuardrails(options: GuardrailsOptions = {}): Guardrails {
  const valid = validateGuardrailsOptions(options);
  const guards = new Map<string, MigrationGuard>();
  const listeners = new Set<(event: GuardrailEvent) => void>();
  for (const name of Object.keys(options.migrations ?? {})) guardOf(name);

  function guardOf(name: string): MigrationGuard {
    let guard = guards.get(name);
    if (guard === undefined) {
      const thresholds = valid.thresholdsOf(name);
      guard = {
        name,
        thresholds,
        window: new GuardrailWindow(thresholds.windowMs, thresholds.maxLatencyRatio !== false),
        trip: undefined,
        safeStage: 'not-configured',
        safeStageError: undefined,
        generation: 0,
      };
      guards.set(name, guard);
    }
    return guard;
  }

  function notify(event: GuardrailEvent): void {
    for (const listener of [...listeners]) {
      try {
        listener(event);
      } catch {
        // One listener (an exporter) failing must not keep the others from hearing.
      }
    }
  }

  function tripGuard(guard: MigrationGuard, trip: GuardrailTrip): void {
    guard.trip = trip;
    guard.generation++;
    try {
      valid.onTrip?.(trip);
    } catch {
      // The trip already holds reads; a failing callback must not reach the data path.
    }
    notify({ type: 'trip', trip });
    applySafeStage(guard, trip, valid);
  }

  /** What each event a threshold judges adds to its migration's window, at the clock reading `now`. */
  const handlers: MetricEventHandlers<number> = {
    comparison(event, now) {
      const guard = guardOf(event.migration);
      guard.window.addComparison(now, event.matched === true);
      checkMismatches(guard, now);
    },
    read(event, now) {
      if (!isStage(event.route) || !STAGE_BEHAVIOUR[event.route].reads.includes('new')) return;
      const entities = Number.isFinite(event.count) && event.count > 0 ? event.count : 0;
      if (entities === 0) return;
      const guard = guardOf(event.migration);
      guard.window.addNewReads(now, entities);
      checkNewErrors(guard, now);
    },
    error(event, now) {
      if (event.side !== 'new' || !READ_OPERATIONS.has(event.operation)) return;
      const guard = guardOf(event.migration);
      guard.window.addNewError(now);
      checkNewErrors(guard, now);
    },
    latency(event, now) {
      if (event.side === 'both' || !Number.isFinite(event.milliseconds) || event.milliseconds < 0) return;
      if (event.side !== 'old' && event.side !== 'new') return;
      const guard = guardOf(event.migration);
      if (guard.thresholds.maxLatencyRatio === false) return;
      guard.window.addLatency(now, event.side, event.milliseconds);
      checkLatency(guard, now);
    },
  };

  function record(event: MetricEvent): void {
    if (typeof event?.migration !== 'string') return;
    const now = valid.now();
    if (!Number.isFinite(now)) return;
    dispatchMetricEvent(handlers, event, now);
  }

  function checkMismatches(guard: MigrationGuard, now: number): void {
    const { maxMismatchRate, minComparisons } = guard.thresholds;
    if (guard.trip !== undefined || maxMismatchRate === false) return;
    const { comparisons, mismatches } = guard.window;
    if (comparisons < minComparisons) return;
    const observed = mismatches / comparisons;
    if (observed > maxMismatchRate) {
      tripGuard(guard, makeTrip(guard, 'mismatch-rate', observed, maxMismatchRate, comparisons, now));
    }
  }

  function checkNewErrors(guard: MigrationGuard, now: number): void {
    const { maxNewErrorRate, minNewReads } = guard.thresholds;
    if (guard.trip !== undefined || maxNewErrorRate === false) return;
    const { newReads, newErrors } = guard.window;
    if (newReads < minNewReads || newErrors === 0) return;
    const observed = newErrors / newReads;
    if (observed > maxNewErrorRate) {
      tripGuard(guard, makeTrip(guard, 'new-error-rate', observed, maxNewErrorRate, newReads, now));
    }
  }

  function checkLatency(guard: MigrationGuard, now: number): void {
    const { maxLatencyRatio, minLatencySamples, latencyStatistic } = guard.thresholds;
    if (guard.trip !== undefined || maxLatencyRatio === false) return;
    const oldSide = guard.window.latencyOf('old', latencyStatistic);
    const newSide = guard.window.latencyOf('new', latencyStatistic);
    const samples = Math.min(oldSide.count, newSide.count);
    if (samples < minLatencySamples || oldSide.value <= 0) return;
    const observed = newSide.value / oldSide.value;
    if (observed > maxLatencyRatio) {
      tripGuard(guard, makeTrip(guard, 'latency-ratio', observed, maxLatencyRatio, samples, now));
    }
  }

  return {
    record(event: MetricEvent): void {
      try {
        record(event);
      } catch {
        // A sink must never throw into the data path; a malformed event is dropped.
      }
    },
    allowsNewReads(migration: string): boolean {
      return guards.get(migration)?.trip === undefined;
    },
    trip(migration: string, note?: string): GuardrailTrip | undefined {
      if (typeof migration !== 'string' || migration === '') {
        throw new ConfigurationError(`guardrails: trip() needs a migration name, got ${describeValue(migration)}`);
      }
      const guard = guardOf(migration);
      if (guard.trip !== undefined) return undefined;
      const trip = makeTrip(guard, 'manual', 0, 0, 0, valid.now(), note);
      tripGuard(guard, trip);
      return trip;
    },
    reset(migration: string): boolean {
      const guard = guards.get(migration);
      if (guard?.trip === undefined) return false;
      guard.trip = undefined;
      guard.generation++;
      guard.safeStage = 'not-configured';
      guard.safeStageError = undefined;
      // The evidence that tripped it would trip it again at the next event.
      guard.window.clear();
      notify({ type: 'reset', migration, at: new Date(valid.now()).toISOString() });
      return true;
    },
    status(): GuardrailStatus[] {
      const now = valid.now();
      return [...guards.keys()].sort().map((name) => statusOf(guards.get(name)!, now));
    },
    subscribe(listener: (event: GuardrailEvent) => void): () => void {
      if (typeof listener !== 'function') {
        throw new ConfigurationError(
          `guardrails: subscribe() needs a listener function, got ${describeValue(listener)}`,
        );
      }
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
  };
}

function applySafeStage(guard: MigrationGuard, trip: GuardrailTrip, valid: ValidGuardrailsOptions): void {
  const setSafeStage = valid.setSafeStage;
  if (setSafeStage === undefined) return;
  const generation = guard.generation;
  guard.safeStage = 'pending';
  guard.safeStageError = undefined;
  // Deferred so a slow or throwing callback never runs inside the read that tripped.
  Promise.resolve()
    .then(() => setSafeStage(guard.name, trip))
    .then(
      () => {
        if (guard.generation === generation) guard.safeStage = 'applied';
      },
      (error: unknown) => {
        if (guard.generation !== generation) return;
        guard.safeStage = 'failed';
        guard.safeStageError = error;
      },
    );
}

const REASON_TEXT: Record<Exclude<GuardrailReason, 'manual'>, [string, string]> = {
  'mismatch-rate': ['mismatch rate', 'comparisons'],
  'new-error-rate': ['new-side error rate', 'reads of the new side'],
  'latency-ratio': ['new/old latency ratio', 'measurements per side'],
};

function makeTrip(
  guard: MigrationGuard,
  reason: GuardrailReason,
  observed: number,
  threshold: number,
  samples: number,
  now: number,
  note?: string,
): GuardrailTrip {
  const { windowMs } = guard.thresholds;
  let message: string;
  if (reason === 'manual') {
    message = `guardrail of migration "${guard.name}" tripped by hand${note ? `: ${note}` : ''}`;
  } else {
    const [what, unit] = REASON_TEXT[reason];
    message = `guardrail of migration "${guard.name}" tripped: ${what} ${round(observed)} over ${samples} ${unit} in the last ${windowMs} ms is above ${threshold}`;
  }
  return Object.freeze({
    migration: guard.name,
    reason,
    at: new Date(now).toISOString(),
    observed,
    threshold,
    samples,
    windowMs,
    message,
  });
}

function round(value: number): number {
  return Math.round(value * 10_000) / 10_000;
}

function statusOf(guard: MigrationGuard, now: number): GuardrailStatus {
  const figures = guard.window.figures(now);
  const statistic = guard.thresholds.latencyStatistic;
  const pick = (side: 'old' | 'new') => {
    const latency = figures.latency?.[side];
    return latency === undefined ? 0 : statistic === 'p99' ? latency.p99 : latency.mean;
  };
  const oldLatency = pick('old');
  const newLatency = pick('new');
  return {
    migration: guard.name,
    tripped: guard.trip !== undefined,
    trip: guard.trip,
    safeStage: guard.safeStage,
    safeStageError: guard.safeStageError,
    thresholds: guard.thresholds,
    window: {
      ...figures,
      mismatchRate: figures.comparisons === 0 ? 0 : figures.mismatches / figures.comparisons,
      newErrorRate: figures.newReads === 0 ? 0 : figures.newErrors / figures.newReads,
      latencyRatio: oldLatency > 0 && newLatency > 0 ? newLatency / oldLatency : 0,
    },
  };
}

export { GUARDRAIL_REASONS, type GuardrailEvent, type GuardrailReason, type GuardrailTrip } from '../metrics/index.js';
export type { GuardrailsOptions, GuardrailThresholds, ResolvedThresholds } from './options.js';
export type { GuardrailWindowFigures, GuardrailWindowLatency } from './window.js';
