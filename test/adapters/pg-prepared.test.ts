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
import { ConnectionSet } from '../support/pg-connections.js';

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

  it('a result type changed under a prepared statement: sent again unnamed, then prepared under a new name', async () => {
    client = await connections.client();
    await client.query(`CREATE TABLE ${schema}.widened (id integer PRIMARY KEY, n integer)`);
    await client.query(`INSERT INTO ${schema}.widened VALUES (1, 41)`);
    const driver = createPgDriver(client);
    const text = `SELECT n FROM ${schema}.widened WHERE id = $1`;
    expect((await driver.query(text, [1])).rows).toEqual([{ n: 41 }]);
    await client.query(`ALTER TABLE ${schema}.widened ALTER COLUMN n TYPE bigint`);
    await client.query(`UPDATE ${schema}.widened SET n = 42`);
    // The old prepared statement now fails with 0A000 on every use; the driver recovers.
    expect((await driver.query(text, [1])).rows).toEqual([{ n: '42' }]);
    expect((await driver.query(text, [1])).rows).toEqual([{ n: '42' }]);
    const names = (await preparedOn(client)).map((row) => row.name);
    expect(names).toHaveLength(2);
    expect(names[1]).toBe(`${names[0]}_1`);

    // Inside a transaction the failure has aborted it: it reaches the caller, and the next
    // use outside prepares the statement again.
    await driver.query(text, [1]);
    await client.query(`ALTER TABLE ${schema}.widened ALTER COLUMN n TYPE numeric`);
    const inTransaction = await driver
      .transaction((tx) => tx.query(text, [1]))
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(inTransaction).toMatchObject({ code: '0A000' });
    expect((await driver.query(text, [1])).rows).toEqual([{ n: '42' }]);
  });

  it('statements lost by the connection (DEALLOCATE ALL, a pooler switching connections): sent again unnamed, and preparing stops', async () => {
    client = await connections.client();
    const driver = createPgDriver(client);
    const text = `SELECT name FROM ${schema}.users WHERE id = $1`;
    await driver.query(text, [1]);
    expect(await preparedOn(client)).toHaveLength(1);
    await client.query('DEALLOCATE ALL');
    expect((await driver.query<{ name: string }>(text, [1])).rows).toEqual([{ name: 'ada' }]);
    await driver.query(`SELECT score FROM ${schema}.users WHERE id = $1`, [2]);
    expect(await preparedOn(client)).toEqual([]);
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

  it('a statement that keeps failing with 0A000 is prepared again at most MAX_PREPARED times, then sent unnamed', async () => {
    // A client that takes the config form and fails every named statement with 0A000.
    const named: string[] = [];
    let unnamed = 0;
    const failing = {
      query(config: string | { name: string }) {
        if (typeof config === 'string') {
          unnamed++;
          return Promise.reject(Object.assign(new Error('feature not supported'), { code: '0A000' }));
        }
        named.push(config.name);
        return Promise.reject(Object.assign(new Error('cached plan must not change result type'), { code: '0A000' }));
      },
    };
    const driver = createPgDriver(failing as unknown as pg.Client, { kind: 'client', prepare: true });
    for (let attempt = 0; attempt < MAX_PREPARED + 5; attempt++) {
      await expect(driver.query('SELECT $1::int', [1])).rejects.toMatchObject({ code: '0A000' });
    }
    expect(new Set(named).size).toBe(MAX_PREPARED + 1);
    // Every failure was sent again unnamed once; after the cap, statements go unnamed only.
    expect(unnamed).toBe(MAX_PREPARED + 1 + 4);
  });

  it('options: prepare must be auto, true or false', () => {
    expect(() => createPgDriver(admin, { prepare: 'always' as 'auto' })).toThrow(/pg driver option "prepare"/);
  });
});
