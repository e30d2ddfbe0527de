/**
 * Hostile values on both drivers. Values are always bind parameters: an injection payload
 * in an entity field, a key (simple or composite), a filter or a call's targeting key is
 * stored and read back verbatim and harms nothing. Input that fails the entity schema is
 * rejected with a ValidationError before any statement runs. Oversized and unstorable
 * values either round-trip or fail with a DriverError carrying the SQLSTATE, writing
 * nothing. Columns a stage needs but the table lacks fail before any write.
 */
import fc from 'fast-check';
import {
  createMemoryFlags,
  createRepository,
  DriverError,
  defineMigration,
  defineTable,
  ErrorCode,
  FlagshiftError,
  rename,
  ValidationError,
} from 'flagshift';
import { expect, it } from 'vitest';
import { z } from 'zod';
import { type DriverContext, describeDrivers } from '../support/drivers.js';
import { recordingDriver } from '../support/model-driver.js';

const PAYLOADS = [
  "'; DROP TABLE users; --",
  '" OR "1"="1',
  '$1',
  '$$; DROP TABLE users; $$',
  "\\'; DELETE FROM users; --",
  '*/ DROP TABLE users; /*',
  '1); DELETE FROM users WHERE (1=1',
  "E'\\\\x00'",
  '%s%n%d',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a template-injection payload, meant literally
  '${process.exit()}',
  "ユーザー'--",
  '\u202eevil',
  'Zoë 東京 🚀',
  ' ',
  '',
];

/** A table keyed by two text columns, so payloads can be keys too. */
async function accounts(ctx: DriverContext) {
  await ctx.sql(
    `CREATE TABLE ${ctx.schema}.accounts (tenant text, id text, user_name text, username text, email text NOT NULL, PRIMARY KEY (tenant, id))`,
  );
  await ctx.sql(`CREATE TABLE ${ctx.schema}.canary (id int PRIMARY KEY, note text)`);
  await ctx.sql(`INSERT INTO ${ctx.schema}.canary VALUES (1, 'still here')`);
  const table = defineTable({
    name: `${ctx.schema}.accounts`,
    key: ['tenant', 'id'],
    entity: z.object({ tenant: z.string(), id: z.string(), username: z.string(), email: z.string() }),
  });
  const migration = defineMigration({
    name: 'accounts-username',
    table,
    mappings: [rename({ field: 'username', from: 'user_name', to: 'username', type: 'text' })],
    defaultStage: 'dualwrite',
  });
  const flags = createMemoryFlags({ [migration.stageFlagKey]: 'shadow', [migration.percentFlagKey]: 50 });
  return { migration, flags };
}

async function usersTable(
  ctx: DriverContext,
  columns = 'id bigint PRIMARY KEY, user_name text, username text, email text NOT NULL',
) {
  await ctx.sql(`CREATE TABLE ${ctx.schema}.users (${columns})`);
  const table = defineTable({
    name: `${ctx.schema}.users`,
    key: 'id',
    entity: z.object({ id: z.number().int(), username: z.string(), email: z.string() }),
  });
  return defineMigration({
    name: 'users-username',
    table,
    mappings: [rename({ field: 'username', from: 'user_name', to: 'username', type: 'text' })],
    defaultStage: 'dualwrite',
  });
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (error: unknown) => error,
  );
}

describeDrivers('hostile values', (getCtx) => {
  it('an injection payload in every kind of value (fields, composite keys, filters, targeting keys) is stored verbatim and harms nothing', async () => {
    const ctx = getCtx();
    const { migration, flags } = await accounts(ctx);
    const repo = createRepository(migration, { driver: ctx.driver, flags });
    for (const [index, payload] of PAYLOADS.entries()) {
      const key = { tenant: payload, id: `${payload}#${index}` };
      const account = { ...key, username: payload, email: payload };
      const context = { context: { targetingKey: payload } };
      const what = `payload ${JSON.stringify(payload)}`;
      expect(await repo.insert(account, context), what).toEqual(account);
      expect(await repo.get(key), `invariant: a payload key reads back (${what})`).toEqual(account);
      expect(await repo.get(key, context), what).toEqual(account);
      expect(await repo.getMany([key, key], context), what).toEqual([account]);
      expect(
        await repo.find({ where: { username: payload } }, context),
        `invariant: a payload filter matches verbatim (${what})`,
      ).toContainEqual(account);
      expect(await repo.find({ where: { tenant: payload, email: payload } }), what).toEqual([account]);
      expect(await repo.update(key, { username: `${payload}!` }, context), what).toBe(true);
      expect(await repo.upsert({ ...account, email: `${payload}?` }), what).toEqual({
        ...account,
        email: `${payload}?`,
      });
    }
    flags.set(migration.stageFlagKey, 'live');
    const stored = await ctx.sql<{ tenant: string; id: string; user_name: string; username: string; email: string }>(
      `SELECT tenant, id, user_name, username, email FROM ${ctx.schema}.accounts`,
    );
    expect(stored, 'invariant: a payload is stored verbatim on both sides').toEqual(
      expect.arrayContaining(
        PAYLOADS.map((payload, index) => ({
          tenant: payload,
          id: `${payload}#${index}`,
          user_name: payload,
          username: payload,
          email: `${payload}?`,
        })),
      ),
    );
    expect(stored).toHaveLength(PAYLOADS.length);
    for (const [index, payload] of PAYLOADS.entries()) {
      expect(
        await repo.delete({ tenant: payload, id: `${payload}#${index}` }),
        `delete by payload key ${JSON.stringify(payload)}`,
      ).toBe(true);
    }
    expect(
      await ctx.sql(`SELECT note FROM ${ctx.schema}.canary`),
      'invariant: no payload touched another table',
    ).toEqual([{ note: 'still here' }]);
    expect(await ctx.sql(`SELECT count(*)::int AS n FROM ${ctx.schema}.accounts`)).toEqual([{ n: 0 }]);
  });

  it('input that fails the entity schema, in any call, is rejected with a ValidationError before any statement runs', async () => {
    const ctx = getCtx();
    const migration = await usersTable(ctx);
    const driver = recordingDriver(ctx.driver);
    const repo = createRepository(migration, {
      driver,
      flags: createMemoryFlags({ [migration.stageFlagKey]: 'shadow' }),
    });
    await repo.insert({ id: 1, username: 'ada', email: 'a@x' });
    const weird = fc.oneof(
      fc.anything({
        withBigInt: true,
        withDate: true,
        withMap: true,
        withSet: true,
        withTypedArray: true,
        withNullPrototype: true,
        withBoxedValues: true,
        withSparseArray: true,
        withObjectString: true,
        maxDepth: 2,
      }),
      fc.constantFrom(
        Number.NaN,
        Number.POSITIVE_INFINITY,
        -0,
        2 ** 53,
        1.5,
        '1',
        '1; DROP TABLE users',
        Symbol('x'),
        () => 1,
        new Date(Number.NaN),
        Object.create(null),
        { __proto__: { username: 'inherited' } },
        JSON.parse('{"__proto__": {"admin": true}}'),
      ),
    );
    const value = fc.oneof(fc.string({ maxLength: 5 }), fc.integer({ min: -3, max: 3 }), weird);
    const entityLike = fc.oneof(
      weird,
      fc.record(
        { id: value, username: value, email: value, extra: value, constructor: value, toString: value },
        { requiredKeys: [] },
      ),
    );
    type Call = readonly [operation: string, args: readonly unknown[]];
    const call: fc.Arbitrary<Call> = fc.oneof(
      entityLike.map((e): Call => ['insert', [e]]),
      entityLike.map((e): Call => ['upsert', [e]]),
      fc.tuple(value, entityLike).map(([k, p]): Call => ['update', [k, p]]),
      value.map((k): Call => ['delete', [k]]),
      value.map((k): Call => ['get', [k]]),
      fc.oneof(weird, fc.array(value, { maxLength: 3 })).map((ks): Call => ['getMany', [ks]]),
      fc
        .oneof(
          weird,
          fc.record(
            { where: entityLike, orderBy: fc.oneof(value, fc.array(value)), limit: value },
            { requiredKeys: [] },
          ),
        )
        .map((q): Call => ['find', [q]]),
    );
    await fc.assert(
      fc.asyncProperty(call, async ([operation, args]) => {
        driver.clear();
        let error: unknown;
        try {
          await (repo as unknown as Record<string, (...a: readonly unknown[]) => Promise<unknown>>)[operation]!(
            ...args,
          );
        } catch (caught) {
          error = caught;
        }
        if (error === undefined) return;
        if (error instanceof ValidationError) {
          expect(error.code).toBe(ErrorCode.Validation);
          expect(
            driver.statements.map((s) => s.sql),
            `invariant: input rejected by validation runs no statement (${operation})`,
          ).toEqual([]);
          return;
        }
        // Valid input the database refuses: a duplicate key, or a NUL character PostgreSQL text can't hold.
        expect(
          error,
          `invariant: bad input is a ValidationError, never a crash (${operation}: ${String(error)})`,
        ).toBeInstanceOf(DriverError);
        const refusals = ['23505', '22021'];
        expect(refusals, `unexpected SQLSTATE (${operation}: ${String(error)})`).toContain(
          (error as DriverError).sqlState,
        );
        expect(driver.writes().length, `invariant: a refused write changes nothing (${operation})`).toBeLessThanOrEqual(
          1,
        );
      }),
      { numRuns: 300 },
    );
    const rows = await ctx.sql<{ user_name: string | null; username: string | null }>(
      `SELECT user_name, username FROM ${ctx.schema}.users`,
    );
    expect(
      rows.filter((row) => row.user_name !== row.username),
      'invariant: whatever was accepted was written to both sides',
    ).toEqual([]);
  });

  it('unstorable and oversized values: a 10 MB string round-trips; NUL characters and over-long keys fail with a DriverError and write nothing', async () => {
    const ctx = getCtx();
    const { migration, flags } = await accounts(ctx);
    const repo = createRepository(migration, { driver: ctx.driver, flags });
    const big = 'x'.repeat(10 * 1024 * 1024);
    await repo.insert({ tenant: 't', id: 'big', username: big, email: 'e' });
    const read = await repo.get({ tenant: 't', id: 'big' });
    expect(read?.username.length, 'invariant: a 10 MB value is read back identically').toBe(big.length);
    expect(read?.username === big).toBe(true);

    const nul = await failure(repo.insert({ tenant: 't', id: 'nul', username: 'a\u0000b', email: 'e' }));
    expect(nul, 'a NUL character: PostgreSQL text cannot hold it').toBeInstanceOf(DriverError);
    expect((nul as DriverError).sqlState).toBe('22021');
    // An incompressible key longer than a B-tree entry may be (about 2.7 kB).
    const longKey = Buffer.from(Array.from({ length: 12_000 }, (_, i) => (i * 2654435761) % 251)).toString('base64');
    const tooLong = await failure(repo.insert({ tenant: 't', id: longKey, username: 'k', email: 'e' }));
    expect(tooLong, 'an over-long key: the primary key index refuses it').toBeInstanceOf(DriverError);
    expect((tooLong as DriverError).sqlState).toBe('54000');
    expect(
      await ctx.sql(`SELECT id FROM ${ctx.schema}.accounts ORDER BY id`),
      'invariant: a refused write writes nothing',
    ).toEqual([{ id: 'big' }]);
  });

  it('a stage that needs a column the table lacks fails before any write statement runs', async () => {
    const ctx = getCtx();
    // Not expanded yet: no `username` column.
    const migration = await usersTable(ctx, 'id bigint PRIMARY KEY, user_name text, email text NOT NULL');
    const driver = recordingDriver(ctx.driver);
    const flags = createMemoryFlags({ [migration.stageFlagKey]: 'dualwrite' });
    const repo = createRepository(migration, { driver, flags });
    const attempts: [string, () => Promise<unknown>][] = [
      ['insert', () => repo.insert({ id: 1, username: 'ada', email: 'a@x' })],
      ['upsert', () => repo.upsert({ id: 1, username: 'ada', email: 'a@x' })],
      ['update', () => repo.update(1, { username: 'ada' })],
    ];
    for (const stage of ['dualwrite', 'rampdown', 'complete'] as const) {
      flags.set(migration.stageFlagKey, stage);
      for (const [operation, attempt] of attempts) {
        const error = await failure(attempt());
        expect(error, `${stage} ${operation}`).toBeInstanceOf(FlagshiftError);
        expect((error as FlagshiftError).code, `${stage} ${operation}`).toBe(ErrorCode.UnknownColumn);
        expect((error as Error).message).toContain(`"${ctx.schema}.users.username"`);
      }
    }
    expect(
      driver.writes().map((s) => s.sql),
      'invariant: a missing column is found before anything is written',
    ).toEqual([]);
    expect(await ctx.sql(`SELECT count(*)::int AS n FROM ${ctx.schema}.users`)).toEqual([{ n: 0 }]);
  });
});
