import { describe, expect, it, vi } from 'vitest';
import { createGuardrails } from '../../src/guardrails/guardrails.js';
import type { GuardrailsOptions } from '../../src/guardrails/options.js';
import { ConfigurationError } from '../../src/kernel/errors.js';
import type { MetricEvent } from '../../src/metrics/events.js';
import type { GuardrailEvent } from '../../src/metrics/guardrail-events.js';

const M = 'users-username';

function clock(start = 1_000_000) {
  let now = start;
  return {
    now: () => now,
    advance(ms: number) {
      now += ms;
    },
  };
}

function comparison(matched: boolean, migration = M): MetricEvent {
  return { type: 'comparison', migration, stage: 'shadow', route: 'shadow', matched };
}

function newRead(count = 1, migration = M): MetricEvent {
  return { type: 'read', migration, stage: 'shadow', route: 'shadow', served: 'old', operation: 'get', count };
}

function newError(operation: 'get' | 'insert' = 'get', side: 'old' | 'new' = 'new'): MetricEvent {
  return { type: 'error', migration: M, stage: 'shadow', route: 'shadow', side, operation, code: '42703' };
}

function latency(side: 'old' | 'new' | 'both', milliseconds: number): MetricEvent {
  return { type: 'latency', migration: M, side, operation: 'get', milliseconds };
}

function guardrails(options: GuardrailsOptions = {}) {
  const time = clock();
  const trips = vi.fn();
  const events: GuardrailEvent[] = [];
  const g = createGuardrails({ now: time.now, onTrip: trips, ...options });
  g.subscribe((event) => events.push(event));
  return { g, time, trips, events };
}

describe('guardrails', () => {
  it('mismatch rate: trips once the window holds the minimum sample and the rate is above the maximum', () => {
    const { g, trips, events } = guardrails({ thresholds: { maxMismatchRate: 0.1, minComparisons: 20 } });
    for (let i = 0; i < 16; i++) g.record(comparison(true));
    for (let i = 0; i < 3; i++) g.record(comparison(false));
    // 3 of 19: above 10%, but below the minimum sample.
    expect(g.allowsNewReads(M)).toBe(true);
    g.record(comparison(false));
    expect(g.allowsNewReads(M)).toBe(false);
    expect(trips).toHaveBeenCalledTimes(1);
    const trip = trips.mock.calls[0]![0];
    expect(trip).toMatchObject({ migration: M, reason: 'mismatch-rate', observed: 0.2, threshold: 0.1, samples: 20 });
    expect(trip.message).toBe(
      'guardrail of migration "users-username" tripped: mismatch rate 0.2 over 20 comparisons in the last 60000 ms is above 0.1',
    );
    expect(events).toEqual([{ type: 'trip', trip }]);
    // Further mismatches don't trip again.
    for (let i = 0; i < 50; i++) g.record(comparison(false));
    expect(trips).toHaveBeenCalledTimes(1);
  });

  it('mismatch rate: a rate equal to the maximum does not trip; 0 trips on the first mismatch', () => {
    const equal = guardrails({ thresholds: { maxMismatchRate: 0.25, minComparisons: 4 } });
    for (const matched of [true, true, true, false]) equal.g.record(comparison(matched));
    expect(equal.g.allowsNewReads(M)).toBe(true);

    const strict = guardrails({ thresholds: { maxMismatchRate: 0, minComparisons: 3 } });
    for (const matched of [true, true, true]) strict.g.record(comparison(matched));
    expect(strict.g.allowsNewReads(M)).toBe(true);
    strict.g.record(comparison(false));
    expect(strict.g.allowsNewReads(M)).toBe(false);
  });

  it('window: comparisons older than windowMs no longer count', () => {
    const { g, time } = guardrails({ thresholds: { maxMismatchRate: 0.5, minComparisons: 10, windowMs: 10_000 } });
    for (let i = 0; i < 9; i++) g.record(comparison(false));
    time.advance(10_000);
    // The nine mismatches fell out: one more is a sample of 1, below the minimum.
    g.record(comparison(false));
    expect(g.allowsNewReads(M)).toBe(true);
    expect(g.status()[0]!.window).toMatchObject({ comparisons: 1, mismatches: 1 });
    time.advance(5_000);
    for (let i = 0; i < 8; i++) g.record(comparison(true));
    g.record(comparison(false));
    // 2 of 10 within the window: 20%, below 50%.
    expect(g.status()[0]!.window).toMatchObject({ comparisons: 10, mismatches: 2, mismatchRate: 0.2 });
    expect(g.allowsNewReads(M)).toBe(true);
  });

  it('window: a long quiet period empties it', () => {
    const { g, time } = guardrails({ thresholds: { windowMs: 1_000 } });
    for (let i = 0; i < 5; i++) g.record(comparison(true));
    time.advance(1_000_000);
    expect(g.status()[0]!.window.comparisons).toBe(0);
  });

  it('new-side error rate: trips on errors of reads that fetched the new side, not on writes or old-side errors', () => {
    const { g, trips } = guardrails({ thresholds: { maxNewErrorRate: 0.05, minNewReads: 100 } });
    g.record(newRead(60));
    for (let i = 0; i < 10; i++) g.record(newError());
    g.record(newError('insert'));
    g.record(newError('get', 'old'));
    // 10 of 60 is above 5%, but the sample is below 100 reads.
    expect(g.allowsNewReads(M)).toBe(true);
    // Reads served from old in dualwrite never fetched new: they don't count.
    g.record({
      type: 'read',
      migration: M,
      stage: 'dualwrite',
      route: 'dualwrite',
      served: 'old',
      operation: 'get',
      count: 500,
    });
    expect(g.status()[0]!.window.newReads).toBe(60);
    g.record(newRead(40));
    expect(g.allowsNewReads(M)).toBe(false);
    expect(trips.mock.calls[0]![0]).toMatchObject({ reason: 'new-error-rate', observed: 0.1, samples: 100 });
  });

  it('latency ratio: trips when new p99 exceeds old p99 by more than the maximum', () => {
    const { g, trips } = guardrails({ thresholds: { maxLatencyRatio: 2, minLatencySamples: 100 } });
    for (let i = 0; i < 100; i++) g.record(latency('old', 1 + (i % 10) / 10));
    // 'both' is one statement over both sides: neither side's latency.
    for (let i = 0; i < 500; i++) g.record(latency('both', 100));
    for (let i = 0; i < 99; i++) g.record(latency('new', 5));
    expect(g.allowsNewReads(M)).toBe(true);
    g.record(latency('new', 5));
    expect(g.allowsNewReads(M)).toBe(false);
    const trip = trips.mock.calls[0]![0];
    expect(trip.reason).toBe('latency-ratio');
    expect(trip.samples).toBe(100);
    // p99 of old is 1.9 ms, of new 5 ms: within the histogram's 5%.
    expect(trip.observed).toBeGreaterThan((5 / 1.9) * 0.9);
    expect(trip.observed).toBeLessThan((5 / 1.9) * 1.1);
  });

  it('latency ratio: a ratio below the maximum, or too few samples on one side, does not trip', () => {
    const { g } = guardrails({ thresholds: { maxLatencyRatio: 2, minLatencySamples: 50 } });
    for (let i = 0; i < 200; i++) g.record(latency('old', 2));
    for (let i = 0; i < 49; i++) g.record(latency('new', 100));
    expect(g.allowsNewReads(M)).toBe(true);
    const below = guardrails({ thresholds: { maxLatencyRatio: 2, minLatencySamples: 50 } });
    for (let i = 0; i < 200; i++) below.g.record(latency('old', 2));
    for (let i = 0; i < 200; i++) below.g.record(latency('new', 3.5));
    expect(below.g.allowsNewReads(M)).toBe(true);
    expect(below.g.status()[0]!.window.latencyRatio).toBeCloseTo(1.75, 0);
  });

  it('latency ratio: the mean statistic compares means', () => {
    const { g } = guardrails({ thresholds: { maxLatencyRatio: 2, minLatencySamples: 10, latencyStatistic: 'mean' } });
    for (let i = 0; i < 10; i++) g.record(latency('old', i === 0 ? 100 : 1));
    // Old mean 10.9 ms; new mean 20 ms: ratio 1.83.
    for (let i = 0; i < 10; i++) g.record(latency('new', 20));
    expect(g.allowsNewReads(M)).toBe(true);
    for (let i = 0; i < 10; i++) g.record(latency('new', 30));
    expect(g.allowsNewReads(M)).toBe(false);
  });

  it('thresholds: per-migration settings override the defaults; false turns a check off', () => {
    const { g } = guardrails({
      thresholds: { maxMismatchRate: false, minComparisons: 1 },
      migrations: { strict: { maxMismatchRate: 0 } },
    });
    g.record(comparison(false));
    g.record(comparison(false, 'strict'));
    expect(g.allowsNewReads(M)).toBe(true);
    expect(g.allowsNewReads('strict')).toBe(false);
    const byName = Object.fromEntries(g.status().map((s) => [s.migration, s]));
    expect(byName['strict']!.thresholds).toMatchObject({ maxMismatchRate: 0, minComparisons: 1, windowMs: 60_000 });
    expect(byName[M]!.thresholds.maxMismatchRate).toBe(false);
  });

  it('reset: re-enables new reads, starts the window afresh and notifies subscribers', () => {
    const { g, events, trips } = guardrails({ thresholds: { maxMismatchRate: 0, minComparisons: 1 } });
    g.record(comparison(false));
    expect(g.allowsNewReads(M)).toBe(false);
    expect(g.reset(M)).toBe(true);
    expect(g.reset(M)).toBe(false);
    expect(g.allowsNewReads(M)).toBe(true);
    expect(g.status()[0]).toMatchObject({ tripped: false, trip: undefined, window: { comparisons: 0 } });
    expect(events.map((e) => e.type)).toEqual(['trip', 'reset']);
    g.record(comparison(false));
    expect(g.allowsNewReads(M)).toBe(false);
    expect(trips).toHaveBeenCalledTimes(2);
  });

  it('trip: a manual trip holds reads and reports reason manual, once', () => {
    const { g, trips } = guardrails();
    const trip = g.trip(M, 'pager says so');
    expect(trip).toMatchObject({ migration: M, reason: 'manual' });
    expect(trip?.message).toBe('guardrail of migration "users-username" tripped by hand: pager says so');
    expect(g.trip(M)).toBeUndefined();
    expect(g.allowsNewReads(M)).toBe(false);
    expect(g.allowsNewReads('other')).toBe(true);
    expect(trips).toHaveBeenCalledTimes(1);
  });

  it('setSafeStage: called once per trip, its outcome reported in status()', async () => {
    let fail = false;
    const setSafeStage = vi.fn(async () => {
      if (fail) throw new Error('flag store down');
    });
    const { g } = guardrails({ thresholds: { maxMismatchRate: 0, minComparisons: 1 }, setSafeStage });
    g.record(comparison(false));
    g.record(comparison(false));
    expect(g.status()[0]!.safeStage).toBe('pending');
    await vi.waitFor(() => expect(g.status()[0]!.safeStage).toBe('applied'));
    expect(setSafeStage).toHaveBeenCalledTimes(1);
    expect(setSafeStage).toHaveBeenCalledWith(M, expect.objectContaining({ migration: M, reason: 'mismatch-rate' }));
    g.reset(M);
    fail = true;
    g.record(comparison(false));
    await vi.waitFor(() => expect(g.status()[0]!.safeStage).toBe('failed'));
    expect((g.status()[0]!.safeStageError as Error).message).toBe('flag store down');
    expect(setSafeStage).toHaveBeenCalledTimes(2);
  });

  it('never throws into the data path: failing callbacks, listeners and malformed events', () => {
    const g = createGuardrails({
      thresholds: { maxMismatchRate: 0, minComparisons: 1 },
      onTrip: () => {
        throw new Error('boom');
      },
      setSafeStage: () => {
        throw new Error('sync boom');
      },
    });
    const heard = vi.fn();
    g.subscribe(() => {
      throw new Error('listener boom');
    });
    g.subscribe(heard);
    expect(() => g.record(null as unknown as MetricEvent)).not.toThrow();
    expect(() =>
      g.record({ type: 'latency', migration: M, side: 'new', operation: 'get', milliseconds: Number.NaN }),
    ).not.toThrow();
    expect(() => g.record(comparison(false))).not.toThrow();
    expect(g.allowsNewReads(M)).toBe(false);
    expect(heard).toHaveBeenCalledTimes(1);
  });

  it('options: invalid thresholds are rejected at creation, naming the path and value', () => {
    let error: unknown;
    try {
      createGuardrails({ thresholds: { maxMismatchRate: 2 } });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigurationError);
    expect(error).toMatchObject({
      message: 'guardrails option "thresholds.maxMismatchRate" must be a number from 0 to 1, or false, got 2',
      path: 'thresholds.maxMismatchRate',
    });
    expect(() => createGuardrails({ migrations: { m: { windowMs: 5 } } })).toThrow(
      'guardrails option "migrations.m.windowMs" must be an integer from 10 to 86400000, got 5',
    );
    expect(() => createGuardrails({ thresholds: { minComparison: 5 } } as GuardrailsOptions)).toThrow(
      'guardrails option "thresholds.minComparison" is not a known option',
    );
    expect(() => createGuardrails({ onTrip: 'log' } as unknown as GuardrailsOptions)).toThrow(
      'guardrails option "onTrip" must be a function, got "log"',
    );
    expect(() => createGuardrails(null as unknown as GuardrailsOptions)).toThrow(
      'guardrails options must be an object, got null',
    );
  });

  it('status: lists migrations named in the options before any event', () => {
    const { g } = guardrails({ migrations: { b: {}, a: {} } });
    expect(g.status().map((s) => [s.migration, s.tripped, s.safeStage])).toEqual([
      ['a', false, 'not-configured'],
      ['b', false, 'not-configured'],
    ]);
  });
});
