/**
 * The pg driver's named statements on node-postgres's JavaScript client, which it sends as
 * its own protocol messages (a query submitted to `pg`), on the run's real PostgreSQL
 * server: the rows are the ones `pg`'s own query gives, with the client's type parsers;
 * failures reach the caller and leave the connection usable; values and clients the driver
 * leaves to `pg` still work.
 */
import { createPgDriver } from 'flagshift/pg';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConnectionSet } from '../../support/pg-connections.js';

const schema = `messages_${process.pid}_${Date.now().toString(36)}`;
const connections = new ConnectionSet();

/** Records whether each statement `db` is given is a submitted query (the driver's messages) or `pg`'s config form. */
function watchSends<T extends pg.Pool | pg.Client>(db: T): { db: T; sends: ('messages' | 'config' | 'text')[] } {
  const sends: ('messages' | 'config' | 'text')[] = [];
  const query = db.query.bind(db) as (...args: unknown[]) => unknown;
  (db as { query: unknown }).query = (config: unknown, ...rest: unknown[]) => {
    sends.push(
      typeof config === 'string'
        ? 'text'
        : typeof (config as { submit?: unknown }).submit === 'function'
          ? 'messages'
          : 'config',
    );
    return query(config, ...rest);
  };
  return { db, sends };
}

/** A statement over many of the types `pg` parses, with two columns of the same name. */
const MANY_TYPES = `SELECT $1::int AS n, $2::text AS t, NULL::int AS nothing, 5::bigint AS big, 1.50::numeric AS num,
  true AS yes, '2026-01-02 03:04:05+00'::timestamptz AS at, '2026-01-02'::date AS day,
  '{"a": [1, 2]}'::jsonb AS doc, ARRAY[1, NULL, 3]::int[] AS ints, ARRAY['a', 'b c']::text[] AS words,
  '\\x0102'::bytea AS bytes, 'a'::text AS dup, 'b'::text AS dup, $3::bool AS flag, $4::bigint AS param_big`;
const MANY_VALUES = [7, 'x', false, 12345678901234n];

beforeAll(async () => {
  const admin = await connections.client();
  await admin.query(`CREATE SCHEMA ${schema}`);
  await admin.query(`CREATE TABLE ${schema}.items (id integer PRIMARY KEY, name text NOT NULL)`);
  await admin.query(`INSERT INTO ${schema}.items VALUES (1, 'one'), (2, 'two'), (3, 'three')`);
});

afterAll(async () => {
  const admin = await connections.client();
  await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await connections.closeAll();
});

describe('pg driver: named statements as its own protocol messages', () => {
  it("on a pool, a client and a pool client, rows equal pg's own query's, type for type", async () => {
    const reference = await connections.client();
    const expected = (await reference.query({ name: 'reference', text: MANY_TYPES, values: MANY_VALUES })).rows;
    expect(expected[0]).toMatchObject({ n: 7, big: '5', at: new Date('2026-01-02T03:04:05Z'), dup: 'b' });

    const pool = watchSends(connections.pool({ max: 2 }));
    const client = watchSends(await connections.client());
    const checkedOut = await pool.db.connect();
    try {
      const pooled = watchSends(checkedOut);
      for (const { db, sends } of [pool, client, pooled]) {
        const driver = createPgDriver(db);
        // Twice: the first prepares the statement on the connection, the second only binds it.
        for (let round = 0; round < 2; round++) {
          const result = await driver.query(MANY_TYPES, MANY_VALUES);
          expect(result.rows).toEqual(expected);
          expect(result.rowCount).toBe(1);
        }
        expect(sends).toEqual(['messages', 'messages']);
      }
    } finally {
      checkedOut.release();
    }
  });

  it("the client's own type parsers apply, as in pg's own query", async () => {
    const types = {
      getTypeParser: (oid: number, format?: string) =>
        oid === 20 ? (value: string) => BigInt(value) : pg.types.getTypeParser(oid, format as 'text'),
    };
    const client = watchSends(await connections.client({ types }));
    const pool = watchSends(connections.pool({ max: 1, types }));
    for (const { db, sends } of [client, pool]) {
      const { rows } = await createPgDriver(db).query('SELECT $1::bigint AS big, $2::int AS n', [
        '9007199254740993',
        1,
      ]);
      expect(rows).toEqual([{ big: 9007199254740993n, n: 1 }]);
      expect(sends).toEqual(['messages']);
    }
  });

  it("values pg serializes itself (dates, objects, arrays, buffers) go in pg's own form, and round-trip", async () => {
    const pool = watchSends(connections.pool({ max: 1 }));
    const driver = createPgDriver(pool.db);
    const at = new Date('2026-03-04T05:06:07.008Z');
    const { rows } = await driver.query(
      'SELECT $1::timestamptz AS at, $2::jsonb AS doc, $3::int[] AS ints, $4::bytea AS bytes',
      [at, { a: [1, 'two'] }, [1, 2], Buffer.from([7, 8])],
    );
    expect(rows).toEqual([{ at, doc: { a: [1, 'two'] }, ints: [1, 2], bytes: Buffer.from([7, 8]) }]);
    expect(pool.sends).toEqual(['config']);
    // Strings, numbers, booleans, bigints and nulls go as the driver's messages.
    await driver.query('SELECT $1::text AS a, $2::int AS b, $3::bool AS c, $4::bigint AS d, $5::int AS e', [
      's',
      1,
      true,
      2n,
      null,
    ]);
    expect(pool.sends).toEqual(['config', 'messages']);
  });

  it('row counts of writes, and of a read that found nothing', async () => {
    const pool = watchSends(connections.pool({ max: 1 }));
    const driver = createPgDriver(pool.db);
    expect(
      (await driver.query(`INSERT INTO ${schema}.items VALUES ($1, $2), ($3, $4)`, [10, 'a', 11, 'b'])).rowCount,
    ).toBe(2);
    expect((await driver.query(`UPDATE ${schema}.items SET name = $1 WHERE id >= $2`, ['c', 10])).rowCount).toBe(2);
    const deleted = await driver.query<{ id: number }>(`DELETE FROM ${schema}.items WHERE id = $1 RETURNING id`, [10]);
    expect(deleted).toEqual({ rows: [{ id: 10 }], rowCount: 1 });
    expect(await driver.query(`SELECT name FROM ${schema}.items WHERE id = $1`, [99])).toEqual({
      rows: [],
      rowCount: 0,
    });
  });

  it("the server's error reaches the caller with its SQLSTATE, and the connection serves the next statement", async () => {
    for (const { db, sends } of [watchSends(connections.pool({ max: 1 })), watchSends(await connections.client())]) {
      const driver = createPgDriver(db);
      const divide = 'SELECT 10 / $1::int AS q';
      await expect(driver.query(divide, [0])).rejects.toMatchObject({ code: '22012' });
      expect((await driver.query(divide, [5])).rows).toEqual([{ q: 2 }]);
      // A statement the server can't prepare: refused, not remembered as prepared.
      await expect(driver.query('SELECT FROM WHERE $1', [1])).rejects.toMatchObject({ code: '42601' });
      await expect(driver.query('SELECT FROM WHERE $1', [1])).rejects.toMatchObject({ code: '42601' });
      // Statements queued behind a failing one on one connection each get their own outcome.
      const outcomes = await Promise.allSettled([
        driver.query(divide, [0]),
        driver.query(divide, [2]),
        driver.query(`SELECT name FROM ${schema}.items WHERE id = $1`, [1]),
      ]);
      expect(outcomes).toMatchObject([
        { status: 'rejected', reason: { code: '22012' } },
        { status: 'fulfilled', value: { rows: [{ q: 5 }] } },
        { status: 'fulfilled', value: { rows: [{ name: 'one' }] } },
      ]);
      expect(new Set(sends)).toEqual(new Set(['messages']));
    }
  });

  it("a value the client's parser can't decode fails the statement with the parser's error; the connection goes on", async () => {
    const types = {
      getTypeParser: (oid: number, format?: string) =>
        oid === 1700
          ? () => {
              throw new RangeError('numeric refused');
            }
          : pg.types.getTypeParser(oid, format as 'text'),
    };
    const client = watchSends(await connections.client({ types }));
    const driver = createPgDriver(client.db);
    await expect(driver.query('SELECT $1::numeric AS n FROM generate_series(1, 3)', [1])).rejects.toThrow(
      'numeric refused',
    );
    expect((await driver.query('SELECT $1::int AS n', [4])).rows).toEqual([{ n: 4 }]);
    expect(client.sends).toEqual(['messages', 'messages']);
  });

  it("pg's pipeline and binary modes keep pg's own query, and the driver's statements run", async () => {
    const text = `SELECT name FROM ${schema}.items WHERE id = $1`;
    const clients = [
      watchSends(await connections.client({ pipeline: true } as pg.ClientConfig)),
      watchSends(await connections.client({ binary: true } as pg.ClientConfig)),
      watchSends(connections.pool({ max: 1, pipeline: true } as pg.PoolConfig)),
      watchSends(connections.pool({ max: 1, binary: true } as pg.PoolConfig)),
    ];
    for (const { db, sends } of clients) {
      const { rows } = await createPgDriver(db).query<{ name: unknown }>(text, [2]);
      expect(String(rows[0]?.name)).toBe('two');
      // pg's pipeline mode refuses submitted queries; in binary mode pg's own query gives
      // binary results, which every statement of the client keeps.
      expect(sends).toEqual(['config']);
    }
  });

  it("clients in binary mode the driver can't see (a pool's own Client class): rows as pg's own query gives them", async () => {
    class BinaryClient extends pg.Client {
      constructor(config?: pg.ClientConfig) {
        super({ ...config, binary: true } as pg.ClientConfig);
      }
    }
    const text = `SELECT $1::int AS n, $2::text AS t, 5::bigint AS big, true AS yes, NULL::int AS nothing,
      '2026-01-02 03:04:05+00'::timestamptz AS at`;
    const values = [7, 'x'];
    const reference = await connections.client({ binary: true } as pg.ClientConfig);
    const expected = (await reference.query({ name: 'reference_binary', text, values })).rows;
    // pg's binary mode reads these as their text form does (it doesn't read every type so:
    // its timestamptz is not the instant), and the driver reads them as pg does.
    expect(expected).toMatchObject([{ n: 7, t: 'x', big: '5', yes: true, nothing: null }]);
    const pool = watchSends(connections.pool({ max: 1, Client: BinaryClient } as pg.PoolConfig));
    expect((await createPgDriver(pool.db).query(text, values)).rows).toEqual(expected);
    expect(pool.sends).toEqual(['messages']);
  });

  it('numbers, booleans, bigints and undefined are written as pg writes them', async () => {
    const reference = await connections.client();
    const text =
      'SELECT $1::float8 AS a, $2::float8 AS b, $3::float8 AS c, $4::float8 AS d, $5::int AS e, $6::numeric AS f, $7::bool AS g, $8::text AS h';
    const values = [-0, Number.NaN, Number.NEGATIVE_INFINITY, 1e21, undefined, 12345678901234567890n, false, '  x\n'];
    const expected = (await reference.query({ name: 'reference_values', text, values })).rows;
    const pool = watchSends(connections.pool({ max: 1 }));
    expect((await createPgDriver(pool.db).query(text, values)).rows).toEqual(expected);
    expect(pool.sends).toEqual(['messages']);
  });

  it("a column named __proto__ is the row's own property, as in pg's own rows", async () => {
    const reference = await connections.client();
    const text = `SELECT $1::text AS "__proto__", $2::int AS x, NULL::text AS "constructor"`;
    const [expected] = (await reference.query({ name: 'reference_proto', text, values: ['p', 1] })).rows;
    const client = watchSends(await connections.client());
    const [row] = (await createPgDriver(client.db).query<Record<string, unknown>>(text, ['p', 1])).rows;
    expect(client.sends).toEqual(['messages']);
    expect(Object.getPrototypeOf(row)).toBe(Object.getPrototypeOf(expected));
    expect(Object.entries(row!)).toEqual(Object.entries(expected));
    expect(Object.getOwnPropertyDescriptor(row, '__proto__')?.value).toBe('p');
  });

  it('a statement a failed pipeline prepared is prepared again, and preparing stays on', async () => {
    const pool = watchSends(connections.pool({ max: 1 }));
    const driver = createPgDriver(pool.db);
    const read = `SELECT name FROM ${schema}.items WHERE id = $1`;
    const divide = 'SELECT 100 / $1::int AS q';
    // The pipeline fails at its second statement, after the server parsed it.
    await expect(
      driver.pipeline([
        { sql: read, params: [1] },
        { sql: divide, params: [0] },
      ]),
    ).rejects.toMatchObject({ code: '22012' });
    expect((await driver.query(divide, [4])).rows).toEqual([{ q: 25 }]);
    const other = `SELECT id FROM ${schema}.items WHERE name = $1`;
    expect((await driver.query(other, ['two'])).rows).toEqual([{ id: 2 }]);
    const checkedOut = await pool.db.connect();
    try {
      const { rows } = await checkedOut.query('SELECT statement FROM pg_prepared_statements');
      expect(rows.map((row) => row.statement)).toEqual(expect.arrayContaining([divide, other]));
    } finally {
      checkedOut.release();
    }
    expect(pool.sends.slice(-2)).toEqual(['messages', 'messages']);
  });

  it('a connection lost mid-statement fails the statement; a pool serves the next one on a new connection', async () => {
    const admin = await connections.client();
    const terminate = async (applicationName: string) => {
      // Once the statement is running on the server, end its backend.
      for (let attempt = 0; attempt < 200; attempt++) {
        const { rows } = await admin.query(
          `SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity WHERE application_name = $1 AND state = 'active'`,
          [applicationName],
        );
        if (rows.length > 0) return;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      throw new Error('the statement never ran');
    };
    const pool = watchSends(connections.pool({ max: 1, application_name: 'flagshift_lost_pool' }));
    const client = watchSends(await connections.client({ application_name: 'flagshift_lost_client' }));
    for (const [target, name] of [
      [pool, 'flagshift_lost_pool'],
      [client, 'flagshift_lost_client'],
    ] as const) {
      const driver = createPgDriver(target.db);
      // Its outcome is taken at once: the statement may fail before `terminate` returns.
      const outcome = driver.query('SELECT pg_sleep($1::float8)', [30]).then(
        () => 'finished',
        (error: unknown) => error,
      );
      await terminate(name);
      expect(await outcome).toBeInstanceOf(Error);
      expect(target.sends).toEqual(['messages']);
    }
    expect((await createPgDriver(pool.db).query('SELECT $1::int AS n', [3])).rows).toEqual([{ n: 3 }]);
  });

  it("the client's query_timeout still applies", async () => {
    const client = watchSends(await connections.client({ query_timeout: 100 }));
    const driver = createPgDriver(client.db);
    await expect(driver.query('SELECT pg_sleep($1::float8)', [0.5])).rejects.toThrow(/timeout/i);
    expect(client.sends).toEqual(['messages']);
  });
});
