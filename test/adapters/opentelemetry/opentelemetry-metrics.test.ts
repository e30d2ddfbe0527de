import type { Attributes } from '@opentelemetry/api';
import {
  AggregationTemporality,
  DataPointType,
  InMemoryMetricExporter,
  MeterProvider,
  type MetricData,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { combineSinks, createRepository, type MetricEvent } from 'flagshift';
import { createOpenTelemetryMetrics } from 'flagshift/opentelemetry';
import { afterEach, describe, expect, it } from 'vitest';
import { createGuardrails } from '../../../src/guardrails/guardrails.js';
import { ConfigurationError, ValidationError } from '../../../src/kernel/errors.js';
import { describeDrivers } from '../../support/drivers.js';
import { usersFixture } from '../../support/fixtures.js';

const M = 'users-username';

/** A meter provider exporting to memory, read on demand. */
function otel() {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  // The interval is never reached: tests export with forceFlush().
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  providers.push(meterProvider);
  return {
    meterProvider,
    /** The metrics of the latest export, by instrument name. */
    async collect(): Promise<Map<string, MetricData>> {
      exporter.reset();
      await reader.forceFlush();
      const exported = exporter.getMetrics().at(-1);
      const out = new Map<string, MetricData>();
      for (const scope of exported?.scopeMetrics ?? [])
        for (const metric of scope.metrics) out.set(metric.descriptor.name, metric);
      return out;
    },
  };
}

const providers: MeterProvider[] = [];
afterEach(async () => {
  await Promise.all(providers.splice(0).map((provider) => provider.shutdown()));
});

function matches(attributes: Attributes, wanted: Attributes): boolean {
  return Object.entries(wanted).every(([key, value]) => attributes[key] === value);
}

/** Sum of a counter's (or gauge's) points whose attributes include `wanted`. */
function total(metrics: Map<string, MetricData>, name: string, wanted: Attributes = {}): number {
  const metric = metrics.get(name);
  if (metric === undefined) return 0;
  let sum = 0;
  for (const point of metric.dataPoints) {
    if (!matches(point.attributes, wanted)) continue;
    const value = point.value as number | { count: number };
    sum += typeof value === 'number' ? value : value.count;
  }
  return sum;
}

describeDrivers('opentelemetry exporter', (getCtx) => {
  it('records real repository traffic with feature-flag convention attributes', async () => {
    const ctx = getCtx();
    const { migration, flags, setStage } = await usersFixture(ctx, { stage: 'dualwrite' });
    const { meterProvider, collect } = otel();
    const sink = createOpenTelemetryMetrics({ meterProvider, providerName: 'memory', migrations: [migration] });
    const repo = createRepository(migration, { driver: ctx.driver, flags, metrics: sink });

    for (let id = 1; id <= 3; id++) await repo.insert({ id, username: `user${id}`, email: `${id}@x` });
    await ctx.sql(`UPDATE ${ctx.schema}.users SET username = 'intruder' WHERE id = 2`);
    setStage('shadow');
    for (let id = 1; id <= 3; id++) await repo.get(id);
    setStage('live', 100);
    await repo.get(1);

    const metrics = await collect();
    const flag = {
      'feature_flag.key': 'flagshift.users-username.stage',
      'feature_flag.provider.name': 'memory',
      'flagshift.migration': M,
    };
    expect(
      total(metrics, 'flagshift.writes', {
        ...flag,
        'feature_flag.result.variant': 'dualwrite',
        'flagshift.side': 'both',
        'flagshift.operation': 'insert',
      }),
    ).toBe(3);
    expect(
      total(metrics, 'flagshift.reads', {
        ...flag,
        'flagshift.stage': 'shadow',
        'flagshift.side': 'old',
        'flagshift.operation': 'get',
      }),
    ).toBe(3);
    expect(
      total(metrics, 'flagshift.reads', { ...flag, 'feature_flag.result.variant': 'live', 'flagshift.side': 'new' }),
    ).toBe(1);
    expect(total(metrics, 'flagshift.comparisons', { ...flag, 'flagshift.comparison.result': 'matched' })).toBe(3);
    expect(total(metrics, 'flagshift.comparisons', { ...flag, 'flagshift.comparison.result': 'mismatched' })).toBe(1);
    expect(total(metrics, 'flagshift.mismatches', { ...flag, 'flagshift.stage': 'shadow' })).toBe(1);

    const latency = metrics.get('flagshift.latency')!;
    expect(latency.dataPointType).toBe(DataPointType.HISTOGRAM);
    expect(latency.descriptor.unit).toBe('ms');
    expect(total(metrics, 'flagshift.latency', { 'flagshift.migration': M, 'flagshift.side': 'both' })).toBe(7);
    const point = latency.dataPoints.find((p) => p.attributes['flagshift.operation'] === 'get');
    const histogram = point?.value as { buckets: { boundaries: number[] }; sum: number; count: number };
    expect(histogram.buckets.boundaries).toEqual([0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000]);
    expect(histogram.count).toBe(4);
    expect(histogram.sum).toBeGreaterThan(0);

    // Bounded attributes: the same keys everywhere, never a key or a value of an entity.
    const keys = new Set<string>();
    for (const metric of metrics.values()) {
      for (const p of metric.dataPoints) {
        for (const [key, value] of Object.entries(p.attributes)) {
          keys.add(key);
          expect(String(value)).not.toMatch(/intruder|user\d|@x/);
        }
      }
    }
    expect([...keys].sort()).toEqual([
      'feature_flag.key',
      'feature_flag.provider.name',
      'feature_flag.result.variant',
      'flagshift.comparison.result',
      'flagshift.migration',
      'flagshift.operation',
      'flagshift.route',
      'flagshift.side',
      'flagshift.stage',
    ]);
  });

  it('records new-side errors with error.type and flag fallbacks with the flag key', async () => {
    const ctx = getCtx();
    const { migration, flags } = await usersFixture(ctx, { stage: 'shadow' });
    const { meterProvider, collect } = otel();
    const sink = createOpenTelemetryMetrics({ meterProvider });
    const repo = createRepository(migration, { driver: ctx.driver, flags, metrics: sink, flagCache: { ttlMs: 0 } });
    await repo.insert({ id: 1, username: 'ada', email: 'a@x' });
    await repo.check();
    await ctx.sql(`ALTER TABLE ${ctx.schema}.users DROP COLUMN username`);
    expect(await repo.get(1)).toEqual({ id: 1, username: 'ada', email: 'a@x' });
    flags.fail(migration.stageFlagKey, 'error');
    await repo.get(1);
    const metrics = await collect();
    expect(
      total(metrics, 'flagshift.errors', {
        'flagshift.migration': M,
        'flagshift.side': 'new',
        'flagshift.operation': 'get',
        'error.type': '42703',
      }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      total(metrics, 'flagshift.flag.fallbacks', {
        'feature_flag.key': migration.stageFlagKey,
        'flagshift.fallback.reason': 'error',
        'flagshift.fallback.source': 'last-known-good',
      }),
    ).toBeGreaterThanOrEqual(1);
  });
});

describe('opentelemetry exporter', () => {
  it('guardrails: counts trips and observes which migrations are held', async () => {
    const { meterProvider, collect } = otel();
    const guardrails = createGuardrails({ thresholds: { maxMismatchRate: 0, minComparisons: 1 } });
    const sink = combineSinks(createOpenTelemetryMetrics({ meterProvider, guardrails }), guardrails);
    sink.record({ type: 'comparison', migration: 'orders-split', stage: 'shadow', route: 'shadow', matched: true });
    sink.record({ type: 'comparison', migration: M, stage: 'shadow', route: 'shadow', matched: false });
    let metrics = await collect();
    expect(
      total(metrics, 'flagshift.guardrail.trips', {
        'flagshift.migration': M,
        'flagshift.guardrail.reason': 'mismatch-rate',
      }),
    ).toBe(1);
    expect(total(metrics, 'flagshift.guardrail.tripped', { 'flagshift.migration': M })).toBe(1);
    expect(total(metrics, 'flagshift.guardrail.tripped', { 'flagshift.migration': 'orders-split' })).toBe(0);
    guardrails.reset(M);
    metrics = await collect();
    expect(total(metrics, 'flagshift.guardrail.tripped', { 'flagshift.migration': M })).toBe(0);
  });

  it('gauges: read percent, backfill progress and stage, set through the API; close stops them', async () => {
    const { meterProvider, collect } = otel();
    const sink = createOpenTelemetryMetrics({ meterProvider, prefix: 'app.flagshift.' });
    sink.setReadPercent(M, 25);
    sink.setBackfillProgress(M, { done: 3, total: 4 });
    sink.setStage(M, 'rampdown');
    let metrics = await collect();
    expect(total(metrics, 'app.flagshift.read.percent', { 'flagshift.migration': M })).toBe(25);
    expect(total(metrics, 'app.flagshift.backfill.progress', { 'flagshift.migration': M })).toBe(0.75);
    expect(total(metrics, 'app.flagshift.stage', { 'flagshift.migration': M, 'flagshift.stage': 'rampdown' })).toBe(1);
    expect(total(metrics, 'app.flagshift.stage', { 'flagshift.migration': M })).toBe(1);
    expect(metrics.get('app.flagshift.stage')?.dataPoints).toHaveLength(6);
    expect(() => sink.setReadPercent(M, -1)).toThrow(ValidationError);
    expect(() => sink.setBackfillProgress(M, 2)).toThrow(ValidationError);
    sink.close();
    sink.setReadPercent(M, 50);
    metrics = await collect();
    // The callback is gone: the SDK may repeat what it last saw, never the new value.
    expect(total(metrics, 'app.flagshift.read.percent', { 'flagshift.migration': M })).not.toBe(50);
  });

  it('attributes stay bounded: values outside their known sets are recorded as other', async () => {
    const { meterProvider, collect } = otel();
    const sink = createOpenTelemetryMetrics({ meterProvider });
    const malformed = [
      { type: 'error', migration: M, stage: 'shadow', side: 'new', operation: 'get', code: 'duplicate key (id)=(42)' },
      { type: 'read', migration: 'User 42', stage: 'sideways', served: 'both', operation: 'select', count: 1 },
      { type: 'flag-fallback', migration: M, flagKey: 'a key with spaces', reason: 'boom', source: 'x' },
    ] as unknown as MetricEvent[];
    for (const event of malformed) sink.record(event);
    const metrics = await collect();
    expect(metrics.get('flagshift.errors')?.dataPoints[0]?.attributes['error.type']).toBe('other');
    expect(metrics.get('flagshift.reads')?.dataPoints[0]?.attributes).toEqual({
      'feature_flag.key': 'other',
      'feature_flag.result.variant': 'other',
      'flagshift.migration': 'other',
      'flagshift.stage': 'other',
      'flagshift.route': 'other',
      'flagshift.side': 'other',
      'flagshift.operation': 'other',
    });
    expect(metrics.get('flagshift.flag.fallbacks')?.dataPoints[0]?.attributes).toMatchObject({
      'feature_flag.key': 'other',
      'flagshift.fallback.reason': 'other',
      'flagshift.fallback.source': 'other',
    });
  });

  it('options: invalid ones are rejected at creation', () => {
    const { meterProvider } = otel();
    expect(() => createOpenTelemetryMetrics({ meterProvider, meter: meterProvider.getMeter('x') })).toThrow(
      'opentelemetry metrics options "meter" and "meterProvider" exclude each other, got both',
    );
    expect(() => createOpenTelemetryMetrics({ meter: {} as never })).toThrow(
      'opentelemetry metrics option "meter" must be an OpenTelemetry Meter, got an object',
    );
    expect(() => createOpenTelemetryMetrics({ prefix: '1flagshift.' })).toThrow(ConfigurationError);
    expect(() => createOpenTelemetryMetrics({ registry: {} } as never)).toThrow(
      'opentelemetry metrics option "registry" is not a known option',
    );
  });
});
