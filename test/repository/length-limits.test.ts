import {
  changeType,
  createMemoryFlags,
  createRepository,
  DriverError,
  defineMigration,
  defineTable,
  ErrorCode,
} from 'flagshift';
import { expect, it } from 'vitest';
import { z } from 'zod';
import { describeDrivers } from '../support/drivers.js';

describeDrivers('values longer than a column allows', (getCtx) => {
  it('a value too long for a varchar(n) or char(n) column fails with 22001 and writes nothing', async () => {
    const ctx = getCtx();
    await ctx.sql(`CREATE TABLE ${ctx.schema}.codes (id int PRIMARY KEY, code varchar(3), grade char(2))`);
    const codes = defineTable({
      name: 'codes',
      key: 'id',
      entity: z.object({ id: z.number().int(), code: z.string(), grade: z.string() }),
      columns: { code: { column: 'code', type: 'varchar(3)' }, grade: { column: 'grade', type: 'char(2)' } },
    });
    const repo = createRepository(codes, { driver: ctx.driver });
    const tooLong = { code: ErrorCode.Driver, sqlState: '22001' };
    await expect(repo.insert({ id: 1, code: 'ABCDEFG', grade: 'A' })).rejects.toMatchObject(tooLong);
    await expect(repo.insert({ id: 1, code: 'ABC', grade: 'AAA' })).rejects.toBeInstanceOf(DriverError);
    await repo.insert({ id: 1, code: 'ABC', grade: 'A' });
    await expect(repo.update(1, { code: 'ABCD' })).rejects.toMatchObject(tooLong);
    await expect(repo.upsert({ id: 1, code: 'XYZW', grade: 'B' })).rejects.toMatchObject(tooLong);
    expect(await repo.get(1)).toEqual({ id: 1, code: 'ABC', grade: 'A ' });
    expect(await repo.find({ where: { code: 'ABCD' } })).toEqual([]);
  });

  it('dualwrite: a value too long for the new varchar(n) column fails the write on both sides', async () => {
    const ctx = getCtx();
    await ctx.sql(`CREATE TABLE ${ctx.schema}.tags (id int PRIMARY KEY, a text, b varchar(5))`);
    const tags = defineTable({ name: 'tags', key: 'id', entity: z.object({ id: z.number().int(), v: z.string() }) });
    const migration = defineMigration({
      name: 'tags-v',
      table: tags,
      mappings: [
        changeType({ field: 'v', from: { column: 'a', type: 'text' }, to: { column: 'b', type: 'varchar(5)' } }),
      ],
      defaultStage: 'dualwrite',
    });
    const flags = createMemoryFlags({ [migration.stageFlagKey]: 'dualwrite', [migration.percentFlagKey]: 0 });
    const repo = createRepository(migration, { driver: ctx.driver, flags });
    await expect(repo.insert({ id: 1, v: 'abcdef' })).rejects.toMatchObject({ sqlState: '22001' });
    await repo.insert({ id: 2, v: 'abc' });
    await expect(repo.update(2, { v: 'abcdef' })).rejects.toMatchObject({ sqlState: '22001' });
    expect(await ctx.sql(`SELECT id, a, b FROM ${ctx.schema}.tags ORDER BY id`)).toEqual([
      { id: 2, a: 'abc', b: 'abc' },
    ]);
  });
});
