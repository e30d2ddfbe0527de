/**
 * contract against a concurrent change of the migration's flags, on a real server: each
 * contract step takes the migration's lock, which a flag change takes before its checks,
 * so whichever comes second sees what the other committed and is refused.
 */
import { expect, it } from 'vitest';
import { changeMigrationFlags, getMigrationFlags, setMigrationFlags } from '../../../adapters/postgres-flags/index.js';
import { ContractStoppedError, contract } from '../../../src/lifecycle/ddl/contract.js';
import { PromotionRefusedError } from '../../../src/lifecycle/promotion/index.js';
import type { LifecycleEvent } from '../../../src/lifecycle/state/index.js';
import { verify } from '../../../src/lifecycle/verify.js';
import type { Migration } from '../../../src/model/migration.js';
import { type DriverContext, describeDrivers } from '../../support/drivers.js';
import { expandedUsersRename } from '../fixtures/data.js';

/** users.user_name renamed to username (nullable: contract has no NOT NULL steps), expanded, filled, at complete, verified. */
async function atComplete(ctx: DriverContext): Promise<Migration> {
  const migration = await expandedUsersRename(ctx, 'users-race', {
    required: false,
    rows: "SELECT g, 'user' || g, 'u' || g || '@x' FROM generate_series(1, 20) g",
  });
  await setMigrationFlags(ctx.driver, migration, { stage: 'complete' }, { ...flagOptions(ctx), force: true });
  expect((await verify(ctx.driver, migration, { stateSchema: ctx.schema })).passed).toBe(true);
  return migration;
}

function flagOptions(ctx: DriverContext) {
  return { schema: ctx.schema, stateSchema: ctx.schema };
}

async function columnNames(ctx: DriverContext): Promise<string[]> {
  const rows = await ctx.sql<{ name: string }>(
    `SELECT attname::text AS name FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
    [`${ctx.schema}.users`],
  );
  return rows.map((row) => row.name);
}

/** How many sessions wait for a lock on `users`, or for an advisory lock. */
async function waiting(ctx: DriverContext, on: 'users' | 'advisory'): Promise<number> {
  const rows = await ctx.sql(
    on === 'users'
      ? 'SELECT 1 FROM pg_locks WHERE NOT granted AND relation = to_regclass($1)'
      : `SELECT 1 FROM pg_locks WHERE NOT granted AND locktype = 'advisory' AND $1::text IS NOT NULL`,
    [`${ctx.schema}.users`],
  );
  return rows.length;
}

describeDrivers(
  'contract against a concurrent flag change',
  (getCtx) => {
    it('a stage moved back while contract retries its lock: contract stops before dropping anything', async () => {
      const ctx = getCtx();
      const migration = await atComplete(ctx);
      // An application transaction holds a write lock on users, so contract's first step waits and retries.
      const app = await ctx.pgClient();
      await app.query('BEGIN');
      await app.query(`UPDATE ${ctx.schema}.users SET email = email WHERE id = 1`);
      let retried!: () => void;
      const firstRetry = new Promise<void>((resolve) => {
        retried = resolve;
      });
      const running = contract(ctx.driver, migration, {
        stateSchema: ctx.schema,
        stage: 'complete',
        currentStage: async (tx) => (await getMigrationFlags(tx, migration, { schema: ctx.schema })).stage,
        lockTimeoutMs: 100,
        maxAttempts: 1000,
        baseDelayMs: 1,
        maxDelayMs: 20,
        onEvent: (event: LifecycleEvent) => {
          if (event.type === 'ddl-retry') retried();
        },
      }).catch((error: unknown) => error);
      await firstRetry;
      // Another operator steps back to rampdown: allowed, the old column and the sync triggers are there.
      const moved = await changeMigrationFlags(ctx.driver, migration, { stage: 'rampdown' }, flagOptions(ctx));
      expect(moved.after.stage).toBe('rampdown');
      await app.query('COMMIT');
      const error = await running;
      expect(error).toBeInstanceOf(ContractStoppedError);
      expect((error as Error).message).toMatch(
        /^contract of migration "users-race" stopped before "drop sync trigger .*": its write path changed at .* after contract checked its gate; nothing was changed/,
      );
      // Everything a process at rampdown writes is still there, and its writes work.
      expect(await columnNames(ctx)).toContain('user_name');
      await ctx.sql(`UPDATE ${ctx.schema}.users SET user_name = 'x', username = 'x' WHERE id = 1`);
      expect((await getMigrationFlags(ctx.driver, migration, { schema: ctx.schema })).stage).toBe('rampdown');
    });

    it('a stage move that waits for a contract step is checked against what the step committed, and refused', async () => {
      const ctx = getCtx();
      const migration = await atComplete(ctx);
      const app = await ctx.pgClient();
      await app.query('BEGIN');
      await app.query(`UPDATE ${ctx.schema}.users SET email = email WHERE id = 1`);
      // Contract's first step (drop the sync trigger) waits on the application's lock, holding the migration's.
      const running = contract(ctx.driver, migration, {
        stateSchema: ctx.schema,
        stage: 'complete',
        lockTimeoutMs: 20_000,
        maxAttempts: 1,
      });
      await expect.poll(() => waiting(ctx, 'users'), { timeout: 20_000 }).toBe(1);
      const move = changeMigrationFlags(ctx.driver, migration, { stage: 'rampdown' }, flagOptions(ctx)).catch(
        (error: unknown) => error,
      );
      // The move waits for the migration's lock rather than checking the schema as it was.
      await expect.poll(() => waiting(ctx, 'advisory'), { timeout: 20_000 }).toBe(1);
      await app.query('COMMIT');
      const report = await running;
      expect(report.steps.map((step) => step.description).at(-1)).toMatch(/^drop old column user_name/);
      const refused = await move;
      expect(refused).toBeInstanceOf(PromotionRefusedError);
      expect((refused as Error).message).toMatch(/no sync trigger fills old from new|old column user_name is gone/);
      expect(await columnNames(ctx)).not.toContain('user_name');
      expect((await getMigrationFlags(ctx.driver, migration, { schema: ctx.schema })).stage).toBe('complete');
    });
  },
  { kinds: ['pg'] },
);
