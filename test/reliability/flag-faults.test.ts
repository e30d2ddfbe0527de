/**
 * A flag system that fails during traffic: the stage and percent flags throw, hang past
 * the time-out, or return values of the wrong type, again and again, while writers and
 * readers run concurrently. Per docs/STAGES.md, reads and writes go on with the last known good
 * decision, every fallback is counted, and the two sides never diverge.
 */
import {
  combineSinks,
  createMemoryFlags,
  createMemoryMetrics,
  createRepository,
  defineMigration,
  defineTable,
  type FlagSource,
  isInReadPercentage,
  type MemoryFlags,
  rename,
  type SimulatedFailure,
} from 'flagshift';
import { expect, it } from 'vitest';
import { z } from 'zod';
import { type DriverContext, describeDrivers } from '../support/drivers.js';
import { createEventLog } from '../support/model-events.js';
import { WriteLedger } from '../support/model-ledger.js';

const entity = z.object({ id: z.number().int(), username: z.string(), email: z.string() });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function usersTable(
  ctx: DriverContext,
  evaluation: 'per-migration' | 'per-entity',
  defaultStage: 'off' | 'dualwrite',
) {
  await ctx.sql(
    `CREATE TABLE ${ctx.schema}.users (id bigint PRIMARY KEY, user_name text, username text, email text NOT NULL)`,
  );
  const users = defineTable({ name: `${ctx.schema}.users`, key: 'id', entity });
  return defineMigration({
    name: 'users-username',
    table: users,
    mappings: [rename({ field: 'username', from: 'user_name', to: 'username', type: 'text' })],
    defaultStage,
    flags: { evaluation },
  });
}

async function divergentRows(ctx: DriverContext): Promise<unknown[]> {
  return ctx.sql(`SELECT id, user_name, username FROM ${ctx.schema}.users WHERE user_name IS DISTINCT FROM username`);
}

/** The failures cycled through: each flag misbehaves every way a provider can. */
const STAGE_FAILURES: readonly SimulatedFailure[] = [
  'error',
  'hang',
  { value: 42 },
  { value: 'LIVE' },
  { value: null },
  { value: { stage: 'live' } },
];
const PERCENT_FAILURES: readonly SimulatedFailure[] = [
  'error',
  'hang',
  { value: 150 },
  { value: -1 },
  { value: '50' },
  { value: Number.NaN },
  { value: Number.POSITIVE_INFINITY },
];

/** Makes one flag fail in turn every way, `holdMs` each, then restores it. */
async function chaos(flags: MemoryFlags, flagKeys: readonly [string, string], deadline: number, holdMs: number) {
  let round = 0;
  while (Date.now() < deadline) {
    const [stageKey, percentKey] = flagKeys;
    flags.fail(stageKey, STAGE_FAILURES[round % STAGE_FAILURES.length]!);
    flags.fail(percentKey, PERCENT_FAILURES[round % PERCENT_FAILURES.length]!);
    await sleep(holdMs);
    // Restore one, then both: outages of one flag at a time as well as of the whole provider.
    if (round % 2 === 0) {
      flags.restore(percentKey);
      await sleep(holdMs / 2);
    }
    flags.restore(stageKey);
    flags.restore(percentKey);
    await sleep(holdMs / 2);
    round++;
  }
}

describeDrivers('faults: a failing flag provider during traffic', (getCtx) => {
  it('live at 50%: writes keep going to both sides, reads follow the last known good decision, every fallback is counted', async () => {
    const ctx = getCtx();
    const migration = await usersTable(ctx, 'per-migration', 'off');
    const flags = createMemoryFlags({ [migration.stageFlagKey]: 'live', [migration.percentFlagKey]: 50 });
    const metrics = createMemoryMetrics();
    const events = createEventLog();
    const repo = createRepository(migration, {
      driver: ctx.driver,
      flags,
      metrics: combineSinks(metrics, events),
      // Short cache and time-out, so the failures are met often.
      flagCache: { ttlMs: 5 },
      flagTimeoutMs: 10,
    });
    await repo.insert({ id: 0, username: 'warm', email: 'w@x' });

    const ledger = new WriteLedger<{ username: string; email: string }>((row) =>
      JSON.stringify([row.username, row.email]),
    );
    const errors: unknown[] = [];
    const expectedReads = new Map<string, number>();
    const deadline = Date.now() + 1_500;
    const writer = async (w: number) => {
      for (let seq = 0; Date.now() < deadline; seq++) {
        // Requests arrive as I/O: let timers run (PGlite answers in microtasks and would starve them).
        await new Promise(setImmediate);
        const id = w * 10 + (seq % 5);
        const key = String(id);
        const row = { username: `w${w}-${seq}`, email: `${seq}@x` };
        try {
          if (seq % 3 === 0) {
            await repo.upsert({ id, ...row });
            ledger.acknowledged(key, { op: 'upsert', entity: row });
          } else if (seq % 3 === 1) {
            const found = await repo.update(id, { username: row.username });
            ledger.acknowledged(key, { op: 'update', patch: { username: row.username }, found });
          } else {
            const user = await repo.get(id);
            ledger.read(key, user === undefined ? undefined : { username: user.username, email: user.email });
            if (user !== undefined) {
              const side = isInReadPercentage(50, migration.stageFlagKey, key) ? 'live:new' : 'shadow:old';
              expectedReads.set(side, (expectedReads.get(side) ?? 0) + 1);
            }
          }
        } catch (error) {
          errors.push(error);
        }
      }
    };
    await Promise.all([
      chaos(flags, [migration.stageFlagKey, migration.percentFlagKey], deadline, 40),
      ...[1, 2, 3, 4].map(writer),
    ]);
    for (const key of [migration.stageFlagKey, migration.percentFlagKey]) flags.restore(key);

    expect(errors.map(String), 'invariant: a flag failure never reaches the caller').toEqual([]);
    const rows = await ctx.sql<{ id: string | number; username: string; email: string }>(
      `SELECT id, username, email FROM ${ctx.schema}.users`,
    );
    const byId = new Map(rows.map((row) => [String(Number(row.id)), row]));
    for (const key of ledger.keys()) {
      const row = byId.get(key);
      ledger.final(key, row === undefined ? undefined : { username: row.username, email: row.email });
    }
    expect(ledger.violations.slice(0, 3), `invariant: ${ledger.violations[0]?.invariant ?? ''}`).toEqual([]);
    expect(ledger.counts.acknowledged, 'traffic ran').toBeGreaterThan(50);
    expect(await divergentRows(ctx), 'invariant: a flag outage never stops dual writes (no divergence)').toEqual([]);

    const served = new Map<string, number>();
    for (const event of events.ofType('read')) {
      // The route each read behaved as (live outside the ramp is routed as shadow).
      const label = `${event.route}:${event.served}`;
      served.set(label, (served.get(label) ?? 0) + event.count);
    }
    expect(
      Object.fromEntries(served),
      'invariant: during a flag outage reads are served per docs/STAGES.md with the last known good stage and percentage',
    ).toEqual(Object.fromEntries(expectedReads));

    const fallbacks = metrics.snapshot().migrations['users-username']!.flagFallbacks;
    expect(fallbacks.byReason.error, 'fallbacks counted: provider errors').toBeGreaterThan(0);
    expect(fallbacks.byReason.timeout, 'fallbacks counted: time-outs').toBeGreaterThan(0);
    expect(fallbacks.byReason.type, 'fallbacks counted: wrong types').toBeGreaterThan(0);
    expect(fallbacks.byFlag[migration.stageFlagKey], 'fallbacks counted for the stage flag').toBeGreaterThan(0);
    expect(fallbacks.byFlag[migration.percentFlagKey], 'fallbacks counted for the percent flag').toBeGreaterThan(0);
    expect(
      fallbacks.bySource.default,
      'invariant: with a last known good decision, nothing falls back to the default',
    ).toBe(0);
    expect(metrics.snapshot().totals.mismatches, 'invariant: nothing diverges, so shadow reads find no mismatch').toBe(
      0,
    );
    repo.close();
  });

  it('per-entity evaluation: entities never seen before get the last known good stage, not the default, while the provider is down', async () => {
    const ctx = getCtx();
    // The default is `off`: falling back to it would stop dual writes, which the rows would show.
    const migration = await usersTable(ctx, 'per-entity', 'off');
    const flags = createMemoryFlags({ [migration.stageFlagKey]: 'dualwrite', [migration.percentFlagKey]: 0 });
    // Without the memory source's promise that values are the same for every key, as a
    // provider with per-entity rules: each entity is evaluated, and falls back, on its own.
    const perEntity: FlagSource = { resolve: (key, type, context) => flags.resolve(key, type, context) };
    const metrics = createMemoryMetrics();
    const repo = createRepository(migration, { driver: ctx.driver, flags: perEntity, metrics, flagTimeoutMs: 10 });
    await repo.insert({ id: 1, username: 'seen', email: 's@x' });
    for (const failure of ['hang', 'error', { value: 7 }] as const) {
      flags.fail(migration.stageFlagKey, failure);
      const base = failure === 'hang' ? 100 : failure === 'error' ? 200 : 300;
      await Promise.all(
        Array.from({ length: 10 }, (_, index) =>
          repo.insert({ id: base + index, username: `new-${base + index}`, email: 'n@x' }),
        ),
      );
      flags.restore(migration.stageFlagKey);
    }
    expect(await divergentRows(ctx), 'invariant: a flag outage never stops dual writes (no divergence)').toEqual([]);
    const fallbacks = metrics.snapshot().migrations['users-username']!.flagFallbacks;
    expect(fallbacks.bySource['last-known-good'], 'fallbacks counted').toBeGreaterThanOrEqual(30);
    expect(fallbacks.bySource.default, 'invariant: a stage seen once is never replaced by the default').toBe(0);
    repo.close();
  });

  it('per-entity evaluation: during an outage each entity keeps its own last known good stage, so one in dualwrite keeps dual writing', async () => {
    const ctx = getCtx();
    const migration = await usersTable(ctx, 'per-entity', 'off');
    const state = { down: false };
    // An allow list: entity 1 dual-writes, every other entity is off.
    const flags: FlagSource = {
      resolve(flagKey, _type, context) {
        if (state.down) throw new Error('provider down');
        if (flagKey === migration.stageFlagKey) return context.targetingKey === '1' ? 'dualwrite' : 'off';
        return 100;
      },
    };
    const metrics = createMemoryMetrics();
    const repo = createRepository(migration, { driver: ctx.driver, flags, metrics, flagCache: { ttlMs: 0 } });
    await repo.insert({ id: 1, username: 'a', email: 'a@x' });
    await repo.insert({ id: 2, username: 'b', email: 'b@x' }); // evaluated last: off
    state.down = true;
    await repo.update(1, { username: 'a2' });
    await repo.update(2, { username: 'b2' });
    // Never seen, and the migration has begun: not moved below dual writes.
    await repo.insert({ id: 3, username: 'c', email: 'c@x' });
    expect(await ctx.sql(`SELECT id::int AS id, user_name, username FROM ${ctx.schema}.users ORDER BY id`)).toEqual([
      { id: 1, user_name: 'a2', username: 'a2' },
      { id: 2, user_name: 'b2', username: null },
      { id: 3, user_name: 'c', username: 'c' },
    ]);
    const fallbacks = metrics.snapshot().migrations['users-username']!.flagFallbacks;
    expect(fallbacks.bySource, 'every fallback counted').toEqual({ 'last-known-good': 3, default: 0 });
    repo.close();
  });

  it('a hostile flag source (throws synchronously, a throwing then getter, symbols, thenables that settle twice) never reaches the data path', async () => {
    const ctx = getCtx();
    const migration = await usersTable(ctx, 'per-migration', 'dualwrite');
    let mode = 0;
    const hostile: FlagSource = {
      resolve(flagKey) {
        const stage = flagKey === migration.stageFlagKey;
        switch (mode % 6) {
          case 0:
            return stage ? 'dualwrite' : 0;
          case 1:
            throw new Error('synchronous provider failure');
          case 2:
            return Object.defineProperty({}, 'then', {
              get() {
                throw new Error('then getter');
              },
            });
          case 3:
            return Symbol('stage');
          case 4:
            return {
              // biome-ignore lint/suspicious/noThenProperty: a hostile thenable is the point
              then(resolve: (value: unknown) => void, reject: (error: unknown) => void) {
                resolve('shadow');
                reject(new Error('and rejects too'));
                resolve(Symbol('and again'));
              },
            };
          default:
            return Promise.reject(null);
        }
      },
      onConfigurationChanged() {
        throw new Error('subscriptions are broken too');
      },
      track() {
        throw new Error('tracking is broken too');
      },
    };
    const metrics = createMemoryMetrics();
    const repo = createRepository(migration, {
      driver: ctx.driver,
      flags: hostile,
      metrics,
      flagCache: { ttlMs: 0 },
      flagTimeoutMs: 10,
    });
    for (let id = 1; id <= 24; id++) {
      mode = id;
      await repo.upsert({ id, username: `u${id}`, email: 'e@x' });
      expect(await repo.get(id), 'invariant: every acknowledged write is read back identically').toEqual({
        id,
        username: `u${id}`,
        email: 'e@x',
      });
    }
    expect(await divergentRows(ctx), 'invariant: a hostile provider never stops dual writes (no divergence)').toEqual(
      [],
    );
    expect(metrics.snapshot().totals.flagFallbacks.total, 'fallbacks counted').toBeGreaterThan(0);
    repo.close();
  });
});
