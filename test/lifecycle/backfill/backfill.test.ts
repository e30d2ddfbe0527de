import {
  ConfigurationError,
  changeType,
  createMemoryFlags,
  createRepository,
  defineMigration,
  defineTable,
  moveColumn,
  rename,
} from 'flagshift';
import { expect, it } from 'vitest';
import { z } from 'zod';
import { createBackfill } from '../../../src/lifecycle/backfill/backfill.js';
import type { BackfillProgress } from '../../../src/lifecycle/backfill/backfill-options.js';
import { expand } from '../../../src/lifecycle/ddl/expand.js';
import { syncTriggerObjects } from '../../../src/lifecycle/ddl/sync-triggers.js';
import { backfillStatus, listEvents } from '../../../src/lifecycle/state/index.js';
import { verify } from '../../../src/lifecycle/verify.js';
import { type DriverContext, describeDrivers } from '../../support/drivers.js';
import {
  bioMoveMigration,
  countMarkedWrites,
  createItems,
  itemsMigration,
  peopleSplitMigration,
  updateCounts,
} from '../fixtures/data.js';

/**
 * `users(id, user_name, bio)` with 30 rows and an empty `profiles(user_id, bio)`, and a
 * migration (`name`) renaming `user_name` to `username` and moving `bio` to `profiles`;
 * `wrong()` lists the ids whose new side differs from the old.
 */
async function mixedUsers(ctx: DriverContext, name: string) {
  const s = ctx.schema;
  await ctx.sql(`CREATE TABLE ${s}.users (id int PRIMARY KEY, user_name text, bio text)`);
  await ctx.sql(`CREATE TABLE ${s}.profiles (user_id int PRIMARY KEY, bio text)`);
  await ctx.sql(
    `INSERT INTO ${s}.users (id, user_name, bio) SELECT g, 'u' || g, 'b' || g FROM generate_series(1, 30) g`,
  );
  const users = defineTable({
    name: `${s}.users`,
    key: 'id',
    entity: z.object({ id: z.number().int(), username: z.string().nullable(), bio: z.string().nullable() }),
  });
  const migration = defineMigration({
    name,
    table: users,
    mappings: [
      rename({ field: 'username', from: 'user_name', to: 'username', type: 'text' }),
      moveColumn({ field: 'bio', from: 'bio', to: { table: `${s}.profiles`, column: 'bio', key: ['user_id'] } }),
    ],
    defaultStage: 'off',
  });
  const wrong = () =>
    ctx.sql(
      `SELECT u.id FROM ${s}.users u LEFT JOIN ${s}.profiles p ON p.user_id = u.id
        WHERE u.username IS DISTINCT FROM u.user_name OR p.bio IS DISTINCT FROM u.bio`,
    );
  return { migration, wrong };
}

describeDrivers('backfill', (getCtx) => {
  it('rename: fills every row from the old column in keyset batches and records the pass', async () => {
    const ctx = getCtx();
    const table = await createItems(ctx.admin, ctx.schema, 250);
    const migration = itemsMigration(table);
    const events: string[] = [];
    const report = await createBackfill(ctx.driver, migration, {
      stateSchema: ctx.schema,
      batchSize: 40,
      minBatchSize: 40,
      maxBatchSize: 40,
      onEvent: (event) => events.push(event.type),
    }).run();
    expect(report).toMatchObject({ status: 'done', pass: 1, rowsDone: 250, rowsChanged: 250, totalRowsDone: 250 });
    expect(report.batches).toBe(7);
    const wrong = await ctx.sql(`SELECT id FROM ${table} WHERE new_name IS DISTINCT FROM old_name`);
    expect(wrong).toEqual([]);
    expect(await updateCounts(ctx.admin, table)).toEqual({ 1: 250 });
    const status = await backfillStatus(ctx.admin, migration.name, ctx.schema);
    expect(status).toMatchObject({ status: 'done', pass: 1, rowsDone: 250, rowsChanged: 250, upperKey: ['250'] });
    const logged = await listEvents(ctx.admin, migration.name, ctx.schema);
    expect(logged.map((event) => [event.kind, event.details['action']])).toEqual([
      ['backfill', 'started'],
      ['backfill', 'finished'],
    ]);
    expect(events).toContain('backfill-batch');
    expect(events.at(-1)).toBe('backfill-done');
  });

  it('idempotent: a second pass scans every row and changes none', async () => {
    const ctx = getCtx();
    const table = await createItems(ctx.admin, ctx.schema, 120);
    const migration = itemsMigration(table);
    const options = { stateSchema: ctx.schema, batchSize: 50 };
    await createBackfill(ctx.driver, migration, options).run();
    const again = await createBackfill(ctx.driver, migration, options).run();
    expect(again).toMatchObject({ status: 'done', pass: 2, rowsDone: 120, rowsChanged: 0 });
    expect(await updateCounts(ctx.admin, table)).toEqual({ 1: 120 });
    // One drifted row is repaired by a re-run, and only that one.
    await ctx.sql(`UPDATE ${table} SET new_name = 'drift' WHERE id = 7`);
    const repair = await createBackfill(ctx.driver, migration, options).run();
    expect(repair).toMatchObject({ pass: 3, rowsChanged: 1 });
    expect(await ctx.sql(`SELECT new_name FROM ${table} WHERE id = 7`)).toEqual([{ new_name: 'name-7' }]);
  });

  it('whenDone skip: a worker arriving after the pass finished does nothing', async () => {
    const ctx = getCtx();
    const table = await createItems(ctx.admin, ctx.schema, 30);
    const migration = itemsMigration(table);
    await createBackfill(ctx.driver, migration, { stateSchema: ctx.schema }).run();
    const late = await createBackfill(ctx.driver, migration, { stateSchema: ctx.schema, whenDone: 'skip' }).run();
    expect(late).toMatchObject({ status: 'done', skipped: true, pass: 1, rowsDone: 0, batches: 0 });
  });

  it('split: fills each part from the SQL forward forms', async () => {
    const ctx = getCtx();
    await ctx.sql(`CREATE TABLE ${ctx.schema}.people (id int PRIMARY KEY, name text, first_name text, last_name text)`);
    await ctx.sql(
      `INSERT INTO ${ctx.schema}.people (id, name) VALUES (1, 'Ada Lovelace'), (2, 'Plato'), (3, NULL), (4, 'Jean Luc Picard')`,
    );
    const migration = peopleSplitMigration(ctx.schema);
    const report = await createBackfill(ctx.driver, migration, { stateSchema: ctx.schema, batchSize: 3 }).run();
    expect(report.rowsChanged).toBe(3);
    expect(await ctx.sql(`SELECT id, first_name, last_name FROM ${ctx.schema}.people ORDER BY id`)).toEqual([
      { id: 1, first_name: 'Ada', last_name: 'Lovelace' },
      { id: 2, first_name: 'Plato', last_name: null },
      { id: 3, first_name: null, last_name: null },
      { id: 4, first_name: 'Jean', last_name: 'Luc Picard' },
    ]);
  });

  it('split: a new side the SDK or a sync trigger wrote stands, though forward(old) would split it otherwise', async () => {
    const ctx = getCtx();
    const s = ctx.schema;
    await ctx.sql(`CREATE TABLE ${s}.people (id int PRIMARY KEY, name text)`);
    await ctx.sql(
      `INSERT INTO ${s}.people (id, name) VALUES (1, 'Ada Lovelace'), (2, 'Jean Luc Picard'), (3, 'Plato')`,
    );
    const migration = peopleSplitMigration(s);
    await expand(ctx.driver, migration, { stateSchema: s });
    const flags = createMemoryFlags({ [migration.stageFlagKey]: 'dualwrite' });
    const repo = createRepository(migration, { driver: ctx.driver, flags, flagCache: { ttlMs: 0 } });
    // Dual writes whose parts forward(old) can't give back: "Mary Ann Evans" splits as "Mary" / "Ann Evans".
    await repo.insert({ id: 4, firstName: 'Mary Ann', lastName: 'Evans' });
    await repo.update(2, { firstName: 'Jean Luc', lastName: 'Picard' });
    // At complete only new is written; the sync trigger derives old from it.
    flags.set(migration.stageFlagKey, 'complete');
    await repo.insert({ id: 5, firstName: 'Simone de', lastName: 'Beauvoir' });
    // Drift no writer explains (old is not what new joins to) is still repaired from old.
    await ctx.sql(`ALTER TABLE ${s}.people DISABLE TRIGGER USER`);
    await ctx.sql(`UPDATE ${s}.people SET first_name = 'Plat', last_name = 'O' WHERE id = 3`);
    await ctx.sql(`ALTER TABLE ${s}.people ENABLE TRIGGER USER`);
    const before = await verify(ctx.driver, migration, { stateSchema: s });
    expect(before).toMatchObject({ passed: false, missingRows: 1, mismatchedRows: 1 });

    const report = await createBackfill(ctx.driver, migration, { stateSchema: s, batchSize: 2 }).run();
    expect(report.rowsChanged).toBe(2);
    expect(await ctx.sql(`SELECT id, name, first_name, last_name FROM ${s}.people ORDER BY id`)).toEqual([
      { id: 1, name: 'Ada Lovelace', first_name: 'Ada', last_name: 'Lovelace' },
      { id: 2, name: 'Jean Luc Picard', first_name: 'Jean Luc', last_name: 'Picard' },
      { id: 3, name: 'Plato', first_name: 'Plato', last_name: null },
      { id: 4, name: 'Mary Ann Evans', first_name: 'Mary Ann', last_name: 'Evans' },
      { id: 5, name: 'Simone de Beauvoir', first_name: 'Simone de', last_name: 'Beauvoir' },
    ]);
    expect(await verify(ctx.driver, migration, { stateSchema: s })).toMatchObject({
      passed: true,
      checkedRows: 5,
      missingRows: 0,
      mismatchedRows: 0,
    });
    // A second pass finds nothing to do.
    expect((await createBackfill(ctx.driver, migration, { stateSchema: s }).run()).rowsChanged).toBe(0);
  });

  it('changeType: casts into the new column type', async () => {
    const ctx = getCtx();
    await ctx.sql(`CREATE TABLE ${ctx.schema}.stats (id int PRIMARY KEY, visits int, visits_big bigint)`);
    await ctx.sql(`INSERT INTO ${ctx.schema}.stats SELECT g, g * 1000, NULL FROM generate_series(1, 20) g`);
    const stats = defineTable({
      name: `${ctx.schema}.stats`,
      key: 'id',
      entity: z.object({ id: z.number().int(), visits: z.number().int().nullable() }),
    });
    const migration = defineMigration({
      name: 'stats-visits',
      table: stats,
      mappings: [
        changeType({
          field: 'visits',
          from: { column: 'visits', type: 'integer' },
          to: { column: 'visits_big', type: 'bigint' },
        }),
      ],
      defaultStage: 'off',
    });
    const report = await createBackfill(ctx.driver, migration, { stateSchema: ctx.schema }).run();
    expect(report.rowsChanged).toBe(20);
    const rows = await ctx.sql<{ n: unknown }>(
      `SELECT count(*)::int AS n FROM ${ctx.schema}.stats WHERE visits_big = visits::bigint`,
    );
    expect(rows[0]!.n).toBe(20);
  });

  it('changeType to varchar(n): a value too long stops the backfill instead of being cut, and verify sees it', async () => {
    const ctx = getCtx();
    const s = ctx.schema;
    await ctx.sql(`CREATE TABLE ${s}.codes (id int PRIMARY KEY, code text, code_short varchar(5))`);
    await ctx.sql(`INSERT INTO ${s}.codes (id, code) VALUES (1, 'abc'), (2, 'abcdef')`);
    const codes = defineTable({
      name: `${s}.codes`,
      key: 'id',
      entity: z.object({ id: z.number().int(), code: z.string().nullable() }),
    });
    const migration = defineMigration({
      name: 'codes-short',
      table: codes,
      mappings: [
        changeType({
          field: 'code',
          from: { column: 'code', type: 'text' },
          to: { column: 'code_short', type: 'varchar(5)' },
        }),
      ],
      defaultStage: 'off',
    });
    await expect(createBackfill(ctx.driver, migration, { stateSchema: s, maxRetries: 0 }).run()).rejects.toMatchObject({
      sqlState: '22001',
    });
    expect(await ctx.sql(`SELECT id, code_short FROM ${s}.codes ORDER BY id`)).toEqual([
      { id: 1, code_short: null },
      { id: 2, code_short: null },
    ]);
    // A cut value written some other way is a mismatch, not a match with a cut forward(old).
    await ctx.sql(`UPDATE ${s}.codes SET code_short = left(code, 5)`);
    expect(await verify(ctx.driver, migration, { stateSchema: s })).toMatchObject({
      passed: false,
      mismatchedRows: 1,
    });
  });

  it('changeType between timestamp and timestamptz: the SQL forms read the wall clock as UTC in any session TimeZone', async () => {
    const ctx = getCtx();
    const s = ctx.schema;
    await ctx.sql(`CREATE TABLE ${s}.seen (id int PRIMARY KEY, at timestamp, at_tz timestamptz, back timestamp)`);
    await ctx.sql(`INSERT INTO ${s}.seen (id, at) VALUES (1, '2024-06-01 12:00:00')`);
    const spec = changeType({
      field: 'at',
      from: { column: 'at', type: 'timestamp' },
      to: { column: 'at_tz', type: 'timestamptz' },
    });
    const forward = spec.sql!.forward[0]!.replace('{at}', 'at');
    const backward = spec.sql!.backward[0]!.replace('{at_tz}', 'at_tz');
    await ctx.driver.transaction(async (tx) => {
      await tx.query(`SET LOCAL TimeZone = 'Asia/Tokyo'`);
      await tx.query(`UPDATE ${s}.seen SET at_tz = ${forward}`);
      await tx.query(`UPDATE ${s}.seen SET back = ${backward}`);
    });
    const rows = await ctx.sql<{ utc: string; back: string }>(
      `SELECT to_char(at_tz AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') AS utc, to_char(back, 'YYYY-MM-DD HH24:MI') AS back FROM ${s}.seen`,
    );
    expect(rows).toEqual([{ utc: '2024-06-01 12:00', back: '2024-06-01 12:00' }]);
  });

  it('move: upserts side rows, leaving correct ones untouched', async () => {
    const ctx = getCtx();
    const s = ctx.schema;
    await ctx.sql(`CREATE TABLE ${s}.users (id int PRIMARY KEY, bio text)`);
    await ctx.sql(`CREATE TABLE ${s}.profiles (user_id int PRIMARY KEY REFERENCES ${s}.users (id), bio text)`);
    await ctx.sql(
      `INSERT INTO ${s}.users SELECT g, CASE WHEN g % 5 = 0 THEN NULL ELSE 'bio ' || g END FROM generate_series(1, 60) g`,
    );
    // A side row already right, one wrong: the upsert changes only the wrong one.
    await ctx.sql(`INSERT INTO ${s}.profiles VALUES (1, 'bio 1'), (2, 'stale')`);
    const migration = bioMoveMigration(s);
    const report = await createBackfill(ctx.driver, migration, { stateSchema: s, batchSize: 16 }).run();
    expect(report).toMatchObject({ rowsDone: 60, rowsChanged: 59 });
    const differ = await ctx.sql(
      `SELECT u.id FROM ${s}.users u LEFT JOIN ${s}.profiles p ON p.user_id = u.id
        WHERE p.user_id IS NULL OR p.bio IS DISTINCT FROM u.bio`,
    );
    expect(differ).toEqual([]);
    const again = await createBackfill(ctx.driver, migration, { stateSchema: s }).run();
    expect(again.rowsChanged).toBe(0);
  });

  it("move, side table made by expand: a plain update of a main row's key takes its side row along", async () => {
    const ctx = getCtx();
    const s = ctx.schema;
    await ctx.sql(`CREATE TABLE ${s}.users (id int PRIMARY KEY, bio text)`);
    await ctx.sql(`INSERT INTO ${s}.users VALUES (1, 'a'), (2, 'b')`);
    const migration = bioMoveMigration(s, 'text');
    await expand(ctx.driver, migration, { stateSchema: s });
    await createBackfill(ctx.driver, migration, { stateSchema: s }).run();
    // As a writer that predates the migration would.
    await ctx.sql(`UPDATE ${s}.users SET id = 10 WHERE id = 1`);
    expect(await ctx.sql(`SELECT user_id, bio FROM ${s}.profiles ORDER BY user_id`)).toEqual([
      { user_id: 2, bio: 'b' },
      { user_id: 10, bio: 'a' },
    ]);
    expect((await verify(ctx.driver, migration, { stateSchema: s })).passed).toBe(true);
  });

  it('mixed: a same-row rename and a cross-table move of one migration are filled by one batch statement', async () => {
    const ctx = getCtx();
    const s = ctx.schema;
    const { migration, wrong } = await mixedUsers(ctx, 'users-mixed');
    await ctx.sql(`ALTER TABLE ${s}.users ADD COLUMN username text`);
    const report = await createBackfill(ctx.driver, migration, { stateSchema: s, batchSize: 7 }).run();
    expect(report).toMatchObject({ rowsDone: 30, rowsChanged: 30 });
    expect(await wrong()).toEqual([]);
  });

  it("after expand: no sync trigger function is called for the batches' rows; a plain write still calls them", async () => {
    const ctx = getCtx();
    const s = ctx.schema;
    const { migration } = await mixedUsers(ctx, 'users-skipped');
    await expand(ctx.driver, migration);
    // Each sync function counts its calls instead; the triggers stay as expand made them.
    await ctx.sql(`CREATE SEQUENCE ${s}.sync_calls`);
    const functions = syncTriggerObjects(migration).functions;
    expect(functions).toHaveLength(3);
    for (const fn of functions) {
      await ctx.sql(
        `CREATE OR REPLACE FUNCTION ${fn.name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM nextval('${s}.sync_calls'); RETURN NEW; END $$`,
      );
    }
    const calls = async () =>
      (
        await ctx.sql<{ n: number }>(
          `SELECT (CASE WHEN is_called THEN last_value ELSE 0 END)::int AS n FROM ${s}.sync_calls`,
        )
      )[0]!.n;
    const report = await createBackfill(ctx.driver, migration, { stateSchema: s, batchSize: 7 }).run();
    expect(report).toMatchObject({ rowsDone: 30, rowsChanged: 30 });
    expect(await calls()).toBe(0);
    // The same kind of writes, unmarked: both triggers of users (same row, and the one
    // that follows it to the side table), then the side table's own.
    await ctx.sql(`UPDATE ${s}.users SET username = 'by hand' WHERE id = 1`);
    expect(await calls()).toBe(2);
    await ctx.sql(`UPDATE ${s}.profiles SET bio = 'by hand' WHERE user_id = 1`);
    expect(await calls()).toBe(3);
  });

  it("after expand: each batch is marked as the migration's backfill, and every row ends right", async () => {
    const ctx = getCtx();
    const s = ctx.schema;
    const { migration, wrong } = await mixedUsers(ctx, 'users-marked');
    await expand(ctx.driver, migration);
    const markedUsers = await countMarkedWrites(ctx.admin, `${s}.users`, migration.name);
    const markedProfiles = await countMarkedWrites(ctx.admin, `${s}.profiles`, migration.name);
    const report = await createBackfill(ctx.driver, migration, { stateSchema: s, batchSize: 7 }).run();
    expect(report).toMatchObject({ rowsDone: 30, rowsChanged: 30 });
    expect([await markedUsers(), await markedProfiles()]).toEqual([30, 30]);
    expect(await wrong()).toEqual([]);
    // The mark was the batches' own: a plain writer afterwards is synced both ways.
    await ctx.sql(`UPDATE ${s}.users SET user_name = 'renamed', bio = 'moved' WHERE id = 1`);
    expect(await ctx.sql(`SELECT username FROM ${s}.users WHERE id = 1`)).toEqual([{ username: 'renamed' }]);
    expect(await ctx.sql(`SELECT bio FROM ${s}.profiles WHERE user_id = 1`)).toEqual([{ bio: 'moved' }]);
    expect([await markedUsers(), await markedProfiles()]).toEqual([30, 30]);
  });

  it("inside a caller's transaction: refused before anything is written", async () => {
    const ctx = getCtx();
    const table = await createItems(ctx.admin, ctx.schema, 30);
    const migration = itemsMigration(table);
    const options = { stateSchema: ctx.schema };
    // The caller's transaction commits: whatever the backfill had written would stay.
    await ctx.driver.transaction(async () => {
      await expect(createBackfill(ctx.driver, migration, options).run()).rejects.toThrow(
        new ConfigurationError(
          `backfill of migration "${migration.name}" refused inside a transaction: it commits each batch on its own; run it outside one`,
        ),
      );
    });
    expect(await ctx.sql(`SELECT count(*)::int AS n FROM ${table} WHERE new_name IS NOT NULL`)).toEqual([{ n: 0 }]);
    expect(await ctx.sql(`SELECT to_regclass('${ctx.schema}.backfill_checkpoints') IS NULL AS none`)).toEqual([
      { none: true },
    ]);
    // On its own it runs.
    const report = await createBackfill(ctx.driver, migration, options).run();
    expect(report).toMatchObject({ status: 'done', rowsDone: 30 });
  });

  it('json and point columns (no = operator): backfilled after expand, verified, a difference found', async () => {
    const ctx = getCtx();
    const s = ctx.schema;
    await ctx.sql(`CREATE TABLE ${s}.docs (id bigint PRIMARY KEY, old_doc json, old_at point)`);
    await ctx.sql(
      `INSERT INTO ${s}.docs VALUES (1, '{"a": 1, "b": [1, 2]}', '(1,2)'), (2, NULL, NULL), (3, '[]', '(0,0)')`,
    );
    const docs = defineTable({
      name: `${s}.docs`,
      key: 'id',
      entity: z.object({ id: z.number().int(), doc: z.unknown(), at: z.string().nullable() }),
    });
    const migration = defineMigration({
      name: 'docs-json',
      table: docs,
      mappings: [
        rename({ field: 'doc', from: 'old_doc', to: 'new_doc', type: 'json' }),
        rename({ field: 'at', from: 'old_at', to: 'new_at', type: 'point' }),
      ],
      defaultStage: 'off',
    });
    await expand(ctx.driver, migration, { stateSchema: s });
    const report = await createBackfill(ctx.driver, migration, { stateSchema: s }).run();
    expect(report).toMatchObject({ status: 'done', rowsDone: 3, rowsChanged: 2 });
    expect(
      await ctx.sql(`SELECT id::int AS id, new_doc::text AS doc, new_at::text AS at FROM ${s}.docs ORDER BY id`),
    ).toEqual([
      { id: 1, doc: '{"a": 1, "b": [1, 2]}', at: '(1,2)' },
      { id: 2, doc: null, at: null },
      { id: 3, doc: '[]', at: '(0,0)' },
    ]);
    // A second pass finds every row right, and so does verify.
    expect(await createBackfill(ctx.driver, migration, { stateSchema: s, restart: true }).run()).toMatchObject({
      rowsChanged: 0,
    });
    expect((await verify(ctx.driver, migration, { stateSchema: s })).passed).toBe(true);
    // Behind the triggers' back: verify sees the difference.
    await ctx.sql(`ALTER TABLE ${s}.docs DISABLE TRIGGER USER`);
    await ctx.sql(`UPDATE ${s}.docs SET new_doc = '{"a": 2}' WHERE id = 1`);
    await ctx.sql(`ALTER TABLE ${s}.docs ENABLE TRIGGER USER`);
    expect(await verify(ctx.driver, migration, { stateSchema: s })).toMatchObject({ passed: false, mismatchedRows: 1 });
  });

  it('composite key: batches by row comparison over (org_id, user_id)', async () => {
    const ctx = getCtx();
    const s = ctx.schema;
    await ctx.sql(
      `CREATE TABLE ${s}.memberships (org_id int, user_id text, role_name text, role text, PRIMARY KEY (org_id, user_id))`,
    );
    await ctx.sql(
      `INSERT INTO ${s}.memberships (org_id, user_id, role_name)
       SELECT o, 'u' || u, 'role-' || o || '-' || u FROM generate_series(1, 7) o, generate_series(1, 13) u`,
    );
    const memberships = defineTable({
      name: `${s}.memberships`,
      key: ['orgId', 'userId'],
      entity: z.object({ orgId: z.number().int(), userId: z.string(), role: z.string().nullable() }),
      columns: { orgId: 'org_id', userId: 'user_id' },
    });
    const migration = defineMigration({
      name: 'memberships-role',
      table: memberships,
      mappings: [rename({ field: 'role', from: 'role_name', to: 'role', type: 'text' })],
      defaultStage: 'off',
    });
    // Batches of 5 cut through orgs, so the row comparison carries the second column.
    const report = await createBackfill(ctx.driver, migration, {
      stateSchema: s,
      batchSize: 5,
      minBatchSize: 5,
      maxBatchSize: 5,
    }).run();
    expect(report).toMatchObject({ rowsDone: 91, rowsChanged: 91, batches: 19 });
    const wrong = await ctx.sql(`SELECT 1 FROM ${s}.memberships WHERE role IS DISTINCT FROM role_name`);
    expect(wrong).toEqual([]);
  });

  it('keys of any type round-trip exactly through the checkpoint: bigint beyond 2^53, timestamptz, uuid', async () => {
    const ctx = getCtx();
    const s = ctx.schema;
    await ctx.sql(
      `CREATE TABLE ${s}.audit (tenant bigint, at timestamptz, id uuid, note text, note_new text, PRIMARY KEY (tenant, at, id))`,
    );
    await ctx.sql(
      `INSERT INTO ${s}.audit (tenant, at, id, note)
       SELECT 9007199254740993 + (g % 3), timestamptz '2024-01-01 00:00:00.123456+00' + (g % 4) * interval '1 microsecond',
              ('00000000-0000-0000-0000-' || lpad(g::text, 12, '0'))::uuid, 'n' || g
         FROM generate_series(1, 40) g`,
    );
    const audit = defineTable({
      name: `${s}.audit`,
      key: ['tenant', 'at', 'id'],
      entity: z.object({ tenant: z.string(), at: z.date(), id: z.string(), note: z.string().nullable() }),
    });
    const migration = defineMigration({
      name: 'audit-note',
      table: audit,
      mappings: [rename({ field: 'note', from: 'note', to: 'note_new', type: 'text' })],
      defaultStage: 'off',
    });
    const report = await createBackfill(ctx.driver, migration, {
      stateSchema: s,
      batchSize: 3,
      minBatchSize: 3,
      maxBatchSize: 3,
    }).run();
    expect(report).toMatchObject({ rowsDone: 40, rowsChanged: 40 });
    expect(await ctx.sql(`SELECT 1 FROM ${s}.audit WHERE note_new IS DISTINCT FROM note`)).toEqual([]);
    const status = await backfillStatus(ctx.admin, migration.name, s);
    expect(status!.upperKey![0]).toBe('9007199254740995');
  });

  it('ranges: a larger table is cut into ranges that cover every row once', async () => {
    const ctx = getCtx();
    const table = await createItems(ctx.admin, ctx.schema, 5000);
    // Gaps in the keys: ranges follow the keys, not the key space.
    await ctx.sql(`DELETE FROM ${table} WHERE id BETWEEN 1000 AND 2999`);
    const migration = itemsMigration(table);
    const report = await createBackfill(ctx.driver, migration, { stateSchema: ctx.schema, ranges: 4 }).run();
    expect(report).toMatchObject({ rangeCount: 3, rowsDone: 3000, rowsChanged: 3000 });
    expect(await updateCounts(ctx.admin, table)).toEqual({ 1: 3000 });
    const ranges = await ctx.sql<{ status: string; rows_done: unknown }>(
      `SELECT status, rows_done FROM ${ctx.schema}.backfill_ranges ORDER BY range_id`,
    );
    expect(ranges.every((range) => range.status === 'done')).toBe(true);
  });

  it('bounded: rows inserted after the start are left to dual writes and triggers', async () => {
    const ctx = getCtx();
    const table = await createItems(ctx.admin, ctx.schema, 100);
    const migration = itemsMigration(table);
    let next = 101;
    const report = await createBackfill(ctx.driver, migration, {
      stateSchema: ctx.schema,
      batchSize: 10,
      minBatchSize: 10,
      maxBatchSize: 10,
      // Every batch, more rows arrive than the batch handles: an unbounded backfill never ends.
      throttle: async () => {
        await ctx.driver.query(
          `INSERT INTO ${table} (id, old_name) SELECT g, 'late-' || g FROM generate_series($1::int, $1::int + 19) g`,
          [next],
        );
        next += 20;
      },
    }).run();
    expect(report).toMatchObject({ status: 'done', rowsDone: 100, rowsChanged: 100 });
    const late = await ctx.sql<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${table} WHERE id > 100 AND new_name IS NULL`,
    );
    expect(late[0]!.n).toBe(next - 101);
  });

  it('empty table: the pass is done at once', async () => {
    const ctx = getCtx();
    const table = await createItems(ctx.admin, ctx.schema, 0);
    const report = await createBackfill(ctx.driver, itemsMigration(table), { stateSchema: ctx.schema }).run();
    expect(report).toMatchObject({ status: 'done', rowsDone: 0, rangeCount: 0, batches: 0 });
  });

  it('adaptive: with a tiny target the batch size shrinks to the minimum', async () => {
    const ctx = getCtx();
    const table = await createItems(ctx.admin, ctx.schema, 150);
    const sizes: number[] = [];
    await createBackfill(ctx.driver, itemsMigration(table), {
      stateSchema: ctx.schema,
      batchSize: 64,
      minBatchSize: 4,
      maxBatchSize: 64,
      targetBatchMs: 0.001,
      onProgress: (progress) => {
        if (progress.state === 'running' && progress.batches > 0) sizes.push(progress.batchSize);
      },
    }).run();
    expect(sizes.slice(0, 5)).toEqual([32, 16, 8, 4, 4]);
    expect(sizes.at(-1)).toBe(4);
  });

  it('adaptive: with a huge target the batch size grows to the maximum', async () => {
    const ctx = getCtx();
    const table = await createItems(ctx.admin, ctx.schema, 400);
    const sizes: number[] = [];
    await createBackfill(ctx.driver, itemsMigration(table), {
      stateSchema: ctx.schema,
      batchSize: 4,
      minBatchSize: 4,
      maxBatchSize: 64,
      targetBatchMs: 10_000_000,
      onProgress: (progress) => {
        if (progress.state === 'running' && progress.batches > 0) sizes.push(progress.batchSize);
      },
    }).run();
    expect(sizes.slice(0, 5)).toEqual([8, 16, 32, 64, 64]);
  });

  it("adaptive: a range's last batch, smaller than asked for, leaves the size as it was for the next range", async () => {
    const ctx = getCtx();
    // Four ranges of 1,000 rows; with a huge target every full batch doubles the next.
    const table = await createItems(ctx.admin, ctx.schema, 4000);
    const batches: { rows: number; next: number }[] = [];
    await createBackfill(ctx.driver, itemsMigration(table), {
      stateSchema: ctx.schema,
      ranges: 4,
      batchSize: 4,
      minBatchSize: 4,
      maxBatchSize: 100_000,
      targetBatchMs: 10_000_000,
      onEvent: (event) => {
        if (event.type === 'backfill-batch')
          batches.push({ rows: Number(event.rows), next: Number(event.nextBatchSize) });
      },
    }).run();
    let asked = 4;
    const partial: number[] = [];
    for (const batch of batches) {
      if (batch.rows < asked) {
        partial.push(asked);
        // Sized by its own short time, the next range's first batch would be twice as large.
        expect(batch.next).toBe(asked);
      } else {
        expect(batch.next).toBe(Math.min(100_000, asked * 2));
      }
      asked = batch.next;
    }
    expect(partial.length).toBe(4);
  });

  it('pause and resume: no batch runs while paused; the run then completes', async () => {
    const ctx = getCtx();
    const table = await createItems(ctx.admin, ctx.schema, 100);
    let pausedAt: number | undefined;
    const backfill = createBackfill(ctx.driver, itemsMigration(table), {
      stateSchema: ctx.schema,
      batchSize: 10,
      minBatchSize: 10,
      maxBatchSize: 10,
      onProgress: (progress: BackfillProgress) => {
        if (progress.batches === 2 && pausedAt === undefined && progress.state === 'running') {
          pausedAt = progress.batches;
          backfill.pause();
        }
      },
    });
    const running = backfill.run();
    await expect.poll(() => backfill.progress.state).toBe('paused');
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(backfill.progress.batches).toBe(2);
    const done = await ctx.sql<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE new_name IS NOT NULL`);
    expect(done[0]!.n).toBe(20);
    backfill.resume();
    const report = await running;
    expect(report).toMatchObject({ status: 'done', rowsDone: 100, rowsChanged: 100 });
  });

  it('cancel: stops after the current batch; a new run resumes where it stopped', async () => {
    const ctx = getCtx();
    const table = await createItems(ctx.admin, ctx.schema, 100);
    const migration = itemsMigration(table);
    const controller = new AbortController();
    const first = await createBackfill(ctx.driver, migration, {
      stateSchema: ctx.schema,
      batchSize: 10,
      minBatchSize: 10,
      maxBatchSize: 10,
      signal: controller.signal,
      onProgress: (progress) => {
        if (progress.batches === 3) controller.abort();
      },
    }).run();
    expect(first).toMatchObject({ status: 'cancelled', rowsDone: 30, rowsChanged: 30 });
    const status = await backfillStatus(ctx.admin, migration.name, ctx.schema);
    expect(status).toMatchObject({ status: 'running', rowsDone: 30, activeWorkers: 0 });
    const second = await createBackfill(ctx.driver, migration, { stateSchema: ctx.schema, batchSize: 10 }).run();
    expect(second).toMatchObject({ status: 'done', pass: 1, rowsDone: 70, rowsChanged: 70, totalRowsDone: 100 });
    expect(await updateCounts(ctx.admin, table)).toEqual({ 1: 100 });

    const cancelled = createBackfill(ctx.driver, migration, { stateSchema: ctx.schema });
    cancelled.cancel();
    expect((await cancelled.run()).status).toBe('cancelled');
  });

  it('restart: discards an unfinished pass and starts a new one over every row', async () => {
    const ctx = getCtx();
    const table = await createItems(ctx.admin, ctx.schema, 50);
    const migration = itemsMigration(table);
    const first = createBackfill(ctx.driver, migration, {
      stateSchema: ctx.schema,
      batchSize: 10,
      minBatchSize: 10,
      maxBatchSize: 10,
      onProgress: (progress) => {
        if (progress.batches === 2) first.cancel();
      },
    });
    expect(await first.run()).toMatchObject({ status: 'cancelled', pass: 1, rowsDone: 20 });
    const again = await createBackfill(ctx.driver, migration, { stateSchema: ctx.schema, restart: true }).run();
    // The new pass scans everything again; only the rows not yet filled change.
    expect(again).toMatchObject({ status: 'done', pass: 2, rowsDone: 50, rowsChanged: 30 });
  });

  it('progress: reports rows done, total, rate and ETA', async () => {
    const ctx = getCtx();
    const table = await createItems(ctx.admin, ctx.schema, 60);
    const seen: BackfillProgress[] = [];
    await createBackfill(ctx.driver, itemsMigration(table), {
      stateSchema: ctx.schema,
      batchSize: 20,
      minBatchSize: 20,
      maxBatchSize: 20,
      delayMs: 5,
      onProgress: (progress) => seen.push(progress),
    }).run();
    const batches = seen.filter((progress) => progress.state === 'running' && progress.batches > 0);
    // The fourth batch finds no rows left: a batch as full as its size can't know it was the last.
    expect(batches.map((progress) => progress.rowsDone)).toEqual([20, 40, 60, 60]);
    expect(batches.every((progress) => progress.totalEstimate === 60 && progress.rowsPerSecond > 0)).toBe(true);
    expect(batches[0]!.etaMs).toBeGreaterThan(0);
    expect(seen.at(-1)).toMatchObject({ state: 'done', etaMs: 0, rowsDone: 60 });
  });

  it('pauseRatio: the next batch starts no sooner than that many times the last one took', async () => {
    const ctx = getCtx();
    const table = await createItems(ctx.admin, ctx.schema, 60);
    // When each batch ended (its event) and how long it ran.
    const batches: { endedAt: number; batchMs: number }[] = [];
    await createBackfill(ctx.driver, itemsMigration(table), {
      stateSchema: ctx.schema,
      batchSize: 20,
      minBatchSize: 20,
      maxBatchSize: 20,
      pauseRatio: 50,
      onEvent: (event) => {
        if (event.type === 'backfill-batch')
          batches.push({ endedAt: performance.now(), batchMs: Number(event['batchMs']) });
      },
    }).run();
    expect(batches.length).toBe(4);
    for (let i = 1; i < batches.length; i++) {
      const previous = batches[i - 1]!;
      const startedAt = batches[i]!.endedAt - batches[i]!.batchMs;
      // The pause is rounded to a whole millisecond, and a timer may fire up to one early
      // by the clock it is measured with.
      expect(startedAt - previous.endedAt).toBeGreaterThanOrEqual(50 * previous.batchMs - 2);
    }
  });

  it('adaptive pause: the application latency near its limit lengthens the pause after each batch', async () => {
    const ctx = getCtx();
    const table = await createItems(ctx.admin, ctx.schema, 60);
    const batches: { endedAt: number; batchMs: number; pauseMs: number; cause: unknown }[] = [];
    await createBackfill(ctx.driver, itemsMigration(table), {
      stateSchema: ctx.schema,
      batchSize: 20,
      minBatchSize: 20,
      maxBatchSize: 20,
      // Under the limit, so the health gate lets every batch run; 90% of it is 0.8 of the
      // way from half the limit to the limit.
      latencyMs: () => 90,
      maxLatencyMs: 100,
      maxPauseRatio: 40,
      onEvent: (event) => {
        if (event.type === 'backfill-batch')
          batches.push({
            endedAt: performance.now(),
            batchMs: Number(event['batchMs']),
            pauseMs: Number(event['pauseMs']),
            cause: event['pauseCause'],
          });
      },
    }).run();
    expect(batches.length).toBe(4);
    // The last batch ends the range (fewer rows than asked for): no pause after it.
    for (const [i, batch] of batches.slice(0, -1).entries()) {
      // Contention may ask for more, never less.
      expect(batch.pauseMs).toBeGreaterThanOrEqual(Math.round(32 * batch.batchMs));
      expect(['latency', 'contention']).toContain(batch.cause);
      const next = batches[i + 1]!;
      expect(next.endedAt - next.batchMs - batch.endedAt).toBeGreaterThanOrEqual(batch.pauseMs - 2);
    }
    expect(batches.at(-1)!.pauseMs).toBeNaN();
  });

  it('refuses to start when the new columns are missing, naming them', async () => {
    const ctx = getCtx();
    await ctx.sql(`CREATE TABLE ${ctx.schema}.items (id bigint PRIMARY KEY, old_name text)`);
    const backfill = createBackfill(ctx.driver, itemsMigration(`${ctx.schema}.items`), { stateSchema: ctx.schema });
    await expect(backfill.run()).rejects.toThrow(
      /column "t_[0-9a-f]+\.items\.new_name" .* does not exist; run expand first/,
    );
  });

  it('after contract (old columns gone) says so, instead of asking for expand', async () => {
    const ctx = getCtx();
    await ctx.sql(`CREATE TABLE ${ctx.schema}.items (id bigint PRIMARY KEY, new_name text)`);
    const backfill = createBackfill(ctx.driver, itemsMigration(`${ctx.schema}.items`), { stateSchema: ctx.schema });
    await expect(backfill.run()).rejects.toThrow(
      /column "t_[0-9a-f]+\.items\.old_name" .* does not exist; the old columns are gone \(contract dropped them/,
    );
  });

  it('options: invalid values are configuration errors naming the option and the value', async () => {
    const ctx = getCtx();
    const migration = itemsMigration(`${ctx.schema}.items`);
    expect(() => createBackfill(ctx.driver, migration, { batchSize: 0 })).toThrow(ConfigurationError);
    expect(() => createBackfill(ctx.driver, migration, { batchSize: 0 })).toThrow(
      /option "batchSize" must be an integer of at least 1, got 0$/,
    );
    expect(() => createBackfill(ctx.driver, migration, { minBatchSize: 100, maxBatchSize: 10 })).toThrow(
      /option "minBatchSize" must be at most maxBatchSize, got 100$/,
    );
    expect(() => createBackfill(ctx.driver, migration, { batchSize: 5000, maxBatchSize: 100 })).toThrow(
      /option "batchSize"/,
    );
    expect(() => createBackfill(ctx.driver, migration, { stateSchema: 'bad-name' })).toThrow(/option "stateSchema"/);
    expect(() => createBackfill(ctx.driver, migration, { pauseRatio: -0.1 })).toThrow(
      /option "pauseRatio" .*, got -0\.1$/,
    );
    expect(() => createBackfill(ctx.driver, migration, { pauseRatio: Number.NaN })).toThrow(/option "pauseRatio"/);
    expect(() => createBackfill(ctx.driver, migration, { maxPauseRatio: -1 })).toThrow(
      /option "maxPauseRatio" must be a number from 0 to 100, got -1$/,
    );
    expect(() => createBackfill(ctx.driver, migration, { pauseRatio: 0.3, maxPauseRatio: 2 })).toThrow(
      /option "maxPauseRatio" must be left out with pauseRatio \(a fixed pause does not adapt\), got 2$/,
    );
    expect(() => createBackfill(ctx.driver, migration, { bogus: 1 } as never)).toThrow(
      /backfill of migration "[^"]+" option "bogus" is not a known option$/,
    );
  });
});
