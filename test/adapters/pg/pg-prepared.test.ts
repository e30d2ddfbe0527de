/**
 * The pg driver's prepared statements, on the run's real PostgreSQL server: what it
 * prepares, what it doesn't, and how it recovers when the server's prepared statements are
 * not the ones `pg` remembers.
 */
import { createRepository, defineTable } from 'flagshift';
import { createPgDriver, MAX_PREPARED } from 'flagshift/pg';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { queryInto } from '../../../src/kernel/index.js';
import { ConnectionSet } from '../../support/pg-connections.js';

const schema = `prepared_${process.pid}_${Date.now().toString(36)}`;
const connections = new ConnectionSet();
let admin: pg.Client;

/** The statements prepared on `client`'s connection, asked over the simple protocol. */
async function preparedOn(client: pg.Client): Promise<{ name: string; statement: string }[]> {
  const { rows } = await client.query('SELECT name, statement FROM pg_prepared_statements ORDER BY prepare_time');
  return rows as { name: string; statement: string }[];
}

beforeAll(async () => {
  admin = await connections.client();
  await admin.query(`CREATE SCHEMA ${schema}`);
  await admin.query(`CREATE TABLE ${schema}.users (id integer PRIMARY KEY, name text NOT NULL, score integer)`);
  await admin.query(`INSERT INTO ${schema}.users VALUES (1, 'ada', 7), (2, 'grace', 9)`);
});

afterAll(async () => {
  await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await connections.closeAll();
});

describe('pg driver: prepared statements', () => {
  // Each test's own connection, so its prepared statements are its own; closed at the end.
  let client: pg.Client;

  it('prepares each statement with parameters once per connection, under a name from its text', async () => {
    client = await connections.client();
    const driver = createPgDriver(client);
    const text = `SELECT name FROM ${schema}.users WHERE id = $1`;
    for (const id of [1, 2, 1]) await driver.query(text, [id]);
    expect((await driver.query<{ name: string }>(text, [2])).rows).toEqual([{ name: 'grace' }]);
    // Statements without parameters go over the simple protocol, unnamed.
    await driver.query('SELECT 1');
    const prepared = await preparedOn(client);
    expect(prepared).toEqual([{ name: expect.stringMatching(/^flagshift_[0-9a-f]{32}$/), statement: text }]);

    // A repository's read by key is one of them.
    const users = defineTable({
      name: `${schema}.users`,
      key: 'id',
      entity: z.object({ id: z.number().int(), name: z.string(), score: z.number().int().nullable() }),
    });
    const repo = createRepository(users, { driver });
    expect(await repo.get(1)).toEqual({ id: 1, name: 'ada', score: 7 });
    expect(await repo.get(2)).toEqual({ id: 2, name: 'grace', score: 9 });
    const statements = (await preparedOn(client)).map((row) => row.statement);
    expect(statements.filter((statement) => /WHERE "id" = \$1$/.test(statement))).toHaveLength(1);
    repo.close();
  });

  it('prepare: false sends every statement unnamed; a look-alike client is not sent the config form', async () => {
    client = await connections.client();
    const driver = createPgDriver(client, { prepare: false });
    await driver.query(`SELECT name FROM ${schema}.users WHERE id = $1`, [1]);
    await driver.query(`SELECT name FROM ${schema}.users WHERE id = $1`, [1]);
    expect(await preparedOn(client)).toEqual([]);

    const sent: unknown[] = [];
    const lookAlike = {
      query: (text: string, values?: unknown[]) => {
        sent.push(text);
        return client.query(text, values);
      },
    };
    await createPgDriver(lookAlike).query(`SELECT name FROM ${schema}.users WHERE id = $1`, [2]);
    expect(sent).toEqual([`SELECT name FROM ${schema}.users WHERE id = $1`]);
    expect(await preparedOn(client)).toEqual([]);
  });

  it('auto prepares on a pg.Pool and on a client checked out of one', async () => {
    const pool = connections.pool({ max: 1 });
    const text = `SELECT name FROM ${schema}.users WHERE id = $1`;
    await createPgDriver(pool).query(text, [1]);
    const checkedOut = await pool.connect();
    try {
      // The pool's one connection: the statement the pool driver prepared is there.
      expect((await preparedOn(checkedOut as unknown as pg.Client)).map((row) => row.statement)).toEqual([text]);
      const other = `SELECT score FROM ${schema}.users WHERE id = $1`;
      await createPgDriver(checkedOut).query(other, [1]);
      expect((await preparedOn(checkedOut as unknown as pg.Client)).map((row) => row.statement)).toEqual([text, other]);
    } finally {
      checkedOut.release();
    }
  });

  it('a result type changed under a prepared statement: on a pool, sent again unnamed, then prepared under a new name', async () => {
    client = await connections.client();
    await client.query(`CREATE TABLE ${schema}.widened (id integer PRIMARY KEY, n integer)`);
    await client.query(`INSERT INTO ${schema}.widened VALUES (1, 41)`);
    const pool = connections.pool({ max: 1 });
    const driver = createPgDriver(pool);
    const text = `SELECT n FROM ${schema}.widened WHERE id = $1`;
    const names = async () => {
      const checkedOut = await pool.connect();
      try {
        return (await preparedOn(checkedOut as unknown as pg.Client)).map((row) => row.name);
      } finally {
        checkedOut.release();
      }
    };
    expect((await driver.query(text, [1])).rows).toEqual([{ n: 41 }]);
    const [base] = await names();
    await client.query(`ALTER TABLE ${schema}.widened ALTER COLUMN n TYPE bigint`);
    await client.query(`UPDATE ${schema}.widened SET n = 42`);
    // The old prepared statement now fails with 0A000 on every use; the driver recovers.
    expect((await driver.query(text, [1])).rows).toEqual([{ n: '42' }]);
    expect((await driver.query(text, [1])).rows).toEqual([{ n: '42' }]);
    // pg-pool destroys a connection whose one-off statement failed: the new one holds the new name.
    expect(await names()).toEqual([`${base}_1`]);

    // Inside a transaction the failure has aborted it: it reaches the caller, and the next
    // use outside prepares the statement again, under another name.
    await client.query(`ALTER TABLE ${schema}.widened ALTER COLUMN n TYPE numeric`);
    const inTransaction = await driver
      .transaction((tx) => tx.query(text, [1]))
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(inTransaction).toMatchObject({ code: '0A000' });
    expect((await driver.query(text, [1])).rows).toEqual([{ n: '42' }]);
    expect(await names()).toEqual([`${base}_1`, `${base}_2`]);
  });

  it('a result type changed under a prepared statement: on one connection, the error reaches the caller once, in order', async () => {
    client = await connections.client();
    await client.query(`CREATE TABLE ${schema}.counted (id integer PRIMARY KEY, n integer)`);
    await client.query(`INSERT INTO ${schema}.counted VALUES (1, 0)`);
    const driver = createPgDriver(client);
    const bump = `UPDATE ${schema}.counted SET n = n + 1 WHERE id = $1 RETURNING n`;
    await driver.query(bump, [1]);
    await client.query(`ALTER TABLE ${schema}.counted ALTER COLUMN n TYPE bigint`);
    // A resend would run after the read queued behind it: the caller gets the error instead.
    const [bumped, read] = await Promise.allSettled([
      driver.query(bump, [1]),
      driver.query<{ n: string }>(`SELECT n FROM ${schema}.counted WHERE id = $1`, [1]),
    ]);
    expect(bumped).toMatchObject({ status: 'rejected', reason: { code: '0A000' } });
    expect(read).toMatchObject({ status: 'fulfilled', value: { rows: [{ n: '1' }] } });
    expect((await driver.query(bump, [1])).rows).toEqual([{ n: '2' }]);
  });

  it('statements lost by the connection (DEALLOCATE ALL): sent again unnamed, and preparing stops', async () => {
    const pool = connections.pool({ max: 1 });
    const driver = createPgDriver(pool);
    const text = `SELECT name FROM ${schema}.users WHERE id = $1`;
    await driver.query(text, [1]);
    await pool.query('DEALLOCATE ALL');
    expect((await driver.query<{ name: string }>(text, [1])).rows).toEqual([{ name: 'ada' }]);
    await driver.query(`SELECT score FROM ${schema}.users WHERE id = $1`, [2]);
    const checkedOut = await pool.connect();
    try {
      expect(await preparedOn(checkedOut as unknown as pg.Client)).toEqual([]);
    } finally {
      checkedOut.release();
    }
  });

  it(`prepares at most ${MAX_PREPARED} statement texts; the rest run unnamed`, async () => {
    client = await connections.client();
    const driver = createPgDriver(client);
    for (let k = 0; k <= MAX_PREPARED; k++) {
      expect((await driver.query<{ n: number }>(`SELECT $1::int + ${k} AS n`, [1])).rows).toEqual([{ n: 1 + k }]);
    }
    const prepared = await preparedOn(client);
    expect(prepared).toHaveLength(MAX_PREPARED);
    expect(prepared.map((row) => row.statement)).not.toContain(`SELECT $1::int + ${MAX_PREPARED} AS n`);
  });

  /** A pool-shaped fake that takes the config form; named statements fail with `error`. */
  function failingPool(error: object) {
    const named: string[] = [];
    const unnamed: string[] = [];
    const pool = {
      query(config: string | { name: string; text: string }) {
        if (typeof config === 'string') {
          unnamed.push(config);
          return Promise.resolve({ rows: [], rowCount: 0 });
        }
        named.push(config.name);
        return Promise.reject(Object.assign(new Error('failed'), error));
      },
      connect: () => Promise.reject(new Error('not used')),
    };
    return { driver: createPgDriver(pool, { kind: 'pool', prepare: true }), named, unnamed };
  }

  it('a statement whose plan keeps changing is renamed 8 times, then sent unnamed; others are still prepared', async () => {
    const { driver, named, unnamed } = failingPool({
      code: '0A000',
      routine: 'RevalidateCachedQuery',
      message: 'cached plan must not change result type',
    });
    for (let attempt = 0; attempt < 12; attempt++) await driver.query('SELECT $1::int', [1]);
    expect(new Set(named).size).toBe(9);
    expect(named.at(-1)).toMatch(/^flagshift_[0-9a-f]{32}_8$/);
    // Each failure resent once unnamed; after the renames, only unnamed.
    expect(unnamed).toHaveLength(12);
    await driver.query('SELECT $1::int + 1', [1]);
    expect(named.at(-1)).toMatch(/^flagshift_[0-9a-f]{32}$/);
  });

  it('any other 0A000 ("feature not supported") is the statement\'s own error: not resent, name kept', async () => {
    const { driver, named, unnamed } = failingPool({ code: '0A000', routine: 'transformLockingClause' });
    for (let attempt = 0; attempt < 3; attempt++) {
      await expect(driver.query('SELECT $1::int FOR UPDATE', [1])).rejects.toMatchObject({ code: '0A000' });
    }
    expect(new Set(named).size).toBe(1);
    expect(unnamed).toEqual([]);
  });

  /** A pool that looks like node-postgres's (so named statements take its callback form), answering as told. */
  function callbackPool(
    answer: (config: { name: string }, callback: (error: unknown, result?: unknown) => void) => void,
  ) {
    const unnamed: string[] = [];
    const pool = {
      Client: function Client() {},
      options: {},
      query(config: string | { name: string }, values?: unknown, callback?: unknown) {
        if (typeof config === 'string') {
          unnamed.push(config);
          throw new TypeError('the resend was refused');
        }
        answer(
          config,
          (typeof values === 'function' ? values : callback) as (error: unknown, result?: unknown) => void,
        );
        return undefined;
      },
      connect: () => Promise.reject(new Error('not used')),
    };
    return { driver: createPgDriver(pool as never, { kind: 'pool', prepare: true }), unnamed };
  }

  it('a resend after a failed preparation that throws fails the statement through its continuation', async () => {
    const { driver, unnamed } = callbackPool((_config, callback) =>
      setImmediate(() =>
        callback(
          Object.assign(new Error('cached plan must not change result type'), {
            code: '0A000',
            routine: 'RevalidateCachedQuery',
          }),
        ),
      ),
    );
    const outcome = await queryInto(driver, 'SELECT $1::int', [1], {
      done: () => 'done',
      failed: (error) => `failed: ${(error as Error).message}`,
    });
    expect(outcome).toBe('failed: the resend was refused');
    expect(unnamed).toEqual(['SELECT $1::int']);
  });

  it("a named statement's first outcome stands: a second callback changes nothing", async () => {
    const { driver } = callbackPool((_config, callback) =>
      setImmediate(() => {
        callback(null, { rows: [{ n: 1 }], rowCount: 1 });
        callback(new Error('a second callback'));
      }),
    );
    const seen: string[] = [];
    const outcome = await queryInto<{ n: number }, string>(driver, 'SELECT $1::int AS n', [1], {
      done: (result) => {
        seen.push('done');
        return `rows ${result.rowCount}`;
      },
      failed: (error) => {
        seen.push('failed');
        return `failed: ${(error as Error).message}`;
      },
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(outcome).toBe('rows 1');
    expect(seen).toEqual(['done']);
  });

  it('options: prepare must be auto, true or false', () => {
    expect(() => createPgDriver(admin, { prepare: 'always' as 'auto' })).toThrow(/pg driver option "prepare"/);
  });
});
