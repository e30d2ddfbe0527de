/**
 * The promotion gate's progress on the dashboard: the next step of the ramp, and what the
 * gate says of it now, read with the thresholds the flag control's `set` applies.
 */
import { afterEach, expect, it } from 'vitest';
import { setMigrationFlags } from '../../../adapters/postgres-flags/index.js';
import { createPostgresFlagControl, type Dashboard, startDashboard } from '../../../apps/dashboard/index.js';
import { createBackfill } from '../../../src/lifecycle/backfill/backfill.js';
import { createMetricsPublisher } from '../../../src/lifecycle/index.js';
import { describeDrivers } from '../../support/drivers.js';
import { usersFixture } from '../../support/fixtures.js';
import { call } from './http.js';

const open: Dashboard[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((dashboard) => dashboard.close()));
});

describeDrivers('dashboard promotion gate', (getCtx) => {
  it('state: the next step held until the fleet has published the comparisons the control asks for, then ready', async () => {
    const ctx = getCtx();
    const { migration, repo, metrics, setStage } = await usersFixture(ctx, { stage: 'off', ttlMs: 0 });
    for (let id = 1; id <= 4; id++) await repo.insert({ id, username: `user${id}`, email: `u${id}@example.com` });
    await createBackfill(ctx.driver, migration, { stateSchema: ctx.schema }).run();
    const flagOptions = { schema: ctx.schema, stateSchema: ctx.schema };
    await setMigrationFlags(ctx.driver, migration, { stage: 'shadow' }, flagOptions);
    const start = async (minComparisons: number) => {
      const dashboard = await startDashboard({
        driver: ctx.driver,
        migrations: [migration],
        flags: createPostgresFlagControl(ctx.driver, { ...flagOptions, gate: { minComparisons } }),
        stateSchema: ctx.schema,
        flagTable: { schema: ctx.schema },
      });
      open.push(dashboard);
      return dashboard;
    };
    const gateOf = async (dashboard: Dashboard) => (await call(dashboard.url, '/api/state')).json.migrations[0].gate;

    const strict = await start(1000);
    let gate = await gateOf(strict);
    expect(gate.status).toBe('ok');
    expect(gate.value).toMatchObject({ from: 'shadow', to: 'live 1%', gated: true });
    expect(gate.value.evidence).toMatch(/^0 of 1000 comparisons since \d\d:\d\d:\d\d UTC; 0 mismatches$/);
    expect(gate.value.problems.join('\n')).toMatch(/0 of 1000 comparisons/);

    // The fleet compares four reads and publishes them.
    setStage('shadow');
    for (let id = 1; id <= 4; id++) await repo.get(id);
    const publisher = createMetricsPublisher({
      driver: ctx.driver,
      metrics,
      stateSchema: ctx.schema,
      intervalMs: 3_600_000,
    });
    expect(await publisher.publish()).toBe(true);
    gate = await gateOf(strict);
    expect(gate.value.evidence).toMatch(/^4 of 1000 comparisons since .*; 0 mismatches$/);
    expect(gate.value.problems.length).toBeGreaterThan(0);

    // A control that asks for four: the same step is ready, as set() would find it.
    gate = await gateOf(await start(4));
    expect(gate.value).toMatchObject({ from: 'shadow', to: 'live 1%', gated: true, problems: [] });
    expect(gate.value.evidence).toMatch(/^4 of 4 comparisons since/);

    // In live, the next step is the next read percentage; at complete there is none.
    await setMigrationFlags(
      ctx.driver,
      migration,
      { stage: 'live', percent: 1 },
      { ...flagOptions, gate: { minComparisons: 4 } },
    );
    gate = await gateOf(strict);
    expect(gate.value).toMatchObject({ from: 'live 1%', to: 'live 10%', gated: true });
    await setMigrationFlags(ctx.driver, migration, { stage: 'complete' }, { ...flagOptions, force: true });
    expect(await gateOf(strict)).toEqual({ status: 'ok', value: null });
    await publisher.stop();
  });

  it('state: without a control that checks moves, no gate; with unreadable flags, the gate is unknown with the reason', async () => {
    const ctx = getCtx();
    const { migration } = await usersFixture(ctx);
    const plain = await startDashboard({
      driver: ctx.driver,
      migrations: [migration],
      flags: { set: async () => undefined, kill: async () => undefined },
      stateSchema: ctx.schema,
      flagTable: { schema: ctx.schema },
    });
    open.push(plain);
    const m = (await call(plain.url, '/api/state')).json.migrations[0];
    expect(m.flags.status).toBe('unknown');
    expect(m.gate).toEqual({ status: 'unknown', reason: m.flags.reason });
    await setMigrationFlags(
      ctx.driver,
      migration,
      { stage: 'dualwrite' },
      { schema: ctx.schema, stateSchema: ctx.schema },
    );
    expect((await call(plain.url, '/api/state')).json.migrations[0].gate).toEqual({ status: 'ok', value: null });
  });
});
