import { afterEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { getMigrationFlags, setFlag, setMigrationFlags } from '../../../adapters/postgres-flags/index.js';
import {
  createPostgresFlagControl,
  type Dashboard,
  type DashboardFlagControl,
  startDashboard,
} from '../../../apps/dashboard/index.js';
import type { Queryable } from '../../../src/kernel/driver.js';
import { ConfigurationError, StageTransitionError, ValidationError } from '../../../src/kernel/errors.js';
import { createBackfill } from '../../../src/lifecycle/backfill/backfill.js';
import { createMetricsPublisher, recordEvent } from '../../../src/lifecycle/index.js';
import { listEvents, recordVerification } from '../../../src/lifecycle/state/index.js';
import { rename } from '../../../src/model/mappings.js';
import { defineMigration, type Migration } from '../../../src/model/migration.js';
import { defineTable } from '../../../src/model/table.js';
import { describeDrivers } from '../../support/drivers.js';
import { usersFixture } from '../../support/fixtures.js';
import { call } from './http.js';

const HOSTILE = `<img src=x onerror="alert(1)"><script>alert(2)</script>`;
/** The dashboard token of these tests' dashboards. */
const TOKEN = 'test-token-0123456789';

const users = defineTable({
  name: 'users',
  key: 'id',
  entity: z.object({ id: z.number().int(), username: z.string() }),
});
const hostileMigration = defineMigration({
  name: 'users-username',
  description: HOSTILE,
  table: users,
  mappings: [rename({ field: 'username', from: 'user_name', to: 'username', type: 'text' })],
  defaultStage: 'dualwrite',
});

/** A database that is down: every statement fails. */
const downDriver: Queryable = {
  query: async () => {
    throw new Error('connection refused <b>down</b>');
  },
};

function recordingControl(overrides: Partial<DashboardFlagControl> = {}) {
  return {
    set: vi.fn(async (_migration: Migration, change: unknown) => ({ change })),
    kill: vi.fn(async (_migration: Migration) => ({ changed: true })),
    ...overrides,
  } satisfies DashboardFlagControl;
}

const open: Dashboard[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((dashboard) => dashboard.close()));
});

async function start(options: Partial<Parameters<typeof startDashboard>[0]> = {}): Promise<Dashboard> {
  const dashboard = await startDashboard({
    driver: downDriver,
    migrations: [hostileMigration],
    token: TOKEN,
    ...options,
  });
  open.push(dashboard);
  return dashboard;
}

describe('dashboard API without a database', () => {
  it('page: escapes a hostile description and ships a nonce Content-Security-Policy', async () => {
    const { url } = await start({ flags: recordingControl() });
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const page = await call(url, '/');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    const csp = String(page.headers['content-security-policy']);
    const nonce = /script-src 'nonce-([^']+)'/.exec(csp)?.[1];
    expect(nonce).toBeDefined();
    expect(csp).toContain("default-src 'none'");
    expect(page.text).not.toContain('<img src=x');
    expect(page.text).not.toContain('<script>alert');
    expect(page.text).toContain('&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&lt;script&gt;alert(2)&lt;/script&gt;');
    // The only script is the page's own, carrying the nonce.
    expect(page.text.match(/<script\b[^>]*>/g)).toEqual([`<script nonce="${nonce}">`]);
    expect(page.text).toContain('data-controls="true"');
    const again = await call(url, '/');
    expect(/script-src 'nonce-([^']+)'/.exec(String(again.headers['content-security-policy']))?.[1]).not.toBe(nonce);
  });

  it('state: a database that fails shows each section as unknown with the reason, never invented values', async () => {
    const { url } = await start({ flags: recordingControl() });
    const state = await call(url, '/api/state');
    expect(state.status).toBe(200);
    expect(state.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(state.json.controls).toBe(true);
    expect(state.json.fleet).toMatchObject({
      status: 'unknown',
      reason: expect.stringContaining('connection refused'),
    });
    const [m] = state.json.migrations;
    expect(m).toMatchObject({
      name: 'users-username',
      description: HOSTILE,
      table: 'users',
      defaultStage: 'dualwrite',
    });
    for (const section of ['flags', 'metrics', 'backfill', 'verification', 'events']) {
      expect(m[section]).toEqual({ status: 'unknown', reason: 'connection refused <b>down</b>' });
    }
  });

  it('flags: bad stages, percents and fields are 400 with a message naming them, and never reach the control', async () => {
    const control = recordingControl();
    const { url } = await start({ flags: control });
    const cases: [unknown, RegExp][] = [
      [
        { stage: 'bogus' },
        /^migration "users-username": stage must be one of off, dualwrite, shadow, live, rampdown, complete, got "bogus"$/,
      ],
      [{ stage: 3 }, /stage must be one of .*, got 3$/],
      [{ percent: 101 }, /^migration "users-username": percent must be a number from 0 to 100, got 101$/],
      [{ percent: -0.5 }, /percent must be a number from 0 to 100, got -0.5$/],
      [{ percent: '50' }, /percent must be a number from 0 to 100, got "50"$/],
      [{ percent: null }, /percent must be a number from 0 to 100, got null$/],
      [{}, /nothing to change: give "stage" and\/or "percent"/],
      [{ stage: 'live', force: true }, /unknown field "force"/],
      [[1, 2], /migration "users-username": /],
      ['{"stage": ', /request body is not valid JSON/],
    ];
    for (const [body, message] of cases) {
      const answer = await call(url, '/api/migrations/users-username/flags', {
        method: 'POST',
        token: TOKEN,
        body,
        headers: { 'content-type': 'application/json' },
      });
      expect({ body, status: answer.status }).toEqual({ body, status: 400 });
      expect(answer.json).toMatchObject({ ok: false });
      expect(answer.json.error).toMatch(message);
    }
    expect(control.set).not.toHaveBeenCalled();
  });

  it('flags: a valid change reaches the control once, as parsed', async () => {
    const control = recordingControl();
    const { url } = await start({ flags: control });
    const answer = await call(url, '/api/migrations/users-username/flags', {
      method: 'POST',
      token: TOKEN,
      body: { stage: 'live', percent: 12.5 },
    });
    expect(answer.status).toBe(200);
    expect(answer.json).toMatchObject({ ok: true, message: 'Migration "users-username": stage live, read 12.5%.' });
    expect(control.set).toHaveBeenCalledTimes(1);
    expect(control.set).toHaveBeenCalledWith(hostileMigration, { stage: 'live', percent: 12.5 });
  });

  it('controls: refusals become 400 (invalid) and 409 (not allowed now); other failures 500', async () => {
    const control = recordingControl({
      set: vi.fn(async () => {
        throw new ValidationError('migration "users-username": percent must be a number from 0 to 100');
      }),
      kill: vi.fn(async () => {
        throw new StageTransitionError('migration "users-username" is complete: reads can\'t go back');
      }),
    });
    const { url } = await start({ flags: control });
    const set = await call(url, '/api/migrations/users-username/flags', {
      method: 'POST',
      token: TOKEN,
      body: { percent: 5 },
    });
    expect(set.status).toBe(400);
    const kill = await call(url, '/api/migrations/users-username/kill', { method: 'POST', token: TOKEN, body: {} });
    expect(kill.status).toBe(409);
    expect(kill.json.error).toMatch(/is complete/);

    const broken = recordingControl({
      kill: vi.fn(async () => {
        throw new Error('deadlock detected');
      }),
    });
    const other = await start({ flags: broken });
    const failed = await call(other.url, '/api/migrations/users-username/kill', {
      method: 'POST',
      token: TOKEN,
      body: {},
    });
    expect(failed.status).toBe(500);
    expect(failed.json.error).toBe('the flag change failed: deadlock detected');
  });

  it('kill: reaches the control; an empty body is fine, parameters are refused', async () => {
    const control = recordingControl();
    const { url } = await start({ flags: control });
    const empty = await call(url, '/api/migrations/users-username/kill', {
      method: 'POST',
      token: TOKEN,
      headers: { 'content-type': 'application/json' },
    });
    expect(empty.status).toBe(200);
    expect(empty.json.message).toMatch(/killed: every process reads old again/);
    const withBody = await call(url, '/api/migrations/users-username/kill', {
      method: 'POST',
      token: TOKEN,
      body: { stage: 'off' },
    });
    expect(withBody.status).toBe(400);
    expect(withBody.json.error).toMatch(/a kill takes no parameters, got \{"stage":"off"\}/);
    expect(control.kill).toHaveBeenCalledTimes(1);
  });

  it('requests: unknown migration 404, wrong method 405, non-JSON 415, cross-site 403, foreign Host 421', async () => {
    const control = recordingControl();
    const { url } = await start({ flags: control });
    const port = new URL(url).port;
    const post = (path: string, init: Parameters<typeof call>[2] = {}) =>
      call(url, path, { method: 'POST', token: TOKEN, body: { stage: 'shadow' }, ...init });

    const unknown = await post('/api/migrations/%3Cscript%3E/flags');
    expect(unknown.status).toBe(404);
    expect(unknown.json.error).toBe('migration "<script>" is not on this dashboard');
    expect((await call(url, '/api/migrations/users-username/flags')).status).toBe(405);
    expect((await call(url, '/api/state', { method: 'DELETE' })).headers.allow).toBe('GET, HEAD');
    expect((await call(url, '/nope')).status).toBe(404);

    const form = await post('/api/migrations/users-username/flags', {
      body: 'stage=shadow',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(form.status).toBe(415);
    const crossSite = await post('/api/migrations/users-username/flags', {
      headers: { origin: 'https://evil.example', 'content-type': 'application/json' },
    });
    expect(crossSite.status).toBe(403);
    const fetchSite = await post('/api/migrations/users-username/kill', {
      headers: { 'sec-fetch-site': 'cross-site', 'content-type': 'application/json' },
    });
    expect(fetchSite.status).toBe(403);
    const rebound = await call(url, '/api/state', { headers: { host: `evil.example:${port}` } });
    expect(rebound.status).toBe(421);
    expect((await call(url, '/api/state', { headers: { host: `localhost:${port}` } })).status).toBe(200);
    const sameOrigin = await post('/api/migrations/users-username/flags', {
      headers: {
        origin: `http://127.0.0.1:${port}`,
        'sec-fetch-site': 'same-origin',
        'content-type': 'application/json',
      },
    });
    expect(sameOrigin.status).toBe(200);
    expect(control.set).toHaveBeenCalledTimes(1);
  });

  it('read-only: without a flag control, or with readOnly, there are no change routes, no token and no controls', async () => {
    const control = recordingControl();
    for (const options of [{}, { flags: control, readOnly: true }]) {
      const dashboard = await start({ ...options, token: undefined });
      expect(dashboard.token).toBeUndefined();
      for (const path of [
        '/api/migrations/users-username/kill',
        '/api/migrations/users-username/flags',
        '/api/token',
      ]) {
        const answer = await call(dashboard.url, path, { method: 'POST', body: { stage: 'live' }, token: TOKEN });
        expect({ path, status: answer.status }).toEqual({ path, status: 404 });
      }
      expect((await call(dashboard.url, '/api/state')).json.controls).toBe(false);
      const page = (await call(dashboard.url, '/')).text;
      expect(page).toContain('data-controls="false"');
      expect(page).not.toContain('id="token-gate"');
    }
    expect(control.set).not.toHaveBeenCalled();
    expect(control.kill).not.toHaveBeenCalled();
  });

  it('options: invalid ones are configuration errors naming the option', async () => {
    await expect(startDashboard({ driver: downDriver, migrations: [] })).rejects.toThrow(
      /dashboard option "migrations" must name at least one migration/,
    );
    await expect(
      startDashboard({ driver: downDriver, migrations: [hostileMigration, hostileMigration] }),
    ).rejects.toThrow(/names migration "users-username" twice/);
    await expect(
      startDashboard({ driver: downDriver, migrations: [hostileMigration], flags: {} as never }),
    ).rejects.toThrow(ConfigurationError);
    await expect(
      startDashboard({ driver: downDriver, migrations: [hostileMigration], stateSchema: 'x; drop' }),
    ).rejects.toThrow(/option "stateSchema"/);
    await expect(startDashboard({ driver: downDriver, migrations: [hostileMigration], port: 70_000 })).rejects.toThrow(
      /option "port"/,
    );
    await expect(startDashboard({ driver: downDriver, migrations: [hostileMigration], port: 70_000 })).rejects.toThrow(
      'dashboard option "port" must be an integer from 0 to 65535, got 70000',
    );
    await expect(startDashboard(42 as never)).rejects.toThrow('dashboard options must be an object, got 42');
    await expect(
      startDashboard({ driver: downDriver, migrations: [hostileMigration], refresh: 100 } as never),
    ).rejects.toThrow('dashboard option "refresh" is not a known option');
    // The charts' thresholds are validated as createGuardrails validates them.
    await expect(
      startDashboard({ driver: downDriver, migrations: [hostileMigration], guardrails: [] as never }),
    ).rejects.toThrow(/dashboard option "guardrails" must be an object/);
    await expect(
      startDashboard({
        driver: downDriver,
        migrations: [hostileMigration],
        guardrails: { thresholds: { maxNewErrorRate: 2 } },
      }),
    ).rejects.toThrow(/option "thresholds.maxNewErrorRate" must be a number from 0 to 1, or false, got 2/);
  });

  it('thresholds: the guardrails defaults unless given, per migration, false where a check is off', async () => {
    const other = defineMigration({
      name: 'users-other',
      table: users,
      mappings: [rename({ field: 'username', from: 'login', to: 'username', type: 'text' })],
      defaultStage: 'off',
    });
    const defaults = await start();
    expect((await call(defaults.url, '/api/state')).json.migrations[0].thresholds).toEqual({
      maxMismatchRate: 0.01,
      maxNewErrorRate: 0.01,
      maxLatencyRatio: 3,
    });
    const given = await start({
      migrations: [hostileMigration, other],
      guardrails: {
        thresholds: { maxMismatchRate: 0.05, maxLatencyRatio: false },
        migrations: { 'users-other': { maxNewErrorRate: 0.2 } },
      },
    });
    const [first, second] = (await call(given.url, '/api/state')).json.migrations;
    expect(first.thresholds).toEqual({ maxMismatchRate: 0.05, maxNewErrorRate: 0.01, maxLatencyRatio: false });
    expect(second.thresholds).toEqual({ maxMismatchRate: 0.05, maxNewErrorRate: 0.2, maxLatencyRatio: false });
  });
});

describeDrivers('dashboard state from the database', (getCtx) => {
  async function startOn(ctx: ReturnType<typeof getCtx>, migration: Migration, flags?: DashboardFlagControl) {
    const dashboard = await startDashboard({
      driver: ctx.driver,
      migrations: [migration],
      stateSchema: ctx.schema,
      flagTable: { schema: ctx.schema },
      seriesBucketMs: 1000,
      token: TOKEN,
      ...(flags === undefined ? {} : { flags }),
    });
    open.push(dashboard);
    return dashboard;
  }

  it('empty database: no flag table is unknown with the reason; no backfill, verification or metrics yet; nothing created', async () => {
    const ctx = getCtx();
    const { migration } = await usersFixture(ctx);
    const { url } = await startOn(ctx, migration);
    const state = (await call(url, '/api/state')).json;
    const [m] = state.migrations;
    expect(m.flags).toEqual({
      status: 'unknown',
      reason: `no flag control was given and there is no PostgreSQL flag table ${ctx.schema}.flags to read the flags from`,
    });
    expect(m.backfill).toEqual({ status: 'ok', value: null });
    expect(m.verification).toEqual({ status: 'ok', value: null });
    expect(m.metrics).toEqual({ status: 'ok', value: null });
    expect(m.events).toEqual({ status: 'ok', value: [] });
    expect(state.fleet).toMatchObject({ status: 'ok', value: { published: false, processes: 0 } });
    const created = await ctx.sql<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_catalog.pg_tables WHERE schemaname = $1 AND tablename <> 'users'`,
      [ctx.schema],
    );
    expect(created[0]!.n).toBe(0);
  });

  it('flags: read from the PostgreSQL flag table; a hostile stored value is reported as stored, not as a stage', async () => {
    const ctx = getCtx();
    const { migration } = await usersFixture(ctx);
    await setFlag(ctx.driver, migration.stageFlagKey, HOSTILE, { schema: ctx.schema });
    await setFlag(ctx.driver, migration.percentFlagKey, 250, { schema: ctx.schema });
    const { url } = await startOn(ctx, migration);
    let m = (await call(url, '/api/state')).json.migrations[0];
    expect(m.flags).toMatchObject({
      status: 'ok',
      value: { source: 'postgres-flags', stage: null, percent: null, raw: { stage: HOSTILE, percent: 250 } },
    });

    await setMigrationFlags(
      ctx.driver,
      migration,
      { stage: 'live', percent: 25 },
      // The state under test, not a promotion: forced past the checks.
      { schema: ctx.schema, stateSchema: ctx.schema, actor: 'ada', force: true },
    );
    m = (await call(url, '/api/state')).json.migrations[0];
    expect(m.flags.value).toMatchObject({ stage: 'live', percent: 25, updatedBy: 'ada' });
  });

  it('backfill, verification and metrics: progress from the checkpoint tables, the last verification, the fleet metrics', async () => {
    const ctx = getCtx();
    const { migration, repo, metrics, setStage } = await usersFixture(ctx, { stage: 'off', ttlMs: 0 });
    for (let id = 1; id <= 5; id++) await repo.insert({ id, username: `user${id}`, email: `u${id}@example.com` });
    await createBackfill(ctx.driver, migration, { stateSchema: ctx.schema }).run();
    await recordVerification(
      ctx.driver,
      migration.name,
      { passed: true, checkedRows: 5, mismatchedRows: 0, missingRows: 0 },
      ctx.schema,
    );
    setStage('shadow');
    await ctx.sql(`UPDATE ${ctx.schema}.users SET username = 'eve' WHERE id = 3`);
    for (let id = 1; id <= 5; id++) await repo.get(id);
    const publisher = createMetricsPublisher({
      driver: ctx.driver,
      metrics,
      stateSchema: ctx.schema,
      processId: 'app-1',
      intervalMs: 3_600_000,
    });
    expect(await publisher.publish()).toBe(true);

    const { url } = await startOn(ctx, migration);
    const state = (await call(url, '/api/state')).json;
    const m = state.migrations[0];
    expect(m.backfill).toMatchObject({
      status: 'ok',
      value: { status: 'done', rowsDone: 5, rowsChanged: 5, fraction: 1, rangesDone: 1, rangeCount: 1 },
    });
    expect(m.verification).toMatchObject({
      status: 'ok',
      value: { passed: true, checkedRows: 5, mismatchedRows: 0, missingRows: 0, writePathChangedAt: null },
    });
    expect(m.metrics.value).toMatchObject({ comparisons: 5, mismatches: 1, mismatchRate: 0.2, processes: 1 });
    expect(m.metrics.value.recentMismatches[0].diffs[0]).toMatchObject({ field: 'username', kind: 'value' });
    expect(m.metrics.value.series.reduce((sum: number, p: { mismatches: number }) => sum + p.mismatches, 0)).toBe(1);
    // Each side's operations for the error-rate and latency charts: 5 compared reads and 5 dual writes.
    const sides = m.metrics.value.sideSeries as { old: { operations: number }; new: { operations: number } }[];
    expect(sides.reduce((sum, p) => sum + p.old.operations, 0)).toBeGreaterThanOrEqual(10);
    expect(sides.reduce((sum, p) => sum + p.new.operations, 0)).toBeGreaterThanOrEqual(5);
    expect(state.fleet.value).toMatchObject({ published: true, processes: 1, seriesBucketMs: 1000 });

    // The page's chart windows: the same series over 5 minutes at 5-second points, or 24 hours; nothing else.
    const fiveMinutes = (await call(url, '/api/state?window=5m')).json;
    expect(fiveMinutes.fleet.value).toMatchObject({ seriesWindowMs: 300_000, seriesBucketMs: 5000 });
    const points = fiveMinutes.migrations[0].metrics.value.series;
    expect(points.reduce((sum: number, p: { mismatches: number }) => sum + p.mismatches, 0)).toBe(1);
    const day = (await call(url, '/api/state?window=24h')).json;
    expect(day.fleet.value).toMatchObject({ seriesWindowMs: 86_400_000, seriesBucketMs: 900_000 });
    const bogus = await call(url, '/api/state?window=2d');
    expect(bogus.status).toBe(400);
    expect(bogus.json.error).toBe('window must be one of 5m, 15m, 1h, 6h, 24h, got "2d"');

    // A stage change after the verification: the page must say it proves less now.
    await setMigrationFlags(
      ctx.driver,
      migration,
      { stage: 'live' },
      { schema: ctx.schema, stateSchema: ctx.schema, force: true },
    );
    const later = (await call(url, '/api/state')).json.migrations[0];
    expect(later.verification.value.writePathChangedAt).toEqual(expect.any(String));
    // One that finished after the change but started before it proves no more.
    const startedAt = new Date(Date.parse(later.verification.value.writePathChangedAt) - 60_000);
    await recordVerification(
      ctx.driver,
      migration.name,
      { passed: true, checkedRows: 5, mismatchedRows: 0, missingRows: 0, startedAt },
      ctx.schema,
    );
    const overlapping = (await call(url, '/api/state')).json.migrations[0].verification.value;
    expect(overlapping.startedAt).toBe(startedAt.toISOString());
    expect(Date.parse(overlapping.at)).toBeGreaterThan(Date.parse(later.verification.value.writePathChangedAt));
    expect(overlapping.writePathChangedAt).toBe(later.verification.value.writePathChangedAt);
  });

  it('controls over the PostgreSQL flag table: ramp and kill write the flags and the event log; leaving complete is 409', async () => {
    const ctx = getCtx();
    const { migration } = await usersFixture(ctx);
    await createBackfill(ctx.driver, migration, { stateSchema: ctx.schema }).run();
    // The controls are under test here; the promotion gate's evidence has its own tests.
    const control = createPostgresFlagControl(ctx.driver, {
      schema: ctx.schema,
      stateSchema: ctx.schema,
      gate: { minComparisons: 0 },
    });
    const { url } = await startOn(ctx, migration, control);
    const path = `/api/migrations/${migration.name}`;

    expect(
      (await call(url, `${path}/flags`, { method: 'POST', token: TOKEN, body: { stage: 'live', percent: 40 } })).status,
    ).toBe(200);
    expect((await call(url, '/api/state')).json.migrations[0].flags.value).toMatchObject({
      source: 'control',
      stage: 'live',
      percent: 40,
      updatedBy: 'flagshift dashboard',
    });
    const kill = await call(url, `${path}/kill`, { method: 'POST', token: TOKEN, body: {} });
    expect(kill.status).toBe(200);
    const flags = await getMigrationFlags(ctx.driver, migration, { schema: ctx.schema });
    expect(flags).toMatchObject({ stage: 'dualwrite', percent: 0 });
    const events = (await listEvents(ctx.driver, migration.name, ctx.schema)).filter((e) => e.kind === 'stage');
    expect(events.map((e) => e.details['action'])).toEqual(['set', 'kill']);
    expect(events[1]!.details).toMatchObject({ actor: 'flagshift dashboard', reason: 'killed from the dashboard' });

    // The timeline: newest first, who did what, and no row data even when an event holds some.
    await recordEvent(
      ctx.driver,
      migration.name,
      'verify',
      { passed: false, checkedRows: 3, mismatchedRows: 1, missingRows: 0, sample: { username: 'secret-value' } },
      ctx.schema,
    );
    const timeline = (await call(url, '/api/state')).json.migrations[0].events;
    expect(timeline.status).toBe('ok');
    expect(timeline.value.map((e: { kind: string }) => e.kind)).toEqual(['verify', 'stage', 'stage', 'backfill']);
    expect(timeline.value[0].details).toEqual({ passed: false, checkedRows: 3, mismatchedRows: 1, missingRows: 0 });
    expect(timeline.value[1].details).toMatchObject({
      action: 'kill',
      actor: 'flagshift dashboard',
      reason: 'killed from the dashboard',
      from: { stage: 'live', percent: 40 },
      to: { stage: 'dualwrite', percent: 0 },
    });
    // The ramp's entry carries the gate's evidence line.
    expect(timeline.value[2].details).toMatchObject({
      action: 'set',
      gate: '0 of 0 comparisons published; 0 mismatches',
    });
    expect(JSON.stringify(timeline)).not.toContain('secret-value');

    const again = await call(url, `${path}/kill`, { method: 'POST', token: TOKEN, body: {} });
    expect(again.json.message).toMatch(/already reads old only; nothing changed/);

    await setMigrationFlags(
      ctx.driver,
      migration,
      { stage: 'complete' },
      { schema: ctx.schema, stateSchema: ctx.schema, gate: { minComparisons: 0 } },
    );
    const back = await call(url, `${path}/flags`, { method: 'POST', token: TOKEN, body: { stage: 'shadow' } });
    expect(back.status).toBe(409);
    expect(back.json.error).toMatch(/from complete to shadow refused: .*since complete/);
    const refused = await call(url, `${path}/kill`, { method: 'POST', token: TOKEN, body: {} });
    expect(refused.status).toBe(409);
  });
});
