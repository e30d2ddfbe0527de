/**
 * Concurrency on the real server: an old application writing only `user_name`, Kysely and
 * Drizzle writing through the routed pool, a backfill, and stage flips from dualwrite to
 * rampdown. At the end both columns agree on every row, every acknowledged write is
 * there, and verification finds nothing.
 */

import { eq } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import type { Stage } from 'flagshift';
import { createBackfill, expand, verify } from 'flagshift/lifecycle';
import { Kysely, PostgresDialect } from 'kysely';
import { expect, it } from 'vitest';
import { describeDrivers } from '../support/drivers.js';
import { drizzleUsers, type KyselyDatabase, routedUsers } from './fixture.js';

const ROWS = 2000;

describeDrivers(
  'routed SQL: concurrent writers',
  (getCtx) => {
    it('old raw writers, Kysely and Drizzle writers, a backfill and stage flips: no divergence, no lost write', async () => {
      const ctx = getCtx();
      const s = ctx.schema;
      const { db, admin, migration, setStage } = await routedUsers(ctx, undefined, {
        stage: 'off',
        ddl: 'CREATE TABLE users (id int PRIMARY KEY, user_name text, email text)',
      });
      await admin(`INSERT INTO users SELECT g, 'user-' || g, 'e' FROM generate_series(1, $1::int) g`, [ROWS]);
      await expand(ctx.driver, migration, { stateSchema: s });
      setStage('dualwrite');
      const kysely = new Kysely<KyselyDatabase>({ dialect: new PostgresDialect({ pool: db as never }) });
      const orm = drizzle({ client: db as never });
      const oldApp = ctx.pgPool({ max: 2 });

      let stop = false;
      let nextId = ROWS + 1;
      const lastWritten = new Map<number, string | null>();
      const writes = { kysely: 0, drizzle: 0, oldApp: 0 };
      // Each writer owns the ids ≡ k (mod 3), so the last write of each id is known.
      const idOf = (k: number) => k + 1 + 3 * Math.floor(Math.random() * Math.floor(ROWS / 3));
      const writer = (
        k: number,
        name: keyof typeof writes,
        write: (id: number, value: string, insert: boolean) => Promise<unknown>,
      ) =>
        (async () => {
          while (!stop) {
            const insert = Math.random() < 0.2;
            const id = insert ? nextId++ : idOf(k);
            const value = `${name}-${id}-${Math.random()}`;
            await write(id, value, insert);
            lastWritten.set(id, value);
            writes[name]++;
          }
        })();
      const writers = [
        writer(0, 'kysely', (id, username, insert) =>
          insert
            ? kysely.insertInto('users').values({ id, username, email: 'k' }).execute()
            : kysely.updateTable('users').set({ username }).where('id', '=', id).execute(),
        ),
        writer(1, 'drizzle', (id, username, insert) =>
          insert
            ? orm.insert(drizzleUsers).values({ id, username, email: 'd' })
            : orm.update(drizzleUsers).set({ username }).where(eq(drizzleUsers.id, id)),
        ),
        writer(2, 'oldApp', (id, name, insert) =>
          insert
            ? oldApp.query('INSERT INTO users (id, user_name, email) VALUES ($1, $2, $3)', [id, name, 'o'])
            : oldApp.query('UPDATE users SET user_name = $2 WHERE id = $1', [id, name]),
        ),
      ];
      const pause = () => new Promise((resolve) => setTimeout(resolve, 150));
      try {
        const report = await createBackfill(ctx.driver, migration, {
          stateSchema: s,
          batchSize: 200,
          delayMs: 5,
        }).run();
        expect(report.status).toBe('done');
        const ramp: [Stage, number][] = [
          ['shadow', 0],
          ['live', 50],
          ['live', 100],
          ['rampdown', 100],
          ['live', 50],
        ];
        for (const [stage, percent] of ramp) {
          setStage(stage, percent);
          await pause();
        }
      } finally {
        stop = true;
        await Promise.allSettled(writers);
      }
      await Promise.all(writers);
      for (const count of Object.values(writes)) expect(count).toBeGreaterThan(20);
      const drift = await admin<{ n: number }>(
        'SELECT count(*)::int AS n FROM users WHERE username IS DISTINCT FROM user_name',
      );
      expect(drift[0]!.n).toBe(0);
      const rows = await admin<{ id: number; username: string | null }>('SELECT id, username FROM users');
      const stored = new Map(rows.map((row) => [row.id, row.username]));
      const lost = [...lastWritten].filter(([id, value]) => stored.get(id) !== value);
      expect(lost).toEqual([]);
      const verification = await verify(ctx.driver, migration, { stateSchema: s });
      expect(verification).toMatchObject({ passed: true, mismatchedRows: 0, missingRows: 0 });
      await kysely.destroy();
    }, 60_000);
  },
  { kinds: ['pg'] },
);
