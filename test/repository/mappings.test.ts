import {
  changeType,
  createMemoryFlags,
  createMemoryMetrics,
  createRepository,
  DriverError,
  defineMigration,
  defineTable,
  merge,
  moveColumn,
  rename,
  type Stage,
  split,
} from 'flagshift';
import { expect, it } from 'vitest';
import { z } from 'zod';
import { describeDrivers } from '../support/drivers.js';

describeDrivers('mapping kinds', (getCtx) => {
  function flagsFor(migration: { stageFlagKey: string; percentFlagKey: string }, stage: Stage) {
    const flags = createMemoryFlags({ [migration.stageFlagKey]: stage, [migration.percentFlagKey]: 100 });
    return { flags, setStage: (next: Stage) => flags.set(migration.stageFlagKey, next) };
  }

  /** `people(id, name, first_name, last_name)` and the split of `name` into the two parts. */
  async function peopleSplit(ctx: ReturnType<typeof getCtx>, name: string) {
    await ctx.sql(`CREATE TABLE ${ctx.schema}.people (id int PRIMARY KEY, name text, first_name text, last_name text)`);
    const people = defineTable({
      name: `${ctx.schema}.people`,
      key: 'id',
      entity: z.object({ id: z.number().int(), firstName: z.string().nullable(), lastName: z.string().nullable() }),
    });
    return defineMigration({
      name,
      table: people,
      mappings: [split({ from: 'name', into: { firstName: 'first_name', lastName: 'last_name' } })],
      defaultStage: 'off',
    });
  }

  it('split: dual writes join the parts into the old column; a partial update keeps the other part', async () => {
    const ctx = getCtx();
    const migration = await peopleSplit(ctx, 'people-split-name');
    const { flags, setStage } = flagsFor(migration, 'off');
    const metrics = createMemoryMetrics();
    const repo = createRepository(migration, { driver: ctx.driver, flags, metrics });
    await repo.insert({ id: 1, firstName: 'Ada', lastName: 'Lovelace' });
    expect(await repo.get(1)).toEqual({ id: 1, firstName: 'Ada', lastName: 'Lovelace' });
    setStage('dualwrite');
    await repo.insert({ id: 2, firstName: 'Grace', lastName: 'Hopper' });
    await repo.update(1, { lastName: 'King' });
    await repo.insert({ id: 3, firstName: 'Plato', lastName: null });
    const rows = await ctx.sql(`SELECT id, name, first_name, last_name FROM ${ctx.schema}.people ORDER BY id`);
    expect(rows).toEqual([
      { id: 1, name: 'Ada King', first_name: 'Ada', last_name: 'King' },
      { id: 2, name: 'Grace Hopper', first_name: 'Grace', last_name: 'Hopper' },
      { id: 3, name: 'Plato', first_name: 'Plato', last_name: null },
    ]);
    setStage('shadow');
    expect(await repo.getMany([1, 2, 3])).toHaveLength(3);
    expect(await repo.find({ where: { firstName: 'Grace', lastName: 'Hopper' } })).toEqual([
      { id: 2, firstName: 'Grace', lastName: 'Hopper' },
    ]);
    const snapshot = metrics.snapshot().migrations['people-split-name']!;
    expect(snapshot.comparisons).toBe(4);
    expect(snapshot.mismatches).toBe(0);
    setStage('complete');
    await repo.update(2, { firstName: 'Amazing Grace' });
    expect(await ctx.sql(`SELECT name, first_name FROM ${ctx.schema}.people WHERE id = 2`)).toEqual([
      { name: 'Grace Hopper', first_name: 'Amazing Grace' },
    ]);
    await expect(repo.find({ where: { firstName: 'Ada' } })).rejects.toThrow(/filter on all of them/);
    await expect(repo.find({ orderBy: 'firstName' })).rejects.toThrow(/can't be ordered by/);
  });

  it('split: a partial update in live keeps the old column whole for a row the backfill has not reached', async () => {
    const ctx = getCtx();
    const migration = await peopleSplit(ctx, 'people-split-early-live');
    // Row 1 predates the migration and was never backfilled; row 2 was, and its new side
    // (authoritative in live) has a last name the old column doesn't.
    await ctx.sql(
      `INSERT INTO ${ctx.schema}.people (id, name, first_name, last_name) VALUES (1, 'Ada Lovelace', NULL, NULL), (2, 'Grace Hopper', 'Grace', 'Murray')`,
    );
    const { flags } = flagsFor(migration, 'live');
    const repo = createRepository(migration, { driver: ctx.driver, flags });
    await repo.update(1, { firstName: 'Augusta' });
    await repo.update(2, { firstName: 'Amazing Grace' });
    expect(await ctx.sql(`SELECT id, name, first_name, last_name FROM ${ctx.schema}.people ORDER BY id`)).toEqual([
      { id: 1, name: 'Augusta Lovelace', first_name: 'Augusta', last_name: 'Lovelace' },
      { id: 2, name: 'Amazing Grace Murray', first_name: 'Amazing Grace', last_name: 'Murray' },
    ]);
    expect(await repo.get(1)).toEqual({ id: 1, firstName: 'Augusta', lastName: 'Lovelace' });
  });

  it('merge: the joined value goes to the new column and the parts to the old ones', async () => {
    const ctx = getCtx();
    await ctx.sql(
      `CREATE TABLE ${ctx.schema}.people (id int PRIMARY KEY, first_name text, last_name text, full_name text)`,
    );
    const people = defineTable({
      name: `${ctx.schema}.people`,
      key: 'id',
      entity: z.object({ id: z.number(), fullName: z.string() }),
    });
    const migration = defineMigration({
      name: 'people-merge-name',
      table: people,
      mappings: [merge({ from: ['first_name', 'last_name'], into: { field: 'fullName', column: 'full_name' } })],
      defaultStage: 'off',
    });
    const { flags } = flagsFor(migration, 'dualwrite');
    const repo = createRepository(migration, { driver: ctx.driver, flags });
    await repo.insert({ id: 1, fullName: 'Alan Mathison Turing' });
    expect(await ctx.sql(`SELECT first_name, last_name, full_name FROM ${ctx.schema}.people`)).toEqual([
      { first_name: 'Alan', last_name: 'Mathison Turing', full_name: 'Alan Mathison Turing' },
    ]);
    expect(await repo.get(1)).toEqual({ id: 1, fullName: 'Alan Mathison Turing' });
  });

  it('changeType: int to bigint and text to jsonb come out as the same logical values on both sides', async () => {
    const ctx = getCtx();
    await ctx.sql(
      `CREATE TABLE ${ctx.schema}.stats (id int PRIMARY KEY, visits int, visits_big bigint, prefs text, prefs_json jsonb)`,
    );
    const stats = defineTable({
      name: `${ctx.schema}.stats`,
      key: 'id',
      entity: z.object({ id: z.number(), visits: z.number().int(), prefs: z.record(z.string(), z.unknown()) }),
    });
    const migration = defineMigration({
      name: 'stats-types',
      table: stats,
      mappings: [
        changeType({
          field: 'visits',
          from: { column: 'visits', type: 'integer' },
          to: { column: 'visits_big', type: 'bigint' },
        }),
        changeType({
          field: 'prefs',
          from: { column: 'prefs', type: 'text' },
          to: { column: 'prefs_json', type: 'jsonb' },
        }),
      ],
      defaultStage: 'off',
    });
    const { flags, setStage } = flagsFor(migration, 'dualwrite');
    const metrics = createMemoryMetrics();
    const repo = createRepository(migration, { driver: ctx.driver, flags, metrics });
    const prefs = { theme: 'dark', tags: ['a', 'b'], nested: { n: 1 } };
    await repo.insert({ id: 1, visits: 41, prefs });
    await repo.update(1, { visits: 42 });
    const [row] = await ctx.sql<Record<string, unknown>>(
      `SELECT visits, visits_big::text AS big, prefs, prefs_json FROM ${ctx.schema}.stats`,
    );
    expect(row).toEqual({ visits: 42, big: '42', prefs: JSON.stringify(prefs), prefs_json: prefs });
    for (const stage of ['shadow', 'live', 'complete'] as const) {
      setStage(stage);
      expect(await repo.get(1), stage).toEqual({ id: 1, visits: 42, prefs });
    }
    expect(metrics.snapshot().migrations['stats-types']!.mismatches).toBe(0);
    expect(metrics.snapshot().migrations['stats-types']!.comparisons).toBe(2);
  });

  it('cross-table move: dual writes go to both tables in one transaction; reads move to the new table', async () => {
    const ctx = getCtx();
    const s = ctx.schema;
    await ctx.sql(`CREATE TABLE ${s}.users (id int PRIMARY KEY, email text NOT NULL, bio text)`);
    await ctx.sql(
      `CREATE TABLE ${s}.user_profiles (user_id int PRIMARY KEY REFERENCES ${s}.users (id), bio text CHECK (length(bio) < 100))`,
    );
    const users = defineTable({
      name: `${s}.users`,
      key: 'id',
      entity: z.object({ id: z.number(), email: z.string(), bio: z.string().nullable() }),
    });
    const migration = defineMigration({
      name: 'users-move-bio',
      table: users,
      mappings: [
        moveColumn({ field: 'bio', from: 'bio', to: { table: `${s}.user_profiles`, column: 'bio', key: ['user_id'] } }),
      ],
      defaultStage: 'off',
    });
    const { flags, setStage } = flagsFor(migration, 'off');
    const metrics = createMemoryMetrics();
    const repo = createRepository(migration, { driver: ctx.driver, flags, metrics });
    await repo.insert({ id: 1, email: 'a@x', bio: 'first' });
    setStage('dualwrite');
    await repo.insert({ id: 2, email: 'b@x', bio: 'second' });
    await repo.update(2, { bio: 'second, edited' });
    // The side table rejects the value: the main-table insert is rolled back with it.
    const error = await repo.insert({ id: 3, email: 'c@x', bio: 'x'.repeat(200) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DriverError);
    expect((error as DriverError).sqlState).toBe('23514');
    expect(await ctx.sql(`SELECT id FROM ${s}.users ORDER BY id`)).toEqual([{ id: 1 }, { id: 2 }]);
    expect(await ctx.sql(`SELECT user_id, bio FROM ${s}.user_profiles ORDER BY user_id`)).toEqual([
      { user_id: 2, bio: 'second, edited' },
    ]);

    setStage('shadow');
    expect(await repo.get(1)).toEqual({ id: 1, email: 'a@x', bio: 'first' });
    expect(await repo.get(2)).toEqual({ id: 2, email: 'b@x', bio: 'second, edited' });
    const snapshot = metrics.snapshot().migrations['users-move-bio']!;
    expect(snapshot.mismatches).toBe(1);
    expect(snapshot.recentMismatches[0]?.diffs.map((d) => [d.field, d.kind])).toEqual([['bio', 'missing-new']]);

    await ctx.sql(`INSERT INTO ${s}.user_profiles (user_id, bio) SELECT id, bio FROM ${s}.users WHERE id = 1`);
    setStage('complete');
    await repo.update(1, { bio: 'only new' });
    expect(await repo.get(1)).toEqual({ id: 1, email: 'a@x', bio: 'only new' });
    expect(await ctx.sql(`SELECT bio FROM ${s}.users WHERE id = 1`)).toEqual([{ bio: 'first' }]);
    expect(await repo.find({ where: { bio: 'only new' } })).toEqual([{ id: 1, email: 'a@x', bio: 'only new' }]);
    expect(await repo.update(99, { bio: 'nobody' })).toBe(false);
    expect(await ctx.sql(`SELECT count(*)::int AS n FROM ${s}.user_profiles WHERE user_id = 99`)).toEqual([{ n: 0 }]);
    expect(await repo.delete(1)).toBe(true);
    expect(await ctx.sql(`SELECT count(*)::int AS n FROM ${s}.user_profiles`)).toEqual([{ n: 1 }]);
    // Back at off, a delete still removes the side row (its foreign key would block it otherwise).
    setStage('off');
    expect(await repo.delete(2)).toBe(true);
    expect(await ctx.sql(`SELECT count(*)::int AS n FROM ${s}.user_profiles`)).toEqual([{ n: 0 }]);
  });

  it('composite keys: get, getMany, update and delete address one entity by all key fields', async () => {
    const ctx = getCtx();
    await ctx.sql(
      `CREATE TABLE ${ctx.schema}.memberships (org_id int, user_id bigint, role_name text, role text, PRIMARY KEY (org_id, user_id))`,
    );
    const memberships = defineTable({
      name: `${ctx.schema}.memberships`,
      key: ['org_id', 'user_id'],
      entity: z.object({ org_id: z.number(), user_id: z.number(), role: z.string() }),
    });
    const migration = defineMigration({
      name: 'memberships-role',
      table: memberships,
      mappings: [rename({ field: 'role', from: 'role_name', to: 'role' })],
      defaultStage: 'off',
    });
    const { flags } = flagsFor(migration, 'dualwrite');
    const repo = createRepository(migration, { driver: ctx.driver, flags });
    await repo.insert({ org_id: 1, user_id: 10, role: 'admin' });
    await repo.insert({ org_id: 1, user_id: 11, role: 'member' });
    await repo.insert({ org_id: 2, user_id: 10, role: 'owner' });
    expect(await repo.get({ org_id: 2, user_id: 10 })).toEqual({ org_id: 2, user_id: 10, role: 'owner' });
    expect(
      await repo.getMany([
        { org_id: 1, user_id: 11 },
        { org_id: 9, user_id: 9 },
        { org_id: 1, user_id: 10 },
      ]),
    ).toEqual([
      { org_id: 1, user_id: 11, role: 'member' },
      { org_id: 1, user_id: 10, role: 'admin' },
    ]);
    expect(await repo.update({ org_id: 1, user_id: 10 }, { role: 'viewer' })).toBe(true);
    expect(await repo.delete({ org_id: 1, user_id: 11 })).toBe(true);
    expect(await repo.find({ where: { org_id: 1 } })).toEqual([{ org_id: 1, user_id: 10, role: 'viewer' }]);
    await expect(repo.get(1 as never)).rejects.toThrow(/expected an object with "org_id", "user_id"/);
  });
});

describeDrivers(
  'concurrent dual writes',
  (getCtx) => {
    it('dualwrite: eight concurrent writers under a flapping flag never leave old and new apart', async () => {
      const ctx = getCtx();
      await ctx.sql(`CREATE TABLE ${ctx.schema}.users (id int PRIMARY KEY, user_name text, username text, email text)`);
      await ctx.sql(
        `INSERT INTO ${ctx.schema}.users SELECT g, 'u' || g, 'u' || g, g || '@x' FROM generate_series(1, 20) g`,
      );
      const users = defineTable({
        name: `${ctx.schema}.users`,
        key: 'id',
        entity: z.object({ id: z.number(), username: z.string(), email: z.string() }),
      });
      const migration = defineMigration({
        name: 'users-username',
        table: users,
        mappings: [rename({ field: 'username', from: 'user_name', to: 'username' })],
        defaultStage: 'dualwrite',
      });
      const flags = createMemoryFlags({ [migration.stageFlagKey]: 'dualwrite', [migration.percentFlagKey]: 50 });
      const repo = createRepository(migration, { driver: ctx.driver, flags });
      const stages: Stage[] = ['dualwrite', 'shadow', 'live', 'rampdown'];
      let acknowledged = 0;
      const writer = async (worker: number) => {
        for (let step = 0; step < 40; step++) {
          const id = 1 + ((worker * 7 + step * 3) % 20);
          const value = `w${worker}-s${step}`;
          if (step % 10 === 0) flags.set(migration.stageFlagKey, stages[(worker + step) % stages.length]!);
          if (step % 3 === 0) await repo.upsert({ id, username: value, email: `${id}@x` });
          else await repo.update(id, { username: value });
          acknowledged++;
          await repo.get(id);
        }
      };
      await Promise.all(Array.from({ length: 8 }, (_, worker) => writer(worker)));
      expect(acknowledged).toBe(320);
      const apart = await ctx.sql(
        `SELECT id, user_name, username FROM ${ctx.schema}.users WHERE user_name IS DISTINCT FROM username`,
      );
      expect(apart).toEqual([]);
    });
  },
  { kinds: ['pg'] },
);

describeDrivers('comparison options', (getCtx) => {
  it('sampleOneIn compares one read in N; normalize and ignore rules decide what counts as a mismatch', async () => {
    const ctx = getCtx();
    await ctx.sql(
      `CREATE TABLE ${ctx.schema}.users (id int PRIMARY KEY, user_name text, username text, email text, email_new text)`,
    );
    await ctx.sql(
      `INSERT INTO ${ctx.schema}.users SELECT g, 'u' || g, 'U' || g, g || '@x', 'other' FROM generate_series(1, 8) g`,
    );
    const users = defineTable({
      name: `${ctx.schema}.users`,
      key: 'id',
      entity: z.object({ id: z.number(), username: z.string(), email: z.string() }),
    });
    const migration = defineMigration({
      name: 'users-sampled',
      table: users,
      mappings: [
        rename({ field: 'username', from: 'user_name', to: 'username' }),
        rename({ field: 'email', from: 'email', to: 'email_new' }),
      ],
      defaultStage: 'shadow',
      compare: {
        sampleOneIn: 4,
        normalize: (field, value) => (field === 'username' && typeof value === 'string' ? value.toLowerCase() : value),
        ignore: ['email'],
      },
    });
    const flags = createMemoryFlags({ [migration.stageFlagKey]: 'shadow' });
    const metrics = createMemoryMetrics();
    const repo = createRepository(migration, { driver: ctx.driver, flags, metrics });
    for (let id = 1; id <= 8; id++) await repo.get(id);
    const snapshot = metrics.snapshot().migrations['users-sampled']!;
    expect(snapshot.reads.bySide.old).toBe(8);
    expect(snapshot.comparisons).toBe(2);
    expect(snapshot.mismatches).toBe(0);
  });

  it('shadowReadOneIn runs the cross-table shadow read for one read in N', async () => {
    const ctx = getCtx();
    const s = ctx.schema;
    await ctx.sql(`CREATE TABLE ${s}.users (id int PRIMARY KEY, bio text)`);
    await ctx.sql(`CREATE TABLE ${s}.profiles (user_id int PRIMARY KEY, bio text)`);
    await ctx.sql(`INSERT INTO ${s}.users SELECT g, 'b' || g FROM generate_series(1, 6) g`);
    await ctx.sql(`INSERT INTO ${s}.profiles SELECT g, 'b' || g FROM generate_series(1, 6) g`);
    const users = defineTable({ name: `${s}.users`, key: 'id', entity: z.object({ id: z.number(), bio: z.string() }) });
    const migration = defineMigration({
      name: 'users-bio',
      table: users,
      mappings: [
        moveColumn({ field: 'bio', from: 'bio', to: { table: `${s}.profiles`, column: 'bio', key: ['user_id'] } }),
      ],
      defaultStage: 'shadow',
      compare: { shadowReadOneIn: 3 },
    });
    const flags = createMemoryFlags({ [migration.stageFlagKey]: 'shadow' });
    const metrics = createMemoryMetrics();
    const repo = createRepository(migration, { driver: ctx.driver, flags, metrics });
    for (let id = 1; id <= 6; id++) expect(await repo.get(id)).toEqual({ id, bio: `b${id}` });
    const snapshot = metrics.snapshot().migrations['users-bio']!;
    expect(snapshot.comparisons).toBe(2);
    expect(snapshot.mismatches).toBe(0);
  });
});

describeDrivers('key identity', (getCtx) => {
  it('timestamp keys within one second are distinct entities', async () => {
    const ctx = getCtx();
    await ctx.sql(`CREATE TABLE ${ctx.schema}.events (at timestamptz PRIMARY KEY, label_old text, label text)`);
    const events = defineTable({
      name: `${ctx.schema}.events`,
      key: 'at',
      entity: z.object({ at: z.date(), label: z.string() }),
    });
    const migration = defineMigration({
      name: 'events-label',
      table: events,
      mappings: [rename({ field: 'label', from: 'label_old', to: 'label' })],
      defaultStage: 'dualwrite',
    });
    const repo = createRepository(migration, {
      driver: ctx.driver,
      flags: createMemoryFlags({ [migration.stageFlagKey]: 'dualwrite' }),
    });
    const first = new Date('2026-11-21T10:00:00.100Z');
    const second = new Date('2026-11-21T10:00:00.200Z');
    await repo.insert({ at: first, label: 'first' });
    await repo.insert({ at: second, label: 'second' });
    expect((await repo.getMany([second, first])).map((event) => event.label)).toEqual(['second', 'first']);
  });
});
