import { createMemoryFlags, createRepository, defineMigration, defineTable, type Stage, split } from 'flagshift';
import { expect, it } from 'vitest';
import { z } from 'zod';
import { type DriverContext, describeDrivers } from '../support/drivers.js';

async function peopleFixture(ctx: DriverContext, stage: Stage) {
  await ctx.sql(
    `CREATE TABLE ${ctx.schema}.people (id int PRIMARY KEY, name text, first_name text, last_name text, nick text)`,
  );
  const people = defineTable({
    name: 'people',
    key: 'id',
    entity: z.object({
      id: z.number().int(),
      firstName: z.string(),
      lastName: z.string().optional(),
      nick: z.string().optional(),
    }),
  });
  const migration = defineMigration({
    name: 'people-name',
    table: people,
    mappings: [split({ from: 'name', into: { firstName: 'first_name', lastName: 'last_name' } })],
    defaultStage: 'dualwrite',
  });
  const flags = createMemoryFlags({ [migration.stageFlagKey]: stage, [migration.percentFlagKey]: 100 });
  const repo = createRepository(migration, { driver: ctx.driver, flags });
  const rows = () => ctx.sql(`SELECT id, name, first_name, last_name, nick FROM ${ctx.schema}.people ORDER BY id`);
  return { repo, rows };
}

describeDrivers('upsert of part of a split group', (getCtx) => {
  it.each(['dualwrite', 'live'] as const)(
    '%s: replacing a row keeps the group fields the entity omits, as update does',
    async (stage) => {
      const ctx = getCtx();
      const { repo, rows } = await peopleFixture(ctx, stage);
      await repo.insert({ id: 1, firstName: 'Mary', lastName: 'Evans', nick: 'M' });
      await repo.upsert({ id: 1, firstName: 'Maria' });
      await repo.upsert({ id: 2, firstName: 'Ann' });
      expect(await rows()).toEqual([
        { id: 1, name: 'Maria Evans', first_name: 'Maria', last_name: 'Evans', nick: 'M' },
        { id: 2, name: 'Ann', first_name: 'Ann', last_name: null, nick: null },
      ]);
      expect(await repo.get(1)).toEqual({ id: 1, firstName: 'Maria', lastName: 'Evans', nick: 'M' });
    },
  );
});
