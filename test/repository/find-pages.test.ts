/**
 * Keyset pages, counts and projections: each routed and compared as `find` is.
 */
import {
  createMemoryFlags,
  createMemoryMetrics,
  createRepository,
  defineMigration,
  defineTable,
  rename,
  type Stage,
  ValidationError,
} from 'flagshift';
import { expect, it } from 'vitest';
import { z } from 'zod';
import { type DriverContext, describeDrivers } from '../support/drivers.js';
import { driverAsRole, dropRole } from '../support/fixtures.js';

const entity = z.object({
  id: z.number().int(),
  team: z.string(),
  rank: z.number().int().nullable(),
  username: z.string(),
  email: z.string(),
});
type Member = z.infer<typeof entity>;

const MEMBERS: Member[] = Array.from({ length: 11 }, (_, i) => ({
  id: i + 1,
  team: i % 3 === 0 ? 'red' : 'blue',
  rank: i % 4 === 0 ? null : (i * 7) % 5,
  username: `user${String(i).padStart(2, '0')}`,
  email: `m${i}@x`,
}));

/** `username` renamed from `user_name`, `email` from `email_old`; both migrations in `stage`. */
async function fixture(ctx: DriverContext, stage: Stage, percent = 0) {
  await ctx.sql(
    `CREATE TABLE ${ctx.schema}.members (id int PRIMARY KEY, team text, rank int, user_name text, username text, email_old text, email text)`,
  );
  const members = defineTable({ name: 'members', key: 'id', entity });
  const names = defineMigration({
    name: 'names',
    table: members,
    mappings: [rename({ field: 'username', from: 'user_name', to: 'username', type: 'text' })],
    defaultStage: 'off',
  });
  const emails = defineMigration({
    name: 'emails',
    table: members,
    mappings: [rename({ field: 'email', from: 'email_old', to: 'email', type: 'text' })],
    defaultStage: 'off',
  });
  const flags = createMemoryFlags({ [names.stageFlagKey]: 'dualwrite', [emails.stageFlagKey]: 'dualwrite' });
  const metrics = createMemoryMetrics();
  const repo = createRepository([names, emails], { driver: ctx.driver, flags, metrics });
  for (const member of MEMBERS) await repo.insert(member);
  for (const m of [names, emails]) {
    flags.set(m.stageFlagKey, stage);
    flags.set(m.percentFlagKey, percent);
  }
  return { repo, metrics, names, emails };
}

describeDrivers('pages, counts and projections', (getCtx) => {
  for (const [stage, percent] of [
    ['off', 0],
    ['shadow', 0],
    ['live', 100],
  ] as const) {
    it(`${stage}: pages in a nullable, descending order and on a migrated field cover the rows once, in order`, async () => {
      const { repo, metrics } = await fixture(getCtx(), stage, percent);
      for (const orderBy of [
        [{ field: 'rank', direction: 'desc' }],
        [
          { field: 'rank', direction: 'asc' },
          { field: 'team', direction: 'desc' },
        ],
        [{ field: 'username', direction: 'desc' }],
      ] as const) {
        const all = await repo.find({ where: { id: { gt: 1 } }, orderBy });
        const paged: Member[] = [];
        let after: string | undefined;
        for (let n = 0; n < 10; n++) {
          const page = await repo.findPage({
            where: { id: { gt: 1 } },
            orderBy,
            limit: 3,
            ...(after === undefined ? {} : { after }),
          });
          paged.push(...page.items);
          after = page.next;
          if (after === undefined) break;
        }
        expect(paged).toEqual(all);
        expect(all).toHaveLength(10);
      }
      expect(metrics.snapshot().migrations.names?.mismatches ?? 0).toBe(0);
    });
  }

  it('a page after a cursor is stable while rows are inserted and deleted around it', async () => {
    const ctx = getCtx();
    const { repo } = await fixture(ctx, 'off');
    const first = await repo.findPage({ orderBy: 'rank', limit: 4 });
    const seen = first.items.map((m) => m.id);
    // Deleted: a row of the first page and one after it; inserted: rows before and after the cursor.
    await repo.delete(seen[1]!);
    const later = (await repo.find({ orderBy: 'rank', after: first.next! })).map((m) => m.id);
    await repo.delete(later[0]!);
    await repo.insert({ id: 50, team: 'red', rank: -1, username: 'early', email: 'e@x' });
    await repo.insert({ id: 51, team: 'red', rank: 99, username: 'late', email: 'l@x' });
    const rest: number[] = [];
    for (let after = first.next; after !== undefined; ) {
      const page = await repo.findPage({ orderBy: 'rank', limit: 4, after });
      rest.push(...page.items.map((m) => m.id));
      after = page.next;
    }
    expect(rest).toEqual([...later.slice(1, -3), 51, ...later.slice(-3)]);
    expect(rest.filter((id) => seen.includes(id))).toEqual([]);
  });

  it('a cursor of another order, or not a cursor, is a validation error; so is a page without a size', async () => {
    const { repo } = await fixture(getCtx(), 'off');
    const { next } = await repo.findPage({ orderBy: 'rank', limit: 2 });
    await expect(repo.findPage({ orderBy: 'team', limit: 2, after: next! })).rejects.toThrow(
      /after: the cursor was made for the order rank:ASC, not this query's/,
    );
    await expect(repo.find({ after: 'garbage' })).rejects.toBeInstanceOf(ValidationError);
    await expect(repo.findPage({ limit: 0 })).rejects.toThrow(/limit, the page size, must be a positive integer/);
    await expect(repo.count({ rank: { gt: 'x' } } as never)).rejects.toThrow(/^count in members: where: "rank": gt:/);
  });

  it('count: plain and migrated filters; compared with the other side, a difference is a mismatch', async () => {
    const ctx = getCtx();
    const { repo, metrics } = await fixture(ctx, 'shadow');
    expect(await repo.count()).toBe(11);
    expect(await repo.count({ team: 'red' })).toBe(4);
    expect(await repo.count({ rank: { null: true } })).toBe(3);
    expect(await repo.count({ username: { startsWith: 'user0' }, team: { not: 'red' } })).toBe(6);
    expect(metrics.snapshot().migrations.names).toMatchObject({ comparisons: 1, mismatches: 0 });
    // The new column drifts from the old one: the old side serves, and the count differs.
    await ctx.sql(`UPDATE ${ctx.schema}.members SET username = 'drift' WHERE id = 2`);
    expect(await repo.count({ username: { startsWith: 'user0' } })).toBe(10);
    const names = metrics.snapshot().migrations.names!;
    expect(names).toMatchObject({ comparisons: 2, mismatches: 1 });
    expect(names.recentMismatches[0]!.diffs).toEqual([{ field: '$count', kind: 'value', old: 10, new: 9 }]);
  });

  it('select: fetches only the columns of the selected fields, on both sides when comparing', async () => {
    const ctx = getCtx();
    const base = await fixture(ctx, 'shadow');
    // This role may read the key, team and both sides of username only.
    const { driver, role } = await driverAsRole(ctx, [
      `GRANT SELECT (id, team, user_name, username) ON ${ctx.schema}.members TO $role`,
    ]);
    try {
      const flags = createMemoryFlags({ [base.names.stageFlagKey]: 'shadow', [base.emails.stageFlagKey]: 'shadow' });
      const metrics = createMemoryMetrics();
      const repo = createRepository([base.names, base.emails], { driver, flags, metrics });
      const rows = await repo.find({ where: { team: 'red' }, select: ['username', 'team'], orderBy: 'id' });
      expect(rows).toEqual(
        MEMBERS.filter((m) => m.team === 'red').map((m) => ({ username: m.username, team: m.team })),
      );
      const filtered = await repo.find({ where: { username: { in: ['user00', 'user03'] } }, select: ['id'] });
      expect(filtered).toEqual([{ id: 1 }, { id: 4 }]);
      const page = await repo.findPage({ orderBy: 'username', limit: 2, select: ['username'] });
      expect(page.items).toEqual([{ username: 'user00' }, { username: 'user01' }]);
      expect(
        (await repo.findPage({ orderBy: 'username', limit: 2, select: ['username'], after: page.next! })).items,
      ).toEqual([{ username: 'user02' }, { username: 'user03' }]);
      const snapshot = metrics.snapshot().migrations;
      expect(snapshot.names!.comparisons).toBeGreaterThan(0);
      expect(snapshot.names!.mismatches).toBe(0);
      expect(snapshot.emails?.reads.total ?? 0).toBe(0);
      // Without the projection the email columns are needed, which this role can't read.
      await expect(repo.find({ where: { team: 'red' } })).rejects.toThrow(/permission denied/);
    } finally {
      await dropRole(ctx, role);
    }
  });

  it('select: unknown fields and an empty list are validation errors', async () => {
    const { repo } = await fixture(getCtx(), 'off');
    await expect(repo.find({ select: ['nope' as 'id'] })).rejects.toThrow(/select: "nope" is not a field/);
    await expect(repo.find({ select: [] as 'id'[] })).rejects.toThrow(/select must be a non-empty array/);
  });

  it('dates, bigints and byte keys: ranges compare as their types do, and cursors carry them', async () => {
    const ctx = getCtx();
    await ctx.sql(
      `CREATE TABLE ${ctx.schema}.blobs (id bytea PRIMARY KEY, at timestamptz NOT NULL, size bigint NOT NULL)`,
    );
    const blobs = defineTable({
      name: 'blobs',
      key: 'id',
      entity: z.object({ id: z.instanceof(Uint8Array), at: z.date(), size: z.bigint() }),
      columns: { id: { type: 'bytea' }, at: { type: 'timestamptz' }, size: { type: 'bigint' } },
    });
    const repo = createRepository(blobs, { driver: ctx.driver });
    const day = (n: number) => new Date(Date.UTC(2026, 0, n));
    for (let n = 1; n <= 6; n++) {
      await repo.insert({ id: new Uint8Array([n, 255 - n]), at: day(n), size: 2n ** 40n * BigInt(n % 3) });
    }
    const sizes = await repo.find({
      where: { size: { gte: 2n ** 40n, lt: 2n ** 41n } },
      select: ['at'],
      orderBy: 'at',
    });
    expect(sizes).toEqual([{ at: day(1) }, { at: day(4) }]);
    expect(await repo.count({ at: { gt: day(2), lte: day(5) } })).toBe(3);
    const walked: Date[] = [];
    for (let after: string | undefined, n = 0; n === 0 || after !== undefined; n++) {
      const page = await repo.findPage({
        orderBy: [{ field: 'size', direction: 'desc' }],
        limit: 4,
        ...(after === undefined ? {} : { after }),
      });
      walked.push(...page.items.map((blob) => blob.at));
      after = page.next;
    }
    // By size descending, then by the byte key: [n, 255 - n] orders by n.
    expect(walked.map((at) => at.getUTCDate())).toEqual([2, 5, 1, 4, 3, 6]);
  });

  it('timestamps with microseconds: pages in either direction cover rows sharing a millisecond once, in order', async () => {
    const ctx = getCtx();
    await ctx.sql(`CREATE TABLE ${ctx.schema}.events (id int PRIMARY KEY, at timestamptz NOT NULL)`);
    // Three rows inside one millisecond, out of key order, and one a second later.
    await ctx.sql(
      `INSERT INTO ${ctx.schema}.events VALUES
         (1, '2026-01-01 00:00:00.000300+00'), (2, '2026-01-01 00:00:00.000100+00'),
         (3, '2026-01-01 00:00:00.000200+00'), (4, '2026-01-01 00:00:01+00')`,
    );
    const events = defineTable({
      name: 'events',
      key: 'id',
      entity: z.object({ id: z.number().int(), at: z.date() }),
    });
    const repo = createRepository(events, { driver: ctx.driver });
    for (const [direction, expected] of [
      ['asc', [2, 3, 1, 4]],
      ['desc', [4, 1, 3, 2]],
    ] as const) {
      const walked: number[] = [];
      let after: string | undefined;
      for (let page = 0; page < 6; page++) {
        const found = await repo.findPage({
          orderBy: [{ field: 'at', direction }],
          limit: 1,
          ...(after === undefined ? {} : { after }),
        });
        walked.push(...found.items.map((event) => event.id));
        after = found.next;
        if (after === undefined) break;
      }
      expect(walked).toEqual(expected);
    }
  });
});
