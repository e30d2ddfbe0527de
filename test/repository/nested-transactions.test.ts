import type { Driver, Queryable } from 'flagshift';
import { expect, it } from 'vitest';
import { type DriverContext, describeDrivers } from '../support/drivers.js';
import { usersFixture } from '../support/fixtures.js';

describeDrivers('nested transactions', (getCtx) => {
  it('a nested transaction that throws rolls back its own writes only; the outer one commits', async () => {
    const { repo, rows } = await usersFixture(getCtx(), { stage: 'dualwrite' });
    await repo.insert({ id: 1, username: 'ada', email: 'a@x' });
    await repo.transaction(async (tx) => {
      await tx.update(1, { username: 'outer' });
      await expect(
        tx.transaction(async (inner) => {
          await inner.update(1, { username: 'inner' });
          await inner.insert({ id: 2, username: 'bob', email: 'b@x' });
          throw new Error('inner');
        }),
      ).rejects.toThrow('inner');
      await tx.transaction((inner) => inner.insert({ id: 3, username: 'cy', email: 'c@x' }));
    });
    expect((await rows()).map((row) => [Number(row.id), row.user_name, row.username])).toEqual([
      [1, 'outer', 'outer'],
      [3, 'cy', 'cy'],
    ]);
  });

  it('a database error in a nested transaction leaves the outer one usable', async () => {
    const { repo, rows } = await usersFixture(getCtx(), { stage: 'dualwrite' });
    await repo.insert({ id: 1, username: 'ada', email: 'a@x' });
    await repo.transaction(async (tx) => {
      await expect(
        tx.transaction((inner) => inner.insert({ id: 1, username: 'dup', email: 'd@x' })),
      ).rejects.toMatchObject({ sqlState: '23505' });
      await tx.update(1, { username: 'after' });
    });
    expect((await rows()).map((row) => [row.user_name, row.username])).toEqual([['after', 'after']]);
  });

  it('a nested transaction opened on the outer handle from inside another one runs, under it', async () => {
    const { repo, rows } = await usersFixture(getCtx(), { stage: 'dualwrite' });
    await repo.transaction(async (tx) => {
      await expect(
        tx.transaction(async (inner) => {
          await inner.insert({ id: 1, username: 'ada', email: 'a@x' });
          // The outer handle, from inside the inner transaction's callback.
          await tx.transaction((deeper) => deeper.insert({ id: 2, username: 'bob', email: 'b@x' }));
          throw new Error('inner');
        }),
      ).rejects.toThrow('inner');
      await tx.insert({ id: 3, username: 'cy', email: 'c@x' });
    });
    expect((await rows()).map((row) => Number(row.id))).toEqual([3]);
  }, 20_000);

  it("a driver whose tx can't nest: the repository opens the savepoint itself", async () => {
    const ctx = getCtx();
    const { plain, statements } = plainDriver(ctx);
    const { repo, rows } = await usersFixture(ctx, { stage: 'dualwrite', driver: plain });
    await repo.transaction(async (tx) => {
      await tx.insert({ id: 1, username: 'ada', email: 'a@x' });
      await expect(
        tx.transaction(async (inner) => {
          await inner.insert({ id: 2, username: 'bob', email: 'b@x' });
          throw new Error('inner');
        }),
      ).rejects.toThrow('inner');
    });
    expect((await rows()).map((row) => Number(row.id))).toEqual([1]);
    expect(statements.filter((sql) => /SAVEPOINT/.test(sql))).toEqual([
      expect.stringMatching(/^SAVEPOINT flagshift_nested_\d+$/),
      expect.stringMatching(/^ROLLBACK TO SAVEPOINT flagshift_nested_\d+$/),
    ]);
  });

  it("a driver whose tx can't nest: sibling nested transactions run one at a time, each rolled back alone", async () => {
    const ctx = getCtx();
    const { plain } = plainDriver(ctx);
    const { repo, rows } = await usersFixture(ctx, { stage: 'dualwrite', driver: plain });
    await repo.transaction(async (tx) => {
      const [failed, done] = await Promise.allSettled([
        tx.transaction(async (inner) => {
          await inner.insert({ id: 1, username: 'ada', email: 'a@x' });
          throw new Error('first');
        }),
        tx.transaction(async (inner) => {
          await inner.insert({ id: 2, username: 'bob', email: 'b@x' });
          await inner.transaction((deeper) => deeper.insert({ id: 3, username: 'cy', email: 'c@x' }));
        }),
      ]);
      expect([failed.status, done.status]).toEqual(['rejected', 'fulfilled']);
    });
    expect((await rows()).map((row) => Number(row.id))).toEqual([2, 3]);
  });

  it('an outer transaction that throws rolls back what its nested ones committed', async () => {
    const { repo, rows } = await usersFixture(getCtx(), { stage: 'dualwrite' });
    await expect(
      repo.transaction(async (tx) => {
        await tx.transaction((inner) => inner.insert({ id: 1, username: 'ada', email: 'a@x' }));
        throw new Error('outer');
      }),
    ).rejects.toThrow('outer');
    expect(await rows()).toEqual([]);
  });
});

/** A driver of the application's own: its tx runs statements and nothing else. */
function plainDriver(ctx: DriverContext): { plain: Driver; statements: string[] } {
  const statements: string[] = [];
  const plain: Driver = {
    name: 'plain',
    supportsConcurrentQueries: ctx.driver.supportsConcurrentQueries,
    query: (sql, params) => ctx.driver.query(sql, params),
    session: (fn) => ctx.driver.session(fn),
    transaction: (fn) =>
      ctx.driver.transaction((tx) =>
        fn({
          query: (sql, params) => {
            statements.push(sql);
            return tx.query(sql, params);
          },
        } satisfies Queryable),
      ),
  };
  return { plain, statements };
}
