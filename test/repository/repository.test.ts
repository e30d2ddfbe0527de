import {
  createMemoryFlags,
  createMemoryMetrics,
  createRepository,
  defineMigration,
  defineTable,
  ErrorCode,
  rename,
  ValidationError,
} from 'flagshift';
import { describe, expect, it } from 'vitest';
import { describeDrivers } from '../support/drivers.js';
import {
  driverAsRole,
  dropRole,
  logStatements,
  userEntity,
  usersFixture,
  usersMigration,
} from '../support/fixtures.js';

const ALL = 'id, user_name, username, email';

describeDrivers('repository routing', (getCtx) => {
  /** Runs `body` as a role holding exactly the given column privileges on users. */
  async function withPrivileges(
    privileges: { select: string; write: string },
    stage: Parameters<Awaited<ReturnType<typeof usersFixture>>['setStage']>[0],
    body: (fixture: Awaited<ReturnType<typeof usersFixture>>) => Promise<void>,
  ): Promise<Awaited<ReturnType<typeof usersFixture>>> {
    const ctx = getCtx();
    await ctx.sql(`CREATE TABLE ${ctx.schema}.placeholder (x int)`);
    const grants = [
      `GRANT SELECT (${privileges.select}) ON ${ctx.schema}.users TO $role`,
      `GRANT INSERT (${privileges.write}), UPDATE (${privileges.write}) ON ${ctx.schema}.users TO $role`,
      `GRANT DELETE ON ${ctx.schema}.users TO $role`,
    ];
    const base = await usersFixture(ctx, { stage });
    const { driver, role } = await driverAsRole(ctx, grants);
    try {
      const fixture = {
        ...base,
        repo: createRepository(base.migration, { driver, flags: base.flags, metrics: base.metrics }),
      };
      await body(fixture);
    } finally {
      // On PGlite the role holds for the one shared connection: drop it before inspecting.
      await dropRole(ctx, role);
    }
    return base;
  }

  it('off: reads and writes only the old columns (no privilege on the new one)', async () => {
    const { rows } = await withPrivileges(
      { select: 'id, user_name, email', write: 'id, user_name, email' },
      'off',
      async ({ repo }) => {
        await repo.insert({ id: 1, username: 'ada', email: 'a@x' });
        await repo.update(1, { username: 'ada2' });
        await repo.upsert({ id: 2, username: 'bob', email: 'b@x' });
        expect(await repo.get(1)).toEqual({ id: 1, username: 'ada2', email: 'a@x' });
        expect(await repo.find({ where: { username: 'bob' } })).toEqual([{ id: 2, username: 'bob', email: 'b@x' }]);
        expect(await repo.delete(2)).toBe(true);
      },
    );
    const stored = await rows();
    expect(stored.map((row) => [Number(row.id), row.user_name, row.username])).toEqual([[1, 'ada2', null]]);
  });

  it('dualwrite: reads only the old columns and writes both', async () => {
    // (An upsert's ON CONFLICT DO UPDATE needs SELECT on what it sets; it is covered below.)
    const { rows } = await withPrivileges(
      { select: 'id, user_name, email', write: ALL },
      'dualwrite',
      async ({ repo }) => {
        await repo.insert({ id: 1, username: 'ada', email: 'a@x' });
        await repo.update(1, { username: 'ada2' });
        await repo.insert({ id: 2, username: 'bob', email: 'b@x' });
        expect(await repo.getMany([2, 1])).toEqual([
          { id: 2, username: 'bob', email: 'b@x' },
          { id: 1, username: 'ada2', email: 'a@x' },
        ]);
        expect(await repo.find({ where: { username: 'bob' } })).toHaveLength(1);
      },
    );
    const stored = await rows();
    expect(stored.map((row) => [row.user_name, row.username])).toEqual([
      ['ada2', 'ada2'],
      ['bob', 'bob'],
    ]);
  });

  it('rampdown: reads only the new columns and writes both', async () => {
    const { rows } = await withPrivileges(
      { select: 'id, username, email', write: ALL },
      'rampdown',
      async ({ repo }) => {
        await repo.insert({ id: 1, username: 'ada', email: 'a@x' });
        await repo.update(1, { username: 'ada2' });
        expect(await repo.get(1)).toEqual({ id: 1, username: 'ada2', email: 'a@x' });
        expect(await repo.find({ where: { username: 'ada2' } })).toHaveLength(1);
      },
    );
    expect((await rows()).map((row) => [row.user_name, row.username])).toEqual([['ada2', 'ada2']]);
  });

  it('complete: reads and writes only the new columns (no privilege on the old one)', async () => {
    const { rows } = await withPrivileges(
      { select: 'id, username, email', write: 'id, username, email' },
      'complete',
      async ({ repo }) => {
        await repo.insert({ id: 1, username: 'ada', email: 'a@x' });
        await repo.update(1, { username: 'ada2' });
        await repo.upsert({ id: 2, username: 'bob', email: 'b@x' });
        expect(await repo.get(1)).toEqual({ id: 1, username: 'ada2', email: 'a@x' });
        expect(await repo.find({ orderBy: 'username' })).toHaveLength(2);
      },
    );
    expect((await rows()).map((row) => [row.user_name, row.username])).toEqual([
      [null, 'ada2'],
      [null, 'bob'],
    ]);
  });

  it('shadow: the new side failing (no privilege) never reaches the caller; the error is counted', async () => {
    await withPrivileges({ select: 'id, user_name, email', write: ALL }, 'shadow', async ({ repo, metrics }) => {
      await repo.insert({ id: 1, username: 'ada', email: 'a@x' });
      expect(await repo.get(1)).toEqual({ id: 1, username: 'ada', email: 'a@x' });
      expect(await repo.getMany([1])).toHaveLength(1);
      const snapshot = metrics.snapshot().migrations['users-username']!;
      expect(snapshot.errors.bySide.new).toBeGreaterThanOrEqual(2);
      expect(snapshot.reads.bySide.old).toBe(2);
    });
  });

  it('live: the old side failing while only compared never reaches the caller', async () => {
    await withPrivileges(
      { select: 'id, username, email', write: ALL },
      'live',
      async ({ repo, metrics, flags, migration }) => {
        flags.set(migration.percentFlagKey, 100);
        await repo.insert({ id: 1, username: 'ada', email: 'a@x' });
        expect(await repo.get(1)).toEqual({ id: 1, username: 'ada', email: 'a@x' });
        expect(metrics.snapshot().migrations['users-username']!.errors.bySide.old).toBe(1);
      },
    );
  });

  for (const stage of ['shadow', 'live'] as const) {
    it(`${stage}: a dual read is one SELECT of both column sets, a dual write one statement`, async () => {
      const ctx = getCtx();
      const base = await usersFixture(ctx, { stage, percent: 50 });
      const log = await logStatements(ctx, 'users');
      const { driver, role } = await driverAsRole(ctx, [
        `GRANT SELECT, INSERT, UPDATE, DELETE ON ${ctx.schema}.users TO $role`,
        `GRANT EXECUTE ON FUNCTION ${ctx.schema}.log_read() TO $role`,
        // On PGlite the test inspects the logs on the same connection, as the role.
        `GRANT SELECT, DELETE ON ${ctx.schema}.write_log, ${ctx.schema}.read_log TO $role`,
      ]);
      try {
        const repo = createRepository(base.migration, { driver, flags: base.flags, metrics: base.metrics });
        await repo.insert({ id: 1, username: 'ada', email: 'a@x' });
        await repo.update(1, { username: 'ada2', email: 'b@x' });
        const writes = await log.writes();
        expect(writes.map((w) => w.op)).toEqual(['INSERT', 'UPDATE']);
        for (const write of writes) {
          expect(write.query).toContain('"user_name"');
          expect(write.query).toContain('"username"');
        }
        await log.clear();
        expect(await repo.get(1)).toEqual({ id: 1, username: 'ada2', email: 'b@x' });
        const reads = await log.reads();
        expect(reads).toHaveLength(1);
        expect(reads[0]).toContain('"user_name"');
        expect(reads[0]).toContain('"username"');
        expect(base.metrics.snapshot().migrations['users-username']!.comparisons).toBe(1);
      } finally {
        await dropRole(ctx, role);
      }
    });
  }

  it('shadow: a row changed behind the SDK is reported as a mismatch with a redacted field diff', async () => {
    const ctx = getCtx();
    const { repo, metrics, setStage } = await usersFixture(ctx, { stage: 'dualwrite' });
    await repo.insert({ id: 1, username: 'ada', email: 'a@x' });
    await repo.insert({ id: 2, username: 'bob', email: 'b@x' });
    await ctx.sql(`UPDATE ${ctx.schema}.users SET username = 'intruder' WHERE id = 2`);
    setStage('shadow');
    expect(await repo.get(2)).toEqual({ id: 2, username: 'bob', email: 'b@x' });
    expect(await repo.get(1)).toEqual({ id: 1, username: 'ada', email: 'a@x' });
    const snapshot = metrics.snapshot().migrations['users-username']!;
    expect(snapshot.comparisons).toBe(2);
    expect(snapshot.mismatches).toBe(1);
    expect(snapshot.mismatchRate).toBe(0.5);
    const [sample] = snapshot.recentMismatches;
    expect(sample?.diffs).toEqual([
      {
        field: 'username',
        kind: 'value',
        old: expect.stringMatching(/^sha256:/),
        new: expect.stringMatching(/^sha256:/),
      },
    ]);
    expect(JSON.stringify(snapshot)).not.toContain('intruder');
    setStage('live', 100);
    expect(await repo.get(2)).toEqual({ id: 2, username: 'intruder', email: 'b@x' });
    expect(metrics.snapshot().migrations['users-username']!.mismatches).toBe(2);
  });

  it('shadow: a row missing its new value is reported as missing-new', async () => {
    const ctx = getCtx();
    const { repo, metrics } = await usersFixture(ctx, { stage: 'shadow' });
    await ctx.sql(`INSERT INTO ${ctx.schema}.users (id, user_name, email) VALUES (7, 'old-only', 'o@x')`);
    expect(await repo.get(7)).toEqual({ id: 7, username: 'old-only', email: 'o@x' });
    const [sample] = metrics.snapshot().recentMismatches;
    expect(sample?.diffs.map((d) => [d.field, d.kind])).toEqual([['username', 'missing-new']]);
  });

  it('find on a migrated field is routed as a whole and the two result sets are compared', async () => {
    const ctx = getCtx();
    const { repo, metrics, setStage } = await usersFixture(ctx, { stage: 'dualwrite' });
    for (let id = 1; id <= 5; id++)
      await repo.insert({ id, username: id % 2 === 0 ? 'even' : 'odd', email: `${id}@x` });
    setStage('shadow');
    expect((await repo.find({ where: { username: 'even' } })).map((u) => u.id)).toEqual([2, 4]);
    expect(metrics.snapshot().migrations['users-username']!.mismatches).toBe(0);
    await ctx.sql(`UPDATE ${ctx.schema}.users SET username = 'odd' WHERE id = 2`);
    expect((await repo.find({ where: { username: 'even' } })).map((u) => u.id)).toEqual([2, 4]);
    const snapshot = metrics.snapshot().migrations['users-username']!;
    expect(snapshot.mismatches).toBe(1);
    expect(snapshot.recentMismatches[0]?.diffs.map((d) => [d.field, d.kind])).toEqual([['$row', 'missing-new']]);
    setStage('live', 100);
    expect(
      (await repo.find({ where: { username: 'even' } }, { context: { targetingKey: 'report' } })).map((u) => u.id),
    ).toEqual([4]);
    expect((await repo.find({ orderBy: { field: 'username', direction: 'desc' }, limit: 2 })).map((u) => u.id)).toEqual(
      [1, 2],
    );
  });

  it('dualwrite: upsert inserts, then replaces, both sides in one statement', async () => {
    const ctx = getCtx();
    const { repo, rows } = await usersFixture(ctx, { stage: 'dualwrite' });
    await repo.upsert({ id: 2, username: 'bob', email: 'b@x' });
    await repo.upsert({ id: 2, username: 'bob2', email: 'b2@x' });
    expect(await repo.get(2)).toEqual({ id: 2, username: 'bob2', email: 'b2@x' });
    expect((await rows()).map((row) => [row.user_name, row.username])).toEqual([['bob2', 'bob2']]);
  });

  it('a flag outage keeps dual writes going on the last known good stage, and is counted', async () => {
    const ctx = getCtx();
    const { repo, flags, migration, metrics, rows } = await usersFixture(ctx, { stage: 'dualwrite', ttlMs: 0 });
    await repo.insert({ id: 1, username: 'ada', email: 'a@x' });
    flags.fail(migration.stageFlagKey, 'error');
    await repo.insert({ id: 2, username: 'bob', email: 'b@x' });
    await repo.update(1, { username: 'ada2' });
    flags.fail(migration.stageFlagKey, { value: 42 });
    await repo.upsert({ id: 3, username: 'cy', email: 'c@x' });
    expect((await rows()).map((row) => [row.user_name, row.username])).toEqual([
      ['ada2', 'ada2'],
      ['bob', 'bob'],
      ['cy', 'cy'],
    ]);
    const fallbacks = metrics.snapshot().migrations['users-username']!.flagFallbacks;
    expect(fallbacks.byReason.error).toBeGreaterThan(0);
    expect(fallbacks.byReason.type).toBeGreaterThan(0);
    expect(fallbacks.bySource['last-known-good']).toBeGreaterThan(0);
  });

  it('a flag outage with no decision yet uses the declared default stage', async () => {
    const ctx = getCtx();
    const { migration } = await usersMigration(ctx, { defaultStage: 'dualwrite' });
    const flags = createMemoryFlags();
    flags.fail(migration.stageFlagKey, 'hang');
    const metrics = createMemoryMetrics();
    const repo = createRepository(migration, { driver: ctx.driver, flags, metrics, flagTimeoutMs: 20 });
    await repo.insert({ id: 1, username: 'ada', email: 'a@x' });
    expect(await ctx.sql(`SELECT user_name, username FROM ${ctx.schema}.users`)).toEqual([
      { user_name: 'ada', username: 'ada' },
    ]);
    expect(metrics.snapshot().migrations['users-username']!.flagFallbacks.byReason.timeout).toBeGreaterThan(0);
  });

  it('a write that fails the entity schema raises a validation error naming the field and writes nothing', async () => {
    const ctx = getCtx();
    const { repo, rows } = await usersFixture(ctx, { stage: 'dualwrite' });
    await repo.insert({ id: 1, username: 'ada', email: 'a@x' });
    const attempts: [string, () => Promise<unknown>, string][] = [
      ['insert with a wrong type', () => repo.insert({ id: 2, username: 5 } as never), 'username'],
      [
        'insert with an unknown field',
        () => repo.insert({ id: 2, username: 'b', email: 'b@x', admin: true } as never),
        'admin',
      ],
      ['update with a wrong type', () => repo.update(1, { username: null } as never), 'username'],
      ['update of the key', () => repo.update(1, { id: 9 } as never), 'id'],
      ['upsert missing a field', () => repo.upsert({ id: 1, username: 'x' } as never), 'email'],
      ['get with a bad key', () => repo.get('1; DROP TABLE users' as never), 'id'],
    ];
    for (const [what, attempt, field] of attempts) {
      const error = await attempt().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, what).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).code).toBe(ErrorCode.Validation);
      expect((error as ValidationError).fields, what).toContain(field);
      expect((error as Error).message, what).toContain(`"${field}"`);
    }
    expect((await rows()).map((row) => [Number(row.id), row.user_name, row.username])).toEqual([[1, 'ada', 'ada']]);
  });

  it('live: raising the read percentage only ever moves entities to new', async () => {
    const ctx = getCtx();
    const { repo, setStage } = await usersFixture(ctx, { stage: 'live', percent: 0 });
    await ctx.sql(
      `INSERT INTO ${ctx.schema}.users SELECT g, 'old', 'new', g || '@x' FROM generate_series(1, 400) AS g`,
    );
    const ids = Array.from({ length: 400 }, (_, index) => index + 1);
    let previous = new Set<number>();
    for (const percent of [0, 10, 25, 50, 75, 100]) {
      setStage('live', percent);
      const servedNew = new Set(
        (await repo.getMany(ids)).filter((user) => user.username === 'new').map((user) => user.id),
      );
      for (const id of previous) expect(servedNew.has(id), `entity ${id} moved back at ${percent}%`).toBe(true);
      if (percent === 0) expect(servedNew.size).toBe(0);
      if (percent === 100) expect(servedNew.size).toBe(400);
      if (percent === 50) {
        expect(servedNew.size).toBeGreaterThan(140);
        expect(servedNew.size).toBeLessThan(260);
      }
      previous = servedNew;
    }
  });

  it('a transaction pins one stage decision for everything inside it', async () => {
    const ctx = getCtx();
    const { repo, setStage, rows } = await usersFixture(ctx, { stage: 'dualwrite' });
    await repo.transaction(async (tx) => {
      await tx.insert({ id: 1, username: 'ada', email: 'a@x' });
      setStage('off');
      await tx.insert({ id: 2, username: 'bob', email: 'b@x' });
      await tx.update(1, { username: 'ada2' });
    });
    await repo.insert({ id: 3, username: 'cy', email: 'c@x' });
    expect((await rows()).map((row) => [row.user_name, row.username])).toEqual([
      ['ada2', 'ada2'],
      ['bob', 'bob'],
      ['cy', null],
    ]);
  });

  it('a transaction that throws writes nothing', async () => {
    const ctx = getCtx();
    const { repo, rows } = await usersFixture(ctx, { stage: 'dualwrite' });
    await expect(
      repo.transaction(async (tx) => {
        await tx.insert({ id: 1, username: 'ada', email: 'a@x' });
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');
    expect(await rows()).toEqual([]);
  });

  it('bigint keys come out as numbers through every driver', async () => {
    const ctx = getCtx();
    const { repo } = await usersFixture(ctx, { stage: 'shadow' });
    await repo.insert({ id: 9007199254740991, username: 'max', email: 'm@x' });
    const user = await repo.get(9007199254740991);
    expect(user).toEqual({ id: 9007199254740991, username: 'max', email: 'm@x' });
    expect(typeof user?.id).toBe('number');
    expect((await repo.find({ where: { email: 'm@x' } }))[0]?.id).toBe(9007199254740991);
  });

  it('a value carrying an injection payload is stored verbatim', async () => {
    const ctx = getCtx();
    const { repo, rows } = await usersFixture(ctx, { stage: 'dualwrite' });
    const payload = `'); DROP TABLE users; -- "quoted" \\ $1`;
    await repo.insert({ id: 1, username: payload, email: 'a@x' });
    expect(await repo.get(1)).toEqual({ id: 1, username: payload, email: 'a@x' });
    expect(await repo.find({ where: { username: payload } })).toHaveLength(1);
    expect((await rows())[0]).toMatchObject({ user_name: payload, username: payload });
  });

  it('a stage that needs a missing column fails with an error naming it; other stages work', async () => {
    const ctx = getCtx();
    const { migration } = await usersMigration(ctx, { expanded: false });
    const flags = createMemoryFlags({ [migration.stageFlagKey]: 'off' });
    const metrics = createMemoryMetrics();
    const repo = createRepository(migration, { driver: ctx.driver, flags, metrics });
    await repo.insert({ id: 1, username: 'ada', email: 'a@x' });
    flags.set(migration.stageFlagKey, 'dualwrite');
    await expect(repo.insert({ id: 2, username: 'bob', email: 'b@x' })).rejects.toMatchObject({
      code: ErrorCode.UnknownColumn,
      message: expect.stringContaining(`"${ctx.schema}.users.username"`),
    });
    flags.set(migration.stageFlagKey, 'shadow');
    expect(await repo.get(1)).toEqual({ id: 1, username: 'ada', email: 'a@x' });
    expect(metrics.snapshot().migrations['users-username']!.errors.bySide.new).toBe(1);
    const missing = await repo.check();
    expect(missing.get('users-username')?.missingNew).toEqual([`${ctx.schema}.users.username`]);
  });

  it('a table missing a plain column fails on first use with an error naming it', async () => {
    const ctx = getCtx();
    await ctx.sql(`CREATE TABLE ${ctx.schema}.users (id bigint PRIMARY KEY, user_name text, username text)`);
    const users = defineTable({ name: `${ctx.schema}.users`, key: 'id', entity: userEntity });
    const repo = createRepository(users, { driver: ctx.driver });
    await expect(repo.get(1)).rejects.toMatchObject({
      code: ErrorCode.UnknownColumn,
      message: expect.stringContaining(`"${ctx.schema}.users.email"`),
    });
  });
});

describe('repository definition errors', () => {
  it('createRepository rejects a migration list spanning tables', () => {
    const a = defineTable({ name: 'a', key: 'id', entity: userEntity });
    const b = defineTable({ name: 'b', key: 'id', entity: userEntity });
    const m = (table: typeof a, name: string) =>
      defineMigration({
        name,
        table,
        mappings: [rename({ field: 'username', from: 'user_name', to: 'username' })],
        defaultStage: 'off',
      });
    expect(() =>
      createRepository([m(a, 'a-m'), m(b, 'b-m')], {
        driver: {
          name: 'x',
          supportsConcurrentQueries: false,
          query: async () => ({ rows: [], rowCount: 0 }),
          transaction: async (fn) => fn({ query: async () => ({ rows: [], rowCount: 0 }) }),
          session: async (fn) => fn({ query: async () => ({ rows: [], rowCount: 0 }) }),
        },
        flags: createMemoryFlags(),
      }),
    ).toThrow(/migration "b-m" is on table b, not a/);
  });
});

describeDrivers('repository reporting and schema changes', (getCtx) => {
  it('a mismatch is reported to the flag source through track(), with the key redacted and no values', async () => {
    const ctx = getCtx();
    const base = await usersFixture(ctx, { stage: 'dualwrite' });
    const tracked: { name: string; context: unknown; details: unknown }[] = [];
    const flags = {
      resolve: base.flags.resolve.bind(base.flags),
      onConfigurationChanged: base.flags.onConfigurationChanged.bind(base.flags),
      track: (name: string, context: unknown, details: unknown) => {
        tracked.push({ name, context, details });
      },
    };
    const repo = createRepository(base.migration, { driver: ctx.driver, flags });
    await repo.insert({ id: 1, username: 'ada', email: 'a@x' });
    await ctx.sql(`UPDATE ${ctx.schema}.users SET username = 'intruder' WHERE id = 1`);
    base.setStage('shadow');
    await repo.get(1);
    expect(tracked).toEqual([
      {
        name: 'flagshift.mismatch',
        context: { targetingKey: expect.stringMatching(/^sha256:[0-9a-f]{16}$/) },
        details: {
          migration: 'users-username',
          stage: 'shadow',
          route: 'shadow',
          operation: 'get',
          fields: 'username',
        },
      },
    ]);
  });

  it('check() sees a column added a moment ago, and writes may use it at once', async () => {
    const ctx = getCtx();
    const { migration } = await usersMigration(ctx, { expanded: false });
    const flags = createMemoryFlags({ [migration.stageFlagKey]: 'off' });
    const repo = createRepository(migration, { driver: ctx.driver, flags });
    await repo.insert({ id: 1, username: 'ada', email: 'a@x' });
    expect((await repo.check()).get('users-username')?.missingNew).toHaveLength(1);
    await ctx.sql(`ALTER TABLE ${ctx.schema}.users ADD COLUMN username text`);
    expect((await repo.check()).get('users-username')?.missingNew).toEqual([]);
    flags.set(migration.stageFlagKey, 'dualwrite');
    await repo.update(1, { username: 'ada2' });
    expect(await ctx.sql(`SELECT user_name, username FROM ${ctx.schema}.users`)).toEqual([
      { user_name: 'ada2', username: 'ada2' },
    ]);
  });
});

describeDrivers('read failures are reported against the side that failed', (getCtx) => {
  it('live: a missing new column fails the read and is counted on the new side, not the old', async () => {
    const ctx = getCtx();
    const { repo, metrics } = await usersFixture(ctx, { stage: 'live', percent: 100 });
    await repo.insert({ id: 1, username: 'ada', email: 'a@x' });
    await ctx.sql(`ALTER TABLE ${ctx.schema}.users DROP COLUMN username`);
    await expect(repo.get(1)).rejects.toMatchObject({ sqlState: '42703' });
    const errors = metrics.snapshot().migrations['users-username']!.errors;
    expect(errors.bySide).toEqual({ old: 0, new: 1 });
  });

  it('find on a migrated field reports its latency', async () => {
    const ctx = getCtx();
    const { repo, metrics } = await usersFixture(ctx, { stage: 'shadow' });
    await repo.find({ where: { username: 'nobody' } });
    expect(metrics.snapshot().migrations['users-username']!.latency.both.count).toBe(1);
  });
});

describeDrivers('write counting', (getCtx) => {
  it('an update or delete that finds no row is not counted as a write', async () => {
    const ctx = getCtx();
    const { repo, metrics } = await usersFixture(ctx, { stage: 'dualwrite' });
    await repo.insert({ id: 1, username: 'ada', email: 'a@x' });
    expect(await repo.update(2, { username: 'nobody' })).toBe(false);
    expect(await repo.delete(2)).toBe(false);
    expect(await repo.delete(1)).toBe(true);
    expect(metrics.snapshot().migrations['users-username']!.writes.byOperation).toEqual({ insert: 1, delete: 1 });
  });
});

describeDrivers('comparisons inside transactions', (getCtx) => {
  it('shadow: a comparison that fails inside a transaction neither reaches the caller nor aborts the transaction', async () => {
    const ctx = getCtx();
    const base = await usersFixture(ctx, { stage: 'shadow' });
    await ctx.sql(`INSERT INTO ${ctx.schema}.users VALUES (1, 'ada', 'ada', 'a@x')`);
    // No privilege to read the new column: every comparison read fails.
    const { driver, role } = await driverAsRole(ctx, [
      `GRANT SELECT (id, user_name, email) ON ${ctx.schema}.users TO $role`,
      `GRANT INSERT (${ALL}), UPDATE (${ALL}) ON ${ctx.schema}.users TO $role`,
    ]);
    try {
      const repo = createRepository(base.migration, { driver, flags: base.flags, metrics: base.metrics });
      await repo.transaction(async (tx) => {
        expect(await tx.get(1)).toEqual({ id: 1, username: 'ada', email: 'a@x' });
        expect(await tx.find({ where: { username: 'ada' } })).toHaveLength(1);
        await tx.update(1, { username: 'ada2' });
      });
      expect(base.metrics.snapshot().migrations['users-username']!.errors.bySide.new).toBeGreaterThanOrEqual(1);
    } finally {
      await dropRole(ctx, role);
    }
    expect((await base.rows()).map((row) => [row.user_name, row.username])).toEqual([['ada2', 'ada2']]);
  });
});
