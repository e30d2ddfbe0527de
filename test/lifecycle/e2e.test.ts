/**
 * The done-when test, on the real server: the schema lifecycle's data half under
 * load. Writers through the SDK and old-version writers with raw SQL to the old column
 * keep going while the backfill runs and the flag ramps; verification then finds zero
 * mismatches.
 */
import { createMemoryFlags, createRepository, defineMigration, defineTable, rename, type Stage } from 'flagshift';
import { createPgDriver } from 'flagshift/pg';
import { expect, it } from 'vitest';
import { z } from 'zod';
import { createBackfill } from '../../src/lifecycle/backfill/backfill.js';
import { expand } from '../../src/lifecycle/ddl/expand.js';
import { lastVerification, lastWritePathChange, recordEvent } from '../../src/lifecycle/state/index.js';
import { verify } from '../../src/lifecycle/verify.js';
import { describeDrivers } from '../support/drivers.js';
import { bioMoveMigration } from './fixtures/data.js';

describeDrivers(
  'lifecycle end to end',
  (getCtx) => {
    /** Ids whose old column no longer holds what its (only) writer last committed. */
    async function lostWrites(schema: string, table: string, column: string, expected: Map<number, string | null>) {
      const rows = await getCtx().sql<{ id: string; value: string | null }>(
        `SELECT id, ${column} AS value FROM ${schema}.${table} WHERE id = ANY($1::bigint[])`,
        [[...expected.keys()]],
      );
      expect(rows).toHaveLength(expected.size);
      return rows.filter((row) => row.value !== expected.get(Number(row.id))).map((row) => Number(row.id));
    }

    it('concurrent SDK and old-column writers during backfill and ramp: verify finds zero mismatches', async () => {
      const ctx = getCtx();
      const s = ctx.schema;
      const initialRows = 20_000;
      await ctx.sql(`CREATE TABLE ${s}.accounts (id bigint PRIMARY KEY, user_name text, email text NOT NULL)`);
      await ctx.sql(
        `INSERT INTO ${s}.accounts SELECT g, 'user-' || g, 'u' || g || '@example.com' FROM generate_series(1, $1::int) g`,
        [initialRows],
      );
      const accounts = defineTable({
        name: `${s}.accounts`,
        key: 'id',
        entity: z.object({ id: z.number().int(), username: z.string().nullable(), email: z.string() }),
      });
      const migration = defineMigration({
        name: 'accounts-username',
        table: accounts,
        mappings: [rename({ field: 'username', from: 'user_name', to: 'username', type: 'text' })],
        defaultStage: 'off',
      });
      await expand(ctx.driver, migration, { stateSchema: s });

      const flags = createMemoryFlags({ [migration.stageFlagKey]: 'off', [migration.percentFlagKey]: 0 });
      const sdkDriver = createPgDriver(ctx.pgPool({ max: 4 }));
      const repo = createRepository(migration, { driver: sdkDriver, flags, flagCache: { ttlMs: 20 } });
      const oldApp = ctx.pgPool({ max: 3 });
      const ramp: [Stage, number][] = [];
      const setStage = async (stage: Stage, percent: number) => {
        flags.set(migration.stageFlagKey, stage);
        flags.set(migration.percentFlagKey, percent);
        ramp.push([stage, percent]);
        await recordEvent(ctx.admin, migration.name, 'stage', { stage, percent }, s);
      };
      await setStage('dualwrite', 0);

      let stop = false;
      let nextId = 1_000_000;
      const writes = { sdk: 0, oldApp: 0 };
      // Each writer owns the ids ≡ k (mod 4) and records what it last committed to each, so
      // a write the backfill lost would show, even where triggers made both columns agree.
      const lastWritten = new Map<number, string | null>();
      const idOf = (k: number) => k + 1 + 4 * Math.floor(Math.random() * Math.floor(initialRows / 4));
      const sdkWriter = async (k: number) => {
        while (!stop) {
          const roll = Math.random();
          const id = roll < 0.3 ? nextId++ : idOf(k);
          const username = roll < 0.9 ? `sdk-${id}-${Math.random()}` : null;
          if (roll < 0.3) await repo.insert({ id, username, email: 'sdk@example.com' });
          else await repo.update(id, { username });
          lastWritten.set(id, username);
          writes.sdk++;
        }
      };
      // An old application version: knows only user_name.
      const oldWriter = async (k: number) => {
        while (!stop) {
          const roll = Math.random();
          const id = roll < 0.3 ? nextId++ : idOf(k);
          const name = roll < 0.9 ? `old-${id}-${Math.random()}` : null;
          if (roll < 0.3) {
            await oldApp.query(`INSERT INTO ${s}.accounts (id, user_name, email) VALUES ($1, $2, 'old@example.com')`, [
              id,
              name,
            ]);
          } else {
            await oldApp.query(`UPDATE ${s}.accounts SET user_name = $2 WHERE id = $1`, [id, name]);
          }
          lastWritten.set(id, name);
          writes.oldApp++;
        }
      };
      const writers = [sdkWriter(0), sdkWriter(1), oldWriter(2), oldWriter(3)];

      // Shadow (old still served, new compared) is safe before the backfill ends; live is not.
      let shadowed = false;
      const backfill = createBackfill(ctx.driver, migration, {
        stateSchema: s,
        batchSize: 400,
        minBatchSize: 400,
        maxBatchSize: 400,
        delayMs: 10,
        onProgress: (progress) => {
          if (!shadowed && progress.rowsDone >= initialRows / 2) {
            shadowed = true;
            void setStage('shadow', 0);
          }
        },
      });
      try {
        const report = await backfill.run();
        // The bound includes the rows the writers inserted before the backfill started.
        expect(report.status).toBe('done');
        expect(report.totalRowsDone).toBeGreaterThanOrEqual(initialRows);
        expect(shadowed).toBe(true);
        for (const percent of [10, 50, 100]) {
          await setStage('live', percent);
          await new Promise((resolve) => setTimeout(resolve, 300));
        }
      } finally {
        stop = true;
        await Promise.allSettled(writers);
      }
      await Promise.all(writers);
      expect(writes.sdk).toBeGreaterThan(100);
      expect(writes.oldApp).toBeGreaterThan(100);
      expect(ramp.map(([stage, percent]) => `${stage}:${percent}`)).toEqual([
        'dualwrite:0',
        'shadow:0',
        'live:10',
        'live:50',
        'live:100',
      ]);

      const verification = await verify(ctx.driver, migration, { stateSchema: s, chunkSize: 5000 });
      expect(verification).toMatchObject({ passed: true, mismatchedRows: 0, missingRows: 0, examples: [] });
      expect(verification.checkedRows).toBeGreaterThan(initialRows);
      const drift = await ctx.sql<{ n: number }>(
        `SELECT count(*)::int AS n FROM ${s}.accounts WHERE username IS DISTINCT FROM user_name`,
      );
      expect(drift[0]!.n).toBe(0);
      expect(await lostWrites(s, 'accounts', 'user_name', lastWritten)).toEqual([]);
      // What the contract gate checks: a passing verification newer than the last write-path change.
      const verified = (await lastVerification(ctx.admin, migration.name, s))!;
      expect(verified.passed).toBe(true);
      expect(verified.at.getTime()).toBeGreaterThan(
        (await lastWritePathChange(ctx.admin, migration.name, s))!.getTime(),
      );
      repo.close();
    }, 60_000);

    it('cross-table move under concurrent writers: the backfill never overwrites a newer side row', async () => {
      const ctx = getCtx();
      const s = ctx.schema;
      const initialRows = 10_000;
      await ctx.sql(`CREATE TABLE ${s}.users (id bigint PRIMARY KEY, bio text)`);
      await ctx.sql(`INSERT INTO ${s}.users SELECT g, 'bio-' || g FROM generate_series(1, $1::int) g`, [initialRows]);
      const migration = bioMoveMigration(s, 'text');
      await expand(ctx.driver, migration, { stateSchema: s });
      const flags = createMemoryFlags({ [migration.stageFlagKey]: 'dualwrite', [migration.percentFlagKey]: 0 });
      const repo = createRepository(migration, { driver: createPgDriver(ctx.pgPool({ max: 3 })), flags });
      const oldApp = ctx.pgPool({ max: 2 });
      let stop = false;
      let nextId = 1_000_000;
      const lastWritten = new Map<number, string | null>();
      const idOf = (k: number) => k + 1 + 3 * Math.floor(Math.random() * Math.floor(initialRows / 3));
      const sdkWriter = async (k: number) => {
        while (!stop) {
          const insert = Math.random() < 0.2;
          const id = insert ? nextId++ : idOf(k);
          const bio = `sdk-${id}-${Math.random()}`;
          if (insert) await repo.insert({ id, bio });
          else await repo.update(id, { bio });
          lastWritten.set(id, bio);
        }
      };
      const oldWriter = async (k: number) => {
        while (!stop) {
          const insert = Math.random() < 0.2;
          const id = insert ? nextId++ : idOf(k);
          const bio = `old-${id}-${Math.random()}`;
          if (insert) await oldApp.query(`INSERT INTO ${s}.users VALUES ($1, $2)`, [id, bio]);
          else await oldApp.query(`UPDATE ${s}.users SET bio = $2 WHERE id = $1`, [id, bio]);
          lastWritten.set(id, bio);
        }
      };
      const writers = [sdkWriter(0), oldWriter(1), oldWriter(2)];
      try {
        const report = await createBackfill(ctx.driver, migration, {
          stateSchema: s,
          batchSize: 250,
          minBatchSize: 250,
          maxBatchSize: 250,
          delayMs: 5,
        }).run();
        expect(report.status).toBe('done');
        flags.set(migration.stageFlagKey, 'live');
        flags.set(migration.percentFlagKey, 100);
        await new Promise((resolve) => setTimeout(resolve, 300));
      } finally {
        stop = true;
        await Promise.allSettled(writers);
      }
      await Promise.all(writers);
      const verification = await verify(ctx.driver, migration, { stateSchema: s });
      expect(verification).toMatchObject({ passed: true, mismatchedRows: 0, missingRows: 0 });
      expect(verification.checkedRows).toBeGreaterThan(initialRows);
      expect(await lostWrites(s, 'users', 'bio', lastWritten)).toEqual([]);
      repo.close();
    }, 60_000);
  },
  { kinds: ['pg'] },
);
