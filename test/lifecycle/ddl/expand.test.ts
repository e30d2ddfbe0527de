/**
 * expand: plans exactly what the catalog lacks (so a re-run plans nothing), infers types
 * where a rename or move allows it, creates side tables, builds indexes concurrently
 * (rebuilding an invalid one), installs the sync triggers, survives a table locked by
 * someone else, and in a dry run changes nothing.
 */
import { expect, it } from 'vitest';
import { z } from 'zod';
import { loadTableCatalog } from '../../../src/catalog/table-catalog.js';
import { ConfigurationError, DriverError } from '../../../src/kernel/errors.js';
import { createBackfill } from '../../../src/lifecycle/backfill/backfill.js';
import { expand, planExpand } from '../../../src/lifecycle/ddl/expand.js';
import { syncTriggerObjects } from '../../../src/lifecycle/ddl/sync-triggers.js';
import {
  backfillStatus,
  type LifecycleEvent,
  lastWritePathChange,
  listEvents,
} from '../../../src/lifecycle/state/index.js';
import { changeType, customMapping, moveColumn, rename } from '../../../src/model/mappings.js';
import { defineMigration, type Migration } from '../../../src/model/migration.js';
import { defineTable } from '../../../src/model/table.js';
import { type DriverContext, describeDrivers } from '../../support/drivers.js';

function usersMigration(ctx: DriverContext, mappings?: Parameters<typeof defineMigration>[0]['mappings']): Migration {
  const users = defineTable({
    name: `${ctx.schema}.users`,
    key: 'id',
    entity: z.object({ id: z.number().int(), username: z.string(), visits: z.number().int().nullable() }),
  });
  return defineMigration({
    name: 'users-expand',
    table: users,
    mappings: mappings ?? [rename({ field: 'username', from: 'user_name', to: 'username' })],
    defaultStage: 'off',
  });
}

/** A custom mapping of `visits` to `visits_x` = visits x `factor`, with its SQL forms. */
function visitsTimes(factor: number) {
  return customMapping({
    fields: { visits: { column: 'visits_x', type: 'bigint' } },
    old: [{ column: 'visits', type: 'integer', kind: 'number' }],
    forward: ([v]) => [v == null ? null : (v as number) * factor],
    backward: ([v]) => [v == null ? null : (v as number) / factor],
    sql: { forward: { visits_x: `{visits} * ${factor}` }, backward: { visits: `{visits_x} / ${factor}` } },
  });
}

/**
 * `users` expanded for `mappings`, then its first sync trigger put back as an earlier
 * flagshift created it: without the backfill's skip condition.
 */
async function expandedWithOldTrigger(ctx: DriverContext, mappings?: Parameters<typeof usersMigration>[1]) {
  await ctx.sql(`CREATE TABLE ${ctx.schema}.users (id bigint PRIMARY KEY, user_name text, visits int)`);
  const migration = usersMigration(ctx, mappings);
  await expand(ctx.driver, migration, { stateSchema: ctx.schema });
  const trigger = syncTriggerObjects(migration).triggers[0]!;
  await ctx.sql(trigger.unconditioned);
  return { migration, trigger };
}

/** Columns, triggers, functions, indexes and constraints of the test schema, as comparable text. */
async function catalogOf(ctx: DriverContext): Promise<string[]> {
  const rows = await ctx.sql<{ item: string }>(
    `SELECT 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull::text AS item
       FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
      WHERE c.relnamespace = $1::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
     UNION ALL SELECT 'relation ' || relname || ' ' || relkind::text FROM pg_class WHERE relnamespace = $1::regnamespace
     UNION ALL SELECT 'trigger ' || tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace = $1::regnamespace
     UNION ALL SELECT 'function ' || proname || ' ' || md5(prosrc) FROM pg_proc WHERE pronamespace = $1::regnamespace
     UNION ALL SELECT 'constraint ' || conname || ' ' || convalidated::text FROM pg_constraint WHERE connamespace = $1::regnamespace
     UNION ALL SELECT 'index ' || c.relname || ' ' || i.indisvalid::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace = $1::regnamespace
     ORDER BY 1`,
    [ctx.schema],
  );
  return rows.map((row) => row.item);
}

async function columnType(ctx: DriverContext, table: string, column: string): Promise<string | undefined> {
  const rows = await ctx.sql<{ type: string }>(
    `SELECT format_type(atttypid, atttypmod) AS type FROM pg_attribute
      WHERE attrelid = to_regclass($1) AND attname = $2 AND NOT attisdropped`,
    [`${ctx.schema}.${table}`, column],
  );
  return rows[0]?.type;
}

describeDrivers('expand', (getCtx) => {
  it('rename without a declared type: the new column takes the old column type, and the triggers sync it', async () => {
    const ctx = getCtx();
    await ctx.sql(`CREATE TABLE ${ctx.schema}.users (id bigint PRIMARY KEY, user_name varchar(40), visits int)`);
    await ctx.sql(`INSERT INTO ${ctx.schema}.users VALUES (1, 'ada', 0)`);
    const migration = usersMigration(ctx);
    const report = await expand(ctx.driver, migration, { stateSchema: ctx.schema });
    expect(report.steps.map((step) => step.description)).toEqual([
      `add column username to ${ctx.schema}.users`,
      expect.stringMatching(/^create sync function .*_sync"\(\)$/),
      expect.stringMatching(/^create sync trigger "flagshift_users_expand_[0-9a-f]{8}_sync" on /),
    ]);
    expect(await columnType(ctx, 'users', 'username')).toBe('character varying(40)');
    await ctx.sql(`INSERT INTO ${ctx.schema}.users (id, user_name) VALUES (2, 'grace')`);
    expect(await ctx.sql(`SELECT id::int, username FROM ${ctx.schema}.users ORDER BY id`)).toEqual([
      { id: 1, username: null },
      { id: 2, username: 'grace' },
    ]);
  });

  it('idempotent: after expand, the plan is empty and a second expand records no event', async () => {
    const ctx = getCtx();
    await ctx.sql(`CREATE TABLE ${ctx.schema}.users (id bigint PRIMARY KEY, user_name text, visits int)`);
    const migration = usersMigration(ctx, [
      rename({ field: 'username', from: 'user_name', to: 'username' }),
      changeType({
        field: 'visits',
        from: { column: 'visits', type: 'integer' },
        to: { column: 'visits_big', type: 'bigint' },
      }),
    ]);
    const options = { stateSchema: ctx.schema, indexes: [{ columns: ['username'], unique: true }] };
    const first = await expand(ctx.driver, migration, options);
    expect(first.steps.length).toBe(4);
    const catalog = await catalogOf(ctx);
    expect(await planExpand(ctx.driver, migration, options)).toEqual([]);
    const second = await expand(ctx.driver, migration, options);
    expect(second.steps).toEqual([]);
    expect(await catalogOf(ctx)).toEqual(catalog);
    expect((await listEvents(ctx.driver, migration.name, ctx.schema)).map((event) => event.kind)).toEqual(['expand']);
  });

  it('a re-expand that adds the new columns again forgets the backfill done on the dropped ones', async () => {
    const ctx = getCtx();
    await ctx.sql(`CREATE TABLE ${ctx.schema}.users (id bigint PRIMARY KEY, user_name text, visits int)`);
    await ctx.sql(`INSERT INTO ${ctx.schema}.users SELECT g, 'u' || g, g FROM generate_series(1, 30) g`);
    const migration = usersMigration(ctx);
    await expand(ctx.driver, migration, { stateSchema: ctx.schema });
    await createBackfill(ctx.driver, migration, { stateSchema: ctx.schema }).run();
    expect(await backfillStatus(ctx.driver, migration.name, ctx.schema)).toMatchObject({ status: 'done' });
    // expand's rollback drops the column (and with it what the backfill filled).
    await ctx.sql(`ALTER TABLE ${ctx.schema}.users DROP COLUMN username`);
    const again = await expand(ctx.driver, migration, { stateSchema: ctx.schema });
    expect(again.steps.map((step) => step.description)).toEqual([`add column username to ${ctx.schema}.users`]);
    expect(await backfillStatus(ctx.driver, migration.name, ctx.schema)).toBeUndefined();
    const events = await listEvents(ctx.driver, migration.name, ctx.schema);
    expect(events.at(-1)).toMatchObject({ kind: 'expand', details: { backfillReset: true } });
  });

  it('dry run: returns the planned SQL in order and leaves the catalog and the state tables untouched', async () => {
    const ctx = getCtx();
    await ctx.sql(`CREATE TABLE ${ctx.schema}.users (id bigint PRIMARY KEY, user_name text, visits int)`);
    const migration = usersMigration(ctx);
    const before = await catalogOf(ctx);
    const report = await expand(ctx.driver, migration, {
      dryRun: true,
      stateSchema: ctx.schema,
      indexes: [{ columns: ['username'] }],
    });
    expect(await catalogOf(ctx)).toEqual(before);
    expect(report.ddl.dryRun).toBe(true);
    const statements = report.ddl.sql.filter((sql) => !/^(BEGIN|COMMIT|SET|RESET)\b/.test(sql));
    expect(statements).toEqual(report.steps.map((step) => step.sql));
    expect(statements[0]).toBe(`ALTER TABLE "${ctx.schema}"."users" ADD COLUMN IF NOT EXISTS "username" text`);
    expect(statements[1]).toBe(
      `CREATE INDEX CONCURRENTLY "users_username_idx" ON "${ctx.schema}"."users" ("username")`,
    );
    // The SQL runs as printed: executing the dry run's statements gives what expand gives.
    const runner: { query(sql: string): Promise<unknown> } = ctx.kind === 'pg' ? await ctx.pgClient() : ctx.admin;
    for (const sql of report.ddl.sql) await runner.query(sql);
    expect(await planExpand(ctx.driver, migration, { indexes: [{ columns: ['username'] }] })).toEqual([]);
  });

  it('a changed sync function (a corrected SQL form) is replaced; the triggers stay', async () => {
    const ctx = getCtx();
    await ctx.sql(`CREATE TABLE ${ctx.schema}.users (id bigint PRIMARY KEY, user_name text, visits int)`);
    await expand(ctx.driver, usersMigration(ctx, [visitsTimes(2)]), { stateSchema: ctx.schema });
    const steps = await planExpand(ctx.driver, usersMigration(ctx, [visitsTimes(3)]));
    expect(steps.map((step) => step.description)).toEqual([expect.stringMatching(/^replace sync function /)]);
    await expand(ctx.driver, usersMigration(ctx, [visitsTimes(3)]), { stateSchema: ctx.schema });
    await ctx.sql(`INSERT INTO ${ctx.schema}.users (id, user_name, visits) VALUES (1, 'a', 5)`);
    expect(await ctx.sql(`SELECT visits_x::int FROM ${ctx.schema}.users`)).toEqual([{ visits_x: 15 }]);
  });

  it("a sync trigger created without the backfill's skip condition is replaced with it, and the undo restores it", async () => {
    const ctx = getCtx();
    const s = ctx.schema;
    const { migration, trigger } = await expandedWithOldTrigger(ctx);
    const conditional = async () =>
      (await loadTableCatalog(ctx.driver, migration.table.table)).conditionalTriggers.has(trigger.name);
    expect(await conditional()).toBe(false);
    const steps = await planExpand(ctx.driver, migration);
    expect(steps.map((step) => [step.description, step.sql, step.rollback])).toEqual([
      [
        `replace sync trigger "${trigger.name}" on ${migration.table.table.display} (skip the backfill's own writes)`,
        trigger.replace,
        trigger.unconditioned,
      ],
    ]);
    const changedBefore = await lastWritePathChange(ctx.driver, migration.name, s);
    expect(changedBefore).toBeInstanceOf(Date);
    await expand(ctx.driver, migration, { stateSchema: s });
    expect(await conditional()).toBe(true);
    expect(await planExpand(ctx.driver, migration)).toEqual([]);
    // Recorded, as leaving the write path as it was: a verification from before stands.
    const events = await listEvents(ctx.driver, migration.name, s);
    expect(events.at(-1)).toMatchObject({ kind: 'expand', details: { writePathChanged: false } });
    expect(await lastWritePathChange(ctx.driver, migration.name, s)).toEqual(changedBefore);
    // Still the one trigger, still syncing.
    await ctx.sql(`INSERT INTO ${s}.users (id, user_name) VALUES (1, 'ada')`);
    expect(await ctx.sql(`SELECT username FROM ${s}.users`)).toEqual([{ username: 'ada' }]);
    expect(
      await ctx.sql(
        `SELECT count(*)::int AS n FROM pg_trigger WHERE tgrelid = '${s}.users'::regclass AND NOT tgisinternal`,
      ),
    ).toEqual([{ n: 1 }]);
  });

  it('a condition-less sync trigger someone disabled is left as it is', async () => {
    const ctx = getCtx();
    const { migration, trigger } = await expandedWithOldTrigger(ctx);
    await ctx.sql(`ALTER TABLE ${ctx.schema}.users DISABLE TRIGGER "${trigger.name}"`);
    expect(await planExpand(ctx.driver, migration)).toEqual([]);
  });

  it('an expand that replaces a trigger and changes a sync function changes the write path', async () => {
    const ctx = getCtx();
    const s = ctx.schema;
    await expandedWithOldTrigger(ctx, [visitsTimes(2)]);
    const changedBefore = await lastWritePathChange(ctx.driver, 'users-expand', s);
    const steps = await planExpand(ctx.driver, usersMigration(ctx, [visitsTimes(3)]));
    expect(steps.map((step) => step.refresh === true)).toEqual([false, true]);
    await expand(ctx.driver, usersMigration(ctx, [visitsTimes(3)]), { stateSchema: s });
    const events = await listEvents(ctx.driver, 'users-expand', s);
    expect(events.at(-1)!.details).not.toHaveProperty('writePathChanged');
    expect((await lastWritePathChange(ctx.driver, 'users-expand', s))!.getTime()).toBeGreaterThan(
      changedBefore!.getTime(),
    );
  });

  it('a new column without a type that cannot be inferred is a ConfigurationError naming it', async () => {
    const ctx = getCtx();
    await ctx.sql(`CREATE TABLE ${ctx.schema}.users (id bigint PRIMARY KEY, user_name text, visits int)`);
    const migration = usersMigration(ctx, [
      customMapping({
        fields: { visits: 'visits_new' },
        old: [{ column: 'visits', kind: 'number' }],
        forward: (old) => [...old],
        backward: (values) => [...values],
        sql: { forward: { visits_new: '{visits}' }, backward: { visits: '{visits_new}' } },
      }),
    ]);
    const error = await planExpand(ctx.driver, migration).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as Error).message).toMatch(/new column "t_\w+\.users\.visits_new" .* has no SQL type/);
  });

  it('missing table or old column: a ConfigurationError naming it, and nothing planned', async () => {
    const ctx = getCtx();
    const migration = usersMigration(ctx);
    await expect(planExpand(ctx.driver, migration)).rejects.toThrow(
      `table ${ctx.schema}.users named by migration "users-expand" does not exist`,
    );
    await ctx.sql(`CREATE TABLE ${ctx.schema}.users (id bigint PRIMARY KEY, name text, visits int)`);
    await expect(planExpand(ctx.driver, migration)).rejects.toThrow(
      `column "${ctx.schema}.users.user_name" named by migration "users-expand" does not exist (old and key columns must exist before expand)`,
    );
    // After contract: the new column there, the old one gone.
    await ctx.sql(`ALTER TABLE ${ctx.schema}.users ADD COLUMN username text`);
    await expect(planExpand(ctx.driver, migration)).rejects.toThrow(
      /user_name" .* does not exist \(the new columns are there and the old ones gone: contract has dropped them/,
    );
  });

  it('options: unknown options and indexes on columns that are not new are refused', async () => {
    const ctx = getCtx();
    await ctx.sql(`CREATE TABLE ${ctx.schema}.users (id bigint PRIMARY KEY, user_name text, visits int)`);
    const migration = usersMigration(ctx);
    await expect(planExpand(ctx.driver, migration, { index: [] } as never)).rejects.toThrow(
      /option "index" is not a known option/,
    );
    await expect(planExpand(ctx.driver, migration, { indexes: [{ columns: ['visits'] }] })).rejects.toThrow(
      /option "indexes.0.columns" must name new columns of the migration, got "visits"/,
    );
    await expect(planExpand(ctx.driver, migration, { defaults: { nope: 1 } })).rejects.toThrow(
      /option "defaults" must name new columns of the migration, got "nope"/,
    );
  });

  it('defaults: the new column gets a constant default; an old writer still gets new = forward(old)', async () => {
    const ctx = getCtx();
    const s = ctx.schema;
    await ctx.sql(`CREATE TABLE ${s}.users (id bigint PRIMARY KEY, user_name text, visits int)`);
    await ctx.sql(`INSERT INTO ${s}.users VALUES (1, 'ada', 0)`);
    const migration = usersMigration(ctx);
    const report = await expand(ctx.driver, migration, { stateSchema: s, defaults: { username: "anon'ymous" } });
    expect(report.steps[0]!.sql).toBe(
      `ALTER TABLE "${s}"."users" ADD COLUMN IF NOT EXISTS "username" text DEFAULT 'anon''ymous'::text`,
    );
    await ctx.sql(`INSERT INTO ${s}.users (id, user_name) VALUES (2, 'grace')`);
    await ctx.sql(`INSERT INTO ${s}.users (id, username) VALUES (3, 'linus')`);
    expect(await ctx.sql(`SELECT id::int, user_name, username FROM ${s}.users ORDER BY id`)).toEqual([
      { id: 1, user_name: 'ada', username: "anon'ymous" },
      { id: 2, user_name: 'grace', username: 'grace' },
      { id: 3, user_name: 'linus', username: 'linus' },
    ]);
    // Re-runs plan nothing, with the option or without it (the catalog's default is used then).
    expect(await planExpand(ctx.driver, migration, { defaults: { username: "anon'ymous" } })).toEqual([]);
    expect(await planExpand(ctx.driver, migration)).toEqual([]);
  });

  it('moveColumn: a missing side table is created with a primary key and a foreign key, then kept in sync', async () => {
    const ctx = getCtx();
    const s = ctx.schema;
    await ctx.sql(`CREATE TABLE ${s}.users (id integer PRIMARY KEY, user_name text, visits int, bio varchar(200))`);
    const users = defineTable({
      name: `${s}.users`,
      key: 'id',
      entity: z.object({ id: z.number().int(), bio: z.string().nullable() }),
    });
    const migration = defineMigration({
      name: 'users-bio',
      table: users,
      mappings: [
        moveColumn({ field: 'bio', from: 'bio', to: { table: `${s}.profiles`, column: 'bio', key: ['user_id'] } }),
      ],
      defaultStage: 'off',
    });
    await expect(planExpand(ctx.driver, migration, { createSideTables: false })).rejects.toThrow(
      `side table ${s}.profiles of migration "users-bio" does not exist; create it`,
    );
    const report = await expand(ctx.driver, migration, { stateSchema: s, indexes: [{ columns: ['bio'] }] });
    expect(report.steps[0]!.sql).toBe(
      `CREATE TABLE IF NOT EXISTS "${s}"."profiles" ("user_id" integer, "bio" character varying(200), PRIMARY KEY ("user_id"), CONSTRAINT "profiles_users_fkey" FOREIGN KEY ("user_id") REFERENCES "${s}"."users" ("id") ON DELETE CASCADE ON UPDATE CASCADE)`,
    );
    expect(
      await ctx.sql(
        `SELECT contype::text FROM pg_constraint WHERE conrelid = '${s}.profiles'::regclass AND contype IN ('f', 'p') ORDER BY 1`,
      ),
    ).toEqual([{ contype: 'f' }, { contype: 'p' }]);
    await ctx.sql(`INSERT INTO ${s}.users (id, bio) VALUES (1, 'hello')`);
    expect(await ctx.sql(`SELECT user_id, bio FROM ${s}.profiles`)).toEqual([{ user_id: 1, bio: 'hello' }]);
    expect(await planExpand(ctx.driver, migration, { indexes: [{ columns: ['bio'] }] })).toEqual([]);
  });

  it('moveColumn: an existing side table without a unique key on its key columns is refused', async () => {
    const ctx = getCtx();
    const s = ctx.schema;
    await ctx.sql(`CREATE TABLE ${s}.users (id integer PRIMARY KEY, bio text)`);
    await ctx.sql(`CREATE TABLE ${s}.profiles (user_id integer, bio text)`);
    const users = defineTable({
      name: `${s}.users`,
      key: 'id',
      entity: z.object({ id: z.number().int(), bio: z.string() }),
    });
    const migration = defineMigration({
      name: 'users-bio',
      table: users,
      mappings: [
        moveColumn({ field: 'bio', from: 'bio', to: { table: `${s}.profiles`, column: 'bio', key: ['user_id'] } }),
      ],
      defaultStage: 'off',
    });
    await expect(planExpand(ctx.driver, migration)).rejects.toThrow(
      `side table ${s}.profiles of migration "users-bio" has no primary key or unique constraint on (user_id)`,
    );
  });

  it('an invalid index (a unique build that failed on duplicates) is dropped and rebuilt once the data is fixed', async () => {
    const ctx = getCtx();
    const s = ctx.schema;
    await ctx.sql(`CREATE TABLE ${s}.users (id bigint PRIMARY KEY, user_name text, username text, visits int)`);
    await ctx.sql(`INSERT INTO ${s}.users VALUES (1, 'a', 'dup', 0), (2, 'b', 'dup', 0)`);
    const migration = usersMigration(ctx);
    const options = { stateSchema: s, indexes: [{ columns: ['username'], unique: true }] };
    await expect(expand(ctx.driver, migration, options)).rejects.toMatchObject({ sqlState: '23505' });
    // Left behind as an interrupted build would leave it.
    await ctx
      .sql(`CREATE UNIQUE INDEX CONCURRENTLY users_username_idx ON ${s}.users (username)`)
      .catch(() => undefined);
    expect(
      await ctx.sql(`SELECT indisvalid FROM pg_index WHERE indexrelid = '${s}.users_username_idx'::regclass`),
    ).toEqual([{ indisvalid: false }]);
    await ctx.sql(`UPDATE ${s}.users SET username = 'b' WHERE id = 2`);
    const steps = await planExpand(ctx.driver, migration, options);
    expect(steps.map((step) => step.sql)).toEqual([
      `DROP INDEX CONCURRENTLY IF EXISTS "${s}"."users_username_idx"`,
      `CREATE UNIQUE INDEX CONCURRENTLY "users_username_idx" ON "${s}"."users" ("username")`,
      expect.stringMatching(/^CREATE OR REPLACE FUNCTION/),
      expect.stringMatching(/^CREATE TRIGGER/),
    ]);
    await expand(ctx.driver, migration, options);
    expect(
      await ctx.sql(`SELECT indisvalid FROM pg_index WHERE indexrelid = '${s}.users_username_idx'::regclass`),
    ).toEqual([{ indisvalid: true }]);
  });
});

describeDrivers(
  'expand against a table locked by another session',
  (getCtx) => {
    async function lockFor(ctx: DriverContext, ms: number): Promise<{ released: Promise<void> }> {
      const holder = await ctx.pgClient();
      await holder.query('BEGIN');
      await holder.query(`LOCK TABLE ${ctx.schema}.users IN ACCESS EXCLUSIVE MODE`);
      const released = new Promise<void>((resolve) => {
        setTimeout(() => {
          holder.query('COMMIT').then(
            () => resolve(),
            () => resolve(),
          );
        }, ms);
      });
      return { released };
    }

    it('lock_timeout: expand times out on the lock, backs off, retries, and succeeds once the lock is gone', async () => {
      const ctx = getCtx();
      await ctx.sql(`CREATE TABLE ${ctx.schema}.users (id bigint PRIMARY KEY, user_name text, visits int)`);
      const migration = usersMigration(ctx);
      const { released } = await lockFor(ctx, 1500);
      const events: LifecycleEvent[] = [];
      const report = await expand(ctx.driver, migration, {
        stateSchema: ctx.schema,
        lockTimeoutMs: 100,
        maxAttempts: 30,
        baseDelayMs: 50,
        maxDelayMs: 200,
        onEvent: (event) => events.push(event),
      });
      await released;
      expect(report.ddl.steps[0]!.attempts).toBeGreaterThan(1);
      const retries = events.filter((event) => event.type === 'ddl-retry');
      expect(retries.length).toBe(report.ddl.steps[0]!.attempts - 1);
      expect(retries.every((event) => event['sqlState'] === '55P03' && event.migration === migration.name)).toBe(true);
      expect(await columnType(ctx, 'users', 'username')).toBe('text');
    });

    it('lock_timeout with maxAttempts 1: fails with a DriverError carrying 55P03, and nothing is changed', async () => {
      const ctx = getCtx();
      await ctx.sql(`CREATE TABLE ${ctx.schema}.users (id bigint PRIMARY KEY, user_name text, visits int)`);
      const migration = usersMigration(ctx);
      const { released } = await lockFor(ctx, 600);
      const error = await expand(ctx.driver, migration, {
        stateSchema: ctx.schema,
        lockTimeoutMs: 100,
        maxAttempts: 1,
      }).catch((e: unknown) => e);
      await released;
      expect(error).toBeInstanceOf(DriverError);
      expect((error as DriverError).sqlState).toBe('55P03');
      expect((error as Error).message).toMatch(/gave up after 1 attempt \(lock_timeout 100 ms\)/);
      expect(await columnType(ctx, 'users', 'username')).toBeUndefined();
    });
  },
  { kinds: ['pg'] },
);
