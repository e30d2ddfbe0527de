/**
 * The SQL router's routing beyond the stage table: the call context's bucket for
 * multi-row reads, the read guard, a shadow read before the new column exists, skipped
 * comparisons, the exact result shape (objects and arrays), generated keys, multi-row
 * upserts, mismatch samples identical to a repository's, and a type change (`visits
 * integer` to `visits_big bigint`) through its forward and backward SQL forms.
 */
import {
  changeType,
  createRepository,
  defineMigration,
  defineTable,
  isInReadPercentage,
  merge,
  STAGES,
  split,
} from 'flagshift';
import { createPgliteDriver } from 'flagshift/pglite';
import { RoutedPglite, routerStats, withFlagContext } from 'flagshift/sql';
import type pg from 'pg';
import { expect, it } from 'vitest';
import { z } from 'zod';
import { describeDrivers } from '../support/drivers.js';
import { filePglite, routedUsers } from './fixture.js';

const pglite = filePglite();

const counters = defineTable({
  name: 'counters',
  key: 'id',
  entity: z.object({ id: z.number().int(), visits: z.number().int() }),
});
const visitsToBigint = defineMigration({
  name: 'counters-visits',
  table: counters,
  mappings: [
    changeType({
      field: 'visits',
      from: { column: 'visits', type: 'integer' },
      to: { column: 'visits_big', type: 'bigint' },
    }),
  ],
  defaultStage: 'off',
});

const people = defineTable({
  name: 'people',
  key: 'id',
  entity: z.object({ id: z.number().int(), firstName: z.string().nullable(), lastName: z.string().nullable() }),
});
const nameSplit = defineMigration({
  name: 'people-split',
  table: people,
  mappings: [split({ from: 'name', into: { firstName: 'first_name', lastName: 'last_name' } })],
  defaultStage: 'off',
});

const contacts = defineTable({
  name: 'contacts',
  key: 'id',
  entity: z.object({ id: z.number().int(), fullName: z.string().nullable() }),
});
const nameMerge = defineMigration({
  name: 'contacts-merge',
  table: contacts,
  mappings: [merge({ from: ['first_name', 'last_name'], into: { field: 'fullName', column: 'full_name' } })],
  defaultStage: 'off',
});
const CONTACTS_DDL =
  'DROP TABLE IF EXISTS contacts; CREATE TABLE contacts (id int PRIMARY KEY, first_name text, last_name text, full_name text)';

const SEED = 'INSERT INTO users (id, user_name, username, email) VALUES ($1, $2, $3, $4)';

describeDrivers('routed SQL: routing', (getCtx) => {
  it('buckets a multi-row read by the call context', async () => {
    const { db, admin, migration } = await routedUsers(getCtx(), pglite(), { stage: 'live', percent: 50 });
    for (const id of [1, 2, 3]) await admin(SEED, [id, `old-${id}`, `new-${id}`, 'e']);
    const keys = Array.from({ length: 50 }, (_, i) => `request-${i}`);
    const inside = keys.find((key) => isInReadPercentage(50, migration.stageFlagKey, key))!;
    const outside = keys.find((key) => !isInReadPercentage(50, migration.stageFlagKey, key))!;
    const names = async (targetingKey: string) => {
      const result = await withFlagContext({ targetingKey }, () =>
        db.query('SELECT id, username FROM users ORDER BY id'),
      );
      return result.rows.map((row) => (row as { username: string }).username);
    };
    expect(await names(inside)).toEqual(['new-1', 'new-2', 'new-3']);
    expect(await names(outside)).toEqual(['old-1', 'old-2', 'old-3']);
  });

  it('holds reads on the old side while the read guard says so, and keeps dual writes', async () => {
    let allowed = true;
    const { db, admin, physical } = await routedUsers(getCtx(), pglite(), {
      stage: 'rampdown',
      readGuard: { allowsNewReads: () => allowed },
    });
    await admin(SEED, [1, 'old', 'new', 'e']);
    const read = async () => (await db.query('SELECT username FROM users WHERE id = $1', [1])).rows[0];
    expect(await read()).toEqual({ username: 'new' });
    allowed = false;
    expect(await read()).toEqual({ username: 'old' });
    await db.query('UPDATE users SET username = $2 WHERE id = $1', [1, 'both']);
    expect(await physical(1)).toEqual({ user_name: 'both', username: 'both' });
  });

  it('serves a shadow read when the new column does not exist yet, and counts the failed side', async () => {
    const { db, admin, metrics, migration } = await routedUsers(getCtx(), pglite(), {
      stage: 'shadow',
      ddl: 'CREATE TABLE users (id int PRIMARY KEY, user_name text, email text)',
    });
    await admin('INSERT INTO users (id, user_name, email) VALUES (1, $1, $2)', ['ada', 'e']);
    const result = await db.query('SELECT id, username FROM users WHERE id = $1', [1]);
    expect(result.rows).toEqual([{ id: 1, username: 'ada' }]);
    expect(metrics.snapshot().migrations[migration.name]?.errors.bySide.new).toBe(1);
  });

  it('compares inside a transaction under a savepoint, which keeps the transaction usable when the new column is missing', async () => {
    const { db, admin, metrics, migration, mismatches } = await routedUsers(getCtx(), pglite(), {
      stage: 'shadow',
      ddl: 'CREATE TABLE users (id int PRIMARY KEY, user_name text, email text)',
    });
    await admin('INSERT INTO users (id, user_name, email) VALUES (1, $1, $2)', ['ada', 'e']);
    const client = await db.connect();
    try {
      await client.query('BEGIN');
      const read = await client.query('SELECT id, username FROM users WHERE id = $1', [1]);
      expect(read.rows).toEqual([{ id: 1, username: 'ada' }]);
      await client.query('UPDATE users SET email = $2 WHERE id = $1', [1, 'still-open']);
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    expect(await admin('SELECT email FROM users')).toEqual([{ email: 'still-open' }]);
    expect(metrics.snapshot().migrations[migration.name]?.errors.bySide.new).toBe(1);
    await admin('ALTER TABLE users ADD COLUMN username text');
    await admin(`UPDATE users SET username = 'eve'`);
    const again = await db.connect();
    try {
      await again.query('BEGIN');
      expect((await again.query('SELECT username FROM users WHERE id = $1', [1])).rows).toEqual([{ username: 'ada' }]);
      await again.query('COMMIT');
    } finally {
      again.release();
    }
    expect(mismatches()).toBe(1);
  });

  it('returns exactly the rows and fields of the original statement, as objects and as arrays', async () => {
    const { db, admin } = await routedUsers(getCtx(), pglite(), { stage: 'shadow' });
    await admin(SEED, [1, 'ada', 'ada', 'a@x']);
    const objects = await db.query('SELECT email, username, id FROM users WHERE id = $1', [1]);
    expect(objects.rows).toEqual([{ email: 'a@x', username: 'ada', id: 1 }]);
    expect(Object.keys(objects.rows[0] as object)).toEqual(['email', 'username', 'id']);
    const arrays =
      db instanceof RoutedPglite
        ? await db.query('SELECT username, id FROM users', [], { rowMode: 'array' })
        : await db.query({ text: 'SELECT username, id FROM users', rowMode: 'array' });
    expect(arrays.rows).toEqual([['ada', 1]]);
    expect((arrays.fields as { name: string }[]).map((field) => field.name)).toEqual(['username', 'id']);
  });

  it('counts the comparisons it can not make in one statement', async () => {
    const { db, admin, mismatches } = await routedUsers(getCtx(), pglite(), { stage: 'shadow' });
    await admin(SEED, [1, 'ada', 'other', 'e']);
    const grouped = await db.query('SELECT username, count(*)::int AS n FROM users GROUP BY username');
    expect(grouped.rows).toEqual([{ username: 'ada', n: 1 }]);
    expect(routerStats(db).comparisonsSkipped).toBe(1);
    expect(mismatches()).toBe(0);
    await db.query('SELECT username FROM users');
    expect(mismatches()).toBe(1);
  });

  it('upserts several rows in one statement, with generated keys returned', async () => {
    const { db, admin } = await routedUsers(getCtx(), pglite(), {
      stage: 'dualwrite',
      ddl: 'CREATE TABLE users (id serial PRIMARY KEY, user_name text, username text, email text)',
    });
    const inserted = await db.query(
      'INSERT INTO users (username, email) VALUES ($1, $2), ($3, $2) RETURNING id, username',
      ['ada', 'e', 'bob'],
    );
    expect(inserted.rows).toEqual([
      { id: 1, username: 'ada' },
      { id: 2, username: 'bob' },
    ]);
    await db.query(
      'INSERT INTO users (id, username, email) VALUES ($1, $2, $3), ($4, $5, $3) ON CONFLICT (id) DO UPDATE SET username = excluded.username',
      [1, 'ada.l', 'e', 3, 'cy'],
    );
    expect(await admin('SELECT id, user_name, username FROM users ORDER BY id')).toEqual([
      { id: 1, user_name: 'ada.l', username: 'ada.l' },
      { id: 2, user_name: 'bob', username: 'bob' },
      { id: 3, user_name: 'cy', username: 'cy' },
    ]);
  });

  it('reports a mismatch with the same sample a repository reports', async () => {
    const ctx = getCtx();
    const { db, admin, metrics, migration, flags } = await routedUsers(ctx, pglite(), { stage: 'shadow' });
    await admin(SEED, [7, 'ada', 'eve', 'e']);
    await db.query('SELECT id, username FROM users WHERE id = $1', [7]);
    const repo = createRepository(migration, {
      driver: ctx.kind === 'pg' ? ctx.driver : createPgliteDriver(pglite()),
      flags,
      metrics,
    });
    await repo.get(7);
    const samples = metrics.snapshot().migrations[migration.name]!.recentMismatches;
    expect(samples).toHaveLength(2);
    const [routed, fromRepository] = samples.map(({ at: _at, ...sample }) => sample);
    expect(routed).toEqual(fromRepository);
    repo.close();
  });

  it('changes a type: reads through the forward form, writes the old column through the backward form, and compares in one statement', async () => {
    const { db, admin, setStage, metrics } = await routedUsers(getCtx(), pglite(), {
      stage: 'off',
      migration: visitsToBigint,
      ddl: 'DROP TABLE IF EXISTS counters; CREATE TABLE counters (id int PRIMARY KEY, visits integer, visits_big bigint)',
    });
    // bigint as the driver returns it: a string from pg, a number from PGlite.
    const big = async (value: number) => (await admin<{ v: unknown }>('SELECT $1::bigint AS v', [value]))[0]!.v;
    for (const [index, stage] of STAGES.entries()) {
      setStage(stage);
      const id = index + 1;
      await db.query('INSERT INTO counters (id, visits_big) VALUES ($1, $2)', [id, 40 + id]);
      await db.query('UPDATE counters SET visits_big = visits_big + $2 WHERE id = $1', [id, 100]);
      const stored = await admin<{ visits: number | null; visits_big: unknown }>(
        'SELECT visits, visits_big FROM counters WHERE id = $1',
        [id],
      );
      expect(stored[0], stage).toEqual({
        visits: stage === 'complete' ? null : 140 + id,
        visits_big: stage === 'off' ? null : await big(140 + id),
      });
      const read = await db.query('SELECT visits_big FROM counters WHERE id = $1', [id]);
      expect(read.rows, stage).toEqual([{ visits_big: await big(140 + id) }]);
    }
    const snapshot = metrics.snapshot().migrations[visitsToBigint.name]!;
    expect(snapshot.comparisons).toBe(2);
    expect(snapshot.mismatches).toBe(0);
  });

  it('splits a column: writes set both shapes in one statement, reads serve the side of the stage and compare', async () => {
    const { db, admin, setStage, metrics } = await routedUsers(getCtx(), pglite(), {
      stage: 'off',
      migration: nameSplit,
      ddl: 'DROP TABLE IF EXISTS people; CREATE TABLE people (id int PRIMARY KEY, name text, first_name text, last_name text)',
    });
    for (const [index, stage] of STAGES.entries()) {
      setStage(stage);
      const id = index + 1;
      await db.query('INSERT INTO people (id, first_name, last_name) VALUES ($1, $2, $3)', [
        id,
        'Ada',
        `Lovelace ${id}`,
      ]);
      await db.query('UPDATE people SET first_name = $2, last_name = $3 WHERE id = $1', [id, 'Grace', `Hopper ${id}`]);
      const [stored] = await admin<{ name: string | null; first_name: string | null; last_name: string | null }>(
        'SELECT name, first_name, last_name FROM people WHERE id = $1',
        [id],
      );
      expect(stored, stage).toEqual({
        name: stage === 'complete' ? null : `Grace Hopper ${id}`,
        first_name: stage === 'off' ? null : 'Grace',
        last_name: stage === 'off' ? null : `Hopper ${id}`,
      });
      const read = await db.query('SELECT first_name, last_name FROM people WHERE id = $1', [id]);
      expect(read.rows, stage).toEqual([{ first_name: 'Grace', last_name: `Hopper ${id}` }]);
    }
    // A row whose new columns disagree with its old one, read in shadow: served old, caught.
    await admin("UPDATE people SET last_name = 'Tampered' WHERE id = 3");
    setStage('shadow');
    const before = metrics.snapshot().migrations[nameSplit.name]!.mismatches;
    const shadow = await db.query('SELECT first_name, last_name FROM people WHERE id = $1', [3]);
    expect(shadow.rows).toEqual([{ first_name: 'Grace', last_name: 'Hopper 3' }]);
    expect(metrics.snapshot().migrations[nameSplit.name]!.mismatches).toBe(before + 1);
  });

  it('splits a column: an update of one part alone is refused before it runs, naming the part it lacks', async () => {
    const { db, admin } = await routedUsers(getCtx(), pglite(), {
      stage: 'dualwrite',
      migration: nameSplit,
      ddl: 'DROP TABLE IF EXISTS people; CREATE TABLE people (id int PRIMARY KEY, name text, first_name text, last_name text)',
    });
    await db.query('INSERT INTO people (id, first_name, last_name) VALUES ($1, $2, $3)', [1, 'Ada', 'Lovelace']);
    await expect(db.query('UPDATE people SET first_name = $2 WHERE id = $1', [1, 'Augusta'])).rejects.toThrow(
      /can't rewrite a write of first_name without "last_name", .*nothing was run/,
    );
    expect(await admin('SELECT name, first_name, last_name FROM people WHERE id = 1')).toEqual([
      { name: 'Ada Lovelace', first_name: 'Ada', last_name: 'Lovelace' },
    ]);
  });

  it('merges columns: every stage writes its shapes in one statement, serves its side, and compares', async () => {
    const { db, admin, setStage, metrics } = await routedUsers(getCtx(), pglite(), {
      stage: 'off',
      migration: nameMerge,
      ddl: CONTACTS_DDL,
    });
    type Stored = { first_name: string | null; last_name: string | null; full_name: string | null };
    const stored = async (id: number) =>
      (await admin<Stored>('SELECT first_name, last_name, full_name FROM contacts WHERE id = $1', [id]))[0];
    const snapshot = () => metrics.snapshot().migrations[nameMerge.name];
    for (const [index, stage] of STAGES.entries()) {
      setStage(stage);
      const id = index + 1;
      await db.query('INSERT INTO contacts (id, full_name) VALUES ($1, $2)', [id, `Ada Lovelace${id}`]);
      const inserted = await stored(id);
      expect(inserted, `insert in ${stage}`).toEqual({
        first_name: stage === 'complete' ? null : 'Ada',
        last_name: stage === 'complete' ? null : `Lovelace${id}`,
        full_name: stage === 'off' ? null : `Ada Lovelace${id}`,
      });
      const updated = await db.query('UPDATE contacts SET full_name = $2 WHERE id = $1 RETURNING full_name', [
        id,
        `Grace Hopper${id}`,
      ]);
      expect(updated.rows, `RETURNING in ${stage}`).toEqual([{ full_name: `Grace Hopper${id}` }]);
      expect(await stored(id), `update in ${stage}`).toEqual({
        first_name: stage === 'complete' ? null : 'Grace',
        last_name: stage === 'complete' ? null : `Hopper${id}`,
        full_name: stage === 'off' ? null : `Grace Hopper${id}`,
      });
      const read = await db.query('SELECT id, full_name FROM contacts WHERE id = $1', [id]);
      expect(read.rows, `read in ${stage}`).toEqual([{ id, full_name: `Grace Hopper${id}` }]);
      if (stage === 'off' || stage === 'complete') continue;
      // The old parts tampered behind the router: the side served shows, the comparison catches it.
      const before = snapshot()?.mismatches ?? 0;
      await admin("UPDATE contacts SET last_name = 'Tampered' WHERE id = $1", [id]);
      const servesOld = stage === 'dualwrite' || stage === 'shadow';
      const tampered = await db.query('SELECT full_name FROM contacts WHERE id = $1', [id]);
      expect(tampered.rows, `served side in ${stage}`).toEqual([
        { full_name: servesOld ? 'Grace Tampered' : `Grace Hopper${id}` },
      ]);
      const compares = stage === 'shadow' || stage === 'live';
      expect((snapshot()?.mismatches ?? 0) - before, `mismatches in ${stage}`).toBe(compares ? 1 : 0);
    }
    expect(snapshot()!.comparisons).toBeGreaterThanOrEqual(4);
  });

  it('merges columns: a read filtering and ordering by the merged column resolves it on the served side', async () => {
    const { db, admin, setStage } = await routedUsers(getCtx(), pglite(), {
      stage: 'dualwrite',
      migration: nameMerge,
      ddl: CONTACTS_DDL,
    });
    await admin(
      "INSERT INTO contacts VALUES (1, 'Ada', 'Lovelace', 'Ada Lovelace'), (2, 'Alan', 'Turing', 'Alan Turing'), (3, 'Grace', 'Hopper', NULL)",
    );
    const sql = "SELECT c.id FROM contacts c WHERE c.full_name LIKE 'A%' ORDER BY c.full_name DESC";
    expect((await db.query(sql)).rows).toEqual([{ id: 2 }, { id: 1 }]);
    // Row 3's new side only: served old (its parts), it stays out until reads move to the new side.
    await admin("UPDATE contacts SET full_name = 'Anne Hopper' WHERE id = 3");
    expect((await db.query(sql)).rows).toEqual([{ id: 2 }, { id: 1 }]);
    setStage('rampdown');
    expect((await db.query(sql)).rows).toEqual([{ id: 3 }, { id: 2 }, { id: 1 }]);
  });

  it("ends a routed pool through pg's callback form of end, as TypeORM's destroy does", async (context) => {
    if (getCtx().kind !== 'pg') context.skip();
    const { db } = await routedUsers(getCtx(), undefined, { stage: 'dualwrite' });
    const pool = db as pg.Pool;
    await pool.query('SELECT username FROM users WHERE id = $1', [1]);
    // pg's types say `end(callback: () => void)`; pg-pool calls it with the error, as TypeORM expects.
    const end = pool.end.bind(pool) as unknown as (callback: (error?: Error) => void) => void;
    await new Promise<void>((resolve, reject) => end((error) => (error ? reject(error) : resolve())));
    expect(pool.ending).toBe(true);
  });
});
