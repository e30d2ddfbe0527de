/**
 * A cross-table migration (`moveColumn`: `users.bio` to `user_profiles.bio`) through the
 * SQL router: reads served from the side of each stage (the side table through a
 * correlated sub-query) and compared in the same statement, writes of the moved column
 * and deletes refused before anything runs in the stages that write the side table.
 * PGlite only: one connection, and the statements are the same on the server.
 */
import { defineMigration, defineTable, moveColumn, STAGES, type Stage } from 'flagshift';
import { routerStats } from 'flagshift/sql';
import { expect, it } from 'vitest';
import { z } from 'zod';
import { describeDrivers } from '../support/drivers.js';
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

describeDrivers(
  'routed SQL: a column moved to another table',
  (getCtx) => {
    async function setup(stage: Stage) {
      const routed = await routedUsers(getCtx(), pglite(), { stage, migration: bioMove, ddl: DDL });
      // Row 1 agrees on both sides, row 2 differs, row 3 has no side row yet.
      await routed.admin(`INSERT INTO people VALUES (1, 'a@x', 'same'), (2, 'b@x', 'old-2'), (3, 'c@x', 'old-3')`);
      await routed.admin(`INSERT INTO profiles VALUES (1, 'same'), (2, 'new-2')`);
      const snapshot = () => routed.metrics.snapshot().migrations[bioMove.name];
      return { ...routed, snapshot };
    }

    it('serves each stage its side in every clause and compares in the same statement', async () => {
      const { db, setStage, snapshot } = await setup('off');
      for (const stage of STAGES) {
        setStage(stage);
        const servesNew = stage === 'live' || stage === 'rampdown' || stage === 'complete';
        const before = snapshot()?.mismatches ?? 0;
        const all = await db.query('SELECT p.id, p.bio FROM people p ORDER BY p.id');
        expect(all.rows, stage).toEqual([
          { id: 1, bio: 'same' },
          { id: 2, bio: servesNew ? 'new-2' : 'old-2' },
          { id: 3, bio: servesNew ? null : 'old-3' },
        ]);
        const compares = stage === 'shadow' || stage === 'live';
        // Rows 2 and 3 differ between the sides: caught where the stage compares.
        expect((snapshot()?.mismatches ?? 0) - before, stage).toBe(compares ? 2 : 0);
        const filtered = await db.query('SELECT id FROM people WHERE bio = $1 OR bio LIKE $2 ORDER BY bio DESC', [
          'same',
          'new-%',
        ]);
        expect(filtered.rows, stage).toEqual(servesNew ? [{ id: 1 }, { id: 2 }] : [{ id: 1 }]);
        const star = await db.query('SELECT * FROM people WHERE id = $1', [2]);
        expect(star.rows, stage).toEqual([{ id: 2, email: 'b@x', bio: servesNew ? 'new-2' : 'old-2' }]);
      }
      // Only the filtered reads of shadow and live, whose select list has no moved column to compare.
      expect(routerStats(db).comparisonsSkipped).toBe(2);
    });

    it('writes the moved column in off, and refuses it, naming the construct, where the side table is written', async () => {
      const { db, admin, setStage } = await setup('off');
      await db.query('UPDATE people SET bio = $2 WHERE id = $1', [3, 'off-write']);
      await db.query('INSERT INTO people (id, email, bio) VALUES ($1, $2, $3)', [4, 'd@x', 'inserted']);
      expect(await admin('SELECT id, bio FROM people WHERE id IN (3, 4) ORDER BY id')).toEqual([
        { id: 3, bio: 'off-write' },
        { id: 4, bio: 'inserted' },
      ]);
      const state = async () => ({
        people: await admin('SELECT id, email, bio FROM people ORDER BY id'),
        profiles: await admin('SELECT person_id, bio FROM profiles ORDER BY person_id'),
      });
      for (const stage of STAGES.filter((s) => s !== 'off')) {
        setStage(stage);
        const before = await state();
        await expect(db.query('UPDATE people SET bio = $2 WHERE id = $1', [1, 'x']), stage).rejects.toThrow(
          /can't rewrite a write of the moved column "bio" while migration "people-bio" writes profiles too; .*nothing was run/,
        );
        await expect(
          db.query('INSERT INTO people (id, email, bio) VALUES ($1, $2, $3)', [9, 'z@x', 'x']),
          stage,
        ).rejects.toThrow(/moved column "bio"/);
        await expect(db.query('DELETE FROM people WHERE id = $1', [1]), stage).rejects.toThrow(
          /can't rewrite a DELETE from people while migration "people-bio" writes profiles too/,
        );
        expect(await state(), stage).toEqual(before);
        // Writes that leave the moved column alone run.
        await db.query('UPDATE people SET email = $2 WHERE id = $1', [1, `${stage}@x`]);
      }
      expect(await admin('SELECT email FROM people WHERE id = 1')).toEqual([{ email: 'complete@x' }]);
      setStage('off');
      await db.query('DELETE FROM people WHERE id = $1', [4]);
      expect(await admin('SELECT id FROM people WHERE id = 4')).toEqual([]);
    });
  },
  { kinds: ['pglite'] },
);
