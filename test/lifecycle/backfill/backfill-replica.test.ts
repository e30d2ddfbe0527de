/**
 * A backfill yields to a real streaming replica: with the replica's replay paused, it
 * stops running batches and says why; when replay resumes, it goes on by itself and
 * finishes. Measured both ways it can be: on the replica, and from the primary's view of
 * its standbys.
 */
import { createPgDriver } from 'flagshift/pg';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Driver } from '../../../src/kernel/driver.js';
import { createBackfill } from '../../../src/lifecycle/backfill/backfill.js';
import type { BackfillOptions, BackfillProgress } from '../../../src/lifecycle/backfill/backfill-options.js';
import { type ReplicatedPair, startReplicatedPair } from '../../support/replica.js';
import { createItems, itemsMigration, updateCounts } from '../fixtures/data.js';

describe('backfill yielding to a streaming replica', () => {
  let pair: ReplicatedPair;
  let primaryPool: pg.Pool;
  let replicaPool: pg.Pool;
  let primary: Driver;
  let replica: Driver;

  beforeAll(async () => {
    pair = await startReplicatedPair();
    primaryPool = new pg.Pool({ connectionString: pair.primaryUrl, max: 4 });
    replicaPool = new pg.Pool({ connectionString: pair.replicaUrl, max: 2 });
    primary = createPgDriver(primaryPool);
    replica = createPgDriver(replicaPool);
  }, 60_000);

  afterAll(async () => {
    await primaryPool?.end();
    await replicaPool?.end();
    await pair?.stop();
  });

  /**
   * Runs a backfill of a fresh table with replay paused, and resumes replay once it
   * yielded. The lag it yields to grows from the pause on, so the table is large enough
   * that the backfill can't finish first: 100 batches of 50 rows, each followed by 10 ms,
   * take over a second, the lag passes 300 ms after about a third of one.
   */
  async function yieldsAndResumes(schema: string, options: BackfillOptions) {
    const rows = 5000;
    await primary.query(`CREATE SCHEMA ${schema}`);
    const table = await createItems(primary, schema, rows);
    await expect
      .poll(async () => (await replica.query(`SELECT to_regclass('${table}') IS NOT NULL AS ok`)).rows[0]!.ok)
      .toBe(true);
    await replica.query('SELECT pg_wal_replay_pause()');
    const progress: BackfillProgress[] = [];
    const backfill = createBackfill(primary, itemsMigration(table), {
      stateSchema: schema,
      batchSize: 50,
      minBatchSize: 50,
      maxBatchSize: 50,
      pauseRatio: 0,
      delayMs: 10,
      maxReplicaLagMs: 300,
      healthCheckMs: 50,
      onProgress: (p) => progress.push(p),
      ...options,
    });
    const running = backfill.run();
    try {
      await expect.poll(() => backfill.progress.state, { timeout: 10_000, interval: 20 }).toBe('throttled');
      const held = backfill.progress.rowsDone;
      expect(held).toBeLessThan(rows);
      // It stays put while replay is paused: no batch runs, and the lag it shows grows.
      await new Promise((resolve) => setTimeout(resolve, 400));
      expect(backfill.progress.rowsDone).toBe(held);
      expect(backfill.progress.state).toBe('throttled');
      expect(backfill.progress.throttledBy).toMatch(/^replica lag \d+(\.\d)? (ms|s) > 300 ms$/);
    } finally {
      await replica.query('SELECT pg_wal_replay_resume()');
    }
    const report = await running;
    expect(report.status).toBe('done');
    expect(report.totalRowsDone).toBe(rows);
    // Every row was filled exactly once.
    expect(await updateCounts(primary, table)).toEqual({ 1: rows });
    const states = progress.map((p) => p.state);
    expect(states.indexOf('running', states.indexOf('throttled'))).toBeGreaterThan(0);
  }

  it('replica connection: stops while replay is paused, resumes by itself when it resumes', async () => {
    await yieldsAndResumes('on_replica', { replicas: [replica], standbys: false });
  });

  it("primary's view (pg_stat_replication): stops while replay is paused, resumes by itself", async () => {
    await yieldsAndResumes('on_primary', { standbys: true });
  });
});
