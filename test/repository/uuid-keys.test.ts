import { createMemoryFlags, createRepository, defineMigration, defineTable, rename } from 'flagshift';
import { expect, it } from 'vitest';
import { z } from 'zod';
import { describeDrivers } from '../support/drivers.js';

const ids = Array.from({ length: 12 }, (_, i) => `a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a${String(i).padStart(2, '0')}`);

describeDrivers('uuid keys', (getCtx) => {
  it('live: a uuid key is one entity however it is spelled, for lookups and bucketing alike', async () => {
    const ctx = getCtx();
    await ctx.sql(`CREATE TABLE ${ctx.schema}.accounts (id uuid PRIMARY KEY, user_name text, username text)`);
    const accounts = defineTable({
      name: 'accounts',
      key: 'id',
      entity: z.object({ id: z.string(), username: z.string() }),
      columns: { id: { column: 'id', type: 'uuid' } },
    });
    const migration = defineMigration({
      name: 'accounts-username',
      table: accounts,
      mappings: [rename({ field: 'username', from: 'user_name', to: 'username', type: 'text' })],
      defaultStage: 'dualwrite',
    });
    const flags = createMemoryFlags({ [migration.stageFlagKey]: 'live', [migration.percentFlagKey]: 50 });
    const repo = createRepository(migration, { driver: ctx.driver, flags });
    for (const id of ids) await ctx.sql(`INSERT INTO ${ctx.schema}.accounts VALUES ($1, 'old', 'new')`, [id]);
    const upper = ids.map((id) => id.toUpperCase());
    const lower = await repo.getMany(ids);
    expect(lower).toHaveLength(ids.length);
    // Some entities are served new and some old: the spelling must not move any of them.
    expect(new Set(lower.map((entity) => entity.username))).toEqual(new Set(['old', 'new']));
    for (let i = 0; i < ids.length; i++) expect(await repo.get(upper[i]!)).toEqual(lower[i]);
    expect(await repo.getMany(upper)).toEqual(lower);
    expect(await repo.getMany([`{${ids[0]!.replaceAll('-', '').toUpperCase()}}`])).toEqual([lower[0]]);
  });
});
