/**
 * Redaction, on both drivers: real mismatches (a diverged value, a missing new value, a
 * result set that differs, a side that fails to decode with the value in its error
 * message) are driven with secret-looking keys and values, and every output flagshift
 * produces is searched for them: every metric event, the memory snapshot, the Prometheus
 * exposition, the OpenTelemetry export, verification reports, lifecycle events, the
 * console. Without `rawValues` no secret appears anywhere; with it, secrets appear in
 * mismatch samples (and verification examples) only, never in a metric label or another
 * event.
 */
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import {
  combineSinks,
  createMemoryFlags,
  createMemoryMetrics,
  createRepository,
  customMapping,
  defineMigration,
  defineTable,
  type MetricEvent,
  rename,
} from 'flagshift';
import { createOpenTelemetryMetrics } from 'flagshift/opentelemetry';
import { createPrometheusMetrics } from 'flagshift/prometheus';
import { afterEach, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { createBackfill } from '../../src/lifecycle/backfill/backfill.js';
import { verify } from '../../src/lifecycle/verify.js';
import { type DriverContext, describeDrivers } from '../support/drivers.js';
import { createEventLog, dump, leaked } from '../support/model-events.js';

const KEY = 'ssn-078-05-1120';
const OLD_SECRET = 'sk_live_4eC39HqLyjWDarjtT1zdp7dc';
const NEW_SECRET = 'AKIAIOSFODNN7EXAMPLE-wJalrXUtnFEMI';
const MISSING_KEY = 'acct-4111111111111111';
const MISSING_SECRET = 'pw=hunter2-correct-horse';
const EMAIL = 'ada.lovelace+private@example.com';
const BOOM = 'boom-Sup3rS3cretTier';
const SECRETS = [KEY, OLD_SECRET, NEW_SECRET, MISSING_KEY, MISSING_SECRET, EMAIL, BOOM];

afterEach(() => {
  vi.restoreAllMocks();
});

async function scenario(ctx: DriverContext, rawValues: boolean) {
  await ctx.sql(
    `CREATE TABLE ${ctx.schema}.users (id text PRIMARY KEY, user_name text, username text, tier_code text, tier text, email text NOT NULL)`,
  );
  const table = defineTable({
    name: `${ctx.schema}.users`,
    key: 'id',
    entity: z.object({ id: z.string(), username: z.string(), tier: z.string(), email: z.string() }),
  });
  const usernames = defineMigration({
    name: 'users-username',
    table,
    mappings: [rename({ field: 'username', from: 'user_name', to: 'username', type: 'text' })],
    defaultStage: 'dualwrite',
    compare: { rawValues },
  });
  const tiers = defineMigration({
    name: 'users-tier',
    table,
    mappings: [
      customMapping({
        fields: { tier: { column: 'tier', type: 'text' } },
        old: [{ column: 'tier_code', type: 'text', kind: 'string' }],
        forward: ([code]) => {
          // A transform whose error message quotes the value, as parsers' messages do.
          if (code === BOOM) throw new Error(`cannot decode tier ${String(code)}`);
          return [code];
        },
        backward: ([tier]) => [tier],
        sql: { forward: { tier: '{tier_code}' }, backward: { tier_code: '{tier}' } },
      }),
    ],
    defaultStage: 'dualwrite',
    compare: { rawValues },
  });
  const flags = createMemoryFlags(
    Object.fromEntries(
      [usernames, tiers].flatMap((m) => [
        [m.stageFlagKey, 'dualwrite'],
        [m.percentFlagKey, 100],
      ]),
    ),
  );
  const events = createEventLog();
  const memory = createMemoryMetrics();
  const prometheus = createPrometheusMetrics();
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  const otel = createOpenTelemetryMetrics({ meterProvider });
  const tracked: unknown[] = [];
  const repo = createRepository([usernames, tiers], {
    driver: ctx.driver,
    flags: { ...flags, resolve: flags.resolve.bind(flags), track: (...args: unknown[]) => tracked.push(args) },
    metrics: combineSinks(events, memory, prometheus, otel),
  });
  const console = (['log', 'info', 'warn', 'error', 'debug', 'trace'] as const).map((method) =>
    vi.spyOn(globalThis.console, method).mockImplementation(() => undefined),
  );

  await repo.insert({ id: KEY, username: OLD_SECRET, tier: 'gold', email: EMAIL });
  await repo.insert({ id: MISSING_KEY, username: MISSING_SECRET, tier: 'gold', email: EMAIL });
  await repo.insert({ id: 'plain', username: 'plain', tier: 'silver', email: EMAIL });
  // Behind the SDK: a diverged new value, a missing new value, an old value the transform can't decode.
  await ctx.sql(`UPDATE ${ctx.schema}.users SET username = $1 WHERE id = $2`, [NEW_SECRET, KEY]);
  await ctx.sql(`UPDATE ${ctx.schema}.users SET username = NULL WHERE id = $1`, [MISSING_KEY]);
  await ctx.sql(`UPDATE ${ctx.schema}.users SET tier_code = $1 WHERE id = 'plain'`, [BOOM]);

  for (const stage of ['shadow', 'live'] as const) {
    // The tier migration serves new and compares old, so the old side's decoding error is only reported.
    flags.setMany({ [usernames.stageFlagKey]: stage, [tiers.stageFlagKey]: 'live' });
    await repo.get(KEY);
    await repo.getMany([KEY, MISSING_KEY, 'plain']);
    await repo.find({ where: { username: OLD_SECRET } });
    await repo.find({ where: { username: NEW_SECRET } });
    await repo.find({ where: { email: EMAIL } });
  }
  await reader.forceFlush();
  const lifecycleEvents: unknown[] = [];
  const verification = await verify(ctx.driver, usernames, {
    stateSchema: ctx.schema,
    rawValues,
    onEvent: (event) => lifecycleEvents.push(event),
  });
  await createBackfill(ctx.driver, usernames, {
    stateSchema: ctx.schema,
    onEvent: (event) => lifecycleEvents.push(event),
  }).run();
  const calls = console.flatMap((spy) => spy.mock.calls);
  repo.close();
  await meterProvider.shutdown();
  return {
    events: events.events,
    snapshot: memory.snapshot(),
    prometheus: await prometheus.registry.metrics(),
    otel: exporter.getMetrics(),
    tracked,
    verification,
    lifecycleEvents,
    console: calls,
  };
}

function mismatches(events: readonly MetricEvent[]) {
  return events.filter((event): event is Extract<MetricEvent, { type: 'mismatch' }> => event.type === 'mismatch');
}

describeDrivers('redaction', (getCtx) => {
  it('without rawValues, no key or value appears in any event, snapshot, metric label, export, report or log', async () => {
    const out = await scenario(getCtx(), false);
    const samples = mismatches(out.events);
    // The run proves something only if it produced every kind of mismatch and an error.
    const kinds = new Set(samples.flatMap((event) => event.sample.diffs.map((diff) => `${diff.field}:${diff.kind}`)));
    for (const kind of ['username:value', 'username:missing-new', '$row:missing-new', '$row:missing-old']) {
      expect(kinds.has(kind), `a mismatch ${kind} was driven`).toBe(true);
    }
    expect(out.events.some((event) => event.type === 'error' && event.migration === 'users-tier')).toBe(true);
    expect(out.verification.passed).toBe(false);

    expect(leaked(out.events, SECRETS), 'invariant: metric events carry no key or value').toEqual([]);
    expect(leaked(out.snapshot, SECRETS), 'invariant: the metrics snapshot carries no key or value').toEqual([]);
    expect(leaked(out.prometheus, SECRETS), 'invariant: Prometheus labels carry no key or value').toEqual([]);
    expect(leaked(out.otel, SECRETS), 'invariant: OpenTelemetry attributes carry no key or value').toEqual([]);
    expect(leaked(out.verification, SECRETS), 'invariant: verification examples are redacted').toEqual([]);
    expect(leaked(out.lifecycleEvents, SECRETS), 'invariant: lifecycle events carry no key or value').toEqual([]);
    expect(out.console, 'invariant: flagshift logs nothing to the console').toEqual([]);
    // track() tells the flag provider that an entity mismatched, by the digest of its key.
    expect(out.tracked.length).toBeGreaterThan(0);
    expect(leaked(out.tracked, SECRETS), 'invariant: track() carries no key or value').toEqual([]);
    for (const event of samples) {
      expect(String(event.sample.key), 'a sample key is a digest (null for a result set)').toMatch(
        /^sha256:[0-9a-f]{16}$|^null$/,
      );
      for (const diff of event.sample.diffs) {
        // The side a `missing-*` diff names has nothing to redact.
        const values =
          diff.kind === 'missing-new' ? [diff.old] : diff.kind === 'missing-old' ? [diff.new] : [diff.old, diff.new];
        for (const value of values) {
          expect(String(value), `invariant: sample values are digests (${diff.field}:${diff.kind})`).toMatch(
            /^sha256:[0-9a-f]{16}$/,
          );
        }
      }
    }
  });

  it('with rawValues, secrets appear in mismatch samples and verification examples only, never in a label or another event', async () => {
    const out = await scenario(getCtx(), true);
    const samples = mismatches(out.events);
    expect(leaked(samples, SECRETS), 'the opt-in works: samples carry raw values').toEqual(
      expect.arrayContaining([KEY, OLD_SECRET, NEW_SECRET]),
    );
    expect(leaked(out.verification, SECRETS), 'the opt-in works: verification examples carry raw values').toEqual(
      expect.arrayContaining([KEY, OLD_SECRET, NEW_SECRET]),
    );
    const others = out.events.filter((event) => event.type !== 'mismatch');
    expect(leaked(others, SECRETS), 'invariant: events other than mismatches carry no key or value').toEqual([]);
    expect(leaked(out.prometheus, SECRETS), 'invariant: Prometheus labels carry no key or value').toEqual([]);
    expect(leaked(out.otel, SECRETS), 'invariant: OpenTelemetry attributes carry no key or value').toEqual([]);
    const { recentMismatches: _samples, migrations, ...rest } = out.snapshot;
    const counters = Object.values(migrations).map(({ recentMismatches: _recent, ...counts }) => counts);
    expect(leaked([rest, counters], SECRETS), 'invariant: snapshot counters carry no key or value').toEqual([]);
    expect(leaked(out.lifecycleEvents, SECRETS), 'invariant: lifecycle events carry no key or value').toEqual([]);
    expect(dump(out.console)).toBe('[]');
  });
});
