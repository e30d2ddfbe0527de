import { randomUUID } from 'node:crypto';
import { OpenFeature } from '@openfeature/server-sdk';
import { createRepository } from 'flagshift';
import { createOpenFeatureFlags } from 'flagshift/openfeature';
import { createPgDriver } from 'flagshift/pg';
import {
  createPostgresFlagProvider,
  getMigrationFlags,
  killMigration,
  type PostgresFlagProvider,
  setMigrationFlags,
} from 'flagshift/postgres-flags';
import { afterAll, expect, it, vi } from 'vitest';
import { createGuardrails } from '../../src/guardrails/guardrails.js';
import { describeDrivers } from '../support/drivers.js';
import { usersFixture } from '../support/fixtures.js';

afterAll(async () => {
  await OpenFeature.close();
});

describeDrivers(
  'guardrails with the postgres flag provider',
  (getCtx) => {
    it('a trip in one process sets the safe stage, and a process with its own provider follows', async () => {
      const ctx = getCtx();
      const { migration } = await usersFixture(ctx);
      const opts = { schema: ctx.schema, stateSchema: ctx.schema };
      const admin = createPgDriver(ctx.pgPool({ max: 2 }));
      // The starting point of the test, not a promotion under test: forced past the gate.
      await setMigrationFlags(admin, migration, { stage: 'live', percent: 100 }, { ...opts, force: true });

      /** One application process: its own pool, flag provider, OpenFeature domain and repository. */
      const providers: PostgresFlagProvider[] = [];
      async function process(guard?: ReturnType<typeof createGuardrails>) {
        const pool = ctx.pgPool({ max: 4 });
        const provider = createPostgresFlagProvider({ pool, schema: ctx.schema });
        providers.push(provider);
        const domain = `guardrails-${randomUUID()}`;
        await OpenFeature.setProviderAndWait(domain, provider);
        return createRepository(migration, {
          driver: createPgDriver(pool),
          flags: createOpenFeatureFlags({ domain }),
          ...(guard === undefined ? {} : { metrics: guard, readGuard: guard }),
        });
      }

      const setSafeStage = vi.fn(async (name: string, trip: { message: string }) => {
        expect(name).toBe(migration.name);
        await killMigration(admin, migration, { ...opts, reason: trip.message, actor: 'guardrail' });
      });
      const guardrails = createGuardrails({ thresholds: { maxMismatchRate: 0, minComparisons: 2 }, setSafeStage });
      try {
        const guarded = await process(guardrails);
        const other = await process();
        for (let id = 1; id <= 3; id++) await guarded.insert({ id, username: `user${id}`, email: `${id}@x` });
        await ctx.sql(`UPDATE ${ctx.schema}.users SET username = 'bad-' || id WHERE id <= 2`);
        expect((await other.get(1))?.username).toBe('bad-1');

        // Two mismatching reads in the guarded process trip its guardrail...
        await guarded.get(1);
        await guarded.get(2);
        expect(guardrails.allowsNewReads(migration.name)).toBe(false);
        await vi.waitFor(() => expect(guardrails.status()[0]!.safeStage).toBe('applied'));
        expect(setSafeStage).toHaveBeenCalledTimes(1);
        const stored = await getMigrationFlags(admin, migration, opts);
        expect(stored).toMatchObject({ stage: 'dualwrite', updatedBy: 'guardrail' });

        // ...and the other process, which has no guardrails, follows through its own provider.
        await vi.waitFor(async () => expect((await other.get(1))?.username).toBe('user1'), { timeout: 5_000 });
        expect((await other.get(2))?.username).toBe('user2');
        await other.update(3, { username: 'three' });
        const [row] = await ctx.sql<{ user_name: string; username: string }>(
          `SELECT user_name, username FROM ${ctx.schema}.users WHERE id = 3`,
        );
        expect(row).toEqual({ user_name: 'three', username: 'three' });
      } finally {
        await Promise.all(providers.map((provider) => provider.onClose()));
      }
    });
  },
  { kinds: ['pg'] },
);
