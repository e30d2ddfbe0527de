/**
 * `find` routes the migrations its query doesn't touch per entity, as `getMany` does: a
 * filter on one migration's field decides that migration's side for the whole query, not
 * the side every other migration is served from.
 */
import {
  createMemoryFlags,
  createMemoryMetrics,
  createRepository,
  defineMigration,
  defineTable,
  isInReadPercentage,
  rename,
} from 'flagshift';
import { expect, it } from 'vitest';
import { z } from 'zod';
import { type DriverContext, describeDrivers } from '../support/drivers.js';

const entity = z.object({ id: z.number().int(), username: z.string(), email: z.string(), team: z.string() });
const IDS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];

/** Migration `a` (username) in shadow, `b` (email) live at 50%; every row's email differs between sides. */
async function fixture(ctx: DriverContext) {
  await ctx.sql(
    `CREATE TABLE ${ctx.schema}.users (id int PRIMARY KEY, user_name text, username text, email_old text, email text, team text)`,
  );
  for (const id of IDS)
    await ctx.sql(`INSERT INTO ${ctx.schema}.users VALUES ($1, 'u', 'u', $2, $3, 't')`, [id, `OLD${id}`, `NEW${id}`]);
  const users = defineTable({ name: `${ctx.schema}.users`, key: 'id', entity });
  const a = defineMigration({
    name: 'a',
    table: users,
    mappings: [rename({ field: 'username', from: 'user_name', to: 'username', type: 'text' })],
    defaultStage: 'dualwrite',
  });
  const b = defineMigration({
    name: 'b',
    table: users,
    mappings: [rename({ field: 'email', from: 'email_old', to: 'email', type: 'text' })],
    defaultStage: 'dualwrite',
  });
  const flags = createMemoryFlags({
    [a.stageFlagKey]: 'shadow',
    [a.percentFlagKey]: 0,
    [b.stageFlagKey]: 'live',
    [b.percentFlagKey]: 50,
  });
  const metrics = createMemoryMetrics();
  const repo = createRepository([a, b], { driver: ctx.driver, flags, metrics });
  const expected = IDS.map((id) => (isInReadPercentage(50, b.stageFlagKey, String(id)) ? `NEW${id}` : `OLD${id}`));
  return { repo, metrics, expected };
}

describeDrivers('find: migrations the query does not touch', (getCtx) => {
  it('find on a migrated field: every other migration is served per entity by its bucket, like getMany', async () => {
    const { repo, expected } = await fixture(getCtx());
    // The ramp splits these ten entities, so a per-query route could not match.
    expect(new Set(expected.map((email) => email.slice(0, 3)))).toEqual(new Set(['NEW', 'OLD']));
    expect((await repo.getMany(IDS)).map((user) => user!.email)).toEqual(expected);
    expect((await repo.find({ where: { username: 'u' } })).map((user) => user.email)).toEqual(expected);
    expect((await repo.find({ where: { team: 't' } })).map((user) => user.email)).toEqual(expected);
    repo.close();
  });

  it('find on a migrated field: every other migration is compared and counted per entity', async () => {
    const { repo, metrics } = await fixture(getCtx());
    await repo.find({ where: { username: 'u' } });
    const snapshot = metrics.snapshot().migrations;
    // `b` is live: inside the ramp compared as live, outside as shadow; every row differs.
    expect(snapshot.b!.comparisons).toBe(IDS.length);
    expect(snapshot.b!.mismatches).toBe(IDS.length);
    expect(snapshot.b!.reads.entities).toBe(IDS.length);
    // `a`, which the query filters on, is compared once, by result set.
    expect(snapshot.a!.comparisons).toBe(1);
    expect(snapshot.a!.mismatches).toBe(0);
    repo.close();
  });
});
