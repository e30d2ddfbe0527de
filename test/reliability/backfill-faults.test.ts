/**
 * Faults during a backfill, on a real server: its connections (and the application's,
 * which keeps dual-writing meanwhile) are terminated at random moments, and each failed
 * run is resumed by a new worker. Once a run finishes, no row was skipped: verification
 * passes, and every write the application saw acknowledged is in the table. A cheap
 * cross-check of lock time-outs: a batch blocked by a row lock is retried, still skipping
 * nothing (the lifecycle suites test time-outs in depth).
 */
import { createMemoryFlags, createRepository, defineMigration, defineTable, type Migration, rename } from 'flagshift';
import { createPgDriver } from 'flagshift/pg';
import { expect, it } from 'vitest';
import { z } from 'zod';
import { createBackfill } from '../../src/lifecycle/backfill/backfill.js';
import { verify } from '../../src/lifecycle/verify.js';
import { type DriverContext, describeDrivers } from '../support/drivers.js';
import { WriteLedger } from '../support/model-ledger.js';

const ROWS = 3_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;

/** A table of ROWS rows written before the migration began: old column set, new column empty. */
async function legacyUsers(ctx: DriverContext): Promise<Migration> {
  await ctx.sql(
    `CREATE TABLE ${ctx.schema}.users (id bigint PRIMARY KEY, user_name text, username text, email text NOT NULL)`,
  );
  await ctx.sql(
    `INSERT INTO ${ctx.schema}.users (id, user_name, email) SELECT g, 'legacy-' || g, g || '@x' FROM generate_series(1, ${ROWS}) AS g`,
  );
  const table = defineTable({
    name: `${ctx.schema}.users`,
    key: 'id',
    entity: z.object({ id: z.number().int(), username: z.string(), email: z.string() }),
  });
  return defineMigration({
    name: 'users-username',
    table,
    mappings: [rename({ field: 'username', from: 'user_name', to: 'username', type: 'text' })],
    defaultStage: 'dualwrite',
  }) as unknown as Migration;
}

async function expectNothingSkipped(ctx: DriverContext, migration: Migration): Promise<void> {
  const [row] = await ctx.sql<{ n: number }>(
    `SELECT count(*)::int AS n FROM ${ctx.schema}.users WHERE username IS DISTINCT FROM user_name`,
  );
  expect(row?.n, 'invariant: after the backfill finishes no row is skipped (username IS DISTINCT FROM user_name)').toBe(
    0,
  );
  const report = await verify(ctx.driver, migration, { stateSchema: ctx.schema });
  expect([report.passed, report.checkedRows], 'invariant: verification passes over every row').toEqual([true, ROWS]);
}

describeDrivers(
  'faults: during a backfill',
  (getCtx) => {
    it('connections killed during backfill batches and dual writes: each run resumes, no row is skipped, no acknowledged write is lost', async () => {
      const ctx = getCtx();
      const migration = await legacyUsers(ctx);
      const backfillApp = `backfill-${ctx.schema}`;
      const applicationApp = `app-${ctx.schema}`;
      const pool = (max: number, applicationName: string) => {
        const created = ctx.pgPool({ max, application_name: applicationName });
        return createPgDriver(created);
      };
      const backfillDriver = pool(2, backfillApp);
      const flags = createMemoryFlags({ [migration.stageFlagKey]: 'dualwrite', [migration.percentFlagKey]: 0 });
      const repo = createRepository(migration, { driver: pool(4, applicationApp), flags });

      let done = false;
      let kills = 0;
      const admin = ctx.pgPool({ max: 2, application_name: 'flagshift-killer' });
      /** Kills a busy backend of `applicationName` at random moments, at most `limit` times. */
      const killer = async (applicationName: string, limit: number) => {
        for (let own = 0; !done && own < limit; ) {
          await sleep(2 + Math.random() * (own === 0 ? 10 : 60));
          const { rows } = await admin.query<{ pid: number }>(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND state <> 'idle'",
            [applicationName],
          );
          if (rows.length === 0) continue;
          await admin.query('SELECT pg_terminate_backend($1)', [pick(rows).pid]);
          own++;
          kills++;
        }
      };
      // Bounded numbers of kills, so the backfill surely finishes. The backfill's allows for
      // kills that land after a short batch has ended (they interrupt nothing).
      const killers = [killer(backfillApp, 30), killer(applicationApp, 8)];

      const ledger = new WriteLedger<{ username: string }>((row) => row.username);
      const writers = [1, 2, 3].map(async (w) => {
        for (let seq = 0; !done; seq++) {
          // Each writer owns the ids congruent to it mod 3: its writes to a key are in order.
          const id = 3 * Math.floor(Math.random() * (ROWS / 3)) + w;
          const key = String(id);
          const username = `w${w}-${seq}`;
          ledger.assume(key, { username: `legacy-${id}` });
          try {
            const found = await repo.update(id, { username });
            ledger.acknowledged(key, { op: 'update', patch: { username }, found });
          } catch {
            ledger.failed(key, { op: 'update', patch: { username } });
          }
          await sleep(2);
        }
      });

      let runs = 0;
      let failures = 0;
      // A kill during a batch is retried inside the run; one elsewhere (a claim, a release)
      // fails the run, which the next run resumes. Either way the backfill was interrupted.
      let lostBatches = 0;
      for (;;) {
        runs++;
        try {
          const report = await createBackfill(backfillDriver, migration, {
            stateSchema: ctx.schema,
            batchSize: 50,
            maxBatchSize: 50,
            // Long enough for the killer to find batches running, however loaded the machine.
            delayMs: 5,
            ranges: 4,
            // A killed worker's range is taken over quickly by the next run.
            leaseMs: 200,
            onEvent: (event) => {
              // A lost connection: the terminated statement's 57P01, or no SQLSTATE at all.
              if (event.type === 'backfill-retry' && (event.sqlState ?? '57P01') === '57P01') lostBatches++;
            },
          }).run();
          // A batch is one short round trip, so a pass can end between the killer's looks, or
          // a kill land on a connection whose statement just ended: passes run again (each
          // one scanning the whole table) until a kill interrupted the backfill.
          const interrupted = failures + lostBatches > 0 && kills > 2;
          if (report.status === 'done' && (interrupted || runs >= 200)) break;
        } catch (error) {
          failures++;
          expect(error, 'a backfill run fails with a database error on a killed connection').toBeInstanceOf(Error);
          if (runs > 200) throw error;
        }
      }
      done = true;
      await Promise.all([...killers, ...writers]);

      const rows = await ctx.sql<{ id: string; username: string | null }>(
        `SELECT id, username FROM ${ctx.schema}.users`,
      );
      const byId = new Map(rows.map((row) => [String(Number(row.id)), row]));
      for (const key of ledger.keys()) {
        const row = byId.get(key);
        ledger.final(key, row === undefined ? undefined : { username: row.username ?? '<null>' });
      }
      expect(ledger.violations.slice(0, 3), `invariant: ${ledger.violations[0]?.invariant ?? ''}`).toEqual([]);
      await expectNothingSkipped(ctx, migration);
      expect(kills, 'connections were killed').toBeGreaterThan(2);
      expect(failures + lostBatches, 'the backfill was interrupted (a run failed, or a batch retried)').toBeGreaterThan(
        0,
      );
      expect(ledger.counts.acknowledged, 'the application kept writing').toBeGreaterThan(20);
    });

    it('a batch blocked by a row lock times out, is retried, and still skips nothing', async () => {
      const ctx = getCtx();
      const migration = await legacyUsers(ctx);
      const holder = await ctx.pgClient();
      await holder.query('BEGIN');
      await holder.query(`SELECT id FROM ${ctx.schema}.users WHERE id BETWEEN 1000 AND 1100 FOR UPDATE`);
      const release = sleep(600).then(() => holder.query('COMMIT'));
      const report = await createBackfill(ctx.driver, migration, {
        stateSchema: ctx.schema,
        batchSize: 200,
        lockTimeoutMs: 50,
        maxRetries: 20,
      }).run();
      await release;
      expect(report.status).toBe('done');
      expect(report.retries, 'the locked batch was retried').toBeGreaterThan(0);
      await expectNothingSkipped(ctx, migration);
    });
  },
  { kinds: ['pg'] },
);
