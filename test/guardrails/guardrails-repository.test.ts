import { combineSinks, createMemoryMetrics, createRepository } from 'flagshift';
import { expect, it, vi } from 'vitest';
import { createGuardrails } from '../../src/guardrails/guardrails.js';
import type { GuardrailsOptions } from '../../src/guardrails/options.js';
import type { GuardrailTrip } from '../../src/metrics/guardrail-events.js';
import { type DriverContext, describeDrivers } from '../support/drivers.js';
import { usersFixture } from '../support/fixtures.js';

const M = 'users-username';

/** The users fixture with a repository whose events feed guardrails that also guard its reads. */
async function guarded(ctx: DriverContext, options: GuardrailsOptions, stage: 'dualwrite' | 'shadow' = 'dualwrite') {
  const fixture = await usersFixture(ctx, { stage });
  const guardrails = createGuardrails(options);
  const metrics = createMemoryMetrics();
  const repo = createRepository(fixture.migration, {
    driver: ctx.driver,
    flags: fixture.flags,
    metrics: combineSinks(metrics, guardrails),
    readGuard: guardrails,
  });
  const stored = async (id: number) => {
    const [row] = await ctx.sql<{ user_name: string | null; username: string | null }>(
      `SELECT user_name, username FROM ${ctx.schema}.users WHERE id = $1`,
      [id],
    );
    return row;
  };
  return { ...fixture, guardrails, metrics, repo, stored };
}

describeDrivers('guardrails', (getCtx) => {
  it('trips on mismatches injected behind the SDK: reads go back to old at once, writes stay dual, setSafeStage runs once', async () => {
    const ctx = getCtx();
    const onTrip = vi.fn<(trip: GuardrailTrip) => void>();
    const setSafeStage = vi.fn(async (_migration: string) => undefined);
    const { repo, guardrails, setStage, stored, metrics } = await guarded(ctx, {
      thresholds: { maxMismatchRate: 0.2, minComparisons: 10 },
      onTrip,
      setSafeStage,
    });
    for (let id = 1; id <= 10; id++) await repo.insert({ id, username: `user${id}`, email: `${id}@x` });
    await ctx.sql(`UPDATE ${ctx.schema}.users SET username = 'bad-' || id WHERE id <= 3`);
    setStage('live', 100);

    for (let id = 4; id <= 10; id++) await repo.get(id);
    // Live serves the new column: the divergent value reaches the caller...
    expect((await repo.get(1))?.username).toBe('bad-1');
    expect((await repo.get(2))?.username).toBe('bad-2');
    expect(guardrails.allowsNewReads(M)).toBe(true);
    // ...until the third mismatch in ten comparisons (30% > 20%) trips the guardrail.
    expect((await repo.get(3))?.username).toBe('bad-3');
    expect(guardrails.allowsNewReads(M)).toBe(false);
    expect(onTrip).toHaveBeenCalledTimes(1);
    expect(onTrip.mock.calls[0]![0]).toMatchObject({ migration: M, reason: 'mismatch-rate', samples: 10 });

    // From the next read on, the old column serves, and both sides are still compared.
    expect((await repo.get(1))?.username).toBe('user1');
    expect((await repo.getMany([2, 3])).map((u) => u.username)).toEqual(['user2', 'user3']);
    expect((await repo.find({ where: { username: 'user2' } })).map((u) => u.id)).toEqual([2]);
    const before = metrics.snapshot().migrations[M]!;
    expect(before.reads.bySide.new).toBe(10);
    // Held back: the flag still says live, the three reads behaved as shadow.
    expect(before.reads.byRoute.shadow).toBe(3);
    expect(before.reads.byStage.live).toBe(13);

    // Writes still go to both columns.
    await repo.update(5, { username: 'changed' });
    await repo.insert({ id: 11, username: 'eleven', email: '11@x' });
    expect(await stored(5)).toEqual({ user_name: 'changed', username: 'changed' });
    expect(await stored(11)).toEqual({ user_name: 'eleven', username: 'eleven' });

    await vi.waitFor(() => expect(guardrails.status()[0]!.safeStage).toBe('applied'));
    expect(setSafeStage).toHaveBeenCalledTimes(1);
    expect(setSafeStage).toHaveBeenCalledWith(M, expect.objectContaining({ migration: M, reason: 'mismatch-rate' }));
    for (let id = 1; id <= 3; id++) await repo.get(id);
    expect(setSafeStage).toHaveBeenCalledTimes(1);
    expect(onTrip).toHaveBeenCalledTimes(1);

    // A person resets it: new reads resume (and the window starts afresh).
    expect(guardrails.reset(M)).toBe(true);
    expect((await repo.get(2))?.username).toBe('bad-2');
    expect(guardrails.allowsNewReads(M)).toBe(true);
  });

  it('does not trip below the minimum sample, however bad the rate', async () => {
    const ctx = getCtx();
    const { repo, guardrails, setStage } = await guarded(ctx, {
      thresholds: { maxMismatchRate: 0, minComparisons: 10 },
    });
    for (let id = 1; id <= 9; id++) await repo.insert({ id, username: `user${id}`, email: `${id}@x` });
    await ctx.sql(`UPDATE ${ctx.schema}.users SET username = 'bad-' || id`);
    setStage('shadow');
    for (let id = 1; id <= 9; id++) expect((await repo.get(id))?.username).toBe(`user${id}`);
    expect(guardrails.status()[0]!.window).toMatchObject({ comparisons: 9, mismatches: 9, mismatchRate: 1 });
    expect(guardrails.allowsNewReads(M)).toBe(true);
    setStage('live', 100);
    expect((await repo.get(1))?.username).toBe('bad-1');
    // The tenth comparison reaches the minimum: now it trips.
    expect(guardrails.allowsNewReads(M)).toBe(false);
    expect((await repo.get(1))?.username).toBe('user1');
  });

  it('trips on the new side failing real reads (an undefined new column)', async () => {
    const ctx = getCtx();
    const { repo, guardrails } = await guarded(
      ctx,
      { thresholds: { maxNewErrorRate: 0.5, minNewReads: 5, maxMismatchRate: false } },
      'shadow',
    );
    for (let id = 1; id <= 5; id++) await repo.insert({ id, username: `user${id}`, email: `${id}@x` });
    await repo.check();
    await ctx.sql(`ALTER TABLE ${ctx.schema}.users DROP COLUMN username`);
    for (let id = 1; id <= 4; id++) expect((await repo.get(id))?.username).toBe(`user${id}`);
    expect(guardrails.allowsNewReads(M)).toBe(true);
    await repo.get(5);
    const [status] = guardrails.status();
    expect(status).toMatchObject({ tripped: true, trip: { reason: 'new-error-rate', samples: 5, observed: 1 } });
    expect(status!.window).toMatchObject({ newReads: 5, newErrors: 5 });
  });

  it("a read held back from the new side keeps its stage: errors name the flag's stage, not shadow", async () => {
    const ctx = getCtx();
    const fixture = await usersFixture(ctx, { stage: 'live', percent: 100 });
    await ctx.sql(`ALTER TABLE ${ctx.schema}.users DROP COLUMN user_name`);
    const repo = createRepository(fixture.migration, {
      driver: ctx.driver,
      flags: fixture.flags,
      readGuard: { allowsNewReads: () => false },
    });
    // Held on the old side, whose column is gone: the error says which stage read it.
    await expect(repo.get(1)).rejects.toThrow(
      /column ".*users\.user_name" named by migration "users-username" does not exist, and stage live uses the old side/,
    );
    fixture.flags.set(fixture.migration.stageFlagKey, 'rampdown');
    await expect(repo.get(1)).rejects.toThrow(/and stage rampdown uses the old side/);
  });
});
