import { describe, expect, it } from 'vitest';
import { ConfigurationError, ErrorCode } from '../../src/kernel/errors.js';
import type { MetricEvent, MismatchSample } from '../../src/metrics/events.js';
import { createMemoryMetrics } from '../../src/metrics/memory-metrics.js';

const M = 'users-rename';

function sample(n: number, migration = M): MismatchSample {
  return {
    migration,
    stage: 'shadow',
    route: 'shadow',
    operation: 'get',
    key: `sha256:${String(n).padStart(16, '0')}`,
    diffs: [{ field: 'name', kind: 'value', old: 'sha256:aaaaaaaaaaaaaaaa', new: 'sha256:bbbbbbbbbbbbbbbb' }],
    at: new Date(n * 1000).toISOString(),
  };
}

function mismatch(n: number, migration = M): MetricEvent {
  return { type: 'mismatch', migration, stage: 'shadow', route: 'shadow', sample: sample(n, migration) };
}

function latency(milliseconds: number, side: 'old' | 'new' | 'both' = 'old', migration = M): MetricEvent {
  return { type: 'latency', migration, side, operation: 'get', milliseconds };
}

describe('createMemoryMetrics', () => {
  it('metrics: counts reads by served side and stage, writes by operation and side', () => {
    const metrics = createMemoryMetrics();
    metrics.record({
      type: 'read',
      migration: M,
      stage: 'shadow',
      route: 'shadow',
      served: 'old',
      operation: 'get',
      count: 1,
    });
    metrics.record({
      type: 'read',
      migration: M,
      stage: 'live',
      route: 'live',
      served: 'new',
      operation: 'find',
      count: 5,
    });
    metrics.record({
      type: 'read',
      migration: M,
      stage: 'shadow',
      route: 'shadow',
      served: 'old',
      operation: 'getMany',
      count: 3,
    });
    metrics.record({
      type: 'write',
      migration: M,
      stage: 'dualwrite',
      route: 'dualwrite',
      sides: ['old', 'new'],
      operation: 'insert',
      count: 2,
    });
    metrics.record({
      type: 'write',
      migration: M,
      stage: 'off',
      route: 'off',
      sides: ['old'],
      operation: 'update',
      count: 1,
    });
    metrics.record({
      type: 'write',
      migration: M,
      stage: 'dualwrite',
      route: 'dualwrite',
      sides: ['old', 'new'],
      operation: 'insert',
      count: 1,
    });

    const m = metrics.snapshot().migrations[M]!;
    expect(m.reads).toEqual({
      total: 3,
      entities: 9,
      bySide: { old: 2, new: 1 },
      byStage: { off: 0, dualwrite: 0, shadow: 2, live: 1, rampdown: 0, complete: 0 },
      byRoute: { off: 0, dualwrite: 0, shadow: 2, live: 1, rampdown: 0, complete: 0 },
    });
    expect(m.writes).toEqual({
      total: 3,
      entities: 4,
      bySide: { old: 3, new: 2 },
      byOperation: { insert: 2, update: 1 },
    });
  });

  it('metrics: mismatch rate is mismatches over comparisons, 0 before any', () => {
    const metrics = createMemoryMetrics();
    metrics.record({
      type: 'read',
      migration: M,
      stage: 'shadow',
      route: 'shadow',
      served: 'old',
      operation: 'get',
      count: 1,
    });
    expect(metrics.snapshot().migrations[M]!.mismatchRate).toBe(0);
    for (let i = 0; i < 7; i++)
      metrics.record({ type: 'comparison', migration: M, stage: 'shadow', route: 'shadow', matched: true });
    for (let i = 0; i < 3; i++) {
      metrics.record({ type: 'comparison', migration: M, stage: 'shadow', route: 'shadow', matched: false });
      metrics.record(mismatch(i));
    }
    const m = metrics.snapshot().migrations[M]!;
    expect([m.comparisons, m.matched, m.mismatches, m.mismatchRate]).toEqual([10, 7, 3, 0.3]);
  });

  it('metrics: counts errors by side and code, flag fallbacks by reason, source and flag', () => {
    const metrics = createMemoryMetrics();
    const error = (side: 'old' | 'new', code: string): MetricEvent => ({
      type: 'error',
      migration: M,
      stage: 'shadow',
      route: 'shadow',
      side,
      operation: 'get',
      code,
    });
    metrics.record(error('new', '42703'));
    metrics.record(error('new', '42703'));
    metrics.record(error('old', '23505'));
    metrics.record({ type: 'flag-fallback', migration: M, flagKey: 'stage', reason: 'timeout', source: 'default' });
    metrics.record({
      type: 'flag-fallback',
      migration: M,
      flagKey: 'stage',
      reason: 'error',
      source: 'last-known-good',
    });
    metrics.record({ type: 'flag-fallback', migration: M, flagKey: 'pct', reason: 'type', source: 'last-known-good' });

    const m = metrics.snapshot().migrations[M]!;
    expect(m.errors).toEqual({ total: 3, bySide: { old: 1, new: 2 }, byCode: { '23505': 1, '42703': 2 } });
    expect(m.flagFallbacks).toEqual({
      total: 3,
      byReason: { error: 1, timeout: 1, type: 1 },
      bySource: { 'last-known-good': 2, default: 1 },
      byFlag: { pct: 1, stage: 2 },
    });
  });

  it('metrics: nearest-rank percentiles over a known sequence', () => {
    const metrics = createMemoryMetrics();
    // 1..100 in a scrambled order: record order must not matter.
    for (let i = 0; i < 100; i++) metrics.record(latency(((i * 37) % 100) + 1));
    for (const ms of [4, 1, 3, 2]) metrics.record(latency(ms, 'both'));
    const latencies = metrics.snapshot().migrations[M]!.latency;
    expect(latencies.old).toEqual({ count: 100, window: 100, p50: 50, p90: 90, p99: 99, max: 100, mean: 50.5 });
    expect(latencies.both).toEqual({ count: 4, window: 4, p50: 2, p90: 4, p99: 4, max: 4, mean: 2.5 });
    expect(latencies.new).toEqual({ count: 0, window: 0, p50: 0, p90: 0, p99: 0, max: 0, mean: 0 });
  });

  it('metrics: latency percentiles cover only the most recent window', () => {
    const metrics = createMemoryMetrics({ latencyWindow: 10 });
    for (let i = 1; i <= 25; i++) metrics.record(latency(i));
    // window holds 16..25
    expect(metrics.snapshot().migrations[M]!.latency.old).toEqual({
      count: 25,
      window: 10,
      p50: 20,
      p90: 24,
      p99: 25,
      max: 25,
      mean: 20.5,
    });
  });

  it('metrics: ignores non-finite and negative latencies', () => {
    const metrics = createMemoryMetrics();
    metrics.record(latency(Number.NaN));
    metrics.record(latency(-1));
    metrics.record(latency(Number.POSITIVE_INFINITY));
    metrics.record(latency(2));
    expect(metrics.snapshot().migrations[M]!.latency.old.count).toBe(1);
  });

  it('metrics: recent mismatches are bounded, newest last, globally and per migration', () => {
    const metrics = createMemoryMetrics({ sampleCapacity: 3 });
    for (let i = 1; i <= 5; i++) metrics.record(mismatch(i));
    metrics.record(mismatch(6, 'orders-split'));
    const snapshot = metrics.snapshot();
    expect(snapshot.migrations[M]!.recentMismatches.map((s) => s.key)).toEqual([3, 4, 5].map((n) => sample(n).key));
    expect(snapshot.migrations['orders-split']!.recentMismatches.map((s) => s.key)).toEqual([sample(6).key]);
    expect(snapshot.recentMismatches.map((s) => s.key)).toEqual([4, 5, 6].map((n) => sample(n).key));
    expect(snapshot.recentMismatches[2]).toEqual(sample(6, 'orders-split'));
  });

  it('metrics: sample capacity 0 keeps counts only', () => {
    const metrics = createMemoryMetrics({ sampleCapacity: 0 });
    metrics.record({ type: 'comparison', migration: M, stage: 'shadow', route: 'shadow', matched: false });
    metrics.record(mismatch(1));
    const snapshot = metrics.snapshot();
    expect(snapshot.recentMismatches).toEqual([]);
    expect(snapshot.migrations[M]!.mismatches).toBe(1);
  });

  it('metrics: totals add up across migrations', () => {
    const metrics = createMemoryMetrics();
    for (const migration of ['a', 'b']) {
      metrics.record({
        type: 'read',
        migration,
        stage: 'live',
        route: 'live',
        served: 'new',
        operation: 'get',
        count: 1,
      });
      metrics.record({ type: 'comparison', migration, stage: 'live', route: 'live', matched: migration === 'a' });
      metrics.record({
        type: 'error',
        migration,
        stage: 'live',
        route: 'live',
        side: 'new',
        operation: 'get',
        code: 'XX000',
      });
      metrics.record({
        type: 'write',
        migration,
        stage: 'live',
        route: 'live',
        sides: ['old', 'new'],
        operation: 'upsert',
        count: 1,
      });
    }
    metrics.record({ type: 'comparison', migration: 'b', stage: 'live', route: 'live', matched: true });
    const { totals, migrations } = metrics.snapshot();
    expect(Object.keys(migrations)).toEqual(['a', 'b']);
    expect(totals.reads.bySide).toEqual({ old: 0, new: 2 });
    expect(totals.reads.byStage.live).toBe(2);
    expect(totals.writes.byOperation).toEqual({ upsert: 2 });
    expect([totals.comparisons, totals.matched, totals.mismatches]).toEqual([3, 2, 1]);
    expect(totals.mismatchRate).toBeCloseTo(1 / 3, 12);
    expect(totals.errors.byCode).toEqual({ XX000: 2 });
    expect(totals).not.toHaveProperty('latency');
  });

  it('metrics: the snapshot is plain JSON, raw sample values included', () => {
    const metrics = createMemoryMetrics();
    const raw: MismatchSample = {
      migration: M,
      stage: 'live',
      route: 'shadow',
      operation: 'find',
      key: 42n,
      diffs: [
        { field: 'at', kind: 'value', old: new Date(0), new: new Date(1000) },
        { field: 'blob', kind: 'value', old: Buffer.from([0xde, 0xad]), new: undefined },
        { field: 'n', kind: 'type', old: Number.NaN, new: { deep: [1n, new Map([['k', 1]])] } },
      ],
      at: '2024-01-01T00:00:00.000Z',
    };
    metrics.record({ type: 'mismatch', migration: M, stage: 'live', route: 'shadow', sample: raw });
    metrics.record(latency(3));
    const snapshot = metrics.snapshot();
    expect(JSON.parse(JSON.stringify(snapshot))).toEqual(snapshot);
    expect(snapshot.recentMismatches[0]).toEqual({
      migration: M,
      stage: 'live',
      route: 'shadow',
      operation: 'find',
      key: '42',
      diffs: [
        { field: 'at', kind: 'value', old: '1970-01-01T00:00:00.000Z', new: '1970-01-01T00:00:01.000Z' },
        { field: 'blob', kind: 'value', old: '\\xdead', new: null },
        { field: 'n', kind: 'type', old: 'NaN', new: { deep: ['1', [['k', 1]]] } },
      ],
      at: '2024-01-01T00:00:00.000Z',
    });
  });

  it('metrics: snapshots are copies', () => {
    const metrics = createMemoryMetrics();
    metrics.record({ type: 'comparison', migration: M, stage: 'shadow', route: 'shadow', matched: true });
    const before = metrics.snapshot();
    metrics.record({ type: 'comparison', migration: M, stage: 'shadow', route: 'shadow', matched: true });
    expect(before.migrations[M]!.comparisons).toBe(1);
    expect(metrics.snapshot().migrations[M]!.comparisons).toBe(2);
  });

  it('metrics: reset forgets everything', () => {
    const metrics = createMemoryMetrics();
    metrics.record({ type: 'comparison', migration: M, stage: 'shadow', route: 'shadow', matched: false });
    metrics.record(mismatch(1));
    metrics.record(latency(1));
    metrics.reset();
    const snapshot = metrics.snapshot();
    expect(snapshot.migrations).toEqual({});
    expect(snapshot.recentMismatches).toEqual([]);
    expect(snapshot.totals.comparisons).toBe(0);
    expect(snapshot.totals.mismatchRate).toBe(0);
  });

  it('metrics: record never throws on a malformed event', () => {
    const metrics = createMemoryMetrics();
    const malformed = [
      { type: 'write', migration: M, count: 1 },
      { type: 'write', migration: M, sides: ['sideways'], operation: 'insert', count: 1 },
      { type: 'read', migration: M, stage: 'paused', served: 'old', count: 1 },
      { type: 'read', migration: M, stage: 'shadow', served: 'toString', count: 1 },
      { type: 'error', migration: M, side: 'both', code: 'x' },
      { type: 'flag-fallback', migration: M, flagKey: 'f', reason: 'bored', source: 'default' },
      { type: 'latency', migration: M, side: 'either', milliseconds: 1 },
      { type: 'mismatch', migration: M, sample: null },
      { type: 'comparison', migration: 7, matched: true },
      { type: 'unknown', migration: 'ghost' },
    ];
    for (const event of malformed) expect(() => metrics.record(event as unknown as MetricEvent)).not.toThrow();
    expect(() => metrics.record(null as unknown as MetricEvent)).not.toThrow();
    const snapshot = metrics.snapshot();
    expect(Object.keys(snapshot.migrations)).toEqual([M]);
    const m = snapshot.migrations[M]!;
    expect([m.reads.total, m.writes.total, m.writes.entities, m.errors.total, m.flagFallbacks.total]).toEqual([
      0, 0, 0, 0, 0,
    ]);
    expect(m.reads.bySide).toEqual({ old: 0, new: 0 });
    expect(Object.keys(m.latency)).toEqual(['old', 'new', 'both']);
    expect(m.latency.old.count).toBe(0);
    expect(snapshot.recentMismatches).toEqual([]);
  });

  it('metrics: invalid options throw a ConfigurationError naming the option', () => {
    const cases: [unknown, string, RegExp][] = [
      [{ sampleCapacity: -1 }, 'sampleCapacity', /"sampleCapacity" must be an integer between 0 and 1000000, got -1/],
      [{ latencyWindow: 0 }, 'latencyWindow', /"latencyWindow" must be an integer between 1 and 1000000, got 0/],
      [{ latencyWindow: 1.5 }, 'latencyWindow', /"latencyWindow".*got 1.5/],
      [{ sampleCapacity: '10' }, 'sampleCapacity', /"sampleCapacity".*got "10"/],
      [{ sampleSize: 10 }, 'sampleSize', /option "sampleSize" is not a known option/],
    ];
    for (const [options, path, message] of cases) {
      let error: unknown;
      try {
        createMemoryMetrics(options as never);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ConfigurationError);
      expect((error as ConfigurationError).code).toBe(ErrorCode.Configuration);
      expect((error as ConfigurationError).path).toBe(path);
      expect((error as Error).message).toMatch(message);
    }
    expect(() => createMemoryMetrics('big' as never)).toThrow(/must be an object, got "big"/);
    expect(() => createMemoryMetrics({ sampleCapacity: undefined, latencyWindow: 1 })).not.toThrow();
  });
});
