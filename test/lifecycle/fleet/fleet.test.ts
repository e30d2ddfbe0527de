/**
 * The fleet over several schemas of one database (schema per tenant), on PGlite and the
 * real server: canary first, every member through its steps, a failing member that stops
 * only itself, a failing canary that stops the rest, a stopped run resumed, and contract
 * held per member by the member's own stage flag.
 */
import {
  createRepository,
  createStageResolver,
  type FlagContext,
  type FlagSource,
  type MetricsSink,
  type ReadEvent,
} from 'flagshift';
import { afterEach, expect, it } from 'vitest';
import type { FleetMember, FleetMemberStatus } from '../../../src/lifecycle/fleet/index.js';
import { fleetStatus, migrationInSchema, runFleet } from '../../../src/lifecycle/fleet/index.js';
import { backfillStatus, lastFleetStep } from '../../../src/lifecycle/state/index.js';
import { type DriverContext, describeDrivers } from '../../support/drivers.js';
import { usersUsername } from './fixtures.js';

const migration = usersUsername;

/** A flag source that answers the stage flag by the context's `tenant`, as a targeting rule would. */
function stageByTenant(stages: Record<string, string>): FlagSource {
  return {
    resolve(flagKey: string, _type, context: FlagContext) {
      if (flagKey === migration.percentFlagKey) return 100;
      if (flagKey !== migration.stageFlagKey) throw new Error(`flag "${flagKey}" is not set`);
      return stages[String(context['tenant'])] ?? 'dualwrite';
    },
  };
}

describeDrivers('fleet of tenant schemas', (getCtx) => {
  const created: string[] = [];

  afterEach(async () => {
    const ctx = getCtx();
    for (const schema of created.splice(0)) {
      await ctx.sql(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await ctx.sql(`DROP SCHEMA IF EXISTS flagshift_${schema} CASCADE`);
    }
  });

  /** Creates tenant schemas `<test schema>_<tenant>` with `rows` users each (none when `rows` is undefined: no table). */
  async function tenants(ctx: DriverContext, spec: Record<string, number | undefined>): Promise<FleetMember[]> {
    const members: FleetMember[] = [];
    for (const [tenant, rows] of Object.entries(spec)) {
      const schema = `${ctx.schema}_${tenant}`;
      created.push(schema);
      await ctx.sql(`CREATE SCHEMA ${schema}`);
      if (rows !== undefined) {
        await ctx.sql(`CREATE TABLE ${schema}.users (id int PRIMARY KEY, user_name text)`);
        await ctx.sql(`INSERT INTO ${schema}.users SELECT g, 'user-' || g FROM generate_series(1, $1::int) g`, [rows]);
      }
      members.push({ name: tenant, driver: ctx.driver, schema });
    }
    return members;
  }

  async function unfilled(ctx: DriverContext, tenant: string): Promise<number> {
    const rows = await ctx.sql<{ n: string }>(
      `SELECT count(*) AS n FROM ${ctx.schema}_${tenant}.users WHERE username IS DISTINCT FROM user_name`,
    );
    return Number(rows[0]!.n);
  }

  const summary = (members: readonly FleetMemberStatus[]) =>
    Object.fromEntries(members.map((m) => [m.member, `${m.state}:${m.next ?? '-'}`]));

  it('runs expand, backfill and verify in every schema, the canary alone first', async () => {
    const ctx = getCtx();
    const members = await tenants(ctx, { a: 120, b: 80, c: 50 });
    const order: string[] = [];
    const report = await runFleet(migration, {
      members,
      canary: 'b',
      concurrency: 2,
      backfill: { batchSize: 40, pauseRatio: 0 },
      onProgress: (status) => {
        if (status.state === 'running' && status.next === 'expand') order.push(status.member);
      },
    });
    expect(report.ok).toBe(true);
    expect(order[0]).toBe('b');
    expect(order.slice(1).sort()).toEqual(['a', 'c']);
    expect(summary(report.members)).toEqual({ a: 'ready:contract', b: 'ready:contract', c: 'ready:contract' });
    for (const tenant of ['a', 'b', 'c']) expect(await unfilled(ctx, tenant)).toBe(0);
    // Each member's state lives in its own state schema, and the status reads it back.
    const status = await fleetStatus(migration, { members });
    expect(status.members.map((m) => m.completed)).toEqual([
      ['expand', 'backfill', 'verify'],
      ['expand', 'backfill', 'verify'],
      ['expand', 'backfill', 'verify'],
    ]);
    expect(status.members[0]!.backfill).toEqual({ rowsDone: 120, totalEstimate: expect.any(Number), done: true });
  });

  it('a failing member stops only itself, and the status says why', async () => {
    const ctx = getCtx();
    const members = await tenants(ctx, { a: 30, b: undefined, c: 30 });
    const report = await runFleet(migration, { members, backfill: { pauseRatio: 0 } });
    expect(report.ok).toBe(false);
    expect(summary(report.members)).toEqual({ a: 'ready:contract', b: 'failed:expand', c: 'ready:contract' });
    expect(await unfilled(ctx, 'c')).toBe(0);
    const status = await fleetStatus(migration, { members });
    expect(status.members[1]!.reason).toMatch(/users does not exist/);
    expect(await lastFleetStep(ctx.driver, migration.name, `flagshift_${ctx.schema}_b`)).toMatchObject({
      step: 'expand',
      outcome: 'failed',
      error: expect.stringMatching(/users/),
    });
  });

  it('a failing canary stops the fleet before any other member changes', async () => {
    const ctx = getCtx();
    const members = await tenants(ctx, { broken: undefined, a: 20 });
    const report = await runFleet(migration, { members });
    expect(summary(report.members)).toEqual({ broken: 'failed:expand', a: 'skipped:expand' });
    expect(report.members[1]!.reason).toMatch(/^canary "broken" failed: /);
    const columns = await ctx.sql(
      `SELECT 1 FROM information_schema.columns WHERE table_schema = $1 AND column_name = 'username'`,
      [`${ctx.schema}_a`],
    );
    expect(columns).toHaveLength(0);
  });

  it('a run stopped during a backfill resumes where it was, without starting the pass again', async () => {
    const ctx = getCtx();
    const members = await tenants(ctx, { a: 300, b: 40 });
    const stop = new AbortController();
    const first = await runFleet(migration, {
      members,
      coordinator: 'ops-1',
      signal: stop.signal,
      backfill: {
        batchSize: 25,
        minBatchSize: 25,
        maxBatchSize: 25,
        pauseRatio: 0,
        ranges: 1,
        onProgress: (p) => {
          if (p.rowsDone >= 50) stop.abort();
        },
      },
    });
    expect(first.stopped).toBe(true);
    expect(summary(first.members)).toEqual({ a: 'running:backfill', b: 'ready:expand' });
    const partial = await backfillStatus(ctx.driver, migration.name, `flagshift_${ctx.schema}_a`);
    expect(partial).toMatchObject({ status: 'running', pass: 1 });
    expect(partial!.rowsDone).toBeGreaterThanOrEqual(50);
    expect(partial!.rowsDone).toBeLessThan(300);
    expect((await fleetStatus(migration, { members })).members[0]!.reason).toMatch(/^backfill started at /);

    const second = await runFleet(migration, { members, coordinator: 'ops-1', backfill: { pauseRatio: 0 } });
    expect(summary(second.members)).toEqual({ a: 'ready:contract', b: 'ready:contract' });
    const done = await backfillStatus(ctx.driver, migration.name, `flagshift_${ctx.schema}_a`);
    expect(done).toMatchObject({ status: 'done', pass: 1, rowsDone: 300 });
    expect(await unfilled(ctx, 'a')).toBe(0);
  });

  it('contracts only the members whose stage flag, targeted by tenant, is complete', async () => {
    const ctx = getCtx();
    const members = await tenants(ctx, { canary: 30, other: 30 });
    const flags = stageByTenant({ canary: 'complete', other: 'live' });
    const report = await runFleet(migration, { members, through: 'contract', flags, backfill: { pauseRatio: 0 } });
    expect(summary(report.members)).toEqual({ canary: 'contracted:-', other: 'waiting:contract' });
    expect(report.members[1]!.reason).toBe('stage is "live"; contract waits for "complete"');
    const oldColumns = await ctx.sql<{ table_schema: string }>(
      `SELECT table_schema FROM information_schema.columns WHERE table_schema = ANY($1) AND column_name = 'user_name'`,
      [[`${ctx.schema}_canary`, `${ctx.schema}_other`]],
    );
    expect(oldColumns.map((row) => row.table_schema)).toEqual([`${ctx.schema}_other`]);
    const status = await fleetStatus(migration, { members, flags });
    expect(status.members.map((m) => [m.state, m.stage])).toEqual([
      ['contracted', 'complete'],
      ['ready', 'live'],
    ]);
  });

  it("a canary tenant goes live first: each tenant's repository reads by its own targeted stage", async () => {
    const ctx = getCtx();
    const members = await tenants(ctx, { acme: 10, globex: 10 });
    expect((await runFleet(migration, { members, backfill: { pauseRatio: 0 } })).ok).toBe(true);
    const stages: Record<string, string> = { acme: 'live', globex: 'dualwrite' };
    const resolver = createStageResolver({ flags: stageByTenant(stages) });
    const reads: ReadEvent[] = [];
    const metrics: MetricsSink = {
      record: (event) => {
        if (event.type === 'read') reads.push(event);
      },
    };
    const repositoryOf = (tenant: string) =>
      createRepository(migrationInSchema(migration, `${ctx.schema}_${tenant}`), {
        driver: ctx.driver,
        resolver,
        metrics,
        context: { tenant },
      });
    const acme = repositoryOf('acme');
    const globex = repositoryOf('globex');
    expect(await acme.get(3)).toEqual({ id: 3, username: 'user-3' });
    expect(await globex.get(3)).toEqual({ id: 3, username: 'user-3' });
    expect(reads.map((read) => [read.stage, read.served])).toEqual([
      ['live', 'new'],
      ['dualwrite', 'old'],
    ]);
    resolver.close();
  });
});
