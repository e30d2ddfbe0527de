/**
 * A cross-table migration (`moveColumn`: `people.bio` to `profiles.bio`) through the SQL
 * router: reads served from the side of each stage (the side table through a correlated
 * sub-query) and compared in the same statement; writes of the moved column and deletes
 * written on both tables in one statement in the stages that write the side table, with
 * the caller's RETURNING rows, command and row count; what can't be written safely
 * refused before anything runs. On PGlite and the real server, which also runs
 * concurrent writers through stage flips.
 */
import { defineMigration, defineTable, moveColumn, STAGES, type Stage } from 'flagshift';
import { routerStats } from 'flagshift/sql';
import { Kysely, PostgresDialect } from 'kysely';
import { expect, it } from 'vitest';
import { z } from 'zod';
import { type DriverContext, describeDrivers } from '../support/drivers.js';
import { STAGE_SPEC } from '../support/model.js';
import { filePglite, routedUsers } from './fixture.js';

const pglite = filePglite();

const people = defineTable({
  name: 'people',
  key: 'id',
  entity: z.object({ id: z.number().int(), email: z.string(), bio: z.string().nullable() }),
});
const bioMove = defineMigration({
  name: 'people-bio',
  table: people,
  mappings: [moveColumn({ field: 'bio', from: 'bio', to: { table: 'profiles', column: 'bio', key: ['person_id'] } })],
  defaultStage: 'off',
});
const DDL = `DROP TABLE IF EXISTS profiles; DROP TABLE IF EXISTS people;
  CREATE TABLE people (id int PRIMARY KEY, email text, bio text);
  CREATE TABLE profiles (person_id int PRIMARY KEY, bio text)`;

const players = defineTable({
  name: 'players',
  key: 'id',
  entity: z.object({ id: z.number().int(), score: z.number().int().nullable() }),
});
const scoreMove = defineMigration({
  name: 'players-score',
  table: players,
  mappings: [
    moveColumn({ field: 'score', from: 'score', to: { table: 'player_stats', column: 'score', key: ['player_id'] } }),
  ],
  defaultStage: 'off',
});

/** The stages that write the side table (docs/STAGES.md: every one that writes the new side). */
const SIDE_WRITING = STAGES.filter((stage) => STAGE_SPEC[stage].writesNew);
const writesOld = (stage: Stage) => STAGE_SPEC[stage].writesOld;
const servesNew = (stage: Stage) => STAGE_SPEC[stage].serves === 'new';

/** A row's moved column after a write of `value` over `before`: the main table's old column keeps `before` once it is no longer written. */
const written = (stage: Stage, id: number, value: string | null, before: string | null) => ({
  id,
  bio: writesOld(stage) ? value : before,
});

/** Rows in the order of their `id`. */
const byId = (a: unknown, b: unknown) => (a as { id: number }).id - (b as { id: number }).id;

interface Counted {
  rows: unknown[];
  rowCount?: number | null;
  command?: string;
  affectedRows?: number;
}

async function setup(ctx: DriverContext, stage: Stage) {
  const routed = await routedUsers(ctx, ctx.kind === 'pglite' ? pglite() : undefined, {
    stage,
    migration: bioMove,
    ddl: DDL,
  });
  // Row 1 agrees on both sides, row 2 differs, row 3 has no side row yet.
  await routed.admin(`INSERT INTO people VALUES (1, 'a@x', 'same'), (2, 'b@x', 'old-2'), (3, 'c@x', 'old-3')`);
  await routed.admin(`INSERT INTO profiles VALUES (1, 'same'), (2, 'new-2')`);
  const snapshot = () => routed.metrics.snapshot().migrations[bioMove.name];
  const query = (sql: string, params?: unknown[]) => routed.db.query(sql, params) as Promise<Counted>;
  const main = async () => routed.admin<{ id: number; bio: string | null }>('SELECT id, bio FROM people ORDER BY id');
  const side = async () =>
    routed.admin<{ person_id: number; bio: string | null }>('SELECT person_id, bio FROM profiles ORDER BY person_id');
  const state = async () => ({ people: await main(), profiles: await side() });
  return { ...routed, ctx, snapshot, query, main, side, state };
}

describeDrivers('routed SQL: a column moved to another table', (getCtx) => {
  const setupStage = (stage: Stage) => setup(getCtx(), stage);

  /** The count the caller reads, as pg (`rowCount`, `command`) and PGlite (`affectedRows`) give it. */
  function expectCount(result: Counted, command: string, count: number, label: string) {
    expect(result.rowCount, label).toBe(count);
    if ('command' in result) expect(result.command, label).toBe(command);
    if ('affectedRows' in result) expect(result.affectedRows, label).toBe(count);
  }

  it('serves each stage its side in every clause and compares in the same statement', async () => {
    const { db, setStage, snapshot } = await setupStage('off');
    for (const stage of STAGES) {
      setStage(stage);
      const before = snapshot()?.mismatches ?? 0;
      const all = await db.query('SELECT p.id, p.bio FROM people p ORDER BY p.id');
      expect(all.rows, stage).toEqual([
        { id: 1, bio: 'same' },
        { id: 2, bio: servesNew(stage) ? 'new-2' : 'old-2' },
        { id: 3, bio: servesNew(stage) ? null : 'old-3' },
      ]);
      const { compares } = STAGE_SPEC[stage];
      // Rows 2 and 3 differ between the sides: caught where the stage compares.
      expect((snapshot()?.mismatches ?? 0) - before, stage).toBe(compares ? 2 : 0);
      const filtered = await db.query('SELECT id FROM people WHERE bio = $1 OR bio LIKE $2 ORDER BY bio DESC', [
        'same',
        'new-%',
      ]);
      expect(filtered.rows, stage).toEqual(servesNew(stage) ? [{ id: 1 }, { id: 2 }] : [{ id: 1 }]);
      const star = await db.query('SELECT * FROM people WHERE id = $1', [2]);
      expect(star.rows, stage).toEqual([{ id: 2, email: 'b@x', bio: servesNew(stage) ? 'new-2' : 'old-2' }]);
    }
    // Only the filtered reads of shadow and live, whose select list has no moved column to compare.
    expect(routerStats(db).comparisonsSkipped).toBe(2);
  });

  it('off: writes the main table only, as it is', async () => {
    const { query, state } = await setupStage('off');
    const updated = await query('UPDATE people SET bio = $2 WHERE id = $1', [3, 'off-write']);
    expectCount(updated, 'UPDATE', 1, 'update');
    await query('INSERT INTO people (id, email, bio) VALUES ($1, $2, $3)', [4, 'd@x', 'inserted']);
    await query('DELETE FROM people WHERE id = $1', [2]);
    expect(await state()).toEqual({
      people: [
        { id: 1, bio: 'same' },
        { id: 3, bio: 'off-write' },
        { id: 4, bio: 'inserted' },
      ],
      profiles: [
        { person_id: 1, bio: 'same' },
        { person_id: 2, bio: 'new-2' },
      ],
    });
  });

  it('UPDATE: writes the main row and upserts the side row in one statement, RETURNING and count as the original', async () => {
    for (const stage of SIDE_WRITING) {
      const { query, main, side } = await setupStage(stage);
      const old = (id: number, value: string, before: string) => written(stage, id, value, before);
      const one = await query('UPDATE people SET bio = $2 WHERE id = $1', [3, 'u3']);
      expectCount(one, 'UPDATE', 1, stage);
      expect(one.rows, stage).toEqual([]);
      const returned = await query('UPDATE people SET email = $2, bio = $3 WHERE id = $1 RETURNING id, bio, email', [
        2,
        'b2@x',
        'u2',
      ]);
      expect(returned.rows, stage).toEqual([{ id: 2, bio: 'u2', email: 'b2@x' }]);
      expectCount(returned, 'UPDATE', 1, stage);
      const none = await query('UPDATE people SET bio = $2 WHERE id = $1 RETURNING *', [99, 'x']);
      expect(none.rows, stage).toEqual([]);
      expectCount(none, 'UPDATE', 0, stage);
      const selfComputed = `UPDATE people SET bio = bio || '!' WHERE id IN (1, 2) RETURNING *`;
      if (servesNew(stage)) {
        // Read from the side table as the statement started, two at once could lose one: refused, nothing run.
        await expect(query(selfComputed), stage).rejects.toThrow(
          /computed from the moved column "bio" while the side table serves it/,
        );
        expect(await side(), stage).toEqual([
          { person_id: 1, bio: 'same' },
          { person_id: 2, bio: 'u2' },
          { person_id: 3, bio: 'u3' },
        ]);
        continue;
      }
      // The value is computed from the side the stage serves (the main row, locked by the UPDATE), and both sides get it.
      const computed = await query(selfComputed);
      expect(computed.rows.sort(byId), stage).toEqual([
        { id: 1, email: 'a@x', bio: 'same!' },
        { id: 2, email: 'b2@x', bio: 'u2!' },
      ]);
      expectCount(computed, 'UPDATE', 2, stage);
      expect(await main(), stage).toEqual([old(1, 'same!', 'same'), old(2, 'u2!', 'old-2'), old(3, 'u3', 'old-3')]);
      expect(await side(), stage).toEqual([
        { person_id: 1, bio: 'same!' },
        { person_id: 2, bio: 'u2!' },
        { person_id: 3, bio: 'u3' },
      ]);
    }
  });

  it('INSERT: writes both tables, ON CONFLICT DO UPDATE upserts both, RETURNING and count as the original', async () => {
    for (const stage of SIDE_WRITING) {
      const { query, main, side } = await setupStage(stage);
      const inserted = await query(
        'INSERT INTO people (id, email, bio) VALUES ($1, $2, $3), ($4, $5, $6) RETURNING *',
        [4, 'd@x', 'i4', 5, 'e@x', null],
      );
      expect(inserted.rows, stage).toEqual([
        { id: 4, email: 'd@x', bio: 'i4' },
        { id: 5, email: 'e@x', bio: null },
      ]);
      expectCount(inserted, 'INSERT', 2, stage);
      const upserted = await query(
        'INSERT INTO people AS p (id, email, bio) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET email = EXCLUDED.email, bio = EXCLUDED.bio',
        [2, 'b2@x', 'up2'],
      );
      expect(upserted.rows, stage).toEqual([]);
      expectCount(upserted, 'INSERT', 1, stage);
      if (writesOld(stage)) {
        // A conflict skipped writes neither table.
        const skipped = await query(
          'INSERT INTO people (id, email, bio) VALUES ($1, $2, $3), ($4, $5, $6) ON CONFLICT DO NOTHING RETURNING id',
          [1, 'z@x', 'never', 6, 'f@x', 'i6'],
        );
        expect(skipped.rows, stage).toEqual([{ id: 6 }]);
        expectCount(skipped, 'INSERT', 1, stage);
      }
      const bio = (id: number, value: string | null, before: string | null) => written(stage, id, value, before);
      expect(await main(), stage).toEqual([
        { id: 1, bio: 'same' },
        bio(2, 'up2', 'old-2'),
        { id: 3, bio: 'old-3' },
        bio(4, 'i4', null),
        bio(5, null, null),
        ...(writesOld(stage) ? [{ id: 6, bio: 'i6' }] : []),
      ]);
      expect(await side(), stage).toEqual([
        { person_id: 1, bio: 'same' },
        { person_id: 2, bio: 'up2' },
        { person_id: 4, bio: 'i4' },
        { person_id: 5, bio: null },
        ...(writesOld(stage) ? [{ person_id: 6, bio: 'i6' }] : []),
      ]);
    }
  });

  it('DELETE: deletes the side rows and the main rows in one statement, RETURNING the served side', async () => {
    for (const stage of SIDE_WRITING) {
      const { query, state } = await setupStage(stage);
      const removed = await query('DELETE FROM people WHERE id = $1 RETURNING id, bio', [2]);
      expect(removed.rows, stage).toEqual([{ id: 2, bio: servesNew(stage) ? 'new-2' : 'old-2' }]);
      expectCount(removed, 'DELETE', 1, stage);
      const none = await query('DELETE FROM people WHERE id = $1', [99]);
      expectCount(none, 'DELETE', 0, stage);
      const both = await query('DELETE FROM people WHERE id IN (1, 3)');
      expect(both.rows, stage).toEqual([]);
      expectCount(both, 'DELETE', 2, stage);
      expect(await state(), stage).toEqual({ people: [], profiles: [] });
    }
  });

  it('takes statements as ORMs write them: qualified columns, UPDATE ... FROM, a WITH query of their own', async () => {
    for (const stage of ['live', 'complete'] as const) {
      const { ctx, query, side } = await setupStage(stage);
      if (ctx.kind === 'pglite') {
        // Prisma's form (the table is in public there).
        const prisma = await query(
          'UPDATE "public"."people" SET "bio" = $1 WHERE ("public"."people"."id" = $2 AND 1=1) RETURNING "public"."people"."id", "public"."people"."bio"',
          ['p1', 1],
        );
        expect(prisma.rows, stage).toEqual([{ id: 1, bio: 'p1' }]);
      } else {
        await query('UPDATE people SET bio = $1 WHERE people.id = $2', ['p1', 1]);
      }
      const joined = await query(
        `UPDATE people AS p SET bio = o.bio FROM (VALUES (2, 'f2'), (3, 'f3')) AS o(id, bio) WHERE p.id = o.id RETURNING p.id, p.bio AS written, upper(p.bio)`,
      );
      expect(joined.rows.sort(byId), stage).toEqual([
        { id: 2, written: 'f2', upper: 'F2' },
        { id: 3, written: 'f3', upper: 'F3' },
      ]);
      const own = await query(
        `WITH src AS (SELECT 3 AS id, 'c3' AS bio) UPDATE people SET bio = src.bio FROM src WHERE people.id = src.id`,
      );
      expectCount(own, 'UPDATE', 1, stage);
      expect(await side(), stage).toEqual([
        { person_id: 1, bio: 'p1' },
        { person_id: 2, bio: 'f2' },
        { person_id: 3, bio: 'c3' },
      ]);
    }
  });

  it('writes a moved column of another type than text with the values typed as the column', async () => {
    for (const stage of ['dualwrite', 'complete'] as const) {
      const ctx = getCtx();
      const { db, admin } = await routedUsers(ctx, ctx.kind === 'pglite' ? pglite() : undefined, {
        stage,
        migration: scoreMove,
        ddl: `DROP TABLE IF EXISTS player_stats; DROP TABLE IF EXISTS players;
          CREATE TABLE players (id int PRIMARY KEY, score int); CREATE TABLE player_stats (player_id int PRIMARY KEY, score int)`,
      });
      const inserted = await db.query('INSERT INTO players (id, score) VALUES ($1, $2) RETURNING score', [1, 5]);
      expect(inserted.rows, stage).toEqual([{ score: 5 }]);
      const updated = await db.query('UPDATE players SET score = $2 WHERE id = $1 RETURNING id, score', [1, 7]);
      expect(updated.rows, stage).toEqual([{ id: 1, score: 7 }]);
      expect(await admin('SELECT player_id, score FROM player_stats'), stage).toEqual([{ player_id: 1, score: 7 }]);
    }
  });

  it('gives Kysely the count it reads (numUpdatedRows, numDeletedRows)', async () => {
    const { db, side } = await setupStage('live');
    const kysely = new Kysely<{ people: { id: number; email: string; bio: string | null } }>({
      dialect: new PostgresDialect({ pool: db as never }),
    });
    const updated = await kysely.updateTable('people').set({ bio: 'k' }).where('id', '<', 3).executeTakeFirst();
    expect(updated.numUpdatedRows).toBe(2n);
    const deleted = await kysely.deleteFrom('people').where('id', '=', 1).executeTakeFirst();
    expect(deleted.numDeletedRows).toBe(1n);
    expect(await side()).toEqual([{ person_id: 2, bio: 'k' }]);
  });

  it('refuses, naming the construct, what it can not write on both tables in one statement; nothing is written', async () => {
    const cases: [Stage, string, unknown[], RegExp][] = [
      [
        'dualwrite',
        'INSERT INTO people (id, email, bio) SELECT id + 10, email, bio FROM people',
        [],
        /INSERT \.\.\. SELECT/,
      ],
      [
        'live',
        'WITH w AS (UPDATE people SET bio = $1 RETURNING id) SELECT id FROM w',
        ['x'],
        /moved column "bio" inside another statement/,
      ],
      [
        'shadow',
        'INSERT INTO people (id, email, bio) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET email = EXCLUDED.email',
        [1, 'z@x', 'x'],
        /sets the moved column "bio" when it inserts but not when it updates/,
      ],
      [
        'complete',
        'INSERT INTO people (id, email, bio) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING',
        [1, 'z@x', 'x'],
        /ON CONFLICT other than ON CONFLICT \(id\) DO UPDATE/,
      ],
      ['complete', 'UPDATE people SET email = $1, bio = email WHERE id = 1', ['z@x'], /computed from "email"/],
      ['complete', 'INSERT INTO people (email, bio) VALUES ($1, $2)', ['z@x', 'x'], /without its key column "id"/],
      [
        'rampdown',
        'UPDATE people SET bio = $1 WHERE id = 1 RETURNING (SELECT 1)',
        ['x'],
        /a sub-query in the RETURNING list/,
      ],
      [
        'live',
        'UPDATE people AS p SET bio = o.bio FROM (VALUES (1, $1)) AS o(id, bio) WHERE p.id = o.id RETURNING *',
        ['x'],
        /RETURNING \* over a write joined to other relations/,
      ],
      [
        'complete',
        'INSERT INTO people (id, email, bio) VALUES ($1 + 10, $2, $3)',
        [1, 'z@x', 'x'],
        /a key value of "id" computed by the INSERT/,
      ],
    ];
    for (const [stage, sql, params, error] of cases) {
      const { query, state } = await setupStage(stage);
      const before = await state();
      await expect(query(sql, params), `${stage}: ${sql}`).rejects.toThrow(error);
      await expect(query(sql, params), `${stage}: ${sql}`).rejects.toThrow(/can't rewrite .* safely; nothing was run/);
      expect(await state(), `${stage}: ${sql}`).toEqual(before);
    }
  });

  it('keeps one plan per statement text and stage', async () => {
    const { db, query, setStage } = await setupStage('dualwrite');
    const sql = 'UPDATE people SET bio = $2 WHERE id = $1';
    await query(sql, [1, 'a']);
    const { planMisses } = routerStats(db);
    for (const stage of ['dualwrite', 'complete', 'dualwrite', 'complete'] as const) {
      setStage(stage);
      expectCount(await query(sql, [1, stage]), 'UPDATE', 1, stage);
    }
    expect(routerStats(db).planMisses).toBe(planMisses);
  });
});

describeDrivers(
  'routed SQL: a moved column under concurrent writers',
  (getCtx) => {
    it('concurrent routed writers through stage flips: no divergence, no lost acknowledged write', async () => {
      await concurrentWriters(await setup(getCtx(), 'dualwrite'));
    });
  },
  { kinds: ['pg'] },
);

/** Writers on keys of their own and on shared keys while the stage flips between the stages that write both sides. */
async function concurrentWriters(routed: {
  query: (sql: string, params?: unknown[]) => Promise<Counted>;
  admin: <Row>(sql: string, params?: unknown[]) => Promise<Row[]>;
  setStage: (stage: Stage) => void;
}) {
  const { query, admin, setStage } = routed;
  const KEYS = 40;
  await admin(`INSERT INTO people SELECT g, 'e', 'init' FROM generate_series(10, $1::int) g`, [KEYS + 9]);
  let stop = false;
  const flips = ['dualwrite', 'shadow', 'live', 'rampdown'] as const;
  let flipped = 0;
  const flipper = (async () => {
    for (; !stop; flipped++) {
      setStage(flips[flipped % flips.length]!);
      await new Promise((resolve) => setTimeout(resolve, 3));
    }
  })();
  const last = new Map<number, string | null | undefined>();
  const writer = async (w: number) => {
    for (let n = 0; n < 60; n++) {
      const id = 100 + w * 100 + (n % 5);
      const value = `w${w}-${n}`;
      const op = n % 6;
      if (op === 0 || last.get(id) === undefined) {
        await query(
          'INSERT INTO people (id, email, bio) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET bio = EXCLUDED.bio, email = EXCLUDED.email',
          [id, 'w', value],
        );
        last.set(id, value);
      } else if (op === 5) {
        expect((await query('DELETE FROM people WHERE id = $1', [id])).rowCount).toBe(1);
        last.set(id, undefined);
      } else {
        const result = await query('UPDATE people SET bio = $2 WHERE id = $1 RETURNING bio', [id, value]);
        expect(result.rows).toEqual([{ bio: value }]);
        last.set(id, value);
      }
      // A shared row: contended by every writer.
      await query('UPDATE people SET bio = $2, email = $3 WHERE id = $1', [10 + (n % KEYS), value, `w${w}`]);
    }
  };
  await Promise.all(Array.from({ length: 6 }, (_, w) => writer(w)));
  stop = true;
  await flipper;
  // The writes ran through every stage that writes both sides, several times over.
  expect(flipped).toBeGreaterThan(2 * flips.length);
  const diverged = await admin(
    `SELECT p.id, p.bio, s.bio AS side FROM people p FULL JOIN profiles s ON s.person_id = p.id
     WHERE coalesce(p.id, s.person_id) >= 10 AND (p.id IS NULL OR s.person_id IS NULL OR p.bio IS DISTINCT FROM s.bio)`,
  );
  expect(diverged).toEqual([]);
  for (const [id, value] of last) {
    const rows = await admin<{ bio: string | null }>(
      'SELECT s.bio FROM people p JOIN profiles s ON s.person_id = p.id WHERE p.id = $1',
      [id],
    );
    expect(rows, `id ${id}`).toEqual(value === undefined ? [] : [{ bio: value }]);
  }
  // Every shared row was last written by some writer, on both sides alike.
  const shared = await admin<{ email: string; bio: string }>(
    'SELECT p.email, s.bio FROM people p JOIN profiles s ON s.person_id = p.id WHERE p.id BETWEEN 10 AND $1::int',
    [KEYS + 9],
  );
  expect(shared).toHaveLength(KEYS);
  for (const row of shared) expect(row.bio.startsWith(`${row.email}-`)).toBe(true);
}
