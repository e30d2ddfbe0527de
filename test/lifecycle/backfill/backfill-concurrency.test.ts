/**
 * Backfill against other sessions on the real server: it terminates while a writer keeps
 * inserting, and a batch that meets a row lock times out and is retried smaller.
 */
import { expect, it } from 'vitest';
import { createBackfill } from '../../../src/lifecycle/backfill/backfill.js';
import { backfillStatus, type LifecycleEvent } from '../../../src/lifecycle/state/index.js';
import { describeDrivers } from '../../support/drivers.js';
import { createItems, itemsMigration, updateCounts } from '../fixtures/data.js';

describeDrivers(
  'backfill against other sessions',
  (getCtx) => {
    it('bounded: terminates while a writer keeps inserting; rows past the bound are left alone', async () => {
      const ctx = getCtx();
      const table = await createItems(ctx.admin, ctx.schema, 5000);
      const migration = itemsMigration(table);
      const writer = ctx.pgPool({ max: 1 });
      let stop = false;
      let inserted = 0;
      const inserting = (async () => {
        let next = 100_001;
        while (!stop) {
          await writer.query(
            `INSERT INTO ${table} (id, old_name) SELECT g, 'late-' || g FROM generate_series($1::int, $1::int + 49) g`,
            [next],
          );
          next += 50;
          inserted += 50;
        }
      })();
      try {
        // Wait for the writer to be going, so rows arrive throughout the backfill.
        await expect.poll(() => inserted, { interval: 5 }).toBeGreaterThan(0);
        const report = await createBackfill(ctx.driver, migration, {
          stateSchema: ctx.schema,
          batchSize: 100,
          minBatchSize: 100,
          maxBatchSize: 100,
          delayMs: 2,
        }).run();
        expect(report.status).toBe('done');
      } finally {
        stop = true;
        await inserting;
      }
      const status = (await backfillStatus(ctx.admin, migration.name, ctx.schema))!;
      const bound = Number(status.upperKey![0]);
      const [counts] = await ctx.sql<{ within: number; filled: number; beyond: number; untouched: number }>(
        `SELECT count(*) FILTER (WHERE id <= $1)::int AS within,
                count(*) FILTER (WHERE id <= $1 AND new_name = old_name)::int AS filled,
                count(*) FILTER (WHERE id > $1)::int AS beyond,
                count(*) FILTER (WHERE id > $1 AND new_name IS NULL)::int AS untouched
           FROM ${table}`,
        [bound],
      );
      expect(counts!.filled).toBe(counts!.within);
      expect(status.rowsDone).toBe(counts!.within);
      // Rows kept arriving after the bound was taken, and the backfill left them to the triggers.
      expect(counts!.beyond).toBeGreaterThan(0);
      expect(counts!.untouched).toBe(counts!.beyond);
    });

    it('a batch that times out on a row lock is retried at half the size, and the backfill completes', async () => {
      const ctx = getCtx();
      const table = await createItems(ctx.admin, ctx.schema, 100);
      const locker = await ctx.pgClient();
      await locker.query('BEGIN');
      await locker.query(`SELECT 1 FROM ${table} WHERE id = 50 FOR UPDATE`);
      const events: LifecycleEvent[] = [];
      let released = false;
      const backfill = createBackfill(ctx.driver, itemsMigration(table), {
        stateSchema: ctx.schema,
        batchSize: 64,
        minBatchSize: 8,
        maxBatchSize: 64,
        lockTimeoutMs: 100,
        onEvent: (event) => {
          events.push(event);
          // Hold the lock through a few retries, then let the backfill through.
          if (event.type === 'backfill-retry' && event['attempt'] === 3 && !released) {
            released = true;
            void locker.query('ROLLBACK');
          }
        },
      });
      const report = await backfill.run();
      expect(report).toMatchObject({ status: 'done', rowsChanged: 100 });
      const retries = events.filter((event) => event.type === 'backfill-retry');
      expect(retries[0]).toMatchObject({ sqlState: '55P03', fromSize: 64, toSize: 32, attempt: 1 });
      expect(retries.length).toBeGreaterThanOrEqual(3);
      // Every retry halves the batch that failed.
      for (const retry of retries) expect(retry['toSize']).toBe(Math.floor((retry['fromSize'] as number) / 2));
      expect(report.retries).toBe(retries.length);
      expect(await updateCounts(ctx.admin, table)).toEqual({ 1: 100 });
    });

    it('a batch that exceeds its statement timeout is retried, then fails with the SQLSTATE after maxRetries', async () => {
      const ctx = getCtx();
      const table = await createItems(ctx.admin, ctx.schema, 20);
      // Every update sleeps: no batch fits in the statement timeout.
      await ctx.sql(`CREATE FUNCTION ${ctx.schema}.slow() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_sleep(0.05); RETURN NEW; END $$`);
      await ctx.sql(`CREATE TRIGGER slow BEFORE UPDATE ON ${table} FOR EACH ROW EXECUTE FUNCTION ${ctx.schema}.slow()`);
      const events: LifecycleEvent[] = [];
      const backfill = createBackfill(ctx.driver, itemsMigration(table), {
        stateSchema: ctx.schema,
        batchSize: 16,
        statementTimeoutMs: 20,
        maxRetries: 2,
        onEvent: (event) => events.push(event),
      });
      await expect(backfill.run()).rejects.toMatchObject({ code: 'driver', sqlState: '57014' });
      expect(events.filter((event) => event.type === 'backfill-retry').map((event) => event['toSize'])).toEqual([8, 4]);
      expect(backfill.progress.state).toBe('failed');
      // The failed worker gave its range back: another can start at once.
      const ranges = await ctx.sql<{ status: string; owner: string | null }>(
        `SELECT status, owner FROM ${ctx.schema}.backfill_ranges`,
      );
      expect(ranges).toEqual([{ status: 'pending', owner: null }]);
    });
  },
  { kinds: ['pg'] },
);
