/**
 * Backfill against other sessions on the real server: it terminates while a writer keeps
 * inserting, a batch that meets a row lock times out and is retried smaller, a batch's
 * timeouts go back to its connection's own, and a range taken over under a batch is left
 * alone by it.
 */

import { createPgDriver } from 'flagshift/pg';
import { expect, it } from 'vitest';
import type { Driver } from '../../../src/kernel/index.js';
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

    it("a batch's timeouts are its connection's only while it runs: the connection gets its own back, after a batch that succeeded and one that timed out", async () => {
      const ctx = getCtx();
      const table = await createItems(ctx.admin, ctx.schema, 300);
      // One connection with timeouts of its own, as an application may set them.
      const client = await ctx.pgClient();
      await client.query("SET lock_timeout = '7s'");
      await client.query("SET statement_timeout = '9s'");
      const driver = createPgDriver(client);
      const timeouts = async () =>
        (
          await client.query<{ lock: string; statement: string }>(
            "SELECT current_setting('lock_timeout') AS lock, current_setting('statement_timeout') AS statement",
          )
        ).rows[0];
      // The batches run under the backfill's own timeouts (a statement timeout of 20 ms
      // fails a batch whose rows each sleep 50 ms).
      await ctx.sql(`CREATE FUNCTION ${ctx.schema}.slow() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF NEW.id > 200 THEN PERFORM pg_sleep(0.05); END IF; RETURN NEW; END $$`);
      await ctx.sql(`CREATE TRIGGER slow BEFORE UPDATE ON ${table} FOR EACH ROW EXECUTE FUNCTION ${ctx.schema}.slow()`);
      const events: LifecycleEvent[] = [];
      const backfill = createBackfill(driver, itemsMigration(table), {
        stateSchema: ctx.schema,
        batchSize: 50,
        maxBatchSize: 50,
        ranges: 1,
        statementTimeoutMs: 20,
        maxRetries: 0,
        onEvent: (event) => events.push(event),
      });
      await expect(backfill.run()).rejects.toMatchObject({ code: 'driver', sqlState: '57014' });
      // Four batches of 50 went through before the slow rows.
      expect(events.filter((event) => event.type === 'backfill-batch')).toHaveLength(4);
      expect(await timeouts()).toEqual({ lock: '7s', statement: '9s' });
      await ctx.sql(`DROP TRIGGER slow ON ${table}`);
      await createBackfill(driver, itemsMigration(table), { stateSchema: ctx.schema, batchSize: 50 }).run();
      expect(await timeouts()).toEqual({ lock: '7s', statement: '9s' });
      expect(await updateCounts(ctx.admin, table)).toEqual({ 1: 300 });
    });

    it("a range taken over between a batch's lease and its statement: the batch takes no rows, and the worker goes on once the lease lapses", async () => {
      const ctx = getCtx();
      const table = await createItems(ctx.admin, ctx.schema, 200);
      const migration = itemsMigration(table);
      // Right before the worker's third batch statement, another worker takes the range
      // over (as one may once a lease has lapsed) and holds it for 300 ms.
      let statements = 0;
      let afterLostBatch: Record<number, number> | undefined;
      const takeover = async () =>
        ctx.sql(
          `UPDATE ${ctx.schema}.backfill_ranges SET owner = 'another-worker', lease_until = clock_timestamp() + interval '300 milliseconds'`,
        );
      const driver: Driver = {
        name: ctx.driver.name,
        supportsConcurrentQueries: ctx.driver.supportsConcurrentQueries,
        query: (sql, params) => ctx.driver.query(sql, params),
        transaction: (fn) => ctx.driver.transaction(fn),
        session: (fn) =>
          ctx.driver.session((connection) =>
            fn({
              query: async <Row>(sql: string, params?: readonly unknown[]) => {
                const lost = sql.startsWith('WITH owned') && ++statements === 3;
                if (lost) await takeover();
                const result = await connection.query<Row>(sql, params);
                if (lost) afterLostBatch = await updateCounts(ctx.admin, table);
                return result;
              },
            }),
          ),
      };
      const events: LifecycleEvent[] = [];
      const report = await createBackfill(driver, migration, {
        stateSchema: ctx.schema,
        batchSize: 20,
        maxBatchSize: 20,
        ranges: 1,
        leaseMs: 200,
        onEvent: (event) => events.push(event),
      }).run();
      expect(events.filter((event) => event.type === 'backfill-range-lost')).toHaveLength(1);
      // The batch whose range was no longer the worker's touched no row: two batches' worth.
      expect(afterLostBatch).toEqual({ 0: 160, 1: 40 });
      expect(report).toMatchObject({ status: 'done', totalRowsDone: 200 });
      // The lost batch changed nothing: every row was updated once.
      expect(await updateCounts(ctx.admin, table)).toEqual({ 1: 200 });
      const ranges = await ctx.sql<{ status: string; rows_done: string }>(
        `SELECT status, rows_done FROM ${ctx.schema}.backfill_ranges`,
      );
      expect(ranges).toEqual([{ status: 'done', rows_done: '200' }]);
    });
  },
  { kinds: ['pg'] },
);
