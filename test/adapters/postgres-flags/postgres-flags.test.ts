import { randomUUID } from 'node:crypto';
import { PGlite } from '@electric-sql/pglite';
import { type EventDetails, OpenFeature, ProviderEvents, type ServerProviderEvents } from '@openfeature/server-sdk';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { createOpenFeatureFlags } from '../../../adapters/openfeature/index.js';
import { createPgliteDriver } from '../../../adapters/pglite/index.js';
import {
  createPostgresFlagProvider,
  getFlags,
  getMigrationFlags,
  killMigration,
  type PostgresFlagProvider,
  removeFlag,
  setFlag,
  setMigrationFlags,
} from '../../../adapters/postgres-flags/index.js';
import { LISTEN_ACTIVITY } from '../../../adapters/postgres-flags/listen-source.js';
import { createStageResolver } from '../../../src/flags/stage-resolver.js';
import { ConfigurationError, StageTransitionError, ValidationError } from '../../../src/kernel/errors.js';
import { listEvents } from '../../../src/lifecycle/state/index.js';
import { rename } from '../../../src/model/mappings.js';
import { defineMigration } from '../../../src/model/migration.js';
import { defineTable } from '../../../src/model/table.js';
import { describeDrivers } from '../../support/drivers.js';

const users = defineTable({
  name: 'users',
  key: 'id',
  entity: z.object({ id: z.number().int(), username: z.string() }),
});
const usernameRename = defineMigration({
  name: 'users-username',
  table: users,
  mappings: [rename({ field: 'username', from: 'user_name', to: 'username', type: 'text' })],
  defaultStage: 'dualwrite',
});
const routing = { migration: usernameRename.name, ...usernameRename };

function nextEvent(provider: PostgresFlagProvider, event: ServerProviderEvents): Promise<EventDetails | undefined> {
  return new Promise((resolve) => {
    const handler = (details?: EventDetails) => {
      provider.events.removeHandler(event, handler);
      resolve(details);
    };
    provider.events.addHandler(event, handler);
  });
}

afterAll(async () => {
  await OpenFeature.close();
});

describe('postgres flag provider options', () => {
  it('options: exactly one connection source, named when wrong', () => {
    expect(() => createPostgresFlagProvider({})).toThrow(
      /exactly one of "pool", "connectionString" and "pglite", got none/,
    );
    expect(() => createPostgresFlagProvider({ connectionString: 'postgres://x', table: 'bad name' })).toThrow(
      ConfigurationError,
    );
    expect(() => createPostgresFlagProvider({ connectionString: 'postgres://x', nope: 1 } as never)).toThrow(
      /option "nope" is not a known option/,
    );
  });
});

describeDrivers(
  'postgres flag provider',
  (getCtx) => {
    const open: PostgresFlagProvider[] = [];
    afterEach(async () => {
      await Promise.all(open.splice(0).map((provider) => provider.onClose()));
    });

    async function start(options: { reconnectDelayMs?: number } = {}): Promise<PostgresFlagProvider> {
      const { pgPool, schema } = getCtx();
      const provider = createPostgresFlagProvider({ pool: pgPool({ max: 4 }), schema, ...options });
      open.push(provider);
      await provider.initialize();
      return provider;
    }

    it('resolution: typed values; a wrong type is TYPE_MISMATCH and a missing flag FLAG_NOT_FOUND', async () => {
      const { driver, schema } = getCtx();
      await setFlag(driver, 'stage', 'shadow', { schema });
      await setFlag(driver, 'percent', 12.5, { schema });
      await setFlag(driver, 'enabled', true, { schema });
      await setFlag(driver, 'limits', { max: 3, tags: ['a', null] }, { schema });
      const provider = await start();
      const domain = `postgres-flags-${randomUUID()}`;
      await OpenFeature.setProviderAndWait(domain, provider);
      const client = OpenFeature.getClient(domain);

      expect(await client.getStringValue('stage', 'off')).toBe('shadow');
      expect(await client.getNumberValue('percent', 0)).toBe(12.5);
      expect(await client.getBooleanValue('enabled', false)).toBe(true);
      expect(await client.getObjectValue('limits', {})).toEqual({ max: 3, tags: ['a', null] });

      const wrongType = await client.getNumberDetails('stage', 7);
      expect(wrongType).toMatchObject({ value: 7, errorCode: 'TYPE_MISMATCH' });
      expect(wrongType.errorMessage).toMatch(/flag "stage" holds a string, not a number/);
      expect(await client.getObjectDetails('percent', {})).toMatchObject({ errorCode: 'TYPE_MISMATCH' });
      const missing = await client.getStringDetails('no-such-flag', 'fallback');
      expect(missing).toMatchObject({ value: 'fallback', errorCode: 'FLAG_NOT_FOUND' });
      expect(missing.errorMessage).toContain(`${schema}.flags`);
    });

    it('notify: a write emits ConfigurationChanged naming the key, and evaluations serve the new value', async () => {
      const { driver, schema } = getCtx();
      const provider = await start();
      const changed = nextEvent(provider, ProviderEvents.ConfigurationChanged);
      await setFlag(driver, 'checkout.flow', 'v2', { schema });
      expect((await changed)?.flagsChanged).toEqual(['checkout.flow']);
      expect(await provider.resolveStringEvaluation('checkout.flow', 'v1', {}, console)).toMatchObject({
        value: 'v2',
        reason: 'STATIC',
      });

      const removed = nextEvent(provider, ProviderEvents.ConfigurationChanged);
      await removeFlag(driver, 'checkout.flow', { schema });
      expect((await removed)?.flagsChanged).toEqual(['checkout.flow']);
      await expect(provider.resolveStringEvaluation('checkout.flow', 'v1', {}, console)).rejects.toMatchObject({
        code: 'FLAG_NOT_FOUND',
      });
    });

    it('notify: a write that rolls back is never announced nor served', async () => {
      const { driver, schema } = getCtx();
      const provider = await start();
      await setFlag(driver, 'a', 1, { schema });
      await provider.refresh();
      await expect(
        driver.transaction(async (tx) => {
          await tx.query(`UPDATE "${schema}".flags SET value = '2' WHERE key = 'a'`);
          await tx.query(`SELECT pg_notify($1, 'a')`, [`${schema}.flags`]);
          throw new Error('abort');
        }),
      ).rejects.toThrow('abort');
      const changed = nextEvent(provider, ProviderEvents.ConfigurationChanged);
      await setFlag(driver, 'b', 1, { schema });
      // The next announcement is the committed write, not the rolled-back one.
      expect((await changed)?.flagsChanged).toEqual(['b']);
      expect(provider.snapshot().get('a')).toBe(1);
    });

    it("flagshift: the stage resolver drops its cached decision on the provider's change event", async () => {
      const { driver, schema } = getCtx();
      await setMigrationFlags(
        driver,
        usernameRename,
        { stage: 'dualwrite', percent: 0 },
        { schema, stateSchema: schema },
      );
      const provider = await start();
      const domain = `postgres-flags-${randomUUID()}`;
      await OpenFeature.setProviderAndWait(domain, provider);
      // A TTL of a minute: only the change event can make the resolver look again.
      const resolver = createStageResolver({ flags: createOpenFeatureFlags({ domain }), ttlMs: 60_000 });
      expect(await resolver.resolve(routing, {}, 'k')).toEqual({ stage: 'dualwrite', percent: 0 });
      const changed = new Promise<void>((resolve) =>
        OpenFeature.getClient(domain).addHandler(ProviderEvents.ConfigurationChanged, () => resolve()),
      );
      await setMigrationFlags(
        driver,
        usernameRename,
        { stage: 'live', percent: 25 },
        { schema, stateSchema: schema, gate: { minComparisons: 0 } },
      );
      await changed;
      expect(await resolver.resolve(routing, {}, 'k')).toEqual({ stage: 'live', percent: 25 });
      resolver.close();
    });

    it('reconnect: a terminated LISTEN connection makes the provider Stale, then Ready, and catches up', async () => {
      const { driver, schema, sql } = getCtx();
      await setFlag(driver, 'stage', 'shadow', { schema });
      const provider = await start({ reconnectDelayMs: 300 });
      const listeners = await sql<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity WHERE ${LISTEN_ACTIVITY} AND application_name = $1`,
        [`flagshift-test-${schema}`],
      );
      expect(listeners).toHaveLength(1);

      const stale = nextEvent(provider, ProviderEvents.Stale);
      const ready = nextEvent(provider, ProviderEvents.Ready);
      const changed = nextEvent(provider, ProviderEvents.ConfigurationChanged);
      await sql('SELECT pg_terminate_backend($1)', [listeners[0]!.pid]);
      expect((await stale)?.message).toMatch(/may be out of date/);
      // While disconnected the last snapshot is still served, marked as cached.
      expect(await provider.resolveStringEvaluation('stage', 'off', {}, console)).toMatchObject({
        value: 'shadow',
        reason: 'CACHED',
      });
      // Written during the outage: no provider hears the notification, the reload after reconnecting finds it.
      await setFlag(driver, 'stage', 'live', { schema });
      await ready;
      expect((await changed)?.flagsChanged).toEqual(['stage']);
      expect(provider.snapshot().get('stage')).toBe('live');

      const again = nextEvent(provider, ProviderEvents.ConfigurationChanged);
      await setFlag(driver, 'stage', 'rampdown', { schema });
      await again;
      expect(provider.snapshot().get('stage')).toBe('rampdown');
      const relistening = await sql<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity WHERE ${LISTEN_ACTIVITY} AND application_name = $1`,
        [`flagshift-test-${schema}`],
      );
      expect(relistening.map((row) => row.pid)).not.toContain(listeners[0]!.pid);
    });

    it("the LISTEN connection is the provider's own: a pool of one connection keeps serving the application", async () => {
      const { pgPool, schema, sql } = getCtx();
      // A pool that errors instead of waiting when its one connection is taken.
      const pool = pgPool({ max: 1, connectionTimeoutMillis: 5000 });
      const provider = createPostgresFlagProvider({ pool, schema });
      open.push(provider);
      await provider.initialize();
      const listeners = await sql<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE ${LISTEN_ACTIVITY} AND application_name = $1`,
        [`flagshift-test-${schema}`],
      );
      expect(listeners[0]?.n).toBe(1);
      const client = await pool.connect();
      expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      client.release();
    });

    it('reload: a change is served while every slot of the application pool is taken', async () => {
      const { driver, pgPool, schema } = getCtx();
      await setFlag(driver, 'stage', 'shadow', { schema });
      const pool = pgPool({ max: 1, connectionTimeoutMillis: 5000 });
      const provider = createPostgresFlagProvider({ pool, schema });
      open.push(provider);
      await provider.initialize();
      // The application holds the pool's one connection, as a busy pool would.
      const held = await pool.connect();
      try {
        const changed = nextEvent(provider, ProviderEvents.ConfigurationChanged);
        await setFlag(driver, 'stage', 'live', { schema });
        // A reload through the pool would wait for the held slot (and fail after 5 s).
        await changed;
        expect(provider.snapshot().get('stage')).toBe('live');
        await provider.refresh();
        expect(provider.snapshot().get('stage')).toBe('live');
      } finally {
        held.release();
      }
    });

    it('reconnect: a change committed while the LISTEN connection is down is served after it, with the pool taken', async () => {
      const { driver, pgPool, schema, sql } = getCtx();
      await setFlag(driver, 'stage', 'shadow', { schema });
      const pool = pgPool({ max: 1, connectionTimeoutMillis: 5000 });
      const provider = createPostgresFlagProvider({ pool, schema, reconnectDelayMs: 20 });
      open.push(provider);
      await provider.initialize();
      const held = await pool.connect();
      try {
        const stale = nextEvent(provider, ProviderEvents.Stale);
        const ready = nextEvent(provider, ProviderEvents.Ready);
        await sql(
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE ${LISTEN_ACTIVITY} AND application_name = $1`,
          [`flagshift-test-${schema}`],
        );
        await stale;
        await setFlag(driver, 'stage', 'live', { schema });
        // Re-read on the new LISTEN connection: no notification of this change ever reached it.
        await ready;
        expect(provider.snapshot().get('stage')).toBe('live');
      } finally {
        held.release();
      }
    });

    it('closing in either order never waits: the pool ended first, then the provider; and the reverse', async () => {
      const { pgPool, schema, sql } = getCtx();
      const poolFirst = pgPool({ max: 2 });
      const first = createPostgresFlagProvider({ pool: poolFirst, schema });
      await first.initialize();
      await poolFirst.end();
      await first.onClose();
      const providerFirst = pgPool({ max: 2 });
      const second = createPostgresFlagProvider({ pool: providerFirst, schema });
      await second.initialize();
      await second.onClose();
      await providerFirst.end();
      // Both LISTEN connections ended (the server notices a closed connection promptly).
      await vi.waitFor(async () => {
        const left = await sql<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE ${LISTEN_ACTIVITY} AND application_name = $1`,
          [`flagshift-test-${schema}`],
        );
        expect(left[0]?.n).toBe(0);
      });
    });

    it('connection string: the provider opens and ends a pool of its own', async () => {
      const { connectionString, driver, schema } = getCtx();
      const provider = createPostgresFlagProvider({ connectionString: connectionString!, schema });
      open.push(provider);
      await provider.initialize();
      const changed = nextEvent(provider, ProviderEvents.ConfigurationChanged);
      await setFlag(driver, 'x', 'y', { schema });
      await changed;
      expect(provider.snapshot().get('x')).toBe('y');
      await provider.onClose();
    });
  },
  { kinds: ['pg'] },
);

describeDrivers('postgres flags: migration helpers', (getCtx) => {
  // These tests are about storing flags; the promotion gate has its own tests.
  const opts = () => ({ schema: getCtx().schema, stateSchema: getCtx().schema, gate: { minComparisons: 0 } });

  it('set/get: stage and percent roundtrip, unset flags read as undefined', async () => {
    const { driver } = getCtx();
    expect(await getMigrationFlags(driver, usernameRename, opts())).toMatchObject({
      stage: undefined,
      percent: undefined,
      updatedAt: undefined,
    });
    const state = await setMigrationFlags(
      driver,
      usernameRename,
      { stage: 'live', percent: 12.5 },
      {
        ...opts(),
        actor: 'ada',
      },
    );
    expect(state).toMatchObject({ stage: 'live', percent: 12.5, updatedBy: 'ada' });
    await setMigrationFlags(driver, usernameRename, { percent: 50 }, opts());
    expect(await getMigrationFlags(driver, usernameRename, opts())).toMatchObject({ stage: 'live', percent: 50 });
    const all = await getFlags(driver, opts());
    expect(all.get('flagshift.users-username.stage')?.value).toBe('live');
  });

  it('set: a bad stage or percent is rejected with a message naming it, and nothing is written', async () => {
    const { driver } = getCtx();
    await expect(setMigrationFlags(driver, usernameRename, { stage: 'halfway' as never }, opts())).rejects.toThrow(
      /migration "users-username": stage must be one of off, dualwrite, shadow, live, rampdown, complete, got "halfway"/,
    );
    await expect(setMigrationFlags(driver, usernameRename, { percent: 150 }, opts())).rejects.toThrow(
      /percent must be a number from 0 to 100, got 150/,
    );
    await expect(setMigrationFlags(driver, usernameRename, {}, opts())).rejects.toThrow(ValidationError);
    expect((await getFlags(driver, opts())).size).toBe(0);
  });

  it('set: each change is logged as a stage event that says whether the write path changed', async () => {
    const { driver, schema } = getCtx();
    // Unset, the stage is the migration's default (dualwrite): shadow writes the same columns.
    await setMigrationFlags(driver, usernameRename, { stage: 'shadow' }, { ...opts(), reason: 'backfill verified' });
    await setMigrationFlags(driver, usernameRename, { percent: 5 }, opts());
    await setMigrationFlags(driver, usernameRename, { stage: 'complete' }, opts());
    const events = await listEvents(driver, 'users-username', schema);
    expect(events.map((event) => [event.kind, event.details['to'], event.details['writePathChanged']])).toEqual([
      ['stage', { stage: 'shadow', percent: null }, false],
      ['stage', { stage: 'shadow', percent: 5 }, false],
      ['stage', { stage: 'complete', percent: 5 }, true],
    ]);
    expect(events[0]?.details['reason']).toBe('backfill verified');
  });

  it('set: leaving complete is refused unless forced', async () => {
    const { driver } = getCtx();
    await setMigrationFlags(driver, usernameRename, { stage: 'complete' }, opts());
    await expect(setMigrationFlags(driver, usernameRename, { stage: 'live' }, opts())).rejects.toThrow(
      StageTransitionError,
    );
    expect(
      await setMigrationFlags(driver, usernameRename, { stage: 'rampdown' }, { ...opts(), force: true }),
    ).toMatchObject({ stage: 'rampdown' });
  });

  it('kill: shadow, live and rampdown go to dualwrite with percent 0; off and dualwrite are left alone', async () => {
    const { driver } = getCtx();
    for (const stage of ['shadow', 'live', 'rampdown'] as const) {
      await setMigrationFlags(driver, usernameRename, { stage, percent: 40 }, opts());
      const result = await killMigration(driver, usernameRename, opts());
      expect(result).toMatchObject({ changed: true, before: { stage }, after: { stage: 'dualwrite', percent: 0 } });
    }
    for (const stage of ['off', 'dualwrite'] as const) {
      await setMigrationFlags(driver, usernameRename, { stage }, opts());
      expect(await killMigration(driver, usernameRename, opts())).toMatchObject({ changed: false, after: { stage } });
    }
  });

  it('kill: refused for a complete migration and for an unset stage without a default', async () => {
    const { driver } = getCtx();
    const keysOnly = { stageFlagKey: 'other.stage', percentFlagKey: 'other.percent' };
    await expect(killMigration(driver, keysOnly, opts())).rejects.toThrow(/is not set, so it is unknown/);
    await setMigrationFlags(driver, usernameRename, { stage: 'complete' }, opts());
    await expect(killMigration(driver, usernameRename, opts())).rejects.toThrow(/is complete/);
    expect((await getMigrationFlags(driver, usernameRename, opts())).stage).toBe('complete');
  });
});

describe('postgres flag provider on PGlite', () => {
  it('notify: a write through the driver reaches a provider on the same PGlite instance', async () => {
    const pglite = new PGlite();
    try {
      const provider = createPostgresFlagProvider({ pglite });
      await provider.initialize();
      const changed = nextEvent(provider, ProviderEvents.ConfigurationChanged);
      await setFlag(createPgliteDriver(pglite), 'stage', 'shadow');
      expect((await changed)?.flagsChanged).toEqual(['stage']);
      expect(await provider.resolveStringEvaluation('stage', 'off', {}, console)).toMatchObject({ value: 'shadow' });
      await provider.onClose();
    } finally {
      await pglite.close();
    }
  });
});
