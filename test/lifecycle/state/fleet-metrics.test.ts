import { describe, expect, it, vi } from 'vitest';
import type { Queryable } from '../../../src/kernel/driver.js';
import { ConfigurationError } from '../../../src/kernel/errors.js';
import { createMetricsPublisher, ensureMetricsTables, readMetrics } from '../../../src/lifecycle/state/index.js';
import type { MismatchSample } from '../../../src/metrics/events.js';
import { createMemoryMetrics, type MemoryMetrics } from '../../../src/metrics/memory-metrics.js';
import { describeDrivers } from '../../support/drivers.js';
import { driverAsRole, dropRole, usersFixture } from '../../support/fixtures.js';

const M = 'users-username';

function compare(metrics: MemoryMetrics, matched: number, mismatched: number, migration = M): void {
  for (let i = 0; i < matched; i++)
    metrics.record({ type: 'comparison', migration, stage: 'shadow', route: 'shadow', matched: true });
  for (let i = 0; i < mismatched; i++) {
    metrics.record({ type: 'comparison', migration, stage: 'shadow', route: 'shadow', matched: false });
  }
}

function sample(at: string, field = 'username', migration = M): MismatchSample {
  return {
    migration,
    stage: 'shadow',
    route: 'shadow',
    operation: 'get',
    key: 'sha256:0000000000000001',
    diffs: [{ field, kind: 'value', old: 'sha256:aaaaaaaaaaaaaaaa', new: 'sha256:bbbbbbbbbbbbbbbb' }],
    at,
  };
}

/** `count` reads of `M` served by `served`. */
function read(metrics: MemoryMetrics, served: 'old' | 'new', count = 1): void {
  for (let i = 0; i < count; i++) {
    metrics.record({ type: 'read', migration: M, stage: 'live', route: 'live', served, operation: 'get', count: 1 });
  }
}

/** A failed statement of `M` on `side`. */
function fail(metrics: MemoryMetrics, side: 'old' | 'new', code = '42703'): void {
  metrics.record({ type: 'error', migration: M, stage: 'live', route: 'live', side, operation: 'get', code });
}

/** Latency measurements of `M` on `side`. */
function latency(metrics: MemoryMetrics, side: 'old' | 'new', ...milliseconds: number[]): void {
  for (const ms of milliseconds)
    metrics.record({ type: 'latency', migration: M, side, operation: 'get', milliseconds: ms });
}

/** A publisher that only publishes when told: the timer never fires during a test. */
function manualPublisher(driver: Queryable, metrics: MemoryMetrics, stateSchema: string, processId: string) {
  return createMetricsPublisher({ driver, metrics, stateSchema, processId, intervalMs: 3_600_000 });
}

describe('metrics publisher without a database', () => {
  it('options: invalid ones are configuration errors naming the option', () => {
    const driver: Queryable = { query: async () => ({ rows: [], rowCount: 0 }) };
    const metrics = createMemoryMetrics();
    expect(() => createMetricsPublisher({ driver, metrics, intervalMs: 0 })).toThrow(/option "intervalMs"/);
    expect(() => createMetricsPublisher({ driver, metrics, stateSchema: 'bad schema' })).toThrow(ConfigurationError);
    expect(() => createMetricsPublisher({ driver, metrics, nope: 1 } as never)).toThrow(
      /option "nope" is not a known option/,
    );
    expect(() => createMetricsPublisher({ driver, metrics: {} as never })).toThrow(/option "metrics"/);
  });

  it('failures never reach the caller: publish resolves false, is counted and reported', async () => {
    const failure = Object.assign(new Error('connection refused'), { code: '08006' });
    const driver: Queryable = { query: vi.fn(async () => Promise.reject(failure)) };
    const onError = vi.fn();
    const publisher = createMetricsPublisher({
      driver,
      metrics: createMemoryMetrics(),
      intervalMs: 3_600_000,
      onError,
    });
    await expect(publisher.publish()).resolves.toBe(false);
    await expect(publisher.publish()).resolves.toBe(false);
    expect(publisher.stats()).toMatchObject({ published: 0, errors: 2, lastError: failure });
    expect(onError).toHaveBeenCalledWith(failure);
    await expect(publisher.stop()).resolves.toBeUndefined();
    expect(publisher.stats().errors).toBe(3);
  });
});

describeDrivers('metrics store', (getCtx) => {
  it('publish: one snapshot row per process, upserted; history rows carry what changed since the last publish', async () => {
    const { driver, schema, sql } = getCtx();
    const metrics = createMemoryMetrics();
    const publisher = manualPublisher(driver, metrics, schema, 'proc-a');
    compare(metrics, 2, 1);
    expect(await publisher.publish()).toBe(true);
    compare(metrics, 4, 0);
    expect(await publisher.publish()).toBe(true);
    // Nothing new: no history row.
    expect(await publisher.publish()).toBe(true);

    const snapshots = await sql<{
      process_id: string;
      snapshot: { migrations: Record<string, { comparisons: number }> };
    }>(`SELECT process_id, snapshot FROM ${schema}.metrics_snapshots`);
    expect(snapshots).toHaveLength(1);
    expect(snapshots[0]!.process_id).toBe('proc-a');
    expect(snapshots[0]!.snapshot.migrations[M]!.comparisons).toBe(7);
    const history = await sql<{ comparisons: string; mismatches: string }>(
      `SELECT comparisons::int AS comparisons, mismatches::int AS mismatches FROM ${schema}.metrics_history ORDER BY at`,
    );
    expect(history).toEqual([
      { comparisons: 3, mismatches: 1 },
      { comparisons: 4, mismatches: 0 },
    ]);

    // A reset() in the process: the counters restart, and so do the deltas.
    metrics.reset();
    compare(metrics, 0, 1);
    await publisher.publish();
    const last = await sql<{ comparisons: number; mismatches: number }>(
      `SELECT comparisons::int AS comparisons, mismatches::int AS mismatches FROM ${schema}.metrics_history ORDER BY at DESC LIMIT 1`,
    );
    expect(last[0]).toEqual({ comparisons: 1, mismatches: 1 });
    expect(publisher.stats()).toMatchObject({ published: 4, errors: 0 });
  });

  it('publish: a role without CREATE publishes into tables an administrator made', async () => {
    const ctx = getCtx();
    await ensureMetricsTables(ctx.admin, ctx.schema);
    const { driver, role } = await driverAsRole(ctx, [
      `GRANT SELECT, INSERT, UPDATE, DELETE ON ${ctx.schema}.metrics_snapshots, ${ctx.schema}.metrics_history TO $role`,
    ]);
    const metrics = createMemoryMetrics();
    compare(metrics, 1, 1);
    try {
      // Granted the two tables of an install from before metrics_sides only: comparisons are
      // still published, and the missing grant is reported once.
      const onError = vi.fn();
      const limited = createMetricsPublisher({
        driver,
        metrics,
        stateSchema: ctx.schema,
        processId: 'limited',
        intervalMs: 3_600_000,
        onError,
      });
      expect(await limited.publish()).toBe(true);
      compare(metrics, 1, 0);
      expect(await limited.publish()).toBe(true);
      expect(onError).toHaveBeenCalledTimes(1);
      expect(String(onError.mock.calls[0]![0])).toMatch(/metrics_sides is missing or this role can't write it/);
      // Without the tables it would need CREATE, which it lacks: the failure is counted, not thrown.
      const elsewhere = createMetricsPublisher({
        driver,
        metrics,
        stateSchema: `${ctx.schema}_x`,
        intervalMs: 3_600_000,
        onError: () => undefined,
      });
      expect(await elsewhere.publish()).toBe(false);
      expect(elsewhere.stats().lastError).toMatchObject({ code: '42501' });
    } finally {
      await dropRole(ctx, role);
    }
    const fleet = await readMetrics(ctx.driver, { schema: ctx.schema });
    expect(fleet.migrations[M]).toMatchObject({ comparisons: 3, mismatches: 1, sideSeries: [] });
  });

  it('readMetrics: sums processes, recomputes the rate, merges samples newest first, takes the worst p99', async () => {
    const { driver, schema } = getCtx();
    const a = createMemoryMetrics();
    const b = createMemoryMetrics();
    compare(a, 9, 1);
    compare(b, 5, 5);
    a.record({
      type: 'read',
      migration: M,
      stage: 'shadow',
      route: 'shadow',
      served: 'old',
      operation: 'get',
      count: 1,
    });
    b.record({ type: 'read', migration: M, stage: 'live', route: 'live', served: 'new', operation: 'get', count: 2 });
    b.record({
      type: 'error',
      migration: M,
      stage: 'live',
      route: 'live',
      side: 'new',
      operation: 'get',
      code: '42703',
    });
    a.record({
      type: 'mismatch',
      migration: M,
      stage: 'shadow',
      route: 'shadow',
      sample: sample('2030-01-01T00:00:01.000Z', 'a1'),
    });
    b.record({
      type: 'mismatch',
      migration: M,
      stage: 'shadow',
      route: 'shadow',
      sample: sample('2030-01-01T00:00:03.000Z', 'b3'),
    });
    a.record({
      type: 'mismatch',
      migration: M,
      stage: 'shadow',
      route: 'shadow',
      sample: sample('2030-01-01T00:00:02.000Z', 'a2'),
    });
    for (const ms of [1, 1, 1, 1])
      a.record({ type: 'latency', migration: M, side: 'both', operation: 'get', milliseconds: ms });
    for (const ms of [10, 30])
      b.record({ type: 'latency', migration: M, side: 'both', operation: 'get', milliseconds: ms });
    compare(b, 1, 0, 'orders-total');
    await manualPublisher(driver, a, schema, 'a').publish();
    await manualPublisher(driver, b, schema, 'b').publish();

    const fleet = await readMetrics(driver, { schema });
    expect(fleet.published).toBe(true);
    expect(fleet.processes.map((p) => p.processId).sort()).toEqual(['a', 'b']);
    expect(Object.keys(fleet.migrations)).toEqual(['orders-total', M]);
    const m = fleet.migrations[M]!;
    expect(m).toMatchObject({ comparisons: 20, mismatches: 6, matched: 14, mismatchRate: 6 / 20, processes: 2 });
    expect(m.reads.bySide).toEqual({ old: 1, new: 1 });
    expect(m.errors).toMatchObject({ total: 1, bySide: { old: 0, new: 1 }, byCode: { '42703': 1 } });
    expect(m.recentMismatches.map((s) => s.diffs[0]!.field)).toEqual(['b3', 'a2', 'a1']);
    expect(m.latency.both).toMatchObject({ count: 6, window: 6, p99: 30, max: 30, p50: 10 });
    expect(m.latency.both.mean).toBeCloseTo((4 * 1 + 2 * 20) / 6);
    // Both publishes fall in one or two buckets (a minute boundary may come between them).
    expect(m.series.reduce((sum, p) => sum + p.comparisons, 0)).toBe(20);
    expect(m.series.reduce((sum, p) => sum + p.mismatches, 0)).toBe(6);
    expect(fleet.migrations['orders-total']).toMatchObject({ comparisons: 1, processes: 1 });
  });

  it('readMetrics: a process that stopped publishing no longer counts once its row is too old', async () => {
    const { driver, schema, sql } = getCtx();
    const live = createMemoryMetrics();
    const gone = createMemoryMetrics();
    compare(live, 1, 0);
    compare(gone, 0, 5);
    await manualPublisher(driver, live, schema, 'live').publish();
    await manualPublisher(driver, gone, schema, 'gone').publish();
    // Its default freshness is three publish intervals (an hour each here): an old row.
    await sql(
      `UPDATE ${schema}.metrics_snapshots SET updated_at = now() - interval '4 hours' WHERE process_id = 'gone'`,
    );

    const fleet = await readMetrics(driver, { schema });
    expect(fleet.processes.map((p) => p.processId)).toEqual(['live']);
    expect(fleet.staleProcesses).toBe(1);
    expect(fleet.migrations[M]).toMatchObject({ comparisons: 1, mismatches: 0, processes: 1 });

    await new Promise((resolve) => setTimeout(resolve, 20));
    const strict = await readMetrics(driver, { schema, maxAgeMs: 1 });
    expect(strict).toMatchObject({ processes: [], staleProcesses: 2, migrations: {} });
    const wide = await readMetrics(driver, { schema, maxAgeMs: 5 * 3_600_000 });
    expect(wide.migrations[M]).toMatchObject({ comparisons: 6, mismatches: 5 });
  });

  it('series: the mismatch rate per bucket over time, buckets without comparisons absent, window respected', async () => {
    const { driver, schema, sql } = getCtx();
    const metrics = createMemoryMetrics();
    const publisher = manualPublisher(driver, metrics, schema, 'p');
    compare(metrics, 3, 1);
    await publisher.publish();
    compare(metrics, 1, 1);
    await publisher.publish();
    compare(metrics, 10, 0);
    await publisher.publish();
    const rows = await sql<{ ctid: string }>(`SELECT ctid::text FROM ${schema}.metrics_history ORDER BY at`);
    expect(rows).toHaveLength(3);
    await sql(`UPDATE ${schema}.metrics_history SET at = now() - interval '10 minutes' WHERE ctid = $1::tid`, [
      rows[0]!.ctid,
    ]);
    await sql(`UPDATE ${schema}.metrics_history SET at = now() - interval '5 minutes' WHERE ctid = $1::tid`, [
      rows[1]!.ctid,
    ]);

    const fleet = await readMetrics(driver, { schema, seriesBucketMs: 60_000, seriesWindowMs: 3_600_000 });
    const series = fleet.migrations[M]!.series;
    expect(series.map((p) => [p.comparisons, p.mismatches, p.rate])).toEqual([
      [4, 1, 0.25],
      [2, 1, 0.5],
      [10, 0, 0],
    ]);
    expect(Date.parse(series[1]!.at) - Date.parse(series[0]!.at)).toBeGreaterThanOrEqual(4 * 60_000);
    expect(Date.parse(series[0]!.at) % 60_000).toBe(0);

    const recent = await readMetrics(driver, { schema, seriesBucketMs: 60_000, seriesWindowMs: 7 * 60_000 });
    expect(recent.migrations[M]!.series.map((p) => p.comparisons)).toEqual([2, 10]);
  });

  it('side series: operations, errors and p99 per side and bucket; p99 only from new measurements', async () => {
    const { driver, schema, sql } = getCtx();
    const metrics = createMemoryMetrics();
    const publisher = manualPublisher(driver, metrics, schema, 'p');
    // First publish: 3 reads served old, 1 write to both sides, 1 new-side error, latencies on both.
    read(metrics, 'old', 3);
    metrics.record({
      type: 'write',
      migration: M,
      stage: 'dualwrite',
      route: 'dualwrite',
      sides: ['old', 'new'],
      operation: 'insert',
      count: 1,
    });
    fail(metrics, 'new');
    latency(metrics, 'old', 2, 4);
    latency(metrics, 'new', 9);
    await publisher.publish();
    // Second publish: new side only; the old side's window is unchanged, so no old p99.
    read(metrics, 'new', 4);
    latency(metrics, 'new', 20);
    await publisher.publish();
    // Nothing new: no row.
    await publisher.publish();

    const rows = await sql<{ ctid: string }>(`SELECT ctid::text FROM ${schema}.metrics_sides ORDER BY at`);
    expect(rows).toHaveLength(2);
    await sql(`UPDATE ${schema}.metrics_sides SET at = now() - interval '10 minutes' WHERE ctid = $1::tid`, [
      rows[0]!.ctid,
    ]);

    const fleet = await readMetrics(driver, { schema, seriesBucketMs: 60_000, seriesWindowMs: 3_600_000 });
    const series = fleet.migrations[M]!.sideSeries;
    expect(series).toHaveLength(2);
    expect(series[0]).toMatchObject({
      old: { operations: 4, errors: 0, errorRate: 0, p99: 4 },
      new: { operations: 2, errors: 1, errorRate: 0.5, p99: 9 },
    });
    expect(series[1]).toMatchObject({
      old: { operations: 0, errors: 0, errorRate: 0, p99: null },
      new: { operations: 4, errors: 0, errorRate: 0, p99: 20 },
    });
    expect(Date.parse(series[1]!.at) - Date.parse(series[0]!.at)).toBeGreaterThanOrEqual(9 * 60_000);
    // The window is respected: the older bucket falls outside the last 5 minutes.
    const recent = await readMetrics(driver, { schema, seriesBucketMs: 60_000, seriesWindowMs: 5 * 60_000 });
    expect(recent.migrations[M]!.sideSeries.map((p) => p.new.operations)).toEqual([4]);
  });

  it('side series: two processes in one bucket sum their counts and keep the worst p99', async () => {
    const { driver, schema } = getCtx();
    const a = createMemoryMetrics();
    const b = createMemoryMetrics();
    fail(a, 'new', '57014');
    latency(a, 'new', 3);
    read(b, 'new', 9);
    latency(b, 'new', 30);
    await manualPublisher(driver, a, schema, 'a').publish();
    await manualPublisher(driver, b, schema, 'b').publish();
    const fleet = await readMetrics(driver, { schema, seriesBucketMs: 3_600_000, seriesWindowMs: 3_600_000 });
    const points = fleet.migrations[M]!.sideSeries;
    // The two publishes may straddle an hour boundary; their sums don't depend on it.
    expect(points.reduce((sum, p) => sum + p.new.operations, 0)).toBe(10);
    expect(points.reduce((sum, p) => sum + p.new.errors, 0)).toBe(1);
    if (points.length === 1) expect(points[0]!.new).toMatchObject({ errorRate: 0.1, p99: 30 });
    expect(Math.max(...points.map((p) => p.new.p99 ?? 0))).toBe(30);
  });

  it('upgrade: an install with the metrics tables of before metrics_sides keeps its history and gains the side series', async () => {
    const { driver, schema, sql } = getCtx();
    // The tables exactly as earlier versions created them.
    await sql(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    await sql(`CREATE TABLE ${schema}.metrics_snapshots (
      process_id text PRIMARY KEY, updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
      interval_ms integer NOT NULL, snapshot jsonb NOT NULL)`);
    await sql(`CREATE TABLE ${schema}.metrics_history (
      migration text NOT NULL, process_id text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp(),
      comparisons bigint NOT NULL, mismatches bigint NOT NULL)`);
    await sql(
      `INSERT INTO ${schema}.metrics_history (migration, process_id, comparisons, mismatches) VALUES ($1, 'old-version', 5, 1)`,
      [M],
    );
    // Read before any new process published: the old history, and no side series.
    const before = await readMetrics(driver, { schema });
    expect(before.published).toBe(true);
    expect(before.migrations[M]).toMatchObject({ sideSeries: [] });
    expect(before.migrations[M]!.series.reduce((sum, p) => sum + p.comparisons, 0)).toBe(5);

    const metrics = createMemoryMetrics();
    compare(metrics, 1, 0);
    fail(metrics, 'new');
    const onError = vi.fn();
    const publisher = createMetricsPublisher({
      driver,
      metrics,
      stateSchema: schema,
      processId: 'new-version',
      intervalMs: 3_600_000,
      onError,
    });
    expect(await publisher.publish()).toBe(true);
    expect(onError).not.toHaveBeenCalled();
    const after = (await readMetrics(driver, { schema })).migrations[M]!;
    expect(after.series.reduce((sum, p) => sum + p.comparisons, 0)).toBe(6);
    expect(after.sideSeries.reduce((sum, p) => sum + p.new.errors, 0)).toBe(1);
    // One comparison reads both sides; the failed new-side read counts on its side too.
    expect(after.sideSeries.reduce((sum, p) => sum + p.new.operations, 0)).toBe(2);
  });

  it('retention: a publish prunes history and other processes rows older than retentionMs', async () => {
    const { driver, schema, sql } = getCtx();
    const metrics = createMemoryMetrics();
    compare(metrics, 1, 0);
    const publisher = createMetricsPublisher({
      driver,
      metrics,
      stateSchema: schema,
      processId: 'current',
      intervalMs: 3_600_000,
      retentionMs: 3_600_000,
    });
    await publisher.publish();
    await sql(
      `INSERT INTO ${schema}.metrics_history (migration, process_id, at, comparisons, mismatches)
       VALUES ($1, 'old', now() - interval '2 hours', 5, 5), ($1, 'old', now() - interval '30 minutes', 2, 0)`,
      [M],
    );
    await sql(
      `INSERT INTO ${schema}.metrics_snapshots (process_id, updated_at, interval_ms, snapshot)
       VALUES ('dead', now() - interval '2 hours', 5000, '{}')`,
    );
    compare(metrics, 1, 0);
    await publisher.publish();
    const history = await sql<{ process_id: string }>(`SELECT process_id FROM ${schema}.metrics_history ORDER BY at`);
    expect(history.map((row) => row.process_id)).toEqual(['old', 'current', 'current']);
    const processes = await sql<{ process_id: string }>(`SELECT process_id FROM ${schema}.metrics_snapshots`);
    expect(processes.map((row) => row.process_id)).toEqual(['current']);
  });

  it('readMetrics: with no tables it reports nothing published and creates nothing', async () => {
    const { driver, schema, sql } = getCtx();
    const fleet = await readMetrics(driver, { schema });
    expect(fleet).toMatchObject({ published: false, processes: [], migrations: {} });
    const found = await sql<{ found: string | null }>('SELECT to_regclass($1)::text AS found', [
      `${schema}.metrics_snapshots`,
    ]);
    expect(found[0]!.found).toBeNull();
    await expect(readMetrics(driver, { schema: 'bad schema' })).rejects.toThrow(ConfigurationError);
  });

  it('readMetrics: malformed snapshots of other processes are read defensively, never thrown', async () => {
    const { driver, schema, sql } = getCtx();
    const metrics = createMemoryMetrics();
    compare(metrics, 1, 1);
    await manualPublisher(driver, metrics, schema, 'good').publish();
    // Written as text: in an object literal `__proto__` would set the prototype, not a key.
    const hostile = `{"migrations": {"${M}": {
      "comparisons": "lots", "mismatches": -4, "reads": null,
      "errors": {"total": 1, "bySide": {"new": 1, "__proto__": 7}, "byCode": {"__proto__": 2}},
      "latency": {"both": {"p99": "slow", "max": 1e308}},
      "recentMismatches": [42, {"migration": "${M}", "at": "not a time", "diffs": [{"field": "username"}]}]
    }}}`;
    await sql(
      `INSERT INTO ${schema}.metrics_snapshots (process_id, updated_at, interval_ms, snapshot)
       VALUES ('odd', now(), 5000, $1::jsonb), ('garbage', now(), 5000, '"not an object"')`,
      [hostile],
    );
    const fleet = await readMetrics(driver, { schema });
    const m = fleet.migrations[M]!;
    expect(m).toMatchObject({ comparisons: 2, mismatches: 1, mismatchRate: 0.5, processes: 2 });
    expect(m.errors.bySide).toEqual({ old: 0, new: 1 });
    expect(Object.hasOwn(m.errors.byCode, '__proto__')).toBe(true);
    expect(Object.getPrototypeOf(m.errors.byCode)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(m.errors.byCode, '__proto__')?.value).toBe(2);
    expect(m.latency.both.max).toBe(1e308);
    expect(m.recentMismatches.at(-1)).toMatchObject({ at: 'not a time', diffs: [{ field: 'username', old: null }] });
  });

  it('stop: the timer publishes on its own; stop publishes the last counts and ends it', async () => {
    const { driver, schema, sql } = getCtx();
    const metrics = createMemoryMetrics();
    compare(metrics, 1, 0);
    const publisher = createMetricsPublisher({ driver, metrics, stateSchema: schema, intervalMs: 20 });
    await vi.waitFor(() => expect(publisher.stats().published).toBeGreaterThan(0), { timeout: 5000 });
    compare(metrics, 0, 2);
    await publisher.stop();
    const published = publisher.stats().published;
    const rows = await sql<{ snapshot: { migrations: Record<string, { comparisons: number }> } }>(
      `SELECT snapshot FROM ${schema}.metrics_snapshots WHERE process_id = $1`,
      [publisher.processId],
    );
    expect(rows[0]!.snapshot.migrations[M]!.comparisons).toBe(3);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(publisher.stats().published).toBe(published);
  });

  it('repository traffic: a shadow mismatch written behind the SDK reaches readMetrics with its field diff', async () => {
    const ctx = getCtx();
    const { repo, metrics, migration } = await usersFixture(ctx, { stage: 'shadow' });
    await repo.insert({ id: 1, username: 'ada', email: 'ada@example.com' });
    await repo.insert({ id: 2, username: 'grace', email: 'grace@example.com' });
    await ctx.sql(`UPDATE ${ctx.schema}.users SET username = 'mallory' WHERE id = 2`);
    expect(await repo.get(1)).toMatchObject({ username: 'ada' });
    expect(await repo.get(2)).toMatchObject({ username: 'grace' });
    const publisher = manualPublisher(ctx.driver, metrics, ctx.schema, 'app-1');
    expect(await publisher.publish()).toBe(true);

    const m = (await readMetrics(ctx.driver, { schema: ctx.schema })).migrations[migration.name]!;
    expect(m).toMatchObject({ comparisons: 2, mismatches: 1, mismatchRate: 0.5 });
    expect(m.recentMismatches).toHaveLength(1);
    const diff = m.recentMismatches[0]!.diffs[0]!;
    expect(diff).toMatchObject({ field: 'username', kind: 'value' });
    // Redacted: hashes, not the values.
    expect(JSON.stringify(m.recentMismatches)).not.toMatch(/mallory|grace/);
    expect(String(diff.old)).toMatch(/^sha256:/);
  });
});
