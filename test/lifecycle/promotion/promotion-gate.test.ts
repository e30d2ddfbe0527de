import { describe, expect, it } from 'vitest';
import { getMigrationFlags, setMigrationFlags } from '../../../adapters/postgres-flags/index.js';
import { type Driver, StageTransitionError } from '../../../src/index.js';
import {
  checkPromotion,
  createBackfill,
  createMetricsPublisher,
  nextPosition,
  servesMoreNew,
} from '../../../src/lifecycle/index.js';
import { listEvents } from '../../../src/lifecycle/state/index.js';
import { type Deferred, deferred } from '../../support/deferred.js';
import { describeDrivers } from '../../support/drivers.js';
import { usersFixture, usersMigration } from '../../support/fixtures.js';

describe('servesMoreNew: the moves the gate holds', () => {
  const at = (stage: 'off' | 'dualwrite' | 'shadow' | 'live' | 'rampdown' | 'complete', percent = 0) => ({
    stage,
    percent,
  });
  it('forward into live, rampdown or complete, and a higher percentage in live', () => {
    expect(servesMoreNew(at('shadow'), at('live', 0))).toBe(true);
    expect(servesMoreNew(at('live', 10), at('live', 50))).toBe(true);
    expect(servesMoreNew(at('live', 100), at('rampdown'))).toBe(true);
    expect(servesMoreNew(at('rampdown'), at('complete'))).toBe(true);
    expect(servesMoreNew(at('dualwrite'), at('live', 10))).toBe(true);
  });
  it('never a move back, nor one that serves old only', () => {
    expect(servesMoreNew(at('live', 50), at('live', 10))).toBe(false);
    expect(servesMoreNew(at('live', 50), at('shadow'))).toBe(false);
    expect(servesMoreNew(at('complete'), at('rampdown'))).toBe(false);
    expect(servesMoreNew(at('off'), at('dualwrite'))).toBe(false);
    expect(servesMoreNew(at('dualwrite'), at('shadow'))).toBe(false);
  });
});

describe('next step', () => {
  it('one stage at a time, and in live the next read percentage of the ramp; none after complete', () => {
    expect(nextPosition({ stage: 'off', percent: 0 })).toEqual({ stage: 'dualwrite', percent: 0 });
    expect(nextPosition({ stage: 'dualwrite', percent: 0 })).toEqual({ stage: 'shadow', percent: 0 });
    expect(nextPosition({ stage: 'shadow', percent: 0 })).toEqual({ stage: 'live', percent: 1 });
    expect(nextPosition({ stage: 'live', percent: 0 })).toEqual({ stage: 'live', percent: 1 });
    expect(nextPosition({ stage: 'live', percent: 1 })).toEqual({ stage: 'live', percent: 10 });
    expect(nextPosition({ stage: 'live', percent: 12.5 })).toEqual({ stage: 'live', percent: 50 });
    expect(nextPosition({ stage: 'live', percent: 100 })).toEqual({ stage: 'rampdown', percent: 100 });
    expect(nextPosition({ stage: 'rampdown', percent: 100 })).toEqual({ stage: 'complete', percent: 100 });
    expect(nextPosition({ stage: 'complete', percent: 100 })).toBeUndefined();
  });
});

describeDrivers('promotion gate', (getCtx) => {
  const GATE = { minComparisons: 20 };

  /** How long a test waits after a change before its next reads and publish. */
  const SETTLE_MS = 150;

  /** An expanded, backfilled users table at shadow, with `reads` matching comparisons published. */
  async function shadowWithEvidence(reads: number) {
    const ctx = getCtx();
    const fixture = await usersFixture(ctx, { stage: 'dualwrite', ttlMs: 0 });
    const opts = { schema: ctx.schema, stateSchema: ctx.schema, gate: GATE, actor: 'ada' };
    for (let id = 1; id <= 30; id++) {
      await fixture.repo.insert({ id, username: `user${id}`, email: `u${id}@example.com` });
    }
    await createBackfill(ctx.driver, fixture.migration, { stateSchema: ctx.schema }).run();
    await setMigrationFlags(ctx.driver, fixture.migration, { stage: 'shadow' }, opts);
    fixture.setStage('shadow');
    const publisher = createMetricsPublisher({
      driver: ctx.driver,
      metrics: fixture.metrics,
      stateSchema: ctx.schema,
      processId: 'app-1',
      intervalMs: 3_600_000,
    });
    const readAndPublish = async (count: number) => {
      // A publish stamps the next window with its own snapshot's time as far as it can
      // tell: the database's clock at the publish less the publish's whole round trip. A
      // change made less than that round trip before the snapshot then falls inside the next
      // window, which doesn't count. On a busy machine a publish took longer than the few
      // reads between a change and the next snapshot; waiting first keeps the windows these
      // tests expect to count clear of the changes before them.
      await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
      for (let i = 0; i < count; i++) await fixture.repo.get((i % 30) + 1);
      expect(await publisher.publish()).toBe(true);
    };
    await readAndPublish(reads);
    return { ...fixture, ctx, opts, readAndPublish };
  }

  it('shadow -> live is refused until the fleet published enough comparisons; nothing is written', async () => {
    const { ctx, migration, opts, readAndPublish } = await shadowWithEvidence(5);
    const attempt = setMigrationFlags(ctx.driver, migration, { stage: 'live', percent: 10 }, opts);
    await expect(attempt).rejects.toThrow(StageTransitionError);
    await expect(attempt).rejects.toThrow(
      /moving migration "users-username" from shadow to live 10% refused: not enough evidence yet: 5 of 20 comparisons since \d\d:\d\d:\d\d UTC; 0 mismatches/,
    );
    expect(await getMigrationFlags(ctx.driver, migration, opts)).toMatchObject({ stage: 'shadow' });

    await readAndPublish(20);
    const after = await setMigrationFlags(ctx.driver, migration, { stage: 'live', percent: 10 }, opts);
    expect(after).toMatchObject({ stage: 'live', percent: 10 });
    const events = (await listEvents(ctx.driver, migration.name, ctx.schema)).filter((e) => e.kind === 'stage');
    expect(events.at(-1)!.details).toMatchObject({
      action: 'set',
      actor: 'ada',
      gate: expect.stringMatching(/^25 of 20 comparisons since .* UTC; 0 mismatches$/),
    });
    expect(events.at(-1)!.details['forced']).toBeUndefined();
  });

  it('evidence counts from the last stage change: a higher percentage needs new comparisons', async () => {
    const { ctx, migration, opts, readAndPublish } = await shadowWithEvidence(25);
    await setMigrationFlags(ctx.driver, migration, { stage: 'live', percent: 10 }, opts);
    await expect(setMigrationFlags(ctx.driver, migration, { percent: 50 }, opts)).rejects.toThrow(
      /from live 10% to live 50% refused: not enough evidence yet: 0 of 20 comparisons since/,
    );
    // This publish's window began before the change (at the previous publish): its comparisons
    // may have been made at the previous position, so they don't count.
    await readAndPublish(20);
    await expect(setMigrationFlags(ctx.driver, migration, { percent: 50 }, opts)).rejects.toThrow(
      /not enough evidence yet: 0 of 20 comparisons since/,
    );
    // This one's began after it: recorded at live 10%.
    await readAndPublish(20);
    expect(await setMigrationFlags(ctx.driver, migration, { percent: 50 }, opts)).toMatchObject({ percent: 50 });
  });

  it("comparisons taken after a publish's snapshot and before a change, published after it, count as before it", async () => {
    const { ctx, migration, opts, repo, metrics } = await shadowWithEvidence(25);
    // A second process whose publish is held after its snapshot, until released.
    let hold: Deferred | undefined;
    const held: Driver = {
      ...ctx.driver,
      name: ctx.driver.name,
      supportsConcurrentQueries: ctx.driver.supportsConcurrentQueries,
      query: async (sql, params) => {
        if (sql.includes('metrics_history') && hold !== undefined) await hold.promise;
        return ctx.driver.query(sql, params);
      },
    };
    const publisher = createMetricsPublisher({
      driver: held,
      metrics,
      stateSchema: ctx.schema,
      processId: 'app-2',
      intervalMs: 3_600_000,
    });
    expect(await publisher.publish()).toBe(true);
    hold = deferred();
    const publishing = publisher.publish();
    // Compared in shadow after that publish's snapshot: the next window's.
    for (let i = 0; i < 20; i++) await repo.get((i % 30) + 1);
    await setMigrationFlags(ctx.driver, migration, { stage: 'live', percent: 10 }, opts);
    hold.resolve();
    expect(await publishing).toBe(true);
    hold = undefined;
    expect(await publisher.publish()).toBe(true);
    // Those 20 were made in shadow, before the move to live 10%: no evidence for live 10%.
    await expect(setMigrationFlags(ctx.driver, migration, { percent: 50 }, opts)).rejects.toThrow(
      /not enough evidence yet: 0 of 20 comparisons since/,
    );
  });

  it('rampdown -> complete: rests on the comparisons of the last position that compared, since rampdown compares none', async () => {
    const { ctx, migration, opts, readAndPublish, repo, setStage } = await shadowWithEvidence(25);
    await setMigrationFlags(ctx.driver, migration, { stage: 'live', percent: 100 }, opts);
    setStage('live', 100);
    await readAndPublish(5); // began at shadow's last publish: not live's
    await readAndPublish(20);
    // Made at live 100% but published only after the move to rampdown: live's, by when they were recorded.
    for (let id = 1; id <= 7; id++) await repo.get(id);
    await setMigrationFlags(ctx.driver, migration, { stage: 'rampdown' }, opts);
    setStage('rampdown');
    await readAndPublish(30);
    const check = await checkPromotion(
      ctx.driver,
      migration,
      { stage: 'rampdown', percent: 100 },
      { stage: 'complete', percent: 100 },
      { stateSchema: ctx.schema, gate: GATE },
    );
    expect(check.problems).toEqual([]);
    expect(check.evidence!.summary).toMatch(
      /^27 of 20 comparisons in live 100% from \d\d:\d\d:\d\d UTC, the last position that compared; 0 mismatches$/,
    );
    expect(await setMigrationFlags(ctx.driver, migration, { stage: 'complete' }, opts)).toMatchObject({
      stage: 'complete',
    });
  });

  it('out of a stage that compares nothing before shadow, the gate says to go through shadow', async () => {
    const { ctx, migration, opts } = await shadowWithEvidence(25);
    await setMigrationFlags(ctx.driver, migration, { stage: 'dualwrite' }, opts);
    await expect(setMigrationFlags(ctx.driver, migration, { stage: 'live', percent: 10 }, opts)).rejects.toThrow(
      /not enough evidence yet: 0 of 20 comparisons since .* UTC; 0 mismatches \(stage dualwrite compares nothing: move to shadow first, where processes compare and publish\)/,
    );
  });

  it('a mismatch since the last change holds the move; moving back is never held', async () => {
    const { ctx, migration, opts, readAndPublish } = await shadowWithEvidence(25);
    await ctx.sql(`UPDATE ${ctx.schema}.users SET username = 'eve' WHERE id = 3`);
    await readAndPublish(5);
    await expect(setMigrationFlags(ctx.driver, migration, { stage: 'live' }, opts)).rejects.toThrow(
      /30 of 20 comparisons since .* UTC; 1 mismatch: a mismatch rate of 3\.33% is above the gate's 0%/,
    );
    expect(await setMigrationFlags(ctx.driver, migration, { stage: 'dualwrite' }, opts)).toMatchObject({
      stage: 'dualwrite',
    });
  });

  it('moving back within live, or out of it, is never held, with mismatches and no evidence since', async () => {
    const { ctx, migration, opts, readAndPublish } = await shadowWithEvidence(25);
    await setMigrationFlags(ctx.driver, migration, { stage: 'live', percent: 50 }, opts);
    await ctx.sql(`UPDATE ${ctx.schema}.users SET username = 'eve' WHERE id = 3`);
    await readAndPublish(5);
    expect(await setMigrationFlags(ctx.driver, migration, { percent: 10 }, opts)).toMatchObject({ percent: 10 });
    expect(await setMigrationFlags(ctx.driver, migration, { stage: 'shadow' }, opts)).toMatchObject({
      stage: 'shadow',
    });
    // Forward again is held: the mismatch was published since the last change.
    await expect(setMigrationFlags(ctx.driver, migration, { stage: 'live' }, opts)).rejects.toThrow(
      /not enough evidence yet: 0 of 20 comparisons since/,
    );
  });

  it('a change refused before the flags table exists leaves no table behind', async () => {
    const ctx = getCtx();
    const { migration } = await usersFixture(ctx, { stage: 'dualwrite' });
    const opts = { schema: `${ctx.schema}_flags`, stateSchema: ctx.schema };
    await expect(setMigrationFlags(ctx.driver, migration, { stage: 'live' }, opts)).rejects.toThrow(
      StageTransitionError,
    );
    const [found] = await ctx.sql<{ found: string | null }>('SELECT to_regnamespace($1)::text AS found', [
      `${ctx.schema}_flags`,
    ]);
    expect(found?.found).toBeNull();
    await expect(
      setMigrationFlags(ctx.driver, migration, { stage: 'off' }, { ...opts, gate: { minComparisons: -1 } }),
    ).rejects.toThrow(/promotion gate option "minComparisons" must be a whole number/);
    const [still] = await ctx.sql<{ found: string | null }>('SELECT to_regnamespace($1)::text AS found', [
      `${ctx.schema}_flags`,
    ]);
    expect(still?.found).toBeNull();
  });

  it('force overrides the gate, and the event log says who, why and what was overridden', async () => {
    const { ctx, migration, opts } = await shadowWithEvidence(0);
    await setMigrationFlags(
      ctx.driver,
      migration,
      { stage: 'live', percent: 5 },
      { ...opts, force: true, reason: 'canary approved by on-call' },
    );
    const last = (await listEvents(ctx.driver, migration.name, ctx.schema)).at(-1)!;
    expect(last.details).toMatchObject({
      actor: 'ada',
      reason: 'canary approved by on-call',
      forced: true,
      overridden: [expect.stringMatching(/^not enough evidence yet: 0 of 20 comparisons/)],
    });
  });

  it('the target stage is checked against the schema whatever the current or default stage', async () => {
    const ctx = getCtx();
    // Not expanded: the new column does not exist; processes default to dualwrite.
    const { migration } = await usersMigration(ctx, { expanded: false, defaultStage: 'dualwrite' });
    const opts = { schema: ctx.schema, stateSchema: ctx.schema };
    await expect(setMigrationFlags(ctx.driver, migration, { stage: 'dualwrite' }, opts)).rejects.toThrow(
      /new column .*username does not exist yet, and stage dualwrite writes it/,
    );
    expect((await getMigrationFlags(ctx.driver, migration, opts)).raw.stage).toBeUndefined();
    expect(await setMigrationFlags(ctx.driver, migration, { stage: 'off' }, opts)).toMatchObject({ stage: 'off' });
  });

  it('reads go new only after the backfill finished', async () => {
    const ctx = getCtx();
    const { migration } = await usersFixture(ctx, { stage: 'dualwrite' });
    const check = await checkPromotion(
      ctx.driver,
      migration,
      { stage: 'shadow', percent: 0 },
      { stage: 'live', percent: 10 },
      { stateSchema: ctx.schema, gate: { minComparisons: 0 } },
    );
    expect(check.gated).toBe(true);
    expect(check.problems).toEqual([expect.stringMatching(/^the backfill has not started/)]);
  });
});
