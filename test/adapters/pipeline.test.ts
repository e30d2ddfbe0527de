import { createPgDriver } from 'flagshift/pg';
import type pg from 'pg';
import { expect, it } from 'vitest';
import { type Driver, runPipeline } from '../../src/kernel/index.js';
import { type DriverContext, describeDrivers } from '../support/drivers.js';

/**
 * On `items` holding only id 1: a pipeline whose second statement fails (a duplicate key)
 * rejects with the database's error, and its first statement is undone.
 */
async function expectFailureUndoesFirst(ctx: DriverContext, driver: Driver): Promise<void> {
  const failed = runPipeline(driver, [
    { sql: 'INSERT INTO items VALUES ($1)', params: [2] },
    { sql: 'INSERT INTO items VALUES ($1)', params: [1] },
  ]);
  await expect(failed).rejects.toMatchObject({ code: '23505' });
  expect(await ctx.sql('SELECT id FROM items ORDER BY id')).toEqual([{ id: 1 }]);
}

describeDrivers('pipeline', (getCtx) => {
  it('runs the statements in order and gives each its rows and count, values parsed', async () => {
    const { driver, sql } = getCtx();
    await sql('CREATE TABLE items (id int PRIMARY KEY, doc jsonb, name text)');
    const [inserted, selected, none] = await runPipeline(driver, [
      {
        sql: 'INSERT INTO items VALUES ($1, $2::jsonb, $3), ($4, $5::jsonb, NULL)',
        params: [1, '{"a":[1]}', 'one', 2, 'null'],
      },
      { sql: 'SELECT id, doc, name, $1::bigint AS big FROM items ORDER BY id', params: ['9007199254740993'] },
      { sql: 'SELECT 1 AS x WHERE false' },
    ]);
    expect(inserted!.rowCount).toBe(2);
    // int8 as the driver returns it (a string from pg, a bigint from PGlite): the core normalizes.
    expect(selected!.rows.map((row) => ({ ...row, big: String(row['big']) }))).toEqual([
      { id: 1, doc: { a: [1] }, name: 'one', big: '9007199254740993' },
      { id: 2, doc: null, name: null, big: '9007199254740993' },
    ]);
    expect(none!.rows).toEqual([]);
  });

  it('runs them in one transaction, where a local setting of one holds for the next, and not after', async () => {
    const ctx = getCtx();
    // One connection, so that the statement after the pipeline runs where the setting was made.
    const driver = ctx.kind === 'pg' ? createPgDriver(await ctx.pgClient()) : ctx.driver;
    const [first, second] = await runPipeline(driver, [
      { sql: "SELECT txid_current()::text AS tx, set_config('flagshift.probe', $1, true) AS set", params: ['on'] },
      { sql: "SELECT txid_current()::text AS tx, current_setting('flagshift.probe', true) AS probe" },
    ]);
    expect(second!.rows[0]!['tx']).toBe(first!.rows[0]!['tx']);
    expect(second!.rows[0]!['probe']).toBe('on');
    const after = await driver.query<{ probe: string | null }>(
      "SELECT nullif(current_setting('flagshift.probe', true), '') AS probe",
    );
    expect(after.rows[0]!.probe).toBeNull();
  });

  it('commits nothing when a later statement fails, and the error is the database’s', async () => {
    const { driver, sql } = getCtx();
    await sql('CREATE TABLE items (id int PRIMARY KEY)');
    const failed = runPipeline(driver, [
      { sql: 'INSERT INTO items VALUES ($1)', params: [1] },
      { sql: 'INSERT INTO items VALUES ($1), ($1)', params: [2] },
      { sql: 'INSERT INTO items VALUES ($1)', params: [3] },
    ]);
    await expect(failed).rejects.toMatchObject({ code: '23505' });
    expect(await sql('SELECT id FROM items')).toEqual([]);
    // The connection is usable afterwards.
    await runPipeline(driver, [{ sql: 'INSERT INTO items VALUES ($1)', params: [4] }]);
    expect(await sql('SELECT id FROM items')).toEqual([{ id: 4 }]);
  });

  it('inside a transaction: joins it, and goes with its rollback', async () => {
    const { driver, sql } = getCtx();
    await sql('CREATE TABLE items (id int PRIMARY KEY)');
    const outcome = driver.transaction(async () => {
      await runPipeline(driver, [
        { sql: 'INSERT INTO items VALUES ($1)', params: [1] },
        { sql: 'INSERT INTO items VALUES ($1)', params: [2] },
      ]);
      throw new Error('body failed');
    });
    await expect(outcome).rejects.toThrow('body failed');
    expect(await sql('SELECT id FROM items')).toEqual([]);
  });

  it('inside a transaction: a failed pipeline undoes its statements and leaves the transaction usable', async () => {
    const { driver, sql } = getCtx();
    await sql('CREATE TABLE items (id int PRIMARY KEY)');
    await driver.transaction(async (tx) => {
      await tx.query('INSERT INTO items VALUES ($1)', [1]);
      const failed = runPipeline(driver, [
        { sql: 'INSERT INTO items VALUES ($1)', params: [2] },
        { sql: 'INSERT INTO items VALUES ($1)', params: [1] },
      ]);
      await expect(failed).rejects.toMatchObject({ code: '23505' });
      await tx.query('INSERT INTO items VALUES ($1)', [3]);
    });
    expect(await sql('SELECT id FROM items ORDER BY id')).toEqual([{ id: 1 }, { id: 3 }]);
  });

  it('a parameter the protocol cannot carry fails the pipeline before anything runs', async () => {
    const ctx = getCtx();
    if (ctx.kind !== 'pg') return;
    const { driver, sql } = ctx;
    await sql('CREATE TABLE items (id int PRIMARY KEY, doc jsonb)');
    const failed = runPipeline(driver, [
      { sql: 'INSERT INTO items VALUES ($1, NULL)', params: [1] },
      { sql: 'INSERT INTO items VALUES ($1, $2)', params: [2, { a: 1 }] },
    ]);
    await expect(failed).rejects.toThrow(/strings, numbers, booleans, bigints or null, got object/);
    expect(await sql('SELECT id FROM items')).toEqual([]);
    await runPipeline(driver, [{ sql: 'INSERT INTO items VALUES ($1, NULL)', params: [3] }]);
    expect(await sql('SELECT id FROM items')).toEqual([{ id: 3 }]);
  });

  it('pg: a lock_timeout set by the first statement bounds the wait of the next', async () => {
    const ctx = getCtx();
    if (ctx.kind !== 'pg') return;
    const { sql } = ctx;
    await sql('CREATE TABLE items (id int PRIMARY KEY, n int)');
    await sql('INSERT INTO items VALUES (1, 0)');
    const holder = await ctx.pgClient();
    await holder.query('BEGIN');
    await holder.query('UPDATE items SET n = 1 WHERE id = 1');
    try {
      for (const driver of [ctx.driver, createPgDriver(await ctx.pgClient())]) {
        const started = performance.now();
        const failed = runPipeline(driver, [
          { sql: "SELECT set_config('lock_timeout', $1, true)", params: ['100ms'] },
          { sql: 'UPDATE items SET n = 2 WHERE id = $1', params: [1] },
        ]);
        await expect(failed).rejects.toMatchObject({ code: '55P03' });
        // Far below the test's timeout: the setting, not the holder's end, stopped the wait.
        expect(performance.now() - started).toBeLessThan(4000);
      }
    } finally {
      await holder.query('ROLLBACK');
    }
    expect(await sql('SELECT n FROM items')).toEqual([{ n: 0 }]);
  });

  it('pg: on one client, queued behind the statements sent before it', async () => {
    const ctx = getCtx();
    if (ctx.kind !== 'pg') return;
    await ctx.sql('CREATE TABLE items (id int PRIMARY KEY)');
    const driver = createPgDriver(await ctx.pgClient());
    const sent = [
      driver.query('INSERT INTO items VALUES ($1)', [1]),
      runPipeline(driver, [{ sql: 'SELECT count(*)::int AS n FROM items' }]),
      driver.query('INSERT INTO items VALUES ($1)', [2]),
    ] as const;
    const [, counted] = await Promise.all(sent);
    expect(counted[0]!.rows).toEqual([{ n: 1 }]);
  });

  it('pg: one Sync a pipeline; each statement prepared once on its connection, then only bound', async () => {
    const ctx = getCtx();
    if (ctx.kind !== 'pg') return;
    await ctx.sql('CREATE TABLE items (id int PRIMARY KEY, n int)');
    const client = await ctx.pgClient();
    const driver = createPgDriver(client);
    const connection = (client as unknown as { connection: Record<'parse' | 'sync', (...args: unknown[]) => void> })
      .connection;
    const sent = { parse: 0, sync: 0 };
    for (const message of ['parse', 'sync'] as const) {
      const original = connection[message].bind(connection);
      connection[message] = (...args: unknown[]) => {
        sent[message]++;
        original(...args);
      };
    }
    const statements = (id: number) => [
      { sql: 'INSERT INTO items VALUES ($1, 0)', params: [id] },
      { sql: 'UPDATE items SET n = n + 1 WHERE id = $1 RETURNING n', params: [id] },
    ];
    await runPipeline(driver, statements(1));
    expect(sent).toEqual({ parse: 2, sync: 1 });
    const [, updated] = await runPipeline(driver, statements(2));
    expect(updated!.rows).toEqual([{ n: 1 }]);
    expect(sent).toEqual({ parse: 2, sync: 2 });
    const prepared = await client.query<{ statement: string }>(
      'SELECT statement FROM pg_prepared_statements ORDER BY statement',
    );
    expect(prepared.rows.map((row) => row.statement)).toEqual(
      statements(0)
        .map((statement) => statement.sql)
        .sort(),
    );
  });

  it('pg: after a pipeline failed past its preparation, the same statements run again', async () => {
    const ctx = getCtx();
    if (ctx.kind !== 'pg') return;
    await ctx.sql('CREATE TABLE items (id int PRIMARY KEY)');
    const client = await ctx.pgClient();
    const driver = createPgDriver(client);
    const statements = (id: number, divisor: number) => [
      { sql: 'INSERT INTO items VALUES ($1)', params: [id] },
      { sql: 'SELECT 1 / $1::int AS quotient', params: [divisor] },
    ];
    // The division fails after both statements were prepared on the server.
    await expect(runPipeline(driver, statements(1, 0))).rejects.toMatchObject({ code: '22012' });
    const [, divided] = await runPipeline(driver, statements(2, 1));
    expect(divided!.rows).toEqual([{ quotient: 1 }]);
    expect(await ctx.sql('SELECT id FROM items')).toEqual([{ id: 2 }]);
    // Without stopping to prepare statements on this connection.
    await runPipeline(driver, [{ sql: 'SELECT $1::int AS again', params: [3] }]);
    const prepared = await client.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_prepared_statements WHERE statement = 'SELECT $1::int AS again'",
    );
    expect(prepared.rows).toEqual([{ n: 1 }]);
  });

  it('pg: a prepared statement whose result type changed is prepared afresh, and the pipeline runs once', async () => {
    const ctx = getCtx();
    if (ctx.kind !== 'pg') return;
    await ctx.sql('CREATE TABLE items (id int PRIMARY KEY)');
    await ctx.sql('CREATE TABLE log (id int)');
    const driver = createPgDriver(await ctx.pgClient());
    const statements = (id: number) => [
      { sql: 'INSERT INTO log VALUES ($1)', params: [id] },
      { sql: 'SELECT * FROM items WHERE id <> $1', params: [id] },
    ];
    await runPipeline(driver, statements(1));
    await ctx.sql('ALTER TABLE items ADD COLUMN name text');
    await ctx.sql("INSERT INTO items VALUES (7, 'seven')");
    const [, selected] = await runPipeline(driver, statements(2));
    expect(selected!.rows).toEqual([{ id: 7, name: 'seven' }]);
    // The first send failed and committed nothing; the second ran the insert once.
    expect(await ctx.sql('SELECT id FROM log ORDER BY id')).toEqual([{ id: 1 }, { id: 2 }]);
  });

  it('pg: a client in node-postgres pipeline mode runs the statements in a transaction', async () => {
    const ctx = getCtx();
    if (ctx.kind !== 'pg') return;
    await ctx.sql('CREATE TABLE items (id int PRIMARY KEY)');
    const driver = createPgDriver(await ctx.pgClient({ pipeline: true } as pg.ClientConfig));
    const [, counted] = await runPipeline(driver, [
      { sql: 'INSERT INTO items VALUES ($1)', params: [1] },
      { sql: 'SELECT count(*)::int AS n FROM items' },
    ]);
    expect(counted!.rows).toEqual([{ n: 1 }]);
    await expectFailureUndoesFirst(ctx, driver);
  });

  it('pg: a look-alike client without node-postgres’s protocol connection runs the statements in one transaction', async () => {
    const ctx = getCtx();
    if (ctx.kind !== 'pg') return;
    await ctx.sql('CREATE TABLE items (id int PRIMARY KEY)');
    const client = await ctx.pgClient();
    // Only `query(text, values)`, as a wrapper or another library's client offers: no
    // `connection` to write protocol messages on.
    const lookAlike = { query: (text: string, values?: unknown[]) => client.query(text, values) };
    const driver = createPgDriver(lookAlike, { kind: 'client' });
    const [, setting, counted] = await runPipeline(driver, [
      { sql: "SELECT set_config('flagshift.test', $1, true)", params: ['local'] },
      { sql: "SELECT current_setting('flagshift.test', true) AS value" },
      { sql: 'INSERT INTO items VALUES ($1) RETURNING id', params: [1] },
    ]);
    // A setting local to the transaction reaches the next statement: they ran in one.
    expect(setting!.rows).toEqual([{ value: 'local' }]);
    expect(counted!.rows).toEqual([{ id: 1 }]);
    // And the transaction ended: on the same connection the setting is gone.
    const after = await client.query("SELECT coalesce(current_setting('flagshift.test', true), '') AS value");
    expect(after.rows).toEqual([{ value: '' }]);
    await expectFailureUndoesFirst(ctx, driver);
  });

  it('pg: a connection lost in the middle of a pipeline fails it once, and the pool goes on', async () => {
    const ctx = getCtx();
    if (ctx.kind !== 'pg') return;
    await ctx.sql('CREATE TABLE items (id int PRIMARY KEY)');
    const failed = runPipeline(ctx.driver, [
      { sql: 'INSERT INTO items VALUES ($1)', params: [1] },
      { sql: 'SELECT pg_sleep($1::float8)', params: [30] },
    ]);
    const outcome = failed.then(
      () => 'resolved',
      (error: Error) => error.message,
    );
    // The sleeping backend, once it sleeps: end it from outside.
    let ended = false;
    for (let attempt = 0; attempt < 200 && !ended; attempt++) {
      const [row] = await ctx.sql<{ ended: boolean | null }>(
        `SELECT bool_or(pg_terminate_backend(pid)) AS ended FROM pg_stat_activity
          WHERE query = 'SELECT pg_sleep($1::float8)' AND state = 'active' AND pid <> pg_backend_pid()`,
      );
      ended = row?.ended === true;
      if (!ended) await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect(ended).toBe(true);
    expect(await outcome).toMatch(/terminat|Connection/i);
    expect(await ctx.sql('SELECT id FROM items')).toEqual([]);
    const [inserted] = await runPipeline(ctx.driver, [{ sql: 'INSERT INTO items VALUES ($1)', params: [2] }]);
    expect(inserted!.rowCount).toBe(1);
  });
});
