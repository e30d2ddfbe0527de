import {
  changeType,
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

  /**
   * Runs `body` with the process in a zone east of UTC, where a wall clock read as local
   * time lands hours off. Node applies a change of `process.env.TZ` at once.
   */
  async function inTimeZone(zone: string, body: () => Promise<void>): Promise<void> {
    const previous = process.env.TZ;
    process.env.TZ = zone;
    try {
      expect(new Date('2024-06-01T12:00:00Z').getHours()).not.toBe(12);
      await body();
    } finally {
      if (previous === undefined) delete process.env.TZ;
      else process.env.TZ = previous;
    }
  }

  it('timestamp: a Date round-trips as its UTC wall clock whatever the process time zone, key included', async () => {
    const ctx = getCtx();
    await ctx.sql(`CREATE TABLE ${ctx.schema}.events (day timestamp PRIMARY KEY, at timestamp(3), note text)`);
    const events = defineTable({
      name: `${ctx.schema}.events`,
      key: 'day',
      entity: z.object({ day: z.date(), at: z.date().nullable(), note: z.string() }),
      columns: { day: { column: 'day', type: 'timestamp' }, at: { column: 'at', type: 'timestamp(3)' } },
    });
    const repo = createRepository(events, { driver: ctx.driver });
    const d1 = new Date('2024-01-01T00:00:00Z');
    const d2 = new Date('2024-01-02T00:00:00Z');
    const at = new Date('2024-06-01T12:00:00.123Z');
    await inTimeZone('Asia/Tokyo', async () => {
      await repo.insert({ day: d1, at, note: 'a' });
      await repo.insert({ day: d2, at: null, note: 'b' });
      expect(await ctx.sql(`SELECT day::text AS day, at::text AS at FROM ${ctx.schema}.events ORDER BY day`)).toEqual([
        { day: '2024-01-01 00:00:00', at: '2024-06-01 12:00:00.123' },
        { day: '2024-01-02 00:00:00', at: null },
      ]);
      expect(await repo.get(d1)).toEqual({ day: d1, at, note: 'a' });
      expect(await repo.getMany([d1, d2])).toEqual([
        { day: d1, at, note: 'a' },
        { day: d2, at: null, note: 'b' },
      ]);
      expect(await repo.find({ where: { at } })).toEqual([{ day: d1, at, note: 'a' }]);
      await repo.update(d2, { note: 'c' });
      expect((await repo.get(d2))?.note).toBe('c');
    });
  });

  it('timestamp to timestamptz: both sides read the same instant whatever the process time zone', async () => {
    const ctx = getCtx();
    await ctx.sql(`CREATE TABLE ${ctx.schema}.visits (id int PRIMARY KEY, seen timestamp, seen_tz timestamptz)`);
    const visits = defineTable({
      name: `${ctx.schema}.visits`,
      key: 'id',
      entity: z.object({ id: z.number().int(), seen: z.date() }),
    });
    const migration = defineMigration({
      name: 'visits-seen-tz',
      table: visits,
      mappings: [
        changeType({
          field: 'seen',
          from: { column: 'seen', type: 'timestamp' },
          to: { column: 'seen_tz', type: 'timestamptz' },
        }),
      ],
      defaultStage: 'off',
    });
    const flags = createMemoryFlags({ [migration.stageFlagKey]: 'shadow', [migration.percentFlagKey]: 100 });
    const metrics = createMemoryMetrics();
    const repo = createRepository(migration, { driver: ctx.driver, flags, metrics });
    const seen = [
      new Date('2024-06-01T12:00:00.123Z'),
      new Date('1900-01-01T00:00:00Z'),
      new Date('1969-12-31T23:59:59.999Z'),
    ];
    await inTimeZone('Asia/Tokyo', async () => {
      for (const [index, value] of seen.entries()) await repo.insert({ id: index + 1, seen: value });
      for (const stage of ['shadow', 'live'] as const) {
        flags.set(migration.stageFlagKey, stage);
        expect(await repo.getMany([1, 2, 3]), stage).toEqual(
          seen.map((value, index) => ({ id: index + 1, seen: value })),
        );
      }
    });
    expect(metrics.snapshot().migrations['visits-seen-tz']!.mismatches).toBe(0);
    expect(metrics.snapshot().migrations['visits-seen-tz']!.comparisons).toBeGreaterThanOrEqual(3);
  });

  it('date: a calendar day reads back as that day at UTC midnight, whatever the process time zone', async () => {
    const ctx = getCtx();
    await ctx.sql(`CREATE TABLE ${ctx.schema}.holidays (day date PRIMARY KEY, name text)`);
    const holidays = defineTable({
      name: `${ctx.schema}.holidays`,
      key: 'day',
      entity: z.object({ day: z.date(), name: z.string() }),
      columns: { day: { column: 'day', type: 'date' } },
    });
    const repo = createRepository(holidays, { driver: ctx.driver });
    const days = [new Date('2024-01-01T00:00:00Z'), new Date('2024-12-31T00:00:00Z')];
    for (const zone of ['Asia/Tokyo', 'America/New_York']) {
      await inTimeZone(zone, async () => {
        for (const day of days) await repo.upsert({ day, name: zone });
        expect(await ctx.sql(`SELECT day::text AS day FROM ${ctx.schema}.holidays ORDER BY day`)).toEqual([
          { day: '2024-01-01' },
          { day: '2024-12-31' },
        ]);
        expect(await repo.getMany(days), zone).toEqual(days.map((day) => ({ day, name: zone })));
      });
    }
  });
});
