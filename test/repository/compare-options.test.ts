import { createMemoryFlags, createMemoryMetrics, createRepository, type Stage } from 'flagshift';
import { expect, it } from 'vitest';
import { type DriverContext, describeDrivers } from '../support/drivers.js';
import { usersMigration } from '../support/fixtures.js';

/** A users repository whose compare.normalize assumes strings: it throws on a NULL not yet backfilled. */
async function trimmingFixture(ctx: DriverContext, stage: Stage) {
  const { migration } = await usersMigration(ctx, {
    defaultStage: 'dualwrite',
    compare: { normalize: (_field, value) => (value as string).trim() },
  });
  const flags = createMemoryFlags({ [migration.stageFlagKey]: stage, [migration.percentFlagKey]: 100 });
  const metrics = createMemoryMetrics();
  const repo = createRepository(migration, { driver: ctx.driver, flags, metrics });
  await ctx.sql(`INSERT INTO ${ctx.schema}.users VALUES (1, 'ada', NULL, 'a@x'), (2, NULL, 'bob', 'b@x')`);
  return { repo, errors: () => metrics.snapshot().migrations['users-username']!.errors };
}

describeDrivers('compare options that throw', (getCtx) => {
  it('shadow: a throwing normalize fails the comparison, not the read; the caller gets the old value', async () => {
    const { repo, errors } = await trimmingFixture(getCtx(), 'shadow');
    expect(await repo.get(1)).toEqual({ id: 1, username: 'ada', email: 'a@x' });
    expect(await repo.getMany([1])).toEqual([{ id: 1, username: 'ada', email: 'a@x' }]);
    expect(errors().bySide).toEqual({ old: 0, new: 2 });
  });

  it('shadow: find compared by result set gets the old rows when normalize throws', async () => {
    const { repo, errors } = await trimmingFixture(getCtx(), 'shadow');
    // Ordered by the migrated field, the query is compared result set against result set.
    expect(await repo.find({ where: { email: 'a@x' }, orderBy: 'username' })).toEqual([
      { id: 1, username: 'ada', email: 'a@x' },
    ]);
    expect(errors().bySide).toEqual({ old: 0, new: 1 });
  });

  it('live: a throwing normalize fails the comparison, not the read; the caller gets the new value', async () => {
    const { repo, errors } = await trimmingFixture(getCtx(), 'live');
    expect(await repo.get(2)).toEqual({ id: 2, username: 'bob', email: 'b@x' });
    expect(await repo.getMany([2])).toEqual([{ id: 2, username: 'bob', email: 'b@x' }]);
    expect(errors().bySide).toEqual({ old: 2, new: 0 });
  });
});
