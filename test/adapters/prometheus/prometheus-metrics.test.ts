import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { combineSinks, createRepository, type MetricEvent } from 'flagshift';
import { createPrometheusMetrics, metricsHandler, type PrometheusMetrics } from 'flagshift/prometheus';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { createGuardrails } from '../../../src/guardrails/guardrails.js';
import { ConfigurationError, ValidationError } from '../../../src/kernel/errors.js';
import { describeDrivers } from '../../support/drivers.js';
import { usersFixture } from '../../support/fixtures.js';

/** One sample of the exposition text: `name{labels} value`. */
interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** Parses Prometheus' text exposition format (version 0.0.4), samples only. */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/.exec(line);
    if (match === null) throw new Error(`not an exposition sample: ${line}`);
    const labels: Record<string, string> = {};
    const body = match[2] ?? '';
    const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/gy;
    let consumed = 0;
    for (let m = label.exec(body); m !== null; m = label.exec(body)) {
      labels[m[1]!] = m[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      consumed = label.lastIndex;
    }
    if (consumed !== body.length) throw new Error(`unparsable labels: ${body}`);
    const raw = match[3]!;
    const value = raw === '+Inf' ? Number.POSITIVE_INFINITY : raw === '-Inf' ? Number.NEGATIVE_INFINITY : Number(raw);
    samples.push({ name: match[1]!, labels, value });
  }
  return samples;
}

/** Sum of the samples named `name` whose labels include `labels`. */
function sum(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((total, s) => total + s.value, 0);
}

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

async function serve(registry: PrometheusMetrics['registry']): Promise<string> {
  const server = createServer(metricsHandler(registry));
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function scrape(base: string): Promise<{ samples: Sample[]; text: string; contentType: string | null }> {
  const response = await fetch(`${base}/metrics`);
  expect(response.status).toBe(200);
  const text = await response.text();
  return { samples: parseExposition(text), text, contentType: response.headers.get('content-type') };
}

const M = 'users-username';

describeDrivers('prometheus exporter', (getCtx) => {
  it('exports the counters and latency of real repository traffic on a live /metrics endpoint', async () => {
    const ctx = getCtx();
    const { migration, flags, setStage } = await usersFixture(ctx, { stage: 'dualwrite' });
    const prometheus = createPrometheusMetrics();
    const repo = createRepository(migration, { driver: ctx.driver, flags, metrics: prometheus });
    const base = await serve(prometheus.registry);

    for (let id = 1; id <= 3; id++) await repo.insert({ id, username: `user${id}`, email: `${id}@x` });
    await repo.update(1, { username: 'ada' });
    await ctx.sql(`UPDATE ${ctx.schema}.users SET username = 'intruder' WHERE id = 2`);
    setStage('shadow');
    for (let id = 1; id <= 3; id++) await repo.get(id);
    await repo.getMany([1, 3]);
    setStage('live', 100);
    await repo.get(1);
    await repo.find({ where: { username: 'ada' } });

    const { samples, text, contentType } = await scrape(base);
    expect(contentType).toBe(prometheus.registry.contentType);
    expect(
      sum(samples, 'flagshift_writes_total', { migration: M, stage: 'dualwrite', sides: 'both', operation: 'insert' }),
    ).toBe(3);
    expect(sum(samples, 'flagshift_writes_total', { operation: 'update' })).toBe(1);
    expect(
      sum(samples, 'flagshift_reads_total', { migration: M, stage: 'shadow', side: 'old', operation: 'get' }),
    ).toBe(3);
    expect(sum(samples, 'flagshift_reads_total', { stage: 'shadow', side: 'old', operation: 'getMany' })).toBe(1);
    expect(sum(samples, 'flagshift_reads_total', { stage: 'live', side: 'new' })).toBe(2);
    // Shadow: ids 1, 2, 3, then 1 and 3; live: id 1 and one result set.
    expect(sum(samples, 'flagshift_comparisons_total', { migration: M, result: 'matched' })).toBe(6);
    expect(sum(samples, 'flagshift_comparisons_total', { migration: M, stage: 'shadow', result: 'mismatched' })).toBe(
      1,
    );
    expect(sum(samples, 'flagshift_mismatches_total', { migration: M, stage: 'shadow' })).toBe(1);
    // One per round trip: 3 inserts, 1 update, 4 shadow reads, the live get and the live
    // find on a migrated field (both result sets, compared).
    expect(sum(samples, 'flagshift_latency_seconds_count', { migration: M, side: 'both' })).toBe(10);
    expect(
      sum(samples, 'flagshift_latency_seconds_bucket', { migration: M, side: 'both', operation: 'get', le: '+Inf' }),
    ).toBe(4);
    expect(sum(samples, 'flagshift_latency_seconds_sum', { migration: M })).toBeGreaterThan(0);
    // Bounded labels: no entity keys or values anywhere.
    expect(text).not.toContain('intruder');
    expect(text).not.toContain('ada');
    const labelNames = new Set(samples.flatMap((s) => Object.keys(s.labels)));
    expect([...labelNames].sort()).toEqual([
      'le',
      'migration',
      'operation',
      'result',
      'route',
      'side',
      'sides',
      'stage',
    ]);
  });

  it('labels say the flag stage and the route served apart: live outside the ramp is stage live, route shadow', async () => {
    const ctx = getCtx();
    const { migration, flags, setStage } = await usersFixture(ctx, { stage: 'dualwrite' });
    const prometheus = createPrometheusMetrics();
    const repo = createRepository(migration, { driver: ctx.driver, flags, metrics: prometheus });
    for (let id = 1; id <= 3; id++) await repo.insert({ id, username: `user${id}`, email: `${id}@x` });
    setStage('live', 0);
    for (let id = 1; id <= 3; id++) await repo.get(id);
    setStage('live', 100);
    await repo.get(1);
    const { samples } = await scrape(await serve(prometheus.registry));
    expect(sum(samples, 'flagshift_reads_total', { stage: 'live', route: 'shadow', side: 'old' })).toBe(3);
    expect(sum(samples, 'flagshift_reads_total', { stage: 'live', route: 'live', side: 'new' })).toBe(1);
    expect(sum(samples, 'flagshift_reads_total', { stage: 'shadow' })).toBe(0);
    expect(sum(samples, 'flagshift_comparisons_total', { stage: 'live', route: 'shadow' })).toBe(3);
    expect(sum(samples, 'flagshift_comparisons_total', { stage: 'live' })).toBe(4);
    expect(sum(samples, 'flagshift_writes_total', { stage: 'dualwrite', route: 'dualwrite', sides: 'both' })).toBe(3);
  });

  it('exports new-side errors by SQLSTATE and flag fallbacks by reason and source', async () => {
    const ctx = getCtx();
    const { migration, flags } = await usersFixture(ctx, { stage: 'shadow' });
    const prometheus = createPrometheusMetrics();
    const repo = createRepository(migration, {
      driver: ctx.driver,
      flags,
      metrics: prometheus,
      flagCache: { ttlMs: 0 },
    });
    await repo.insert({ id: 1, username: 'ada', email: 'a@x' });
    await repo.check();
    await ctx.sql(`ALTER TABLE ${ctx.schema}.users DROP COLUMN username`);
    // Shadow: the new side fails (undefined column), the caller still gets the old value.
    expect(await repo.get(1)).toEqual({ id: 1, username: 'ada', email: 'a@x' });
    flags.fail(migration.stageFlagKey, 'error');
    expect(await repo.get(1)).toEqual({ id: 1, username: 'ada', email: 'a@x' });
    const { samples } = await scrape(await serve(prometheus.registry));
    expect(sum(samples, 'flagshift_errors_total', { migration: M, side: 'new', code: '42703' })).toBeGreaterThanOrEqual(
      1,
    );
    expect(
      sum(samples, 'flagshift_flag_fallbacks_total', { migration: M, reason: 'error', source: 'last-known-good' }),
    ).toBeGreaterThanOrEqual(1);
  });
});

describe('prometheus exporter', () => {
  it('guardrails: counts trips and exports which migrations are held, read live at each scrape', async () => {
    const guardrails = createGuardrails({ thresholds: { maxMismatchRate: 0, minComparisons: 2 } });
    const prometheus = createPrometheusMetrics({ guardrails });
    const sink = combineSinks(prometheus, guardrails);
    const base = await serve(prometheus.registry);
    sink.record({ type: 'comparison', migration: M, stage: 'shadow', route: 'shadow', matched: true });
    sink.record({ type: 'comparison', migration: 'orders-split', stage: 'shadow', route: 'shadow', matched: true });
    let { samples } = await scrape(base);
    expect(sum(samples, 'flagshift_guardrail_tripped', { migration: M })).toBe(0);
    sink.record({ type: 'comparison', migration: M, stage: 'shadow', route: 'shadow', matched: false });
    ({ samples } = await scrape(base));
    expect(sum(samples, 'flagshift_guardrail_tripped', { migration: M })).toBe(1);
    expect(sum(samples, 'flagshift_guardrail_tripped', { migration: 'orders-split' })).toBe(0);
    expect(sum(samples, 'flagshift_guardrail_trips_total', { migration: M, reason: 'mismatch-rate' })).toBe(1);
    guardrails.reset(M);
    ({ samples } = await scrape(base));
    expect(sum(samples, 'flagshift_guardrail_tripped', { migration: M })).toBe(0);
    expect(sum(samples, 'flagshift_guardrail_trips_total', { migration: M })).toBe(1);
    prometheus.close();
    guardrails.trip(M);
    ({ samples } = await scrape(base));
    expect(sum(samples, 'flagshift_guardrail_trips_total', { migration: M })).toBe(1);
  });

  it('gauges: read percent, backfill progress and stage, set through the API', async () => {
    const prometheus = createPrometheusMetrics();
    prometheus.setReadPercent(M, 12.5);
    prometheus.setBackfillProgress(M, { done: 250, total: 1000 });
    prometheus.setBackfillProgress('orders-split', 1);
    prometheus.setBackfillProgress('empty-table', { done: 0, total: 0 });
    prometheus.setStage(M, 'shadow');
    prometheus.setStage(M, 'live');
    const { samples } = await scrape(await serve(prometheus.registry));
    expect(sum(samples, 'flagshift_read_percent', { migration: M })).toBe(12.5);
    expect(sum(samples, 'flagshift_backfill_progress_ratio', { migration: M })).toBe(0.25);
    expect(sum(samples, 'flagshift_backfill_progress_ratio', { migration: 'orders-split' })).toBe(1);
    expect(sum(samples, 'flagshift_backfill_progress_ratio', { migration: 'empty-table' })).toBe(1);
    expect(
      samples.filter((s) => s.name === 'flagshift_stage' && s.value === 1).map((s) => [s.labels['stage'], s.value]),
    ).toEqual([['live', 1]]);
    expect(sum(samples, 'flagshift_stage', { migration: M })).toBe(1);
    expect(() => prometheus.setReadPercent(M, 101)).toThrow(ValidationError);
    expect(() => prometheus.setBackfillProgress(M, { done: -1, total: 3 })).toThrow(
      'backfill progress of migration "users-username" must be a ratio from 0 to 1 or { done, total } with non-negative numbers, got an object',
    );
    expect(() => prometheus.setStage(M, 'paused' as 'live')).toThrow(ValidationError);
    expect(() => prometheus.setReadPercent('Users Rename', 1)).toThrow(
      'migration name "Users Rename" is not a valid migration name',
    );
  });

  it('labels stay bounded: values outside their known sets are exported as other', async () => {
    const prometheus = createPrometheusMetrics();
    const malformed = [
      {
        type: 'error',
        migration: M,
        stage: 'shadow',
        side: 'new',
        operation: 'get',
        code: 'connection reset by 10.0.0.7',
      },
      { type: 'error', migration: M, stage: 'shadow', side: 'new', operation: 'get', code: '23505' },
      { type: 'error', migration: M, stage: 'shadow', side: 'old', operation: 'get', code: 'unknown-column' },
      { type: 'read', migration: 'User #42', stage: 'sideways', served: 'both', operation: 'select', count: 1 },
      { type: 'flag-fallback', migration: M, flagKey: 'x', reason: 'boom', source: 'elsewhere' },
      { type: 'latency', migration: M, side: 'both', operation: 'get', milliseconds: Number.NaN },
    ] as unknown as MetricEvent[];
    for (const event of malformed) prometheus.record(event);
    const { samples } = await scrape(await serve(prometheus.registry));
    expect(
      samples
        .filter((s) => s.name === 'flagshift_errors_total')
        .map((s) => s.labels['code'])
        .sort(),
    ).toEqual(['23505', 'other', 'unknown-column']);
    expect(samples.find((s) => s.name === 'flagshift_reads_total')?.labels).toEqual({
      migration: 'other',
      stage: 'other',
      route: 'other',
      side: 'other',
      operation: 'other',
    });
    expect(samples.find((s) => s.name === 'flagshift_flag_fallbacks_total')?.labels).toEqual({
      migration: M,
      reason: 'other',
      source: 'other',
    });
    expect(sum(samples, 'flagshift_latency_seconds_count')).toBe(0);
  });

  it('registry: metrics go on the registry given, with the prefix given; a second sink shares them', async () => {
    const registry = new Registry();
    const first = createPrometheusMetrics({ registry, prefix: 'app_flagshift_' });
    const second = createPrometheusMetrics({ registry, prefix: 'app_flagshift_' });
    const read: MetricEvent = {
      type: 'read',
      migration: M,
      stage: 'off',
      route: 'off',
      served: 'old',
      operation: 'get',
      count: 1,
    };
    first.record(read);
    second.record(read);
    const samples = parseExposition(await registry.metrics());
    expect(sum(samples, 'app_flagshift_reads_total')).toBe(2);
    expect(samples.some((s) => s.name.startsWith('flagshift_'))).toBe(false);
    expect(first.registry).toBe(registry);
  });

  it('options: invalid ones are rejected at creation', () => {
    expect(() => createPrometheusMetrics({ prefix: '9lives' })).toThrow(ConfigurationError);
    expect(() => createPrometheusMetrics({ prefix: 'flag-shift_' })).toThrow(
      'prometheus metrics option "prefix" must be a Prometheus metric name prefix',
    );
    expect(() => createPrometheusMetrics({ latencyBuckets: [0.1, 0.1, 1] })).toThrow(
      'prometheus metrics option "latencyBuckets" must be a non-empty array of distinct positive numbers, got [0.1, 0.1, 1]',
    );
    expect(() => createPrometheusMetrics({ latencyBuckets: [] })).toThrow(
      'prometheus metrics option "latencyBuckets" must be a non-empty array of distinct positive numbers, got []',
    );
    expect(() => createPrometheusMetrics({ registry: {} as Registry })).toThrow(
      'prometheus metrics option "registry" must be a prom-client Registry, got an object',
    );
    expect(() => createPrometheusMetrics({ port: 9464 } as never)).toThrow(
      'prometheus metrics option "port" is not a known option',
    );
  });

  it('handler: 404 off the path, 405 for other methods, HEAD without a body, 500 when collecting fails', async () => {
    const prometheus = createPrometheusMetrics();
    const base = await serve(prometheus.registry);
    expect((await fetch(`${base}/`)).status).toBe(404);
    expect((await fetch(`${base}/metrics/extra`)).status).toBe(404);
    const post = await fetch(`${base}/metrics`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    const head = await fetch(`${base}/metrics?x=1`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');

    const failing = await serve({
      contentType: 'text/plain',
      metrics: () => Promise.reject(new Error('collector broke')),
    } as unknown as PrometheusMetrics['registry']);
    const response = await fetch(`${failing}/metrics`);
    expect(response.status).toBe(500);
    expect(await response.text()).toBe('collecting metrics failed: collector broke\n');

    const custom = createServer(metricsHandler(prometheus.registry, { path: '/internal/metrics' }));
    servers.push(custom);
    custom.listen(0, '127.0.0.1');
    await once(custom, 'listening');
    const port = (custom.address() as AddressInfo).port;
    expect((await fetch(`http://127.0.0.1:${port}/internal/metrics`)).status).toBe(200);
    expect(() => metricsHandler(prometheus.registry, { path: 'metrics' })).toThrow(ConfigurationError);
  });
});
