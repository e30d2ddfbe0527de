/**
 * Regression tests of bugs the reliability suites found: find() on no match, values the
 * message preview couldn't print, and strings with an unpaired surrogate.
 */
import { createMemoryFlags, createRepository, defineMigration, defineTable, rename, ValidationError } from 'flagshift';
import { expect, it } from 'vitest';
import { z } from 'zod';
import { describeDrivers } from '../support/drivers.js';
import { recordingDriver } from '../support/model-driver.js';

const entity = z.object({ id: z.number().int(), username: z.string(), email: z.string() });

describeDrivers('known bugs', (getCtx) => {
  async function users() {
    const ctx = getCtx();
    await ctx.sql(
      `CREATE TABLE ${ctx.schema}.users (id bigint PRIMARY KEY, user_name text, username text, email text NOT NULL)`,
    );
    const table = defineTable({ name: `${ctx.schema}.users`, key: 'id', entity });
    const migration = defineMigration({
      name: 'users-username',
      table,
      mappings: [rename({ field: 'username', from: 'user_name', to: 'username', type: 'text' })],
      defaultStage: 'dualwrite',
    });
    const driver = recordingDriver(ctx.driver);
    const repo = createRepository(migration, {
      driver,
      flags: createMemoryFlags({ [migration.stageFlagKey]: 'shadow' }),
    });
    return { ctx, table, repo, driver };
  }

  it('find() that matches no row returns [] (plain filter, empty table, no migrations)', async () => {
    const { ctx, table, repo } = await users();
    expect(await repo.find(), 'an empty table').toEqual([]);
    expect(await repo.find({ where: { email: 'nobody@x' } }), 'a plain filter without match').toEqual([]);
    expect(await repo.find({ limit: 0 }), 'limit 0').toEqual([]);
    expect(await createRepository(table, { driver: ctx.driver }).find(), 'a repository without migrations').toEqual([]);
  });

  it('a value that cannot be printed is still a ValidationError (or ConfigurationError), not a TypeError', async () => {
    const { repo, driver, table } = await users();
    const unprintable = Object.assign(Object.create(null), { n: 1n });
    driver.clear();
    for (const attempt of [
      () => repo.insert({ id: 1, username: unprintable, email: 'a' }),
      () => repo.upsert({ id: 1, username: 'a', email: unprintable }),
      () => repo.update(1, { email: unprintable }),
      () => repo.find({ where: { email: unprintable } }),
    ]) {
      await expect(attempt()).rejects.toBeInstanceOf(ValidationError);
    }
    expect(driver.statements).toEqual([]);
    expect(() =>
      defineMigration({
        name: unprintable,
        table,
        mappings: [rename({ field: 'username', from: 'a', to: 'b' })],
        defaultStage: 'off',
      }),
    ).toThrow(/migration/);
  });

  it('a string with a lone UTF-16 surrogate is rejected, never acknowledged and stored altered', async () => {
    const { ctx, repo } = await users();
    const outcome = await repo.insert({ id: 1, username: 'x\ud800y', email: 'e' }).then(
      () => 'acknowledged',
      (error: unknown) => error,
    );
    if (outcome === 'acknowledged') {
      expect((await repo.get(1))?.username, 'an acknowledged write is read back identically').toBe('x\ud800y');
    } else {
      expect(outcome).toBeInstanceOf(ValidationError);
      expect(await ctx.sql(`SELECT id FROM ${ctx.schema}.users`)).toEqual([]);
    }
  });
});
