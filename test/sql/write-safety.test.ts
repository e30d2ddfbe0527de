/**
 * The router's write promise at the database, on statements whose plain reading hides a
 * trap: no acknowledged write missing or different on either side while both are
 * written, and a statement the router can't rewrite safely refused before anything runs.
 * Each test checks the stored rows of both sides after the statement.
 */
import { defineMigration, defineTable, moveColumn, split, ValidationError } from 'flagshift';
import { expect, it } from 'vitest';
import { z } from 'zod';
import { describeDrivers } from '../support/drivers.js';
import { filePglite, routedUsers } from './fixture.js';

const people = defineTable({
  name: 'people',
  key: 'id',
  entity: z.object({ id: z.number().int(), firstName: z.string().nullable(), lastName: z.string().nullable() }),
});
const members = defineTable({
  name: 'members',
  key: 'id',
  entity: z.object({ id: z.number().int(), bio: z.string().nullable() }),
});
const bioMove = defineMigration({
  name: 'members-bio',
  table: members,
  mappings: [
    moveColumn({ field: 'bio', from: 'bio', to: { table: 'member_profiles', column: 'bio', key: ['member_id'] } }),
  ],
  defaultStage: 'off',
});
const nameSplit = defineMigration({
  name: 'people-name',
  table: people,
  mappings: [split({ from: 'full_name', into: { firstName: 'first_name', lastName: 'last_name' } })],
  defaultStage: 'off',
});

const pglite = filePglite();

const rows = <Row>(admin: (sql: string) => Promise<Row[]>) => admin('SELECT * FROM users ORDER BY id');

describeDrivers('routed SQL: write safety', (getCtx) => {
  it('dualwrite: a CTE named like the table does not hide the target of a write', async () => {
    const { db, admin } = await routedUsers(getCtx(), pglite(), { stage: 'dualwrite' });
    await db.query("WITH users AS (SELECT 1) INSERT INTO users (id, username) VALUES (1, 'alice')");
    await db.query("WITH users AS (SELECT 1) UPDATE users SET username = 'bob' WHERE id = 1");
    await db.query("WITH users AS (SELECT 1) INSERT INTO users (id, username) VALUES (2, 'carol')");
    expect(await rows(admin)).toEqual([
      { id: 1, user_name: 'bob', username: 'bob', email: null },
      { id: 2, user_name: 'carol', username: 'carol', email: null },
    ]);
  });

  it('dualwrite: refuses a statement the SQL printer would change, naming the construct; nothing is written', async () => {
    const { db, admin } = await routedUsers(getCtx(), pglite(), {
      stage: 'dualwrite',
      ddl: 'CREATE TABLE users (id int PRIMARY KEY, user_name text, username text, email text, score int)',
    });
    await admin("INSERT INTO users VALUES (1, 'a', 'a', '', 10), (2, 'b', 'b', '', 10), (3, 'c', 'c', '', 5)");
    const before = await rows(admin);
    const ties =
      "UPDATE users SET username = 'top' WHERE id IN (SELECT id FROM users ORDER BY score DESC FETCH FIRST 1 ROWS WITH TIES)";
    await expect(db.query(ties)).rejects.toThrow(ValidationError);
    await expect(db.query(ties)).rejects.toThrow(/FETCH FIRST \.\.\. WITH TIES/);
    await expect(db.query('SELECT username FROM users GROUP BY DISTINCT username')).rejects.toThrow(
      /GROUP BY DISTINCT/,
    );
    await expect(db.query('UPDATE users SET email = xmlforest(username AS n)::text WHERE id = 1')).rejects.toThrow(
      /XML expression/,
    );
    expect(await rows(admin)).toEqual(before);
    // A statement whose text the router leaves as it is runs as written.
    const { db: complete } = await routedUsers(getCtx(), pglite(), {
      stage: 'complete',
      ddl: 'DROP TABLE IF EXISTS users; CREATE TABLE users (id int PRIMARY KEY, user_name text, username text, email text, score int)',
    });
    await admin("INSERT INTO users VALUES (1, 'a', 'a', '', 10), (2, 'b', 'b', '', 10), (3, 'c', 'c', '', 5)");
    await complete.query(ties);
    expect(
      (await admin<{ username: string }>('SELECT username FROM users ORDER BY id')).map((r) => r.username),
    ).toEqual(['top', 'top', 'c']);
  });

  it('dualwrite: text spaced or quoted otherwise than the printer prints it is routed (IN lists, arrays, quoted names)', async () => {
    const { db, admin } = await routedUsers(getCtx(), pglite(), { stage: 'dualwrite' });
    await admin("INSERT INTO users VALUES (1, 'a', 'a', 'a@x'), (2, 'b', 'b', 'b@x'), (3, 'c', 'c', 'c@x')");
    // As query builders send them: quoted names, no spaces after commas, parameters in lists.
    const found = await db.query(
      'select "id","username" from "users" where "users"."id" in ($1,$2) order by "id"',
      [1, 2],
    );
    expect(found.rows).toEqual([
      { id: 1, username: 'a' },
      { id: 2, username: 'b' },
    ]);
    await db.query('update "users" set "username"=$1 where "users"."id" in ($2,  $3)', ['z', 1, 3]);
    await db.query("UPDATE users SET email = 'e' WHERE id = ANY (ARRAY[ 2,3 ]) AND username LIKE ANY (ARRAY['%'])");
    expect(await rows(admin)).toEqual([
      { id: 1, user_name: 'z', username: 'z', email: 'a@x' },
      { id: 2, user_name: 'b', username: 'b', email: 'e' },
      { id: 3, user_name: 'z', username: 'z', email: 'e' },
    ]);
  });

  it('a statement refused in one stage runs in a stage that leaves its text as it is, on the same router', async () => {
    const { db, admin, setStage } = await routedUsers(getCtx(), pglite(), { stage: 'dualwrite' });
    await admin("INSERT INTO users VALUES (1, 'a', 'a', ''), (2, 'b', 'b', '')");
    const grouped = 'SELECT username FROM users GROUP BY DISTINCT username ORDER BY username';
    await expect(db.query(grouped)).rejects.toThrow(/GROUP BY DISTINCT/);
    setStage('complete');
    expect((await db.query(grouped)).rows).toEqual([{ username: 'a' }, { username: 'b' }]);
  });

  it('shadow: refuses SELECT ... INTO over a migrated table; no table is created', async () => {
    const { db, admin } = await routedUsers(getCtx(), pglite(), { stage: 'shadow' });
    await admin("INSERT INTO users VALUES (1, 'a', 'a', '')");
    await expect(db.query('SELECT id, username INTO TEMP snap FROM users')).rejects.toThrow(
      /SELECT \.\.\. INTO over a migrated table/,
    );
    await expect(db.query('SELECT id, username INTO snap FROM users')).rejects.toThrow(ValidationError);
    expect(await admin("SELECT relname FROM pg_class WHERE relname = 'snap'")).toEqual([]);
    // The way the error suggests is routed: the served side, no hidden column.
    await admin('CREATE TABLE snap (id int, username text)');
    await db.query('INSERT INTO snap (id, username) SELECT id, username FROM users');
    expect(await admin('SELECT * FROM snap')).toEqual([{ id: 1, username: 'a' }]);
  });

  for (const stage of ['dualwrite', 'shadow'] as const) {
    it(`${stage}: ON CONFLICT DO UPDATE writes EXCLUDED's proposed values on both sides, as the INSERT does`, async () => {
      const { db, admin } = await routedUsers(getCtx(), pglite(), {
        stage,
        migration: nameSplit,
        ddl: 'DROP TABLE IF EXISTS people; CREATE TABLE people (id int PRIMARY KEY, full_name text, first_name text, last_name text)',
      });
      const upsert = `INSERT INTO people (id, first_name, last_name) VALUES ($1, $2, $3)
        ON CONFLICT (id) DO UPDATE SET first_name = EXCLUDED.first_name, last_name = EXCLUDED.last_name`;
      const stored = () => admin('SELECT * FROM people ORDER BY id');
      const written = { id: 1, full_name: 'Mary Ann Smith', first_name: 'Mary Ann', last_name: 'Smith' };
      await db.query(upsert, [1, 'Mary Ann', 'Smith']);
      expect(await stored()).toEqual([written]);
      await admin("UPDATE people SET full_name = 'x', first_name = 'x', last_name = NULL");
      await db.query(upsert, [1, 'Mary Ann', 'Smith']);
      expect(await stored()).toEqual([written]);
      // An expression over EXCLUDED: both sides get the one value.
      await db.query(
        `INSERT INTO people (id, first_name, last_name) VALUES ($1, $2, $3)
          ON CONFLICT (id) DO UPDATE SET first_name = upper(EXCLUDED.first_name), last_name = EXCLUDED.last_name`,
        [1, 'Ada Mae', 'King'],
      );
      expect(await stored()).toEqual([{ id: 1, full_name: 'ADA MAE King', first_name: 'ADA MAE', last_name: 'King' }]);
    });
  }

  it('dualwrite: refuses a value of a migrated column that could differ per side; nothing is written', async () => {
    const { db, admin } = await routedUsers(getCtx(), pglite(), { stage: 'dualwrite' });
    await admin("INSERT INTO users VALUES (1, 'a', 'a', '')");
    const before = await rows(admin);
    for (const sql of [
      'INSERT INTO users (id, username) VALUES (2, md5(random()::text))',
      'INSERT INTO users (id, username) VALUES (2, $1), (3, gen_random_uuid()::text)',
      'UPDATE users SET username = gen_random_uuid()::text WHERE id = 1',
      "UPDATE users SET username = public.my_name('x') WHERE id = 1",
      "INSERT INTO users (id, username) VALUES (1, 'b') ON CONFLICT (id) DO UPDATE SET username = random()::text",
    ]) {
      await expect(db.query(sql, sql.includes('$1') ? ['b'] : [])).rejects.toThrow(
        /can't rewrite .*\(\) in the value written to the migrated column "username" .*; nothing was run\. Compute the value in the application and pass it as a parameter\./,
      );
    }
    expect(await rows(admin)).toEqual(before);
    // An aggregate over the statement's one snapshot gives one value, evaluated twice or not.
    await db.query('UPDATE users SET username = (SELECT max(username) || count(*) FROM users) WHERE id = 1');
    expect(await rows(admin)).toEqual([{ id: 1, user_name: 'a1', username: 'a1', email: '' }]);
    await db.query("UPDATE users SET username = 'a' WHERE id = 1");
    // Stable functions give one value per statement: both sides agree.
    await db.query("INSERT INTO users (id, username) VALUES (2, lower($1) || to_char(now(), 'YYYY'))", ['B']);
    await db.query('UPDATE users SET username = upper(username) WHERE id = 1');
    const stored = await admin<{ user_name: string; username: string }>('SELECT user_name, username FROM users');
    expect(stored).toHaveLength(2);
    for (const row of stored) expect(row.user_name).toBe(row.username);
  });

  it("dualwrite: refuses a DELETE of a moved column's table whose condition could differ when evaluated again", async () => {
    const { db, admin } = await routedUsers(getCtx(), pglite(), {
      stage: 'dualwrite',
      migration: bioMove,
      ddl: `DROP TABLE IF EXISTS member_profiles; DROP TABLE IF EXISTS members;
        CREATE TABLE members (id int PRIMARY KEY, bio text);
        CREATE TABLE member_profiles (member_id int PRIMARY KEY, bio text)`,
    });
    await admin("INSERT INTO members SELECT i, 'b' || i FROM generate_series(1, 20) i");
    await admin("INSERT INTO member_profiles SELECT i, 'b' || i FROM generate_series(1, 20) i");
    await expect(db.query('DELETE FROM members WHERE random() < 0.5')).rejects.toThrow(
      /random\(\) in a DELETE from members/,
    );
    const count = async (table: string) =>
      (await admin<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`))[0]!.n;
    expect([await count('members'), await count('member_profiles')]).toEqual([20, 20]);
    await db.query('DELETE FROM members WHERE id <= $1', [5]);
    expect([await count('members'), await count('member_profiles')]).toEqual([15, 15]);
    // Set-returning functions and aggregates of their arguments alone give the same rows again.
    await db.query('DELETE FROM members WHERE id IN (SELECT unnest($1::int[]))', [[6, 7]]);
    await db.query('DELETE FROM members WHERE id IN (SELECT max(id) FROM members GROUP BY id % 2 HAVING count(*) > 1)');
    expect([await count('members'), await count('member_profiles')]).toEqual([11, 11]);
  });

  it('dualwrite: a migrated column under a cast, COLLATE or CASE keeps the output name PostgreSQL gives it', async () => {
    const { db, admin } = await routedUsers(getCtx(), pglite(), { stage: 'dualwrite' });
    await admin("INSERT INTO users VALUES (1, 'old', 'new', '')");
    const names = async (sql: string) => Object.keys((await db.query(sql)).rows[0] as object);
    expect(await names('SELECT username::text FROM users')).toEqual(['username']);
    expect(await names('SELECT u.username COLLATE "C" FROM users u')).toEqual(['username']);
    expect(await names('SELECT CASE WHEN id = 0 THEN NULL ELSE username END FROM users')).toEqual(['username']);
    expect(await names('SELECT CAST(username AS varchar), lower(username) FROM users')).toEqual(['username', 'lower']);
    const returned = await db.query("UPDATE users SET email = 'e' WHERE id = 1 RETURNING username::text");
    expect(returned.rows).toEqual([{ username: 'old' }]);
    expect(await rows(admin)).toEqual([{ id: 1, user_name: 'old', username: 'new', email: 'e' }]);
  });

  for (const stage of ['dualwrite', 'complete'] as const) {
    it(`${stage}: refuses a * over a migrated table whose rows a statement that writes may write on; nothing is written`, async () => {
      const { db, admin } = await routedUsers(getCtx(), pglite(), {
        stage,
        ddl: `DROP TABLE IF EXISTS users_archive;
          CREATE TABLE users (id int PRIMARY KEY, user_name text, username text, email text, created_at date);
          CREATE TABLE users_archive (id int, user_name text, username text, email text, created_at date)`,
      });
      await admin("INSERT INTO users VALUES (1, 'al', 'al', 'a@x', '2020-01-01')");
      for (const sql of [
        'WITH gone AS (DELETE FROM users WHERE id = 1 RETURNING *) INSERT INTO users_archive SELECT * FROM gone',
        'INSERT INTO users_archive SELECT * FROM users',
        'UPDATE users_archive a SET email = s.email FROM (SELECT * FROM users) s WHERE a.id = s.id',
      ]) {
        await expect(db.query(sql)).rejects.toThrow(/a \* over a migrated table inside a statement that writes/);
      }
      expect(await admin('SELECT id, created_at::text FROM users')).toEqual([{ id: 1, created_at: '2020-01-01' }]);
      expect(await admin('SELECT * FROM users_archive')).toEqual([]);
      // Nothing reads the columns of an EXISTS sub-query.
      const found = await db.query('SELECT EXISTS (SELECT * FROM users WHERE users.id = 1) AS found');
      expect(found.rows).toEqual([{ found: true }]);
      // A read hands the rows of a sub-query's * to the caller alone: the application's
      // fields, as a * of its own select list does (a query builder's JSON of related rows).
      const nested = await db.query('SELECT s.* FROM (SELECT * FROM users) s');
      expect(nested.rows).toEqual([{ id: 1, username: 'al', email: 'a@x' }]);
    });
  }

  it("dualwrite: RETURNING old.<column> and new.<column> (PostgreSQL 18) are served from the stage's side", async () => {
    const { db, admin } = await routedUsers(getCtx(), pglite(), { stage: 'dualwrite' });
    // The new side isn't backfilled yet: the served (old) side says alice.
    await admin("INSERT INTO users VALUES (1, 'alice', NULL, ''), (2, 'carol', NULL, '')");
    const updated = await db.query(
      "UPDATE users SET username = 'bob' WHERE id = 1 RETURNING old.username AS before, new.username AS after, old.username",
    );
    expect(updated.rows).toEqual([{ before: 'alice', after: 'bob', username: 'alice' }]);
    const renamed = await db.query(
      "UPDATE users SET username = 'dora' WHERE id = 2 RETURNING WITH (OLD AS o, NEW AS n) o.username AS before, n.username AS after",
    );
    expect(renamed.rows).toEqual([{ before: 'carol', after: 'dora' }]);
    expect(await rows(admin)).toEqual([
      { id: 1, user_name: 'bob', username: 'bob', email: '' },
      { id: 2, user_name: 'dora', username: 'dora', email: '' },
    ]);
    await admin('UPDATE users SET username = NULL WHERE id = 2');
    const deleted = await db.query('DELETE FROM users WHERE id = 2 RETURNING old.username');
    expect(deleted.rows).toEqual([{ username: 'dora' }]);
  });
});
