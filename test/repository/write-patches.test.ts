import { createRepository, defineTable } from 'flagshift';
import { expect, it } from 'vitest';
import { z } from 'zod';
import { describeDrivers } from '../support/drivers.js';
import { usersFixture } from '../support/fixtures.js';

describeDrivers('write patches', (getCtx) => {
  it('dualwrite: a field set to undefined in an update is absent and keeps its stored value', async () => {
    const ctx = getCtx();
    const { repo } = await usersFixture(ctx, { stage: 'dualwrite' });
    await repo.insert({ id: 1, username: 'ada', email: 'a@x' });
    expect(await repo.update(1, { username: undefined, email: undefined })).toBe(true);
    expect(await repo.update(2, { username: undefined })).toBe(false);
    expect(await repo.update(1, { username: undefined, email: 'b@x' })).toBe(true);
    expect(await ctx.sql(`SELECT user_name, username, email FROM ${ctx.schema}.users`)).toEqual([
      { user_name: 'ada', username: 'ada', email: 'b@x' },
    ]);
    expect(await repo.get(1)).toEqual({ id: 1, username: 'ada', email: 'b@x' });
  });

  it('a field set to undefined in an upsert keeps its stored value, in an insert takes the column default', async () => {
    const ctx = getCtx();
    await ctx.sql(`CREATE TABLE ${ctx.schema}.notes (id int PRIMARY KEY, body text, tag text DEFAULT 'none')`);
    const notes = defineTable({
      name: 'notes',
      key: 'id',
      entity: z.object({ id: z.number().int(), body: z.string(), tag: z.string().nullable().optional() }),
    });
    const repo = createRepository(notes, { driver: ctx.driver });
    await repo.insert({ id: 1, body: 'a', tag: undefined });
    await repo.insert({ id: 2, body: 'b', tag: 'x' });
    await repo.upsert({ id: 2, body: 'b2', tag: undefined });
    expect(await ctx.sql(`SELECT id, body, tag FROM ${ctx.schema}.notes ORDER BY id`)).toEqual([
      { id: 1, body: 'a', tag: 'none' },
      { id: 2, body: 'b2', tag: 'x' },
    ]);
  });
});
