/**
 * contract: refuses until verification passed after the last write-path change (unless
 * forced, and then logged), adds NOT NULL through a validated check, ties side tables with
 * a validated foreign key, drops the sync triggers and the old columns, and in a dry run
 * changes nothing.
 */
import { expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigurationError, DriverError, StageTransitionError } from '../../../src/kernel/errors.js';
import { ContractRefusedError, contract, contractGate, planContract } from '../../../src/lifecycle/ddl/contract.js';
import { expand } from '../../../src/lifecycle/ddl/expand.js';
import { syncTriggerObjects } from '../../../src/lifecycle/ddl/sync-triggers.js';
import { listEvents, recordEvent, recordVerification } from '../../../src/lifecycle/state/index.js';
import { moveColumn } from '../../../src/model/mappings.js';
import { defineMigration, type Migration } from '../../../src/model/migration.js';
import { defineTable } from '../../../src/model/table.js';
import { type DriverContext, describeDrivers } from '../../support/drivers.js';
import { expandedUsersRename } from '../fixtures/data.js';

/** users(user_name NOT NULL) renamed to username (a required field), expanded and backfilled. */
function renamed(ctx: DriverContext): Promise<Migration> {
  return expandedUsersRename(ctx, 'users-contract', {
    required: true,
    rows: "VALUES (1, 'ada', 'a@x'), (2, 'grace', NULL)",
  });
}

async function verified(ctx: DriverContext, migration: Migration, passed = true): Promise<void> {
  await recordVerification(
    ctx.driver,
    migration.name,
    { passed, checkedRows: 2, mismatchedRows: passed ? 0 : 1, missingRows: 0 },
    ctx.schema,
  );
}

async function columns(ctx: DriverContext, table: string): Promise<{ name: string; not_null: boolean }[]> {
  return ctx.sql(
    `SELECT attname::text AS name, attnotnull AS not_null FROM pg_attribute
      WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
    [`${ctx.schema}.${table}`],
  );
}

async function syncObjectCount(ctx: DriverContext): Promise<number> {
  const [row] = await ctx.sql<{ n: number }>(
    `SELECT (SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
              WHERE c.relnamespace = $1::regnamespace AND NOT t.tgisinternal)
          + (SELECT count(*) FROM pg_proc WHERE pronamespace = $1::regnamespace) AS n`,
    [ctx.schema],
  );
  return Number(row!.n);
}

describeDrivers('contract', (getCtx) => {
  it('gate: refuses a migration that was never verified, and changes nothing', async () => {
    const ctx = getCtx();
    const migration = await renamed(ctx);
    const error = await contract(ctx.driver, migration, { stateSchema: ctx.schema, stage: 'complete' }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(StageTransitionError);
    expect((error as Error).message).toBe(
      'contract of migration "users-contract" refused: it has never been verified; run verify first (or pass force: true, which is logged)',
    );
    expect((await columns(ctx, 'users')).map((column) => column.name)).toContain('user_name');
    expect(await syncObjectCount(ctx)).toBe(2);
  });

  it('gate: refuses after a failed verification, naming its counts', async () => {
    const ctx = getCtx();
    const migration = await renamed(ctx);
    await verified(ctx, migration, false);
    await expect(contract(ctx.driver, migration, { stateSchema: ctx.schema, stage: 'complete' })).rejects.toThrow(
      /the last verification \(.*\) failed: 1 mismatched and 0 missing of 2 rows checked/,
    );
  });

  it('gate: refuses a verification that started before the last write-path change (a stage change)', async () => {
    const ctx = getCtx();
    const migration = await renamed(ctx);
    await verified(ctx, migration);
    await recordEvent(ctx.driver, migration.name, 'stage', { stage: 'complete' }, ctx.schema);
    await expect(contract(ctx.driver, migration, { stateSchema: ctx.schema, stage: 'complete' })).rejects.toThrow(
      /the last verification \(started .*, finished .*\) started before the last write-path change \(.*\); verify again/,
    );
  });

  it('gate: refuses unless the caller says every process is at complete, and refuses a sampled verification', async () => {
    const ctx = getCtx();
    const migration = await renamed(ctx);
    await verified(ctx, migration);
    for (const [stage, said] of [
      [undefined, 'no stage given'],
      ['rampdown', 'its stage is "rampdown"'],
    ] as const) {
      const error = await contract(ctx.driver, migration, {
        stateSchema: ctx.schema,
        ...(stage === undefined ? {} : { stage }),
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ContractRefusedError);
      expect(error).toBeInstanceOf(StageTransitionError);
      expect((error as Error).message).toBe(
        `contract of migration "users-contract" refused: ${said}; every stage before complete still reads or writes the old columns (pass stage: 'complete' once every process is there, or force: true, which is logged)`,
      );
      expect((error as ContractRefusedError).gate).toMatchObject({ ok: false, closedBy: 'stage' });
      // contractGate() answers the same question, and with the stage it opens.
      const gate = await contractGate(ctx.driver, migration, { stateSchema: ctx.schema, stage });
      expect(gate).toMatchObject({ ok: false, closedBy: 'stage', reason: (error as ContractRefusedError).gate.reason });
    }
    expect(await contractGate(ctx.driver, migration, { stateSchema: ctx.schema, stage: 'complete' })).toMatchObject({
      ok: true,
      closedBy: undefined,
    });
    await recordVerification(
      ctx.driver,
      migration.name,
      { passed: true, checkedRows: 3, mismatchedRows: 0, missingRows: 0, sample: 0.01 },
      ctx.schema,
    );
    await expect(contract(ctx.driver, migration, { stateSchema: ctx.schema, stage: 'complete' })).rejects.toThrow(
      /checked a 1% sample; contract needs one over every row/,
    );
    const columns = await ctx.sql(
      `SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'users' AND column_name = 'user_name'`,
      [ctx.schema],
    );
    expect(columns, 'nothing was dropped').toHaveLength(1);
  });

  it('after a passing verification: NOT NULL via a validated check, triggers and old column dropped, event recorded', async () => {
    const ctx = getCtx();
    const s = ctx.schema;
    const migration = await renamed(ctx);
    await verified(ctx, migration);
    const [syncTrigger] = syncTriggerObjects(migration).triggers;
    const report = await contract(ctx.driver, migration, { stateSchema: s, stage: 'complete' });
    expect(report.gate.ok).toBe(true);
    expect(report.forced).toBe(false);
    expect(report.steps.map((step) => step.sql)).toEqual([
      `ALTER TABLE "${s}"."users" ADD CONSTRAINT "users_username_not_null" CHECK ("username" IS NOT NULL) NOT VALID`,
      `ALTER TABLE "${s}"."users" VALIDATE CONSTRAINT "users_username_not_null"`,
      `ALTER TABLE "${s}"."users" ALTER COLUMN "username" SET NOT NULL`,
      `ALTER TABLE "${s}"."users" DROP CONSTRAINT IF EXISTS "users_username_not_null"`,
      `ALTER TABLE "${s}"."users" ALTER COLUMN "user_name" DROP NOT NULL`,
      `DROP TRIGGER IF EXISTS "${syncTrigger!.name}" ON "${s}"."users"`,
      `DROP FUNCTION IF EXISTS "${s}"."${syncTrigger!.name}"()`,
      `ALTER TABLE "${s}"."users" DROP COLUMN IF EXISTS "user_name"`,
    ]);
    expect(await columns(ctx, 'users')).toEqual([
      { name: 'id', not_null: true },
      { name: 'email', not_null: false },
      { name: 'username', not_null: true },
    ]);
    expect(await syncObjectCount(ctx)).toBe(0);
    expect(
      await ctx.sql(`SELECT conname FROM pg_constraint WHERE conrelid = '${s}.users'::regclass AND contype = 'c'`),
    ).toEqual([]);
    expect((await listEvents(ctx.driver, migration.name, s)).map((event) => event.kind)).toEqual([
      'expand',
      'contract',
    ]);
    expect(await planContract(ctx.driver, migration)).toEqual([]);
  });

  it('gate: a stage other than complete and a failed verification are both named, and both recorded when forced', async () => {
    const ctx = getCtx();
    const migration = await renamed(ctx);
    await verified(ctx, migration, false);
    const gate = await contractGate(ctx.driver, migration, { stateSchema: ctx.schema, stage: 'live' });
    expect(gate).toMatchObject({ ok: false, closedBy: 'stage' });
    expect(gate.reason).toMatch(
      /refused: its stage is "live"; every stage before complete still reads or writes the old columns; and the last verification \(.*\) failed: 1 mismatched/,
    );
    await contract(ctx.driver, migration, { stateSchema: ctx.schema, stage: 'live', force: true });
    const [force] = (await listEvents(ctx.driver, migration.name, ctx.schema)).filter((e) => e.kind === 'force');
    expect(force!.details).toMatchObject({ overridden: gate.reason });
  });

  it('gate: options are checked, a state schema given as a bare string included', async () => {
    const ctx = getCtx();
    const migration = await renamed(ctx);
    await expect(contractGate(ctx.driver, migration, ctx.schema as never)).rejects.toThrow(ConfigurationError);
    await expect(
      contractGate(ctx.driver, migration, { stateSchema: ctx.schema, stage: 'sideways' as 'live' }),
    ).rejects.toThrow(/contract of migration "users-contract" refused: option "stage"/);
  });

  it('force: runs without verification and records the override as a force event', async () => {
    const ctx = getCtx();
    const migration = await renamed(ctx);
    const report = await contract(ctx.driver, migration, {
      stateSchema: ctx.schema,
      stage: 'complete',
      force: true,
      actor: 'ops@example.com',
    });
    expect(report.forced).toBe(true);
    expect(report.gate.closedBy).toBe('verification');
    const events = await listEvents(ctx.driver, migration.name, ctx.schema);
    expect(events.map((event) => event.kind)).toEqual(['expand', 'force', 'contract']);
    expect(events[1]!.details).toMatchObject({
      action: 'contract',
      overridden: expect.stringContaining('never been verified'),
      actor: 'ops@example.com',
    });
    expect(events[2]!.details).toMatchObject({ forced: true });
    expect((await columns(ctx, 'users')).map((column) => column.name)).not.toContain('user_name');
  });

  it('dry run: returns the SQL, reports the closed gate without enforcing it, and changes nothing', async () => {
    const ctx = getCtx();
    const migration = await renamed(ctx);
    const before = [await columns(ctx, 'users'), await syncObjectCount(ctx)];
    const report = await contract(ctx.driver, migration, { stateSchema: ctx.schema, dryRun: true });
    expect(report.gate.ok).toBe(false);
    expect(report.ddl.dryRun).toBe(true);
    expect(report.ddl.sql.filter((sql) => !/^(BEGIN|COMMIT|SET|RESET)\b/.test(sql))).toEqual(
      report.steps.map((step) => step.sql),
    );
    expect(report.steps.length).toBe(8);
    // Undoing the function drop restores the body expand installed, byte for byte.
    const [installed] = await ctx.sql<{ source: string }>(
      'SELECT prosrc AS source FROM pg_proc WHERE pronamespace = $1::regnamespace',
      [ctx.schema],
    );
    expect(report.steps[6]!.rollback).toContain(`AS $flagshift$${installed!.source}$flagshift$`);
    expect([await columns(ctx, 'users'), await syncObjectCount(ctx)]).toEqual(before);
    expect((await listEvents(ctx.driver, migration.name, ctx.schema)).map((event) => event.kind)).toEqual(['expand']);
  });

  it('dry run against a database without state tables does not create them', async () => {
    const ctx = getCtx();
    const migration = await renamed(ctx);
    const stateSchema = `${ctx.schema}_state`;
    const report = await contract(ctx.driver, migration, { stateSchema, stage: 'complete', dryRun: true });
    expect(report.gate.reason).toMatch(/never been verified/);
    expect(await ctx.sql('SELECT to_regnamespace($1) AS s', [stateSchema])).toEqual([{ s: null }]);
  });

  it('a required new column that still has NULLs fails validation before anything is dropped', async () => {
    const ctx = getCtx();
    const s = ctx.schema;
    const migration = await renamed(ctx);
    await ctx.sql(`ALTER TABLE ${s}.users DISABLE TRIGGER USER`);
    await ctx.sql(`UPDATE ${s}.users SET username = NULL WHERE id = 2`);
    await ctx.sql(`ALTER TABLE ${s}.users ENABLE TRIGGER USER`);
    const error = await contract(ctx.driver, migration, { stateSchema: s, force: true }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DriverError);
    expect((error as DriverError).sqlState).toBe('23514');
    expect((await columns(ctx, 'users')).map((column) => column.name)).toContain('user_name');
    expect(await syncObjectCount(ctx)).toBe(2);
    // Fixed, contract picks up where it stopped: the check exists, so it is validated, not added again.
    await ctx.sql(`UPDATE ${s}.users SET username = user_name WHERE id = 2`);
    const steps = await planContract(ctx.driver, migration);
    expect(steps[0]!.sql).toBe(`ALTER TABLE "${s}"."users" VALIDATE CONSTRAINT "users_username_not_null"`);
    await contract(ctx.driver, migration, { stateSchema: s, force: true });
    expect((await columns(ctx, 'users')).find((column) => column.name === 'username')?.not_null).toBe(true);
  });

  it('moveColumn: the side table gets a validated foreign key, and the old column and all triggers go', async () => {
    const ctx = getCtx();
    const s = ctx.schema;
    await ctx.sql(`CREATE TABLE ${s}.users (id bigint PRIMARY KEY, bio text)`);
    await ctx.sql(`CREATE TABLE ${s}.profiles (user_id bigint PRIMARY KEY, bio text)`);
    await ctx.sql(`INSERT INTO ${s}.users VALUES (1, 'hello'), (2, NULL)`);
    const users = defineTable({
      name: `${s}.users`,
      key: 'id',
      entity: z.object({ id: z.number().int(), bio: z.string().optional() }),
    });
    const migration = defineMigration({
      name: 'users-bio',
      table: users,
      mappings: [
        moveColumn({ field: 'bio', from: 'bio', to: { table: `${s}.profiles`, column: 'bio', key: ['user_id'] } }),
      ],
      defaultStage: 'off',
    });
    await expand(ctx.driver, migration, { stateSchema: s });
    await ctx.sql(`INSERT INTO ${s}.profiles (user_id, bio) SELECT id, bio FROM ${s}.users ON CONFLICT DO NOTHING`);
    await verified(ctx, migration);
    const report = await contract(ctx.driver, migration, { stateSchema: s, stage: 'complete' });
    expect(report.steps.slice(0, 2).map((step) => step.sql)).toEqual([
      `ALTER TABLE "${s}"."profiles" ADD CONSTRAINT "profiles_users_fkey" FOREIGN KEY ("user_id") REFERENCES "${s}"."users" ("id") ON DELETE CASCADE ON UPDATE CASCADE NOT VALID`,
      `ALTER TABLE "${s}"."profiles" VALIDATE CONSTRAINT "profiles_users_fkey"`,
    ]);
    expect(
      await ctx.sql(
        `SELECT conname, convalidated FROM pg_constraint WHERE conrelid = '${s}.profiles'::regclass AND contype = 'f'`,
      ),
    ).toEqual([{ conname: 'profiles_users_fkey', convalidated: true }]);
    expect((await columns(ctx, 'users')).map((column) => column.name)).toEqual(['id']);
    expect(await syncObjectCount(ctx)).toBe(0);
  });
});
