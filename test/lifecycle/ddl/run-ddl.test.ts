/**
 * runDdl: each statement under lock_timeout and statement_timeout on the connection that
 * runs it, retries on lock time-outs with bounded, jittered backoff, clean-up of the
 * invalid index an interrupted CREATE INDEX CONCURRENTLY leaves, and dry runs that send
 * nothing at all.
 */
import { createPgDriver } from 'flagshift/pg';
import { describe, expect, it } from 'vitest';
import type { Driver, Queryable } from '../../../src/kernel/driver.js';
import { ConfigurationError, DriverError } from '../../../src/kernel/errors.js';
import { concurrentIndexOf, type DdlStep, ddlStatements, runDdl } from '../../../src/lifecycle/ddl/run-ddl.js';
import type { LifecycleEvent } from '../../../src/lifecycle/state/lifecycle-options.js';
import { describeDrivers } from '../../support/drivers.js';

/** A driver that records every statement sent through it. */
function recording(driver: Driver): { driver: Driver; sent: string[] } {
  const sent: string[] = [];
  const wrap = (db: Queryable): Queryable => ({
    query: (sql, params) => {
      sent.push(sql);
      return db.query(sql, params);
    },
  });
  return {
    sent,
    driver: {
      name: driver.name,
      supportsConcurrentQueries: driver.supportsConcurrentQueries,
      query: (sql, params) => wrap(driver).query(sql, params),
      transaction: (fn) => driver.transaction((tx) => fn(wrap(tx))),
      session: (fn) => driver.session((connection) => fn(wrap(connection))),
    },
  };
}

const unusable: Driver = {
  name: 'none',
  supportsConcurrentQueries: false,
  query: () => Promise.reject(new Error('no database in this test')),
  transaction: () => Promise.reject(new Error('no database in this test')),
  session: () => Promise.reject(new Error('no database in this test')),
};

describe('runDdl options', () => {
  it('an invalid option is a ConfigurationError naming the option and the value', async () => {
    await expect(runDdl(unusable, [], { lockTimeoutMs: -5 })).rejects.toThrow(/option "lockTimeoutMs" .*, got -5$/);
    await expect(runDdl(unusable, [], { maxAttempts: 1.5 })).rejects.toThrow(/option "maxAttempts" .*, got 1\.5$/);
    await expect(runDdl(unusable, [], { lockTimeout: 100 } as never)).rejects.toThrow(
      /option "lockTimeout" is not a known option/,
    );
    await expect(runDdl(unusable, [], { dryRun: 'yes' } as never)).rejects.toBeInstanceOf(ConfigurationError);
  });

  it('statements: a transactional step runs BEGIN, SET LOCAL both timeouts, the statement, COMMIT', () => {
    const step: DdlStep = {
      phase: 'expand',
      description: 'x',
      sql: 'ALTER TABLE t ADD COLUMN c int',
      transactional: true,
    };
    expect(ddlStatements(step)).toEqual([
      'BEGIN',
      "SET LOCAL lock_timeout = '500ms'",
      "SET LOCAL statement_timeout = '60000ms'",
      'ALTER TABLE t ADD COLUMN c int',
      'COMMIT',
    ]);
    expect(ddlStatements({ ...step, transactional: false }, { lockTimeoutMs: 50, statementTimeoutMs: 0 })).toEqual([
      "SET lock_timeout = '50ms'",
      "SET statement_timeout = '0ms'",
      'ALTER TABLE t ADD COLUMN c int',
      'RESET lock_timeout',
      'RESET statement_timeout',
    ]);
  });

  it('concurrentIndexOf: names the index of CREATE INDEX CONCURRENTLY, qualified like its table', () => {
    expect(concurrentIndexOf('CREATE INDEX CONCURRENTLY "i" ON "s"."t" ("c")')).toBe('"s"."i"');
    expect(concurrentIndexOf('create unique index concurrently if not exists i on t (c)')).toBe('i');
    expect(concurrentIndexOf('CREATE INDEX CONCURRENTLY "a b" ON ONLY s.t (c)')).toBe('s."a b"');
    expect(concurrentIndexOf('CREATE INDEX i ON t (c)')).toBeUndefined();
    expect(concurrentIndexOf('CREATE INDEX CONCURRENTLY ON t (c)')).toBeUndefined();
  });
});

describeDrivers('runDdl', (getCtx) => {
  it('dry run: returns the exact statements in order and sends nothing, not even the settings', async () => {
    const ctx = getCtx();
    const { driver, sent } = recording(ctx.driver);
    const steps: DdlStep[] = [
      { phase: 'expand', description: 'a', sql: `CREATE TABLE ${ctx.schema}.a (id int)`, transactional: true },
      {
        phase: 'expand',
        description: 'b',
        sql: `CREATE INDEX CONCURRENTLY b ON ${ctx.schema}.a (id)`,
        transactional: false,
      },
    ];
    const report = await runDdl(driver, steps, { dryRun: true, lockTimeoutMs: 250 });
    expect(sent).toEqual([]);
    expect(report.dryRun).toBe(true);
    expect(report.sql).toEqual([
      ...ddlStatements(steps[0]!, { lockTimeoutMs: 250 }),
      ...ddlStatements(steps[1]!, { lockTimeoutMs: 250 }),
    ]);
    expect(report.steps.map((step) => step.attempts)).toEqual([0, 0]);
    expect(await ctx.sql(`SELECT to_regclass('${ctx.schema}.a') AS t`)).toEqual([{ t: null }]);
  });

  it('settings: each statement sees lock_timeout and statement_timeout, and the session is restored after', async () => {
    const ctx = getCtx();
    const s = ctx.schema;
    // One connection, so the settings the session is left with can be read back.
    const client = ctx.kind === 'pg' ? await ctx.pgClient() : undefined;
    const driver = client === undefined ? ctx.driver : createPgDriver(client);
    const capture = (table: string) =>
      `CREATE TABLE ${s}.${table} AS SELECT current_setting('lock_timeout') AS lock, current_setting('statement_timeout') AS statement`;
    const report = await runDdl(
      driver,
      [
        { phase: 'expand', description: 'in a transaction', sql: capture('tx'), transactional: true },
        { phase: 'expand', description: 'in the session', sql: capture('session'), transactional: false },
      ],
      { lockTimeoutMs: 123, statementTimeoutMs: 4567 },
    );
    expect(await ctx.sql(`SELECT * FROM ${s}.tx`)).toEqual([{ lock: '123ms', statement: '4567ms' }]);
    expect(await ctx.sql(`SELECT * FROM ${s}.session`)).toEqual([{ lock: '123ms', statement: '4567ms' }]);
    expect((await driver.query('SHOW lock_timeout')).rows).toEqual([{ lock_timeout: '0' }]);
    expect((await driver.query('SHOW statement_timeout')).rows).toEqual([{ statement_timeout: '0' }]);
    expect(report.steps.map((step) => step.executed)).toEqual([
      ['BEGIN', "SET LOCAL lock_timeout = '123ms'", "SET LOCAL statement_timeout = '4567ms'", capture('tx'), 'COMMIT'],
      [
        "SET lock_timeout = '123ms'",
        "SET statement_timeout = '4567ms'",
        capture('session'),
        'RESET lock_timeout',
        'RESET statement_timeout',
      ],
    ]);
    expect(report.steps.map((step) => step.attempts)).toEqual([1, 1]);
  });

  it('errors: a statement error is a DriverError with its SQLSTATE, not retried, and later steps do not run', async () => {
    const ctx = getCtx();
    const events: LifecycleEvent[] = [];
    const error = await runDdl(
      ctx.driver,
      [
        {
          phase: 'expand',
          description: 'bad',
          sql: `ALTER TABLE ${ctx.schema}.missing ADD COLUMN c int`,
          transactional: true,
        },
        {
          phase: 'expand',
          description: 'never',
          sql: `CREATE TABLE ${ctx.schema}.never (id int)`,
          transactional: true,
        },
      ],
      { onEvent: (event) => events.push(event) },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DriverError);
    expect((error as DriverError).sqlState).toBe('42P01');
    expect(events.filter((event) => event.type === 'ddl-retry')).toEqual([]);
    expect(await ctx.sql(`SELECT to_regclass('${ctx.schema}.never') AS t`)).toEqual([{ t: null }]);
  });

  it('CREATE UNIQUE INDEX CONCURRENTLY that fails on duplicates leaves no invalid index behind', async () => {
    const ctx = getCtx();
    const s = ctx.schema;
    await ctx.sql(`CREATE TABLE ${s}.t (id int PRIMARY KEY, v int)`);
    await ctx.sql(`INSERT INTO ${s}.t VALUES (1, 7), (2, 7)`);
    const events: LifecycleEvent[] = [];
    const sql = `CREATE UNIQUE INDEX CONCURRENTLY "t_v" ON "${s}"."t" ("v")`;
    const error = await runDdl(ctx.driver, [{ phase: 'expand', description: 'unique v', sql, transactional: false }], {
      onEvent: (event) => events.push(event),
    }).catch((e: unknown) => e);
    expect((error as DriverError).sqlState).toBe('23505');
    expect(await ctx.sql(`SELECT to_regclass('${s}.t_v') AS i`)).toEqual([{ i: null }]);
    expect(events.map((event) => event.type)).toEqual(['ddl-invalid-index']);
  });

  it('an invalid index of the same name, left by an earlier run, is dropped before the build', async () => {
    const ctx = getCtx();
    const s = ctx.schema;
    await ctx.sql(`CREATE TABLE ${s}.t (id int PRIMARY KEY, v int)`);
    await ctx.sql(`INSERT INTO ${s}.t VALUES (1, 7), (2, 7)`);
    await ctx.sql(`CREATE UNIQUE INDEX CONCURRENTLY t_v ON ${s}.t (v)`).catch(() => undefined);
    expect(await ctx.sql(`SELECT indisvalid FROM pg_index WHERE indexrelid = '${s}.t_v'::regclass`)).toEqual([
      { indisvalid: false },
    ]);
    await ctx.sql(`UPDATE ${s}.t SET v = 8 WHERE id = 2`);
    const sql = `CREATE UNIQUE INDEX CONCURRENTLY "t_v" ON "${s}"."t" ("v")`;
    const report = await runDdl(ctx.driver, [{ phase: 'expand', description: 'unique v', sql, transactional: false }]);
    expect(report.steps[0]!.executed).toContain(`DROP INDEX CONCURRENTLY IF EXISTS "${s}"."t_v"`);
    expect(await ctx.sql(`SELECT indisvalid FROM pg_index WHERE indexrelid = '${s}.t_v'::regclass`)).toEqual([
      { indisvalid: true },
    ]);
  });
});

describeDrivers(
  'runDdl on a busy server',
  (getCtx) => {
    it('an interrupted CREATE INDEX CONCURRENTLY: the invalid index is dropped and the build retried until it succeeds', async () => {
      const ctx = getCtx();
      const s = ctx.schema;
      await ctx.sql(`CREATE TABLE ${s}.t (id int PRIMARY KEY, v int)`);
      // An open writing transaction: the build creates its (invalid) index, then waits for
      // this transaction, and times out on that wait.
      const writer = await ctx.pgClient();
      await writer.query('BEGIN');
      await writer.query(`INSERT INTO ${s}.t VALUES (1, 1)`);
      const release = setTimeout(() => void writer.query('COMMIT'), 1500);
      const events: LifecycleEvent[] = [];
      try {
        const sql = `CREATE INDEX CONCURRENTLY "t_v" ON "${s}"."t" ("v")`;
        const report = await runDdl(
          ctx.driver,
          [{ phase: 'expand', description: 'index v', sql, transactional: false }],
          {
            lockTimeoutMs: 100,
            maxAttempts: 40,
            baseDelayMs: 50,
            maxDelayMs: 200,
            onEvent: (event) => events.push(event),
          },
        );
        const step = report.steps[0]!;
        expect(step.attempts).toBeGreaterThan(1);
        expect(step.executed).toContain(`DROP INDEX CONCURRENTLY IF EXISTS "${s}"."t_v"`);
        expect(events.some((event) => event.type === 'ddl-invalid-index')).toBe(true);
        const retries = events.filter((event) => event.type === 'ddl-retry');
        expect(retries.length).toBe(step.attempts - 1);
        for (const retry of retries) {
          expect(retry['sqlState']).toBe('55P03');
          const attempt = retry['attempt'] as number;
          expect(retry['delayMs']).toBeLessThanOrEqual(Math.min(200, 50 * 2 ** (attempt - 1)));
        }
        expect(await ctx.sql(`SELECT indisvalid FROM pg_index WHERE indexrelid = '${s}.t_v'::regclass`)).toEqual([
          { indisvalid: true },
        ]);
      } finally {
        clearTimeout(release);
        await writer.query('ROLLBACK').catch(() => undefined);
      }
    });
  },
  { kinds: ['pg'] },
);
