import { createRepository, DriverError, defineTable } from 'flagshift';
import { createPgDriver, type PgPoolClientLike, type PgPoolLike, type PgQueryResultLike } from 'flagshift/pg';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigurationError } from '../../../src/kernel/errors.js';
import { queryInto } from '../../../src/kernel/index.js';
import { deferred } from '../../support/deferred.js';
import { describeDrivers, driverKinds } from '../../support/drivers.js';
import { testDatabaseUrl } from '../../support/pg-connections.js';

/** Resolves once `count` callers have arrived; fails instead of hanging when they never do. */
function barrier(count: number, timeoutMs = 5_000): () => Promise<void> {
  let arrived = 0;
  let open: () => void = () => undefined;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return async () => {
    arrived += 1;
    if (arrived === count) open();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`only ${arrived} of ${count} arrived at the barrier`)), timeoutMs);
    });
    await Promise.race([opened, timedOut]).finally(() => clearTimeout(timer));
  };
}

describe('pg driver: construction', () => {
  it('kind: a pg.Pool is a pool, a pg.Client and a pool client are one connection', async () => {
    const pool = new pg.Pool({ connectionString: testDatabaseUrl(), max: 1 });
    try {
      expect(createPgDriver(pool).supportsConcurrentQueries).toBe(true);
      expect(createPgDriver(new pg.Client()).supportsConcurrentQueries).toBe(false);
      const checkedOut = await pool.connect();
      expect(createPgDriver(checkedOut).supportsConcurrentQueries).toBe(false);
      checkedOut.release();
      expect(createPgDriver(pool, { kind: 'client' }).supportsConcurrentQueries).toBe(false);
      expect(createPgDriver(pool).name).toBe('pg');
    } finally {
      await pool.end();
    }
  });

  it('options: an unknown kind or option is a ConfigurationError naming it', () => {
    const pool = new pg.Pool();
    expect(() => createPgDriver(pool, { kind: 'cluster' as 'pool' })).toThrow(ConfigurationError);
    expect(() => createPgDriver(pool, { kind: 'cluster' as 'pool' })).toThrow(/"kind"/);
    expect(() => createPgDriver(pool, { schema: 'x' } as object)).toThrow(ConfigurationError);
    expect(() => createPgDriver({} as pg.Pool)).toThrow(/query\(\)/);
  });
});

describe('pg driver: connection handling (stubbed pool)', () => {
  /** A pool whose one connection records statements and fails the ones in `failing`. */
  function stubPool(failing: ReadonlySet<string>) {
    const statements: string[] = [];
    const releases: unknown[] = [];
    const ok: PgQueryResultLike = { rows: [], rowCount: null, command: 'OK' };
    const client: PgPoolClientLike = {
      async query(text) {
        statements.push(text);
        if (failing.has(text)) throw Object.assign(new Error(`${text} failed`), { code: '08006' });
        return text === 'COMMIT' ? { ...ok, command: 'COMMIT' } : ok;
      },
      release(err) {
        releases.push(err);
      },
    };
    const pool: PgPoolLike = { query: client.query, connect: async () => client };
    return { pool, statements, releases };
  }

  it('transaction: releases the connection after commit and after rollback', async () => {
    const { pool, statements, releases } = stubPool(new Set());
    const driver = createPgDriver(pool);
    await driver.transaction((tx) => tx.query('SELECT 1'));
    await expect(driver.transaction(() => Promise.reject(new Error('no')))).rejects.toThrow('no');
    expect(statements).toEqual(['BEGIN', 'SELECT 1', 'COMMIT', 'BEGIN', 'ROLLBACK']);
    expect(releases).toEqual([undefined, undefined]);
  });

  it('transaction: a connection whose ROLLBACK failed is destroyed, and the body error wins', async () => {
    const { pool, releases } = stubPool(new Set(['ROLLBACK']));
    const driver = createPgDriver(pool);
    const failure = new Error('body failed');
    await expect(driver.transaction(() => Promise.reject(failure))).rejects.toBe(failure);
    expect(releases).toHaveLength(1);
    expect(releases[0]).toBeInstanceOf(Error);
    expect((releases[0] as Error).message).toBe('ROLLBACK failed');
  });

  it('transaction: a connection whose BEGIN failed is destroyed and the body never runs', async () => {
    const { pool, releases } = stubPool(new Set(['BEGIN']));
    const driver = createPgDriver(pool);
    let ran = false;
    await expect(
      driver.transaction(async () => {
        ran = true;
      }),
    ).rejects.toMatchObject({ code: '08006' });
    expect(ran).toBe(false);
    expect(releases).toHaveLength(1);
    expect(releases[0]).toBeInstanceOf(Error);
  });
});

describeDrivers(
  'pg driver',
  (getCtx) => {
    it('client: concurrent transactions on one pg.Client run one after another', async () => {
      const { sql, pgClient } = getCtx();
      const driver = createPgDriver(await pgClient());
      expect(driver.supportsConcurrentQueries).toBe(false);
      await sql('CREATE TABLE log (seq serial PRIMARY KEY, tx int NOT NULL, step text NOT NULL)');
      const events: string[] = [];
      await Promise.all(
        [1, 2, 3, 4].map((id) =>
          driver.transaction(async (tx) => {
            events.push(`begin ${id}`);
            await tx.query('INSERT INTO log (tx, step) VALUES ($1, $2)', [id, 'first']);
            await new Promise((resolve) => setTimeout(resolve, 5));
            await tx.query('INSERT INTO log (tx, step) VALUES ($1, $2)', [id, 'second']);
            events.push(`end ${id}`);
          }),
        ),
      );
      expect(events).toEqual(['begin 1', 'end 1', 'begin 2', 'end 2', 'begin 3', 'end 3', 'begin 4', 'end 4']);
      const rows = await sql<{ tx: number }>('SELECT tx FROM log ORDER BY seq');
      expect(rows.map((row) => row.tx)).toEqual([1, 1, 2, 2, 3, 3, 4, 4]);
    });

    it('client: a statement from outside waits for an open transaction instead of joining it', async () => {
      const { sql, pgClient } = getCtx();
      const driver = createPgDriver(await pgClient());
      await sql('CREATE TABLE items (id int PRIMARY KEY)');
      let inserted: () => void = () => undefined;
      const insertDone = new Promise<void>((resolve) => {
        inserted = resolve;
      });
      const rolledBack = driver.transaction(async (tx) => {
        await tx.query('INSERT INTO items VALUES ($1)', [1]);
        inserted();
        // The outside statement is issued during this pause; on a shared connection it would
        // run inside this transaction and see the uncommitted row.
        await new Promise((resolve) => setTimeout(resolve, 20));
        throw new Error('undo');
      });
      await insertDone;
      const outsideCount = driver.query<{ n: number }>('SELECT count(*)::int AS n FROM items');
      await expect(rolledBack).rejects.toThrow('undo');
      expect((await outsideCount).rows).toEqual([{ n: 0 }]);
    });

    it('pool: transactions run at the same time on different connections', async () => {
      const { driver } = getCtx();
      expect(driver.supportsConcurrentQueries).toBe(true);
      const bothInside = barrier(2);
      // Each body waits for the other to start: only possible when they really overlap.
      const pids = await Promise.all(
        [1, 2].map(() =>
          driver.transaction(async (tx) => {
            const { rows } = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
            await bothInside();
            return rows[0]!.pid;
          }),
        ),
      );
      expect(new Set(pids).size).toBe(2);
    });

    it('pool: connections are given back after commit, rollback and errors', async () => {
      const { pgPool, sql } = getCtx();
      const pool = pgPool({ max: 1 });
      const driver = createPgDriver(pool);
      await sql('CREATE TABLE items (id int PRIMARY KEY)');
      await driver.transaction((tx) => tx.query('INSERT INTO items VALUES ($1)', [1]));
      await expect(driver.transaction(() => Promise.reject(new Error('no')))).rejects.toThrow('no');
      await expect(driver.transaction((tx) => tx.query('INSERT INTO items VALUES ($1)', [1]))).rejects.toMatchObject({
        code: '23505',
      });
      // With max 1, this would wait forever for a connection that was never given back.
      await driver.transaction((tx) => tx.query('INSERT INTO items VALUES ($1)', [2]));
      expect(pool.totalCount).toBe(1);
      expect(pool.idleCount).toBe(1);
    });

    it('pool: a connection killed inside a transaction is destroyed, not given back', async () => {
      const { pgPool } = getCtx();
      const pool = pgPool({ max: 1 });
      const driver = createPgDriver(pool);
      await expect(
        driver.transaction((tx) => tx.query('SELECT pg_terminate_backend(pg_backend_pid())')),
      ).rejects.toMatchObject({ code: '57P01' });
      expect(pool.totalCount).toBe(0);
      const { rows } = await driver.query<{ one: number }>('SELECT 1 AS one');
      expect(rows).toEqual([{ one: 1 }]);
    });

    it('parsers: the driver leaves pg global type parsers alone', async () => {
      const before = pg.types.getTypeParser(20, 'text');
      createPgDriver(getCtx().pgPool());
      expect(pg.types.getTypeParser(20, 'text')).toBe(before);
      expect(before('12')).toBe('12');
    });
  },
  { kinds: driverKinds.filter((kind) => kind === 'pg') },
);

describe('pg driver: a client that throws instead of rejecting', () => {
  it('fails the statement with a rejection, and a repository read with a DriverError', async () => {
    // Answers the catalog lookup (the table's columns), throws on everything else.
    const sent: string[] = [];
    const client = {
      query(text: string): Promise<PgQueryResultLike> {
        sent.push(text);
        if (text.includes('pg_attribute')) {
          const rows = ['id', 'name'].map((column_name) => ({ name: '"users"', column_name }));
          return Promise.resolve({ rows, rowCount: rows.length });
        }
        throw Object.assign(new Error('socket is gone'), { code: '08006' });
      },
    };
    const driver = createPgDriver(client, { kind: 'client' });
    const statement = driver.query('SELECT 1', [1]);
    expect(statement).toBeInstanceOf(Promise);
    await expect(statement).rejects.toThrow('socket is gone');

    const users = defineTable({
      name: 'users',
      key: 'id',
      entity: z.object({ id: z.number().int(), name: z.string() }),
    });
    const repo = createRepository(users, { driver });
    // Not a synchronous throw out of get(): a rejection, for any caller that chains on it.
    const read = repo.get(1);
    expect(read).toBeInstanceOf(Promise);
    await expect(read).rejects.toBeInstanceOf(DriverError);
    await expect(read).rejects.toThrow(/socket is gone/);
    // The failure came from the read itself, past the catalog lookup.
    expect(sent.at(-1)).toMatch(/^SELECT .* FROM "users" WHERE "id" = \$1$/);
    repo.close();
  });
});

describe('pg driver: node-postgres itself throwing instead of calling back', () => {
  it('a named statement goes to fail, once, after the caller has its promise; a read fails with a DriverError', async () => {
    // node-postgres throws synchronously only for a query it can't queue at all (a null
    // config); the named form (`queryInto` outside a transaction) must treat that like a
    // failure it reports, so the caller's error handling runs.
    const schema = `sync_throw_${process.pid}`;
    const client = new pg.Client({ connectionString: testDatabaseUrl() });
    await client.connect();
    try {
      await client.query(`CREATE SCHEMA ${schema}`);
      await client.query(`CREATE TABLE ${schema}.users (id int PRIMARY KEY, name text NOT NULL)`);
      await client.query(`INSERT INTO ${schema}.users VALUES (1, 'ada')`);
      const driver = createPgDriver(client);
      const users = defineTable({
        name: `${schema}.users`,
        key: 'id',
        entity: z.object({ id: z.number().int(), name: z.string() }),
      });
      const repo = createRepository(users, { driver });
      // The catalog lookup before the override: what throws below is the statement itself.
      await repo.check();
      expect(await repo.get(1)).toEqual({ id: 1, name: 'ada' });

      const query = client.query.bind(client) as (...args: unknown[]) => unknown;
      const thrown: string[] = [];
      let lateCallback = false;
      // The same pg.Client, its named-statement form throwing as node-postgres does (and,
      // when asked, calling back afterwards too).
      Object.assign(client, {
        query: (config: unknown, ...rest: unknown[]) => {
          if (typeof config === 'object' && config !== null && 'name' in config) {
            thrown.push((config as unknown as { text: string }).text);
            const callback = rest[0] as (error: Error) => void;
            if (lateCallback) setImmediate(() => callback(new Error('called back after throwing')));
            throw new TypeError('Client was passed a null or undefined query');
          }
          return query(config, ...rest);
        },
      });
      try {
        const failures: string[] = [];
        const failed = queryInto(driver, 'SELECT $1::int AS one', [1], {
          done: () => 'ran',
          failed: (error) => {
            failures.push((error as Error).message);
            return `failed: ${(error as Error).message}`;
          },
        });
        // Not before the caller holds the promise.
        expect(failures).toEqual([]);
        expect(await failed).toBe('failed: Client was passed a null or undefined query');
        expect(failures).toHaveLength(1);

        lateCallback = true;
        const once: string[] = [];
        await queryInto(driver, 'SELECT $1::int AS two', [2], {
          done: () => 'ran',
          failed: (error) => {
            once.push((error as Error).message);
            return 'failed';
          },
        });
        await new Promise((resolve) => setImmediate(resolve));
        await new Promise((resolve) => setImmediate(resolve));
        expect(once).toEqual(['Client was passed a null or undefined query']);
        lateCallback = false;

        const read = repo.get(1);
        await expect(read).rejects.toBeInstanceOf(DriverError);
        await expect(read).rejects.toThrow(/null or undefined query/);
        expect(thrown.at(-1)).toMatch(/^SELECT .* FROM "sync_throw_\d+"\."users" .*WHERE "id" = \$1$/s);
      } finally {
        repo.close();
      }
    } finally {
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
      await client.end();
    }
  });
});

describe("pg driver: the async context of a statement's continuation", () => {
  it("queryInto's then runs in the caller's context, not in the one its connection was opened in (another chain's transaction)", async () => {
    const pool = new pg.Pool({ connectionString: testDatabaseUrl(), max: 2 });
    const driver = createPgDriver(pool);
    const table = `als_probe_${Math.random().toString(16).slice(2, 10)}`;
    await pool.query(`CREATE TABLE ${table} (id int)`);
    const held = deferred();
    const open = deferred();
    try {
      const transaction = driver
        .transaction(async (tx) => {
          await tx.query(`INSERT INTO ${table} VALUES ($1)`, [1]);
          // The pool's second connection, opened from inside this transaction's body.
          await driver.session((connection) => connection.query('SELECT 1'));
          open.resolve();
          await held.promise;
          throw new Error('roll back');
        })
        .catch((error: Error) => error.message);
      await open.promise;
      // Another call chain reads on that second connection and follows up from `then`.
      const seen = await queryInto(driver, 'SELECT $1::int AS x', [1], {
        done: () => ({
          inside: driver.inTransaction(),
          followUp: driver.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`),
        }),
        failed: (error) => {
          throw error;
        },
      });
      expect(seen.inside).toBe(false);
      // The transaction's uncommitted row is not the follow-up's to see.
      expect((await seen.followUp).rows).toEqual([{ n: 0 }]);
      held.resolve();
      expect(await transaction).toBe('roll back');
    } finally {
      held.resolve();
      await pool.query(`DROP TABLE ${table}`);
      await pool.end();
    }
  });
});

describe('pg driver: pool connections are guarded from checkout on', () => {
  it('an error emitted between the pool handing a connection out and the checkout resuming neither crashes nor leaks', async () => {
    const { EventEmitter } = await import('node:events');
    const released: unknown[] = [];
    const client = Object.assign(new EventEmitter(), {
      query: async () => ({ rows: [], rowCount: 0 }),
      release: (error?: unknown) => {
        released.push(error);
      },
    });
    const pool = Object.assign(new EventEmitter(), {
      query: client.query,
      // Like pg-pool: announce the checkout, then hand the connection over a tick later.
      connect: () => {
        pool.emit('acquire', client);
        const lost = new Error('terminating connection due to administrator command');
        client.emit('error', lost);
        return Promise.resolve(client);
      },
    });
    const driver = createPgDriver(pool, { kind: 'pool' });
    await driver.transaction((tx) => tx.query('SELECT 1'));
    expect(released).toHaveLength(1);
    expect((released[0] as Error).message).toContain('terminating connection');
  });

  it('drivers sharing a pool guard it once: no listeners pile up on the pool, and every connection is still guarded', async () => {
    const pool = new pg.Pool({ connectionString: testDatabaseUrl(), max: 2 });
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      // A repository each, or one per request: more drivers than the pool's listener limit.
      const drivers = Array.from({ length: 25 }, () => createPgDriver(pool));
      expect(pool.listenerCount('acquire')).toBe(1);
      expect(pool.listenerCount('connect')).toBe(1);
      await Promise.all(drivers.map((driver) => driver.query('SELECT 1')));
      // A checked-out connection keeps exactly the guard's listener (pg-pool drops its own idle one).
      const client = await pool.connect();
      try {
        expect(client.listenerCount('error')).toBe(1);
      } finally {
        client.release();
      }
      await new Promise((resolve) => setImmediate(resolve));
      expect(warnings.filter((warning) => warning.name === 'MaxListenersExceededWarning')).toEqual([]);
    } finally {
      process.off('warning', onWarning);
      await pool.end();
    }
  });
});
