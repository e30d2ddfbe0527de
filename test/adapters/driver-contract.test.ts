import { createPgDriver } from 'flagshift/pg';
import { expect, it } from 'vitest';
import { queryInto } from '../../src/kernel/index.js';
import { deferred } from '../support/deferred.js';
import { describeDrivers } from '../support/drivers.js';

describeDrivers('driver contract', (getCtx) => {
  it('query: binds parameters and returns rows', async () => {
    const { driver } = getCtx();
    const { rows } = await driver.query<{ sum: number; label: string }>(
      'SELECT $1::int + $2::int AS sum, $3 AS label',
      [2, 3, 'five'],
    );
    expect(rows).toEqual([{ sum: 5, label: 'five' }]);
  });

  it('query: runs without parameters', async () => {
    const { driver } = getCtx();
    const { rows } = await driver.query<{ one: number }>('SELECT 1 AS one');
    expect(rows).toEqual([{ one: 1 }]);
  });

  it('rowCount: counts inserted, updated, deleted and selected rows; null for DDL', async () => {
    const { driver } = getCtx();
    const created = await driver.query('CREATE TABLE items (id int PRIMARY KEY, name text)');
    expect(created.rowCount).toBeNull();
    const inserted = await driver.query('INSERT INTO items VALUES ($1, $2), ($3, $4), ($5, $6)', [
      1,
      'a',
      2,
      'b',
      3,
      'c',
    ]);
    expect(inserted.rowCount).toBe(3);
    expect(inserted.rows).toEqual([]);
    const updated = await driver.query('UPDATE items SET name = $1 WHERE id >= $2', ['z', 2]);
    expect(updated.rowCount).toBe(2);
    const returned = await driver.query<{ id: number }>('UPDATE items SET name = $1 WHERE id = $2 RETURNING id', [
      'y',
      1,
    ]);
    expect(returned.rows).toEqual([{ id: 1 }]);
    expect(returned.rowCount).toBe(1);
    const selected = await driver.query('SELECT * FROM items');
    expect(selected.rowCount).toBe(3);
    const none = await driver.query('SELECT * FROM items WHERE id = $1', [99]);
    expect(none.rowCount).toBe(0);
    const deleted = await driver.query('DELETE FROM items WHERE id = $1', [3]);
    expect(deleted.rowCount).toBe(1);
  });

  it('params: an injection payload is stored verbatim', async () => {
    const { driver, sql } = getCtx();
    await sql('CREATE TABLE notes (id int PRIMARY KEY, body text)');
    const payload = `'); DROP TABLE notes; -- $1 \\ "x" ; SELECT pg_sleep(10); --`;
    await driver.query('INSERT INTO notes VALUES ($1, $2)', [1, payload]);
    expect(await sql('SELECT body FROM notes')).toEqual([{ body: payload }]);
    const found = await driver.query('SELECT id FROM notes WHERE body = $1', [payload]);
    expect(found.rows).toEqual([{ id: 1 }]);
  });

  it('transaction: commits when the body resolves and returns its value', async () => {
    const { driver, sql } = getCtx();
    await sql('CREATE TABLE items (id int PRIMARY KEY)');
    const value = await driver.transaction(async (tx) => {
      await tx.query('INSERT INTO items VALUES ($1)', [1]);
      await tx.query('INSERT INTO items VALUES ($1)', [2]);
      return 'done';
    });
    expect(value).toBe('done');
    expect(await sql('SELECT id FROM items ORDER BY id')).toEqual([{ id: 1 }, { id: 2 }]);
  });

  it('transaction: rolls back when the body throws, and rethrows the same error', async () => {
    const { driver, sql } = getCtx();
    await sql('CREATE TABLE items (id int PRIMARY KEY)');
    const failure = new Error('body failed');
    await expect(
      driver.transaction(async (tx) => {
        await tx.query('INSERT INTO items VALUES ($1)', [1]);
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(await sql('SELECT id FROM items')).toEqual([]);
    // The connection is usable again afterwards.
    await driver.query('INSERT INTO items VALUES ($1)', [2]);
    expect(await sql('SELECT id FROM items')).toEqual([{ id: 2 }]);
  });

  it('transaction: a body that swallows a failed statement does not commit', async () => {
    const { driver, sql } = getCtx();
    await sql('CREATE TABLE items (id int PRIMARY KEY)');
    await expect(
      driver.transaction(async (tx) => {
        await tx.query('INSERT INTO items VALUES ($1)', [1]);
        await tx.query('INSERT INTO items VALUES ($1)', [1]).catch(() => undefined);
      }),
    ).rejects.toMatchObject({ code: '25P02' });
    expect(await sql('SELECT id FROM items')).toEqual([]);
  });

  it('errors: a unique violation keeps SQLSTATE 23505 in code', async () => {
    const { driver, sql } = getCtx();
    await sql('CREATE TABLE items (id int PRIMARY KEY)');
    await driver.query('INSERT INTO items VALUES ($1)', [1]);
    await expect(driver.query('INSERT INTO items VALUES ($1)', [1])).rejects.toMatchObject({ code: '23505' });
    await expect(driver.transaction((tx) => tx.query('INSERT INTO items VALUES ($1)', [1]))).rejects.toMatchObject({
      code: '23505',
    });
    await expect(driver.query('SELECT * FROM missing_table')).rejects.toMatchObject({ code: '42P01' });
  });

  it('transaction: concurrent transactions never interleave their statements', async () => {
    const { driver, sql } = getCtx();
    await sql('CREATE TABLE counter (id int PRIMARY KEY, n int NOT NULL)');
    await sql('INSERT INTO counter VALUES (1, 0)');
    // Read-modify-write with a pause in between: on a shared connection, interleaving loses updates.
    // On a pool the row lock keeps them apart.
    await Promise.all(
      Array.from({ length: 6 }, () =>
        driver.transaction(async (tx) => {
          const { rows } = await tx.query<{ n: number }>('SELECT n FROM counter WHERE id = 1 FOR UPDATE');
          await new Promise((resolve) => setTimeout(resolve, 5));
          await tx.query('UPDATE counter SET n = $1 WHERE id = 1', [rows[0]!.n + 1]);
        }),
      ),
    );
    expect(await sql('SELECT n FROM counter')).toEqual([{ n: 6 }]);
  });

  it('transaction: a statement through the driver inside the body joins the transaction', async () => {
    const { driver, sql } = getCtx();
    await sql('CREATE TABLE items (id int PRIMARY KEY)');
    await expect(
      driver.transaction(async (tx) => {
        await tx.query('INSERT INTO items VALUES ($1)', [1]);
        // Would wait forever for the connection the transaction holds, or run outside it.
        const seen = await driver.query('SELECT count(*)::int AS n FROM items');
        expect(seen.rows).toEqual([{ n: 1 }]);
        throw new Error('undo');
      }),
    ).rejects.toThrow('undo');
    expect(await sql('SELECT id FROM items')).toEqual([]);
  });

  it('queryInto: maps the result; a failed statement goes to failed; a throwing done rejects', async () => {
    const { driver, sql } = getCtx();
    await sql('CREATE TABLE items (id int PRIMARY KEY, name text)');
    await sql("INSERT INTO items VALUES (1, 'a'), (2, 'b')");
    const fail = (error: unknown) => `failed ${(error as { code?: string }).code}`;
    const names = await queryInto<{ name: string }, string>(
      driver,
      'SELECT name FROM items WHERE id <= $1 ORDER BY id',
      [2],
      { done: (result) => `${result.rowCount}: ${result.rows.map((row) => row.name).join(',')}`, failed: fail },
    );
    expect(names).toBe('2: a,b');
    // The same text again, with other values: on pg the statement prepared by the first call.
    expect(
      await queryInto<{ name: string }, string>(driver, 'SELECT name FROM items WHERE id <= $1 ORDER BY id', [1], {
        done: (result) => result.rows[0]!.name,
        failed: fail,
      }),
    ).toBe('a');
    expect(
      await queryInto(driver, 'SELECT no_such_column FROM items WHERE id = $1', [1], {
        done: () => 'ran',
        failed: fail,
      }),
    ).toBe('failed 42703');
    await expect(
      queryInto(driver, 'SELECT name FROM items WHERE id = $1', [1], {
        done: () => {
          throw new Error('map failed');
        },
        failed: fail,
      }),
    ).rejects.toThrow('map failed');
    const failing = queryInto(driver, 'SELECT no_such_column FROM items WHERE id = $1', [1], {
      done: () => 'ran',
      failed: (error) => {
        throw new Error('fail rethrew', { cause: error });
      },
    });
    await expect(failing).rejects.toThrow('fail rethrew');
  });

  it('queryInto: inside a transaction the statement joins it', async () => {
    const { driver, sql } = getCtx();
    await sql('CREATE TABLE items (id int PRIMARY KEY)');
    await expect(
      driver.transaction(async (tx) => {
        await tx.query('INSERT INTO items VALUES ($1)', [1]);
        const seen = await queryInto<{ n: number }, number>(
          driver,
          'SELECT count(*)::int AS n FROM items WHERE id >= $1',
          [0],
          {
            done: (result) => result.rows[0]!.n,
            failed: (error) => {
              throw error;
            },
          },
        );
        expect(seen).toBe(1);
        throw new Error('undo');
      }),
    ).rejects.toThrow('undo');
    expect(await sql('SELECT id FROM items')).toEqual([]);
  });

  it('transaction: a nested transaction is a savepoint, undone alone when it throws', async () => {
    const { driver, sql } = getCtx();
    await sql('CREATE TABLE items (id int PRIMARY KEY)');
    await driver.transaction(async (tx) => {
      await tx.query('INSERT INTO items VALUES ($1)', [1]);
      await driver.transaction((inner) => inner.query('INSERT INTO items VALUES ($1)', [2]));
      await expect(
        driver.transaction(async (inner) => {
          await inner.query('INSERT INTO items VALUES ($1)', [3]);
          await inner.query('INSERT INTO items VALUES ($1)', [1]);
        }),
      ).rejects.toMatchObject({ code: '23505' });
      await tx.query('INSERT INTO items VALUES ($1)', [4]);
    });
    expect(await sql('SELECT id FROM items ORDER BY id')).toEqual([{ id: 1 }, { id: 2 }, { id: 4 }]);
  });

  it('transaction: a nested transaction still running when its transaction ended sends nothing more on the connection', async () => {
    const ctx = getCtx();
    await ctx.sql('CREATE TABLE items (id int PRIMARY KEY)');
    // One connection, so the next transaction gets the one the ended transaction gave back.
    const driver = ctx.kind === 'pg' ? createPgDriver(ctx.pgPool({ max: 1 })) : ctx.driver;
    const reached = deferred();
    const resume = deferred();
    let straggler: Promise<unknown> = Promise.resolve();
    await expect(
      driver.transaction(async () => {
        straggler = driver.transaction(async (inner) => {
          await inner.query('INSERT INTO items VALUES ($1)', [1]);
          reached.resolve();
          await resume.promise;
          await inner.query('INSERT INTO items VALUES ($1)', [2]);
        });
        straggler.catch(() => undefined);
        await reached.promise;
        throw new Error('outer');
      }),
    ).rejects.toThrow('outer');
    // The next transaction opens a savepoint of the same name, then lets the straggler go on:
    // neither its statement nor its rollback to "its" savepoint may reach this transaction.
    await driver.transaction(async () => {
      await driver.transaction(async (inner) => {
        await inner.query('INSERT INTO items VALUES ($1)', [20]);
        resume.resolve();
        await expect(straggler).rejects.toThrow('transaction already finished');
      });
    });
    expect(await ctx.sql('SELECT id FROM items ORDER BY id')).toEqual([{ id: 20 }]);
  });

  it('transaction: a statement from a nested body after its savepoint was rolled back is refused, through its handle or the driver', async () => {
    const { driver, sql } = getCtx();
    await sql('CREATE TABLE items (id int PRIMARY KEY)');
    const settled = deferred();
    let late: Promise<PromiseSettledResult<unknown>[]> = Promise.resolve([]);
    await driver.transaction(async (tx) => {
      await tx.query('INSERT INTO items VALUES ($1)', [1]);
      const nested = driver.transaction(async (inner) => {
        // Statements of the nested body that run once it has been rolled back.
        late = settled.promise.then(() =>
          Promise.allSettled([
            inner.query('INSERT INTO items VALUES ($1)', [2]),
            driver.query('INSERT INTO items VALUES ($1)', [3]),
          ]),
        );
        await inner.query('INSERT INTO items VALUES ($1)', [1]);
      });
      await expect(nested).rejects.toMatchObject({ code: '23505' });
      settled.resolve();
      const results = await late;
      expect(results.map((result) => result.status)).toEqual(['rejected', 'rejected']);
      for (const result of results) {
        expect((result as PromiseRejectedResult).reason.message).toContain('transaction already finished');
      }
      await tx.query('INSERT INTO items VALUES ($1)', [4]);
    });
    expect(await sql('SELECT id FROM items ORDER BY id')).toEqual([{ id: 1 }, { id: 4 }]);
  });

  it('inTransaction: true in a transaction body and in a nested one, false outside and after', async () => {
    const { driver } = getCtx();
    const seen: (boolean | undefined)[] = [driver.inTransaction?.()];
    await driver.transaction(async () => {
      seen.push(driver.inTransaction?.());
      await driver.transaction(async () => {
        seen.push(driver.inTransaction?.());
      });
    });
    seen.push(driver.inTransaction?.());
    expect(seen).toEqual([false, true, true, false]);
    // Another call chain, while a transaction is open, is not inside it.
    const held = deferred();
    const open = deferred();
    const transaction = driver.transaction(async () => {
      open.resolve();
      await held.promise;
    });
    await open.promise;
    expect(driver.inTransaction?.()).toBe(false);
    held.resolve();
    await transaction;
  });

  it('transaction: its tx refuses statements once the transaction has finished', async () => {
    const { driver, sql } = getCtx();
    await sql('CREATE TABLE items (id int PRIMARY KEY)');
    let leaked: { query: (text: string, params?: readonly unknown[]) => Promise<unknown> } | undefined;
    await driver.transaction(async (tx) => {
      leaked = tx;
    });
    await expect(leaked!.query('INSERT INTO items VALUES ($1)', [1])).rejects.toThrow(/transaction already finished/);
    expect(await sql('SELECT id FROM items')).toEqual([]);
  });

  it('types: int8 comes back as the raw driver returns it (the core normalizes)', async () => {
    const { driver, kind } = getCtx();
    const { rows } = await driver.query<{ small: unknown; huge: unknown; numeric: unknown }>(
      'SELECT 5::int8 AS small, 9007199254740993::int8 AS huge, 1.5::numeric AS numeric',
    );
    if (kind === 'pg') {
      // node-postgres leaves int8 as text unless its global parsers are changed; the driver doesn't.
      expect(rows).toEqual([{ small: '5', huge: '9007199254740993', numeric: '1.5' }]);
    } else {
      // PGlite gives a number while it is exact, a bigint past Number.MAX_SAFE_INTEGER.
      expect(rows).toEqual([{ small: 5, huge: 9007199254740993n, numeric: '1.5' }]);
    }
  });

  it('schema: a role or setting a test leaves behind does not reach the next test (1/2)', async () => {
    const { admin, schema } = getCtx();
    await admin.query(`CREATE ROLE r_${schema}`);
    await admin.query(`SET ROLE r_${schema}`);
    await admin.query('SET statement_timeout = 1234');
    await admin.query('RESET ROLE');
    await admin.query(`DROP ROLE r_${schema}`);
    await admin.query(`SET ROLE pg_read_all_data`);
  });

  it('schema: a role or setting a test leaves behind does not reach the next test (2/2)', async () => {
    const { sql } = getCtx();
    expect(
      await sql('SELECT current_user = session_user AS same, current_setting($1) AS timeout', ['statement_timeout']),
    ).toEqual([{ same: true, timeout: '0' }]);
  });

  it('schema: the test schema comes first in the search path of driver and admin', async () => {
    const { driver, schema, sql, table } = getCtx();
    await driver.query('CREATE TABLE placed (id int)');
    expect(await sql('SELECT table_schema FROM information_schema.tables WHERE table_name = $1', ['placed'])).toEqual([
      { table_schema: schema },
    ]);
    expect(await sql(`SELECT count(*)::int AS n FROM ${table('placed')}`)).toEqual([{ n: 0 }]);
  });
});
