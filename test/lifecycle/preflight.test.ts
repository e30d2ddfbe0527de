import { customMapping, defineMigration, defineTable, rename } from 'flagshift';
import { expect, it } from 'vitest';
import { z } from 'zod';
import { expand } from '../../src/lifecycle/ddl/expand.js';
import { syncTriggerObjects } from '../../src/lifecycle/ddl/sync-triggers.js';
import { PreflightCode, preflight } from '../../src/lifecycle/preflight.js';
import { describeDrivers } from '../support/drivers.js';
import { countMarkedWrites, createItems, itemsMigration } from './fixtures/data.js';

/**
 * The server is shared with other test files: a transaction of theirs must not show up as
 * a finding here. The long-transaction check has its own test below.
 */
const quiet = { longTransactionSeconds: 86_400 };

describeDrivers('preflight', (getCtx) => {
  it('a healthy table: exact row count, a timed sample batch that changes nothing, no findings', async () => {
    const ctx = getCtx();
    const table = await createItems(ctx.admin, ctx.schema, 1500);
    const report = await preflight(ctx.driver, itemsMigration(table), { ...quiet, sampleBatchSize: 500 });
    expect(report).toMatchObject({ ok: true, rowEstimate: 1500, rowEstimateSource: 'count', warnings: [] });
    expect(report.sampleBatch).toMatchObject({ method: 'update', rows: 500, changedRows: 500 });
    expect(report.estimatedBackfillMs).toBeCloseTo((report.sampleBatch!.ms * 1500) / 500);
    expect(report.tableBytes).toBeGreaterThan(0);
    // The sample batch was rolled back.
    const filled = await ctx.sql<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE new_name IS NOT NULL`);
    expect(filled[0]!.n).toBe(0);
  });

  it("the sample batch is marked as the migration's backfill, as the backfill's batches are", async () => {
    const ctx = getCtx();
    const table = await createItems(ctx.admin, ctx.schema, 300);
    const migration = itemsMigration(table);
    const marked = await countMarkedWrites(ctx.admin, table, migration.name);
    const report = await preflight(ctx.driver, migration, { ...quiet, sampleBatchSize: 100 });
    expect(report.sampleBatch).toMatchObject({ rows: 100, changedRows: 100 });
    // Rolled back, but the count is a sequence's.
    expect(await marked()).toBe(100);
  });

  it('a sync trigger without the backfill skip condition is noted until expand replaces it', async () => {
    const ctx = getCtx();
    const table = await createItems(ctx.admin, ctx.schema, 20);
    const migration = itemsMigration(table);
    await expand(ctx.driver, migration, { stateSchema: ctx.schema });
    const [trigger] = syncTriggerObjects(migration).triggers;
    const options = { ...quiet, sampleBatch: false };
    expect((await preflight(ctx.driver, migration, options)).warnings).toEqual([]);
    await ctx.sql(trigger!.unconditioned);
    const { ok, warnings } = await preflight(ctx.driver, migration, options);
    expect(ok).toBe(true);
    expect(warnings).toEqual([
      {
        code: PreflightCode.SyncTriggerWithoutSkip,
        severity: 'info',
        message: expect.stringMatching(/^sync trigger ".+" on .+ was created without .+; run expand to replace it$/),
        table: migration.table.table.display,
        details: { trigger: trigger!.name },
      },
    ]);
    await expand(ctx.driver, migration, { stateSchema: ctx.schema });
    expect((await preflight(ctx.driver, migration, options)).warnings).toEqual([]);
  });

  it('a required field over a nullable old column: NULLs there are a warning naming the fix, none an info', async () => {
    const ctx = getCtx();
    await ctx.sql(`CREATE TABLE ${ctx.schema}.items (id bigint PRIMARY KEY, old_name text, new_name text)`);
    await ctx.sql(
      `INSERT INTO ${ctx.schema}.items SELECT g, CASE WHEN g % 4 = 0 THEN NULL ELSE 'n' || g END FROM generate_series(1, 20) g`,
    );
    const required = defineMigration({
      name: 'items-name',
      table: defineTable({
        name: `${ctx.schema}.items`,
        key: 'id',
        entity: z.object({ id: z.number().int(), name: z.string() }),
      }),
      mappings: [rename({ field: 'name', from: 'old_name', to: 'new_name', type: 'text' })],
      defaultStage: 'off',
    });
    const report = await preflight(ctx.driver, required, quiet);
    const finding = report.warnings.find((warning) => warning.code === PreflightCode.NullsBlockNotNull);
    expect(finding).toMatchObject({ severity: 'warning', details: { column: 'old_name', nulls: 5 } });
    expect(finding?.message).toMatch(
      /^contract makes new_name NOT NULL \(the field is required\), but .*items\.old_name holds NULL in 5 rows: .*contract's validation will fail; fill them \(UPDATE .*items SET old_name = \.\.\. WHERE old_name IS NULL\)/,
    );
    await ctx.sql(`UPDATE ${ctx.schema}.items SET old_name = 'filled' WHERE old_name IS NULL`);
    const filled = await preflight(ctx.driver, required, quiet);
    expect(filled.warnings.map((warning) => [warning.code, warning.severity])).toEqual([
      [PreflightCode.NullableSource, 'info'],
    ]);
    // The nullable field of the usual fixture: nothing to say.
    const nullable = await preflight(ctx.driver, itemsMigration(`${ctx.schema}.items`), quiet);
    expect(nullable.warnings).toEqual([]);
  });

  it('no primary key: an error finding, and the report is not ok', async () => {
    const ctx = getCtx();
    await ctx.sql(`CREATE TABLE ${ctx.schema}.items (id bigint, old_name text, new_name text)`);
    await ctx.sql(`INSERT INTO ${ctx.schema}.items SELECT g, 'n' || g FROM generate_series(1, 10) g`);
    const report = await preflight(ctx.driver, itemsMigration(`${ctx.schema}.items`), quiet);
    expect(report.ok).toBe(false);
    const codes = report.warnings.map((warning) => [warning.code, warning.severity]);
    expect(codes).toContainEqual([PreflightCode.NoPrimaryKey, 'error']);
    expect(codes).toContainEqual([PreflightCode.KeyNotIndexed, 'warning']);
    expect(report.warnings[0]!.message).toMatch(/has no primary key and no unique index on \(id\)/);
  });

  it('a unique index instead of a primary key: a warning only', async () => {
    const ctx = getCtx();
    await ctx.sql(`CREATE TABLE ${ctx.schema}.items (id bigint NOT NULL UNIQUE, old_name text, new_name text)`);
    const report = await preflight(ctx.driver, itemsMigration(`${ctx.schema}.items`), quiet);
    expect(report.ok).toBe(true);
    expect(report.warnings.map((warning) => [warning.code, warning.severity])).toEqual([
      [PreflightCode.NoPrimaryKey, 'warning'],
    ]);
    expect(report.sampleBatch).toMatchObject({ rows: 0 });
    expect(report.estimatedBackfillMs).toBe(0);
  });

  it('before expand: the new columns are missing, so the estimate comes from a read-only batch', async () => {
    const ctx = getCtx();
    await ctx.sql(`CREATE TABLE ${ctx.schema}.items (id bigint PRIMARY KEY, old_name text)`);
    await ctx.sql(`INSERT INTO ${ctx.schema}.items SELECT g, 'n' || g FROM generate_series(1, 50) g`);
    const report = await preflight(ctx.driver, itemsMigration(`${ctx.schema}.items`), quiet);
    expect(report.ok).toBe(true);
    expect(report.warnings.map((warning) => warning.code)).toEqual([
      PreflightCode.ColumnsMissing,
      PreflightCode.EstimateReadOnly,
    ]);
    expect(report.warnings[0]!.details).toEqual({ columns: [`${ctx.schema}.items.new_name`] });
    expect(report.sampleBatch).toMatchObject({ method: 'read-only', rows: 50 });
  });

  it('a missing table is an error finding, not an exception', async () => {
    const ctx = getCtx();
    const report = await preflight(ctx.driver, itemsMigration(`${ctx.schema}.nope`), quiet);
    expect(report).toMatchObject({ ok: false, rowEstimate: 0, sampleBatch: undefined });
    expect(report.warnings).toEqual([
      expect.objectContaining({
        code: PreflightCode.TableMissing,
        severity: 'error',
        message: expect.stringMatching(/does not exist/),
      }),
    ]);
  });

  it('a mapping without a SQL form is an error finding', async () => {
    const ctx = getCtx();
    await createItems(ctx.admin, ctx.schema, 5);
    const items = defineTable({
      name: `${ctx.schema}.items`,
      key: 'id',
      entity: z.object({ id: z.number().int(), name: z.string().nullable() }),
    });
    const migration = defineMigration({
      name: 'items-custom',
      table: items,
      mappings: [
        customMapping({
          fields: { name: 'new_name' },
          old: [{ column: 'old_name', kind: 'string' }],
          forward: (old) => [...old],
          backward: (values) => [...values],
        }),
      ],
      defaultStage: 'off',
    });
    const report = await preflight(ctx.driver, migration, quiet);
    expect(report.ok).toBe(false);
    expect(report.warnings.map((warning) => warning.code)).toEqual([PreflightCode.NoSqlForm]);
    expect(report.sampleBatch).toBeUndefined();
  });

  it('large tables are reported by size', async () => {
    const ctx = getCtx();
    const table = await createItems(ctx.admin, ctx.schema, 100);
    const report = await preflight(ctx.driver, itemsMigration(table), { ...quiet, largeTableBytes: 1000 });
    expect(report.warnings.map((warning) => warning.code)).toEqual([PreflightCode.LargeTable]);
  });
});

describeDrivers(
  'preflight against other sessions',
  (getCtx) => {
    it('a long-running transaction holding a lock on the table is reported with its session', async () => {
      const ctx = getCtx();
      const table = await createItems(ctx.admin, ctx.schema, 20);
      const other = await ctx.pgClient({ application_name: 'long-report' });
      await other.query('BEGIN');
      await other.query(`SELECT count(*) FROM ${table}`);
      const pid = Number((await other.query('SELECT pg_backend_pid() AS pid')).rows[0].pid);
      await new Promise((resolve) => setTimeout(resolve, 1200));
      try {
        const report = await preflight(ctx.driver, itemsMigration(table), {
          longTransactionSeconds: 1,
          lockHeldSeconds: 1,
        });
        const long = report.warnings.filter((w) => w.code === PreflightCode.LongRunningTransaction);
        expect(long.map((w) => w.details?.['pid'])).toContain(pid);
        expect(long.find((w) => w.details?.['pid'] === pid)!.message).toMatch(
          /\(long-report\) has had a transaction open for 1 s/,
        );
        const locked = report.warnings.filter((w) => w.code === PreflightCode.TableLocked);
        expect(locked).toContainEqual(
          expect.objectContaining({
            table,
            details: expect.objectContaining({ pid, mode: 'AccessShareLock', granted: true }),
          }),
        );
        // Findings, not failures: the migration can still run.
        expect(report.ok).toBe(true);
      } finally {
        await other.query('ROLLBACK');
      }
    });
  },
  { kinds: ['pg'] },
);
