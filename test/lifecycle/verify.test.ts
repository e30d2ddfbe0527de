import { ConfigurationError, redactValue } from 'flagshift';
import { expect, it } from 'vitest';
import { createBackfill } from '../../src/lifecycle/backfill/backfill.js';
import { contractGate } from '../../src/lifecycle/ddl/contract.js';
import { lastVerification, lastWritePathChange, listEvents, recordEvent } from '../../src/lifecycle/state/index.js';
import { verify } from '../../src/lifecycle/verify.js';
import { isRedacted } from '../../src/shadow/redact.js';
import { describeDrivers } from '../support/drivers.js';
import { bioMoveMigration, createItems, itemsMigration, peopleSplitMigration } from './fixtures/data.js';

describeDrivers('verify', (getCtx) => {
  async function backfilled(rows: number) {
    const ctx = getCtx();
    const table = await createItems(ctx.admin, ctx.schema, rows);
    const migration = itemsMigration(table);
    await createBackfill(ctx.driver, migration, { stateSchema: ctx.schema }).run();
    return { ctx, table, migration };
  }

  it('passes on clean data and records the result for the contract gate', async () => {
    const { ctx, migration } = await backfilled(230);
    const report = await verify(ctx.driver, migration, { stateSchema: ctx.schema, chunkSize: 50 });
    expect(report).toMatchObject({
      passed: true,
      checkedRows: 230,
      scannedRows: 230,
      mismatchedRows: 0,
      missingRows: 0,
      sample: undefined,
      examples: [],
    });
    const recorded = await lastVerification(ctx.admin, migration.name, ctx.schema);
    expect(recorded).toMatchObject({ passed: true, checkedRows: 230, mismatchedRows: 0, missingRows: 0 });
    expect(recorded!.at.getTime()).toBe(report.at.getTime());
    const events = await listEvents(ctx.admin, migration.name, ctx.schema);
    expect(events.at(-1)).toMatchObject({ kind: 'verify', details: { passed: true, checkedRows: 230 } });
  });

  it('finds injected mismatches and missing rows, with redacted examples in key order', async () => {
    const { ctx, table, migration } = await backfilled(100);
    await ctx.sql(`UPDATE ${table} SET new_name = 'wrong-' || id WHERE id IN (13, 5, 77)`);
    await ctx.sql(`UPDATE ${table} SET new_name = NULL WHERE id IN (40, 41)`);
    // NULL on both sides is right: forward(NULL) is NULL.
    await ctx.sql(`UPDATE ${table} SET old_name = NULL, new_name = NULL WHERE id = 90`);
    const report = await verify(ctx.driver, migration, { stateSchema: ctx.schema, chunkSize: 30 });
    expect(report).toMatchObject({
      passed: false,
      checkedRows: 100,
      mismatchedRows: 3,
      missingRows: 2,
      redacted: true,
    });
    expect(report.examples.map((example) => example.kind)).toEqual([
      'mismatch',
      'mismatch',
      'missing',
      'missing',
      'mismatch',
    ]);
    const first = report.examples[0]!;
    expect(first.key).toEqual([redactValue(5)]);
    expect(first.columns).toEqual([
      { column: `${ctx.schema}.items.new_name`, actual: redactValue('wrong-5'), expected: redactValue('name-5') },
    ]);
    expect(report.examples.every((example) => example.key.every(isRedacted))).toBe(true);
    expect(await lastVerification(ctx.admin, migration.name, ctx.schema)).toMatchObject({
      passed: false,
      mismatchedRows: 3,
      missingRows: 2,
    });

    const raw = await verify(ctx.driver, migration, { stateSchema: ctx.schema, rawValues: true, examples: 2 });
    expect(raw.examples).toEqual([
      {
        key: [5],
        kind: 'mismatch',
        columns: [{ column: `${ctx.schema}.items.new_name`, actual: 'wrong-5', expected: 'name-5' }],
      },
      {
        key: [13],
        kind: 'mismatch',
        columns: [{ column: `${ctx.schema}.items.new_name`, actual: 'wrong-13', expected: 'name-13' }],
      },
    ]);
    // Raw values never reach the state tables.
    const rows = await ctx.sql<{ details: unknown }>(
      `SELECT details FROM ${ctx.schema}.verifications ORDER BY id DESC LIMIT 1`,
    );
    expect(JSON.stringify(rows[0]!.details)).not.toContain('wrong-5');

    // A backfill re-run repairs what verification found.
    await createBackfill(ctx.driver, migration, { stateSchema: ctx.schema }).run();
    expect((await verify(ctx.driver, migration, { stateSchema: ctx.schema })).passed).toBe(true);
  });

  it('split: compares every part; a NULL part where the old text has one is missing', async () => {
    const ctx = getCtx();
    await ctx.sql(`CREATE TABLE ${ctx.schema}.people (id int PRIMARY KEY, name text, first_name text, last_name text)`);
    await ctx.sql(
      `INSERT INTO ${ctx.schema}.people VALUES (1, 'Ada Lovelace', 'Ada', 'Lovelace'), (2, 'Plato', 'Plato', NULL),
         (3, 'Grace Hopper', 'Grace', NULL), (4, 'Alan Turing', 'Alan', 'Turin')`,
    );
    const migration = peopleSplitMigration(ctx.schema);
    const report = await verify(ctx.driver, migration, { stateSchema: ctx.schema, rawValues: true });
    expect(report).toMatchObject({ checkedRows: 4, missingRows: 1, mismatchedRows: 1 });
    expect(report.examples).toEqual([
      {
        key: [3],
        kind: 'missing',
        columns: [{ column: `${ctx.schema}.people.last_name`, actual: null, expected: 'Hopper' }],
      },
      {
        key: [4],
        kind: 'mismatch',
        columns: [{ column: `${ctx.schema}.people.last_name`, actual: 'Turin', expected: 'Turing' }],
      },
    ]);
  });

  it('move: an absent side row is missing, a different one mismatched', async () => {
    const ctx = getCtx();
    const s = ctx.schema;
    await ctx.sql(`CREATE TABLE ${s}.users (id int PRIMARY KEY, bio text)`);
    await ctx.sql(`CREATE TABLE ${s}.profiles (user_id int PRIMARY KEY, bio text)`);
    await ctx.sql(`INSERT INTO ${s}.users SELECT g, 'bio ' || g FROM generate_series(1, 20) g`);
    const migration = bioMoveMigration(s);
    expect(await verify(ctx.driver, migration, { stateSchema: s })).toMatchObject({ passed: false, missingRows: 20 });
    await createBackfill(ctx.driver, migration, { stateSchema: s }).run();
    expect(await verify(ctx.driver, migration, { stateSchema: s })).toMatchObject({ passed: true, checkedRows: 20 });
    await ctx.sql(`DELETE FROM ${s}.profiles WHERE user_id IN (3, 4)`);
    await ctx.sql(`UPDATE ${s}.profiles SET bio = 'other' WHERE user_id = 9`);
    const report = await verify(ctx.driver, migration, { stateSchema: s, rawValues: true });
    expect(report).toMatchObject({ passed: false, missingRows: 2, mismatchedRows: 1 });
    expect(report.examples.map((example) => [example.key, example.kind])).toEqual([
      [[3], 'missing'],
      [[4], 'missing'],
      [[9], 'mismatch'],
    ]);
  });

  it('sample: compares about the stated fraction of rows and says so', async () => {
    const { ctx, migration } = await backfilled(2000);
    const report = await verify(ctx.driver, migration, { stateSchema: ctx.schema, sample: 0.25, chunkSize: 500 });
    expect(report.sample).toBe(0.25);
    expect(report.scannedRows).toBe(2000);
    // Binomial(2000, 0.25): mean 500, standard deviation about 19.
    expect(report.checkedRows).toBeGreaterThan(380);
    expect(report.checkedRows).toBeLessThan(620);
    expect(report.passed).toBe(true);
  });

  it('the gate: a write-path change after the verification makes it stale', async () => {
    const { ctx, migration } = await backfilled(10);
    expect(await lastVerification(ctx.admin, migration.name, ctx.schema)).toBeUndefined();
    await recordEvent(ctx.admin, migration.name, 'expand', { note: 'before' }, ctx.schema);
    const report = await verify(ctx.driver, migration, { stateSchema: ctx.schema });
    const changed = await lastWritePathChange(ctx.admin, migration.name, ctx.schema);
    expect(changed!.getTime()).toBeLessThan(report.at.getTime());
    await recordEvent(ctx.admin, migration.name, 'stage', { stage: 'live' }, ctx.schema);
    const later = await lastWritePathChange(ctx.admin, migration.name, ctx.schema);
    expect(later!.getTime()).toBeGreaterThan(report.at.getTime());
  });

  it('the gate: a write-path change while it runs makes it stale, though it finished after', async () => {
    const { ctx, migration } = await backfilled(20);
    let changing: Promise<unknown> | undefined;
    const change = () =>
      recordEvent(ctx.admin, migration.name, 'stage', { stage: 'complete', writePathChanged: true }, ctx.schema);
    let report: Awaited<ReturnType<typeof verify>>;
    if (ctx.kind === 'pg') {
      // It scans every row, then waits to record its result; the write path changes meanwhile.
      const verifications = `${ctx.schema}.verifications`;
      await ctx.sql(`SELECT 1 FROM ${verifications} LIMIT 0`);
      const holder = await ctx.pgClient();
      await holder.query('BEGIN');
      await holder.query(`LOCK TABLE ${verifications} IN ACCESS EXCLUSIVE MODE`);
      const running = verify(ctx.driver, migration, { stateSchema: ctx.schema, chunkSize: 5 });
      const waiting = async () =>
        (await ctx.sql('SELECT 1 FROM pg_locks WHERE NOT granted AND relation = $1::regclass', [verifications])).length;
      await expect.poll(waiting, { timeout: 20_000 }).toBe(1);
      // Straight into the log: recordEvent would look the state tables up, and wait too.
      await ctx.sql(
        `INSERT INTO ${ctx.schema}.events (migration, kind, details) VALUES ($1, 'stage', '{"writePathChanged": true}')`,
        [migration.name],
      );
      await holder.query('COMMIT');
      report = await running;
    } else {
      // One connection runs statements in order: the change lands between two chunks.
      report = await verify(ctx.driver, migration, {
        stateSchema: ctx.schema,
        chunkSize: 5,
        onProgress: () => {
          changing ??= change();
        },
      });
      await changing;
    }
    expect(report.passed).toBe(true);
    const changed = await lastWritePathChange(ctx.admin, migration.name, ctx.schema);
    expect(changed!.getTime()).toBeGreaterThan(report.startedAt.getTime());
    expect(changed!.getTime()).toBeLessThan(report.at.getTime());
    const recorded = await lastVerification(ctx.admin, migration.name, ctx.schema);
    expect(recorded!.startedAt.getTime()).toBe(report.startedAt.getTime());
    const gate = await contractGate(ctx.admin, migration, { stateSchema: ctx.schema, stage: 'complete' });
    expect(gate).toMatchObject({ ok: false, closedBy: 'verification' });
    expect(gate.reason).toMatch(
      /the last verification \(started .*, finished .*\) started before the last write-path change/,
    );
    // A verification started after the change opens it.
    await verify(ctx.driver, migration, { stateSchema: ctx.schema });
    expect(await contractGate(ctx.admin, migration, { stateSchema: ctx.schema, stage: 'complete' })).toMatchObject({
      ok: true,
    });
  });

  it('the gate: a verification recorded before starts were kept counts from its end less its duration', async () => {
    const { ctx, migration } = await backfilled(5);
    await recordEvent(ctx.admin, migration.name, 'stage', { stage: 'complete', writePathChanged: true }, ctx.schema);
    // As an older flagshift recorded it: no start, a duration that reaches back before the change.
    await ctx.sql(
      `INSERT INTO ${ctx.schema}.verifications (migration, passed, checked_rows, mismatched_rows, missing_rows, details, at)
       VALUES ($1, true, 5, 0, 0, '{"durationMs": 60000}', clock_timestamp() + interval '1 second')`,
      [migration.name],
    );
    const recorded = await lastVerification(ctx.admin, migration.name, ctx.schema);
    expect(recorded!.at.getTime() - recorded!.startedAt.getTime()).toBe(60_000);
    expect(await contractGate(ctx.admin, migration, { stateSchema: ctx.schema, stage: 'complete' })).toMatchObject({
      ok: false,
      closedBy: 'verification',
    });
  });

  it('options: invalid values are configuration errors', async () => {
    const ctx = getCtx();
    const migration = itemsMigration(`${ctx.schema}.items`);
    await expect(verify(ctx.driver, migration, { sample: 0 })).rejects.toThrow(ConfigurationError);
    await expect(verify(ctx.driver, migration, { sample: 1.5 })).rejects.toThrow(/option "sample" .*, got 1.5$/);
    await expect(verify(ctx.driver, migration, { chunkSize: -1 })).rejects.toThrow(/option "chunkSize"/);
  });
});
