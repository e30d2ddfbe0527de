/**
 * Targeting keys and percentages that are awkward or wrong, on both drivers. Documented
 * outcomes:
 *
 * - Non-ASCII keys are bucketed by their UTF-8 bytes, as given (no Unicode normalization:
 *   "é" and "e\u0301" are different keys), the same on every call and in every process.
 * - An empty key is a key like any other: an entity keyed '' and every call whose context
 *   has `targetingKey: ''` are bucketed alike, by the stage flag key alone.
 * - A read-percentage flag outside 0-100 or not a number is a `type` fallback: the last
 *   percentage this process saw succeed is used, or, with none, the migration's
 *   `defaultPercent`; it is counted only in `live`, where the percentage matters.
 */
import {
  createMemoryFlags,
  createMemoryMetrics,
  createRepository,
  defineMigration,
  defineTable,
  isInReadPercentage,
  rename,
} from 'flagshift';
import { expect, it } from 'vitest';
import { z } from 'zod';
import { type DriverContext, describeDrivers } from '../support/drivers.js';

const KEYS = [
  '',
  ' ',
  'ü',
  'Zoë',
  '東京',
  '🚀',
  'é',
  'e\u0301',
  'Ω',
  '\u200b',
  'ä'.repeat(300),
  ...Array.from({ length: 30 }, (_, i) => `k${i}`),
];

/** A text-keyed table whose sides hold different values, so a read shows the side it was served from. */
async function setup(ctx: DriverContext, defaultPercent = 0) {
  await ctx.sql(
    `CREATE TABLE ${ctx.schema}.users (id text PRIMARY KEY, user_name text, username text, email text NOT NULL)`,
  );
  const table = defineTable({
    name: `${ctx.schema}.users`,
    key: 'id',
    entity: z.object({ id: z.string(), username: z.string(), email: z.string() }),
  });
  const migration = defineMigration({
    name: 'users-username',
    table,
    mappings: [rename({ field: 'username', from: 'user_name', to: 'username', type: 'text' })],
    defaultStage: 'live',
    flags: { defaultPercent },
  });
  for (const id of KEYS) {
    await ctx.sql(`INSERT INTO ${ctx.schema}.users VALUES ($1, 'OLD', 'NEW', 'e')`, [id]);
  }
  return migration;
}

type Migration = Awaited<ReturnType<typeof setup>>;

function expectedSide(percent: number, migration: Migration, key: string): 'OLD' | 'NEW' {
  return isInReadPercentage(percent, migration.stageFlagKey, key) ? 'NEW' : 'OLD';
}

async function servedSides(repo: ReturnType<typeof createRepository<Migration['table']['entity'], 'id'>>) {
  const users = await repo.getMany(KEYS);
  return Object.fromEntries(users.map((user) => [user.id, user.username]));
}

describeDrivers('hostile targeting keys and percentages', (getCtx) => {
  it('non-ASCII and empty keys: every key is bucketed by its UTF-8 bytes, the same on every read and in every repository', async () => {
    const ctx = getCtx();
    const migration = await setup(ctx);
    const flags = createMemoryFlags({ [migration.stageFlagKey]: 'live', [migration.percentFlagKey]: 50 });
    const expected = Object.fromEntries(KEYS.map((key) => [key, expectedSide(50, migration, key)]));
    expect(new Set(Object.values(expected)), 'both sides are represented among the keys').toEqual(
      new Set(['OLD', 'NEW']),
    );
    for (let round = 0; round < 2; round++) {
      const repo = createRepository(migration, { driver: ctx.driver, flags });
      expect(await servedSides(repo), `invariant: bucketing is sticky (repository ${round + 1}, getMany)`).toEqual(
        expected,
      );
      for (const key of KEYS) {
        expect((await repo.get(key))?.username, `invariant: bucketing is sticky (get ${JSON.stringify(key)})`).toBe(
          expected[key],
        );
      }
      repo.close();
    }
  });

  it('an empty call-context targeting key is honoured: every call carrying it is routed alike', async () => {
    const ctx = getCtx();
    const migration = await setup(ctx);
    const flags = createMemoryFlags({ [migration.stageFlagKey]: 'live', [migration.percentFlagKey]: 50 });
    const repo = createRepository(migration, { driver: ctx.driver, flags });
    const side = expectedSide(50, migration, '');
    const context = { context: { targetingKey: '' } };
    const users = await repo.getMany(KEYS, context);
    expect(new Set(users.map((user) => user.username)), 'invariant: one targeting key, one side').toEqual(
      new Set([side]),
    );
    for (const key of ['ü', 'k1', 'k2']) expect((await repo.get(key, context))?.username).toBe(side);
    repo.close();
  });

  it('percentages outside 0-100 or not numbers fall back to the last good percentage, counted as type fallbacks', async () => {
    const ctx = getCtx();
    const migration = await setup(ctx, 20);
    const flags = createMemoryFlags({ [migration.stageFlagKey]: 'live', [migration.percentFlagKey]: 30 });
    const metrics = createMemoryMetrics();
    // ttlMs 0: every read evaluates the flags, so every bad value is met.
    const repo = createRepository(migration, { driver: ctx.driver, flags, metrics, flagCache: { ttlMs: 0 } });
    const at = (percent: number) => Object.fromEntries(KEYS.map((key) => [key, expectedSide(percent, migration, key)]));
    expect(await servedSides(repo)).toEqual(at(30));
    const bad: unknown[] = [150, -5, 100.5, '50', '', Number.NaN, Number.POSITIVE_INFINITY, null, true, {}, [50]];
    for (const value of bad) {
      flags.fail(migration.percentFlagKey, { value });
      expect(await servedSides(repo), `invariant: a bad percentage (${String(value)}) keeps the last good one`).toEqual(
        at(30),
      );
    }
    flags.restore(migration.percentFlagKey);
    flags.set(migration.percentFlagKey, 250);
    expect(await servedSides(repo), 'a percentage set out of range is a bad value too').toEqual(at(30));
    // Every evaluation of a bad value falls back (with ttlMs 0 a getMany evaluates once per entity).
    const fallbacks = metrics.snapshot().migrations['users-username']!.flagFallbacks;
    expect(fallbacks.byReason.type, 'invariant: a bad percentage is counted as a type fallback').toBeGreaterThanOrEqual(
      bad.length + 1,
    );
    expect(fallbacks.total, 'invariant: ... and as nothing else').toBe(fallbacks.byReason.type);
    expect(fallbacks.bySource.default, 'invariant: with a good percentage seen, the default is never used').toBe(0);
    expect(Object.keys(fallbacks.byFlag)).toEqual([migration.percentFlagKey]);

    // A process that never saw a good percentage uses the declared default.
    const fresh = createMemoryMetrics();
    const cold = createRepository(migration, { driver: ctx.driver, flags, metrics: fresh, flagCache: { ttlMs: 0 } });
    expect(await servedSides(cold), 'invariant: with no good percentage yet, the default percentage applies').toEqual(
      at(20),
    );
    const coldFallbacks = () => fresh.snapshot().migrations['users-username']!.flagFallbacks;
    expect(coldFallbacks().bySource['last-known-good']).toBe(0);
    expect(coldFallbacks().bySource.default).toBeGreaterThan(0);

    // Outside live the percentage is ignored, and a bad one is not an outage worth counting.
    const counted = coldFallbacks().total;
    flags.set(migration.stageFlagKey, 'shadow');
    expect(new Set(Object.values(await servedSides(cold)))).toEqual(new Set(['OLD']));
    expect(coldFallbacks().total, 'a bad percentage outside live is not counted').toBe(counted);
    repo.close();
    cold.close();
  });
});
