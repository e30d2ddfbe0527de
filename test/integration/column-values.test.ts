import {
  createMemoryFlags,
  createMemoryMetrics,
  createRepository,
  defineMigration,
  defineTable,
  rename,
} from 'flagshift';
import { expect, it } from 'vitest';
import { z } from 'zod';
import { describeDrivers } from '../support/drivers.js';

describeDrivers('column values survive the round trip', (getCtx) => {
  it('bytea: a Uint8Array or Buffer is written as bytes and read back as the same bytes', async () => {
    const ctx = getCtx();
    await ctx.sql(
      `CREATE TABLE ${ctx.schema}.blobs (id int PRIMARY KEY, typed bytea, untyped bytea, old_data bytea, data bytea)`,
    );
    const blobs = defineTable({
      name: `${ctx.schema}.blobs`,
      key: 'id',
      entity: z.object({
        id: z.number().int(),
        typed: z.instanceof(Uint8Array),
        untyped: z.instanceof(Uint8Array).nullable(),
        data: z.instanceof(Uint8Array),
      }),
      columns: { typed: { column: 'typed', type: 'bytea' } },
    });
    const migration = defineMigration({
      name: 'blobs-data',
      table: blobs,
      mappings: [rename({ field: 'data', from: 'old_data', to: 'data', type: 'bytea' })],
      defaultStage: 'off',
    });
    const flags = createMemoryFlags({ [migration.stageFlagKey]: 'shadow', [migration.percentFlagKey]: 100 });
    const metrics = createMemoryMetrics();
    const repo = createRepository(migration, { driver: ctx.driver, flags, metrics });
    const bytes = new Uint8Array([0, 1, 127, 128, 255]);
    await repo.insert({ id: 1, typed: bytes, untyped: Buffer.from('\u0000json"{}'), data: new Uint8Array(0) });
    await repo.update(1, { data: bytes.subarray(1, 4) });
    expect(
      await ctx.sql(
        `SELECT encode(typed, 'hex') AS typed, encode(untyped, 'hex') AS untyped, encode(old_data, 'hex') AS old_data, encode(data, 'hex') AS data FROM ${ctx.schema}.blobs`,
      ),
    ).toEqual([{ typed: '00017f80ff', untyped: '006a736f6e227b7d', old_data: '017f80', data: '017f80' }]);
    const read = await repo.get(1);
    expect(read).toEqual({
      id: 1,
      typed: bytes,
      untyped: new Uint8Array(Buffer.from('\u0000json"{}')),
      data: new Uint8Array([1, 127, 128]),
    });
    for (const field of ['typed', 'untyped', 'data'] as const) expect(read?.[field]?.constructor).toBe(Uint8Array);
    expect(metrics.snapshot().migrations['blobs-data']!.mismatches).toBe(0);
    expect(await repo.find({ where: { typed: bytes } })).toHaveLength(1);
  });
});
