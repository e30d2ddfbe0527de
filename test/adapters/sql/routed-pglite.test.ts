/**
 * The routed PGlite beyond what the ORMs of the conformance suite exercise: `exec` (a script
 * passed through, one statement routed, a mixed script refused before it runs), and the pg
 * pool it answers as for TypeORM and Knex (callback forms, pg's result shape, one client
 * for the one connection, release with an error, notices, pool counts, `end`).
 */
import { ValidationError } from 'flagshift';
import { pgModuleOf, type RoutedPglite, type RoutedPgliteClient } from 'flagshift/sql';
import knex from 'knex';
import { DataSource, EntitySchema } from 'typeorm';
import { expect, it } from 'vitest';
import { filePglite, routedUsers } from '../../sql/fixture.js';
import { describeDrivers } from '../../support/drivers.js';

const pglite = filePglite();

type Callback = (
  error: Error | null,
  result?: { command: string | null; rowCount: number | null; rows: unknown[] },
) => void;

/** The client's callback forms, as TypeORM and Knex call them (untyped JavaScript). */
function callbackQuery(client: RoutedPgliteClient, ...args: unknown[]) {
  const query = client.query.bind(client) as unknown as (...args: unknown[]) => unknown;
  return new Promise<{ returned: unknown; error: Error | null; result: Parameters<Callback>[1] }>((resolve) => {
    let returned: unknown;
    const callback: Callback = (error, result) => resolve({ returned, error, result });
    returned = query(...args, callback);
  });
}

function checkOut(db: RoutedPglite) {
  return new Promise<{ client: RoutedPgliteClient; release: (error?: Error) => void }>((resolve, reject) => {
    db.connect((error, client, release) => (error ? reject(error) : resolve({ client: client!, release: release! })));
  });
}

describeDrivers(
  'routed PGlite',
  (getCtx) => {
    /** The users table routed, and none of the tables the tests create (the file's PGlite outlives each test). */
    const setup = async (stage: 'dualwrite' | 'shadow' = 'dualwrite') => {
      await pglite().exec('DROP TABLE IF EXISTS notes, side_effect');
      const routed = await routedUsers(getCtx(), pglite(), { stage });
      return { ...routed, db: routed.db as RoutedPglite };
    };

    it('exec: a script touching no migrated table runs as it is, one result per statement', async () => {
      const { db } = await setup();
      const results = await db.exec(
        'CREATE TABLE notes (id int PRIMARY KEY, body text); INSERT INTO notes VALUES (1, $$a$$), (2, $$b$$); SELECT body FROM notes ORDER BY id',
      );
      expect(results.map((result) => result.command)).toEqual(['CREATE', 'INSERT', 'SELECT']);
      expect(results[1]!.rowCount).toBe(2);
      expect(results[2]!.rows).toEqual([{ body: 'a' }, { body: 'b' }]);
      expect(db.stats().passedThrough).toBe(1);
    });

    it('exec: one statement on a migrated table is routed for its stage, its read compared and stripped', async () => {
      const { db, physical, corrupt, mismatches, setStage } = await setup('dualwrite');
      const [insert] = await db.exec("INSERT INTO users (id, username, email) VALUES (1, 'ada', 'ada@x')");
      expect(insert!.rowCount).toBe(1);
      expect(await physical(1)).toEqual({ user_name: 'ada', username: 'ada' });
      await corrupt(1, 'corrupt');
      setStage('shadow');
      const results = await db.exec('SELECT id, username FROM users WHERE id = 1');
      expect(results).toHaveLength(1);
      expect(results[0]!.rows).toEqual([{ id: 1, username: 'ada' }]);
      expect(mismatches()).toBe(1);
    });

    it('exec: several statements with one on a migrated table are refused before any of them runs', async () => {
      const { db, admin } = await setup();
      const script = "CREATE TABLE side_effect (id int); INSERT INTO users (id, username) VALUES (1, 'ada')";
      await expect(db.exec(script)).rejects.toThrow(ValidationError);
      await expect(db.exec(script)).rejects.toThrow(/several statements in one text/);
      expect(await admin("SELECT to_regclass('side_effect') AS exists")).toEqual([{ exists: null }]);
      expect(await admin('SELECT count(*)::int AS n FROM users')).toEqual([{ n: 0 }]);
    });

    it("exec: inside a transaction, routed with the transaction's decisions", async () => {
      const { db, physical, setStage } = await setup('dualwrite');
      await db.transaction(async (tx) => {
        await tx.exec!("INSERT INTO users (id, username) VALUES (1, 'ada')");
        setStage('complete');
        await tx.exec!("UPDATE users SET username = 'grace' WHERE id = 1");
      });
      expect(await physical(1)).toEqual({ user_name: 'grace', username: 'grace' });
    });

    it("pg's callback forms: connect hands client and release, query hands pg's result or the database error", async () => {
      const { db } = await setup();
      const { client, release } = await checkOut(db);
      try {
        const created = await callbackQuery(client, 'CREATE TABLE notes (id int PRIMARY KEY)');
        expect(created.error).toBeNull();
        expect(created.returned).toBeUndefined();
        expect(created.result).toMatchObject({ command: 'CREATE', rowCount: null });
        const inserted = await callbackQuery(client, 'INSERT INTO notes VALUES ($1), ($2)', [1, 2]);
        expect(inserted.result).toMatchObject({ command: 'INSERT', rowCount: 2 });
        const read = await callbackQuery(client, { text: 'SELECT id FROM notes ORDER BY id', rowMode: 'array' });
        expect(read.result).toMatchObject({ command: 'SELECT', rowCount: 2, rows: [[1], [2]] });
        const failed = await callbackQuery(client, 'INSERT INTO notes VALUES ($1)', [1]);
        expect(failed.result).toBeUndefined();
        expect(failed.error).toMatchObject({ code: '23505' });
      } finally {
        release();
      }
    });

    it('one client for the one connection: released, it refuses statements; released twice, it throws as pg does', async () => {
      const { db } = await setup();
      const first = await db.connect();
      first.release();
      await expect(first.query('SELECT 1')).rejects.toThrow(/released/);
      expect(() => first.release()).toThrow('Release called on client which has already been released to the pool.');
      const second = await db.connect();
      expect(second).toBe(first);
      expect((await second.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      second.release();
    });

    it('holds the connection while checked out: statements queue behind it and the pool counts say so', async () => {
      const { db, admin } = await setup();
      const client = await db.connect();
      expect([db.totalCount, db.idleCount, db.waitingCount]).toEqual([1, 0, 0]);
      const order: string[] = [];
      const queued = db.query("INSERT INTO users (id, username) VALUES (2, 'grace')").then(() => order.push('queued'));
      expect(db.waitingCount).toBe(1);
      await client.query('BEGIN');
      await client.query("INSERT INTO users (id, username) VALUES (1, 'ada')");
      order.push('client');
      await client.query('COMMIT');
      client.release();
      await queued;
      expect(order).toEqual(['client', 'queued']);
      expect([db.idleCount, db.waitingCount]).toEqual([1, 0]);
      expect(await admin('SELECT id FROM users ORDER BY id')).toEqual([{ id: 1 }, { id: 2 }]);
    });

    it('release with an error rolls back the transaction left open, as the discarded pg connection would', async () => {
      const { db, admin } = await setup();
      const client = await db.connect();
      await client.query('BEGIN');
      await client.query("INSERT INTO users (id, username) VALUES (1, 'ada')");
      client.release(new Error('broken'));
      expect((await db.query('SELECT count(*)::int AS n FROM users')).rows).toEqual([{ n: 0 }]);
      await db.query("INSERT INTO users (id, username) VALUES (2, 'grace')");
      expect(await admin('SELECT id FROM users')).toEqual([{ id: 2 }]);
    });

    it("refuses pg's per-query type parsers and query streams, with nothing run", async () => {
      const { db, admin } = await setup();
      const client = await db.connect();
      try {
        const types = { getTypeParser: () => String };
        await expect(client.query({ text: 'INSERT INTO users (id) VALUES (1)', types })).rejects.toThrow(/`types`/);
        const stream = { text: 'SELECT 1', submit: () => undefined };
        await expect(client.query(stream)).rejects.toThrow(/streams and cursors/);
      } finally {
        client.release();
      }
      expect(await admin('SELECT count(*)::int AS n FROM users')).toEqual([{ n: 0 }]);
    });

    it("emits PostgreSQL's notices as pg's client does, for TypeORM's logNotifications", async () => {
      const { db } = await setup();
      const client = await db.connect();
      const notices: string[] = [];
      const listener = (notice: { message: string }) => notices.push(notice.message);
      client.on('notice', listener);
      try {
        await client.query("DO $$ BEGIN RAISE NOTICE 'hello from plpgsql'; END $$");
      } finally {
        client.off('notice', listener);
        client.release();
      }
      expect(notices).toEqual(['hello from plpgsql']);
    });

    it("ends through pg's callback form, as TypeORM's destroy does, leaving PGlite open", async () => {
      const { db, admin } = await setup();
      await new Promise<void>((resolve, reject) => db.end((error) => (error ? reject(error) : resolve())));
      expect(await admin('SELECT 1 AS open')).toEqual([{ open: 1 }]);
    });

    it("reports the rows an update changed as each ORM reports them: TypeORM's affected, Knex's count", async () => {
      const { db } = await setup();
      const User = new EntitySchema<{ id: number; username: string | null }>({
        name: 'User',
        tableName: 'users',
        columns: { id: { type: 'int', primary: true }, username: { type: 'text', nullable: true } },
      });
      const source = new DataSource({ type: 'postgres', driver: pgModuleOf(db), entities: [User] });
      await source.initialize();
      const users = source.getRepository(User);
      await users.insert([
        { id: 1, username: 'ada' },
        { id: 2, username: 'ada' },
      ]);
      expect((await users.update({ username: 'ada' }, { username: 'grace' })).affected).toBe(2);
      const k = knex({ client: 'pg', connectionPool: db });
      expect(await k('users').where({ username: 'grace' }).update({ username: 'eve' })).toBe(2);
      expect(await k('users').select('username').where({ id: 1 }).first()).toEqual({ username: 'eve' });
      await k.destroy();
    });
  },
  { kinds: ['pglite'] },
);
