/**
 * A backfill yields to the primary's own health, read between batches: an old open
 * transaction, a session waiting on a lock of the table, the application's latency.
 */
import { expect, it } from 'vitest';
import { createBackfill } from '../../../src/lifecycle/backfill/backfill.js';
import { readHealth } from '../../../src/lifecycle/backfill/health.js';
import { describeDrivers } from '../../support/drivers.js';
import { createItems, itemsMigration, updateCounts } from '../fixtures/data.js';

const limits = { maxReplicaLagMs: 1000, maxTransactionAgeMs: 300_000, maxLockWaitMs: 500, maxLatencyMs: 100 };

// On the real server only: it has other sessions to wait on, and it starts nothing new.
// PGlite reads the same health statement in every backfill of backfill.test.ts.
describeDrivers(
  'backfill health',
  (getCtx) => {
    it('readHealth: a table nobody waits on and no standby read zero; transaction ages are never negative', async () => {
      const ctx = getCtx();
      const table = await createItems(ctx.admin, ctx.schema, 0);
      // The server is shared with the other test files: their transactions may be open, and
      // one that began after this statement's own transaction must not read a negative age.
      for (let i = 0; i < 20; i++) {
        const readings = await readHealth(
          { primary: ctx.driver, table, replicas: [], standbys: true, latency: undefined },
          limits,
        );
        expect(readings).toEqual({
          replicaLagMs: 0,
          transactionAgeMs: expect.any(Number),
          lockWaitMs: 0,
          latencyMs: undefined,
          unreachable: [],
        });
        expect(readings.transactionAgeMs).toBeGreaterThanOrEqual(0);
        expect(readings.transactionAgeMs).toBeLessThan(limits.maxTransactionAgeMs);
      }
    });

    it('application latency: pauses while the callback reads over maxLatencyMs, then finishes', async () => {
      const ctx = getCtx();
      const table = await createItems(ctx.admin, ctx.schema, 200);
      let slow = true;
      const states: string[] = [];
      const backfill = createBackfill(ctx.driver, itemsMigration(table), {
        stateSchema: ctx.schema,
        batchSize: 20,
        maxBatchSize: 20,
        healthCheckMs: 10,
        latencyMs: () => (slow ? 250 : 20),
        maxLatencyMs: 100,
        onProgress: (p) => states.push(p.state === 'throttled' ? `throttled: ${p.throttledBy}` : p.state),
      });
      const running = backfill.run();
      await expect.poll(() => backfill.progress.state, { timeout: 10_000 }).toBe('throttled');
      expect(backfill.progress.rowsDone).toBe(0);
      slow = false;
      expect((await running).status).toBe('done');
      expect(states).toContain('throttled: application latency 250 ms > 100 ms');
      expect(await updateCounts(ctx.admin, table)).toEqual({ 1: 200 });
    });

    it('old transaction: pauses while one is open longer than maxTransactionAgeMs, resumes when it ends', async () => {
      const ctx = getCtx();
      const table = await createItems(ctx.admin, ctx.schema, 200);
      const reader = await ctx.pgClient();
      await reader.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      await reader.query(`SELECT count(*) FROM ${table}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
      const backfill = createBackfill(ctx.driver, itemsMigration(table), {
        stateSchema: ctx.schema,
        maxTransactionAgeMs: 200,
        healthCheckMs: 20,
      });
      const running = backfill.run();
      await expect.poll(() => backfill.progress.state, { timeout: 10_000 }).toBe('throttled');
      expect(backfill.progress.throttledBy).toMatch(/^oldest transaction \d+ ms > 200 ms$/);
      expect(backfill.progress.rowsDone).toBe(0);
      await reader.query('COMMIT');
      expect((await running).status).toBe('done');
      expect(await updateCounts(ctx.admin, table)).toEqual({ 1: 200 });
    });

    it('lock wait: pauses while a session waits on a row of the table, resumes when it got it', async () => {
      const ctx = getCtx();
      const table = await createItems(ctx.admin, ctx.schema, 200);
      const holder = await ctx.pgClient();
      const waiter = await ctx.pgClient();
      await holder.query('BEGIN');
      await holder.query(`UPDATE ${table} SET old_name = 'held' WHERE id = 7`);
      const waiting = waiter.query(`UPDATE ${table} SET old_name = 'waited' WHERE id = 7`);
      await new Promise((resolve) => setTimeout(resolve, 250));
      const backfill = createBackfill(ctx.driver, itemsMigration(table), {
        stateSchema: ctx.schema,
        maxTransactionAgeMs: false,
        maxLockWaitMs: 200,
        healthCheckMs: 20,
      });
      const running = backfill.run();
      await expect.poll(() => backfill.progress.state, { timeout: 10_000 }).toBe('throttled');
      expect(backfill.progress.throttledBy).toMatch(/^lock wait on the table \d+ ms > 200 ms$/);
      expect(backfill.progress.rowsDone).toBe(0);
      await holder.query('COMMIT');
      await waiting;
      expect((await running).status).toBe('done');
      const [row] = await ctx.sql<{ old_name: string; new_name: string }>(
        `SELECT old_name, new_name FROM ${table} WHERE id = 7`,
      );
      expect(row).toEqual({ old_name: 'waited', new_name: 'waited' });
    });
  },
  { kinds: ['pg'] },
);
