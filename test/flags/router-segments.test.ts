/**
 * A stage per tenant or shard through flag targeting: the context's attributes (not only
 * its targeting key) reach the provider, decisions are cached per attribute set, and a
 * flag outage falls back to the tenant's own last known stage, never another tenant's.
 */
import { randomUUID } from 'node:crypto';
import { type EvaluationContext, InMemoryProvider, OpenFeature } from '@openfeature/server-sdk';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createOpenFeatureFlags } from '../../adapters/openfeature/index.js';
import type { FlagContext, FlagSource } from '../../src/flags/flag-source.js';
import { MigrationRouter, segmentOf } from '../../src/flags/router.js';
import { createStageResolver } from '../../src/flags/stage-resolver.js';
import { defineMigration, defineTable, rename } from '../../src/index.js';

const users = defineTable({
  name: 'users',
  key: 'id',
  entity: z.object({ id: z.number().int(), username: z.string() }),
});
const migration = defineMigration({
  name: 'users-username',
  table: users,
  mappings: [rename({ field: 'username', from: 'user_name', to: 'username', type: 'text' })],
  defaultStage: 'dualwrite',
});

/** A stage flag whose rule gives tenant `acme` `live` and everyone else `dualwrite`, through a real OpenFeature provider. */
async function canaryTenantFlags(): Promise<FlagSource> {
  const contextEvaluator = (context: EvaluationContext) => (context['tenant'] === 'acme' ? 'canary' : 'rest');
  const provider = new InMemoryProvider({
    [migration.stageFlagKey]: {
      variants: { canary: 'live', rest: 'dualwrite' },
      defaultVariant: 'rest',
      disabled: false,
      contextEvaluator,
    },
    [migration.percentFlagKey]: { variants: { all: 100 }, defaultVariant: 'all', disabled: false },
  });
  const domain = `flagshift-segments-${randomUUID()}`;
  await OpenFeature.setProviderAndWait(domain, provider);
  return createOpenFeatureFlags({ domain });
}

/** `source`, with a switch that makes every evaluation fail (a flag outage). */
function withOutage(source: FlagSource): FlagSource & { down: boolean } {
  return {
    down: false,
    resolve(flagKey, type, context: FlagContext) {
      if (this.down) throw new Error('flag service unreachable');
      return source.resolve(flagKey, type, context);
    },
  };
}

afterAll(async () => {
  await OpenFeature.close();
});

describe('flag targeting by tenant', () => {
  it('segment: the attributes other than the targeting key, in a stable order', () => {
    expect(segmentOf({ targetingKey: 'u1' })).toBe('');
    expect(segmentOf({ tenant: 'acme', region: 'eu', targetingKey: 'u1' })).toBe(
      segmentOf({ region: 'eu', tenant: 'acme' }),
    );
    expect(segmentOf({ tenant: 'acme' })).not.toBe(segmentOf({ tenant: 'globex' }));
    expect(segmentOf({ shard: 7n })).toBe('[["shard","7n"]]');
  });

  it("repositories of two tenants sharing one resolver each get their tenant's stage", async () => {
    const resolver = createStageResolver({ flags: await canaryTenantFlags(), ttlMs: 60_000 });
    const acme = new MigrationRouter(migration, resolver, { tenant: 'acme' });
    const globex = new MigrationRouter(migration, resolver, { tenant: 'globex' });
    expect((await acme.decide(undefined, undefined)).stage).toBe('live');
    expect((await globex.decide(undefined, undefined)).stage).toBe('dualwrite');
    expect((await acme.decide('42', { targetingKey: 'user-42' })).stage).toBe('live');
    resolver.close();
  });

  it("a call's context attributes choose the tenant's stage on one shared router", async () => {
    const resolver = createStageResolver({ flags: await canaryTenantFlags(), ttlMs: 60_000 });
    const router = new MigrationRouter(migration, resolver, { service: 'api' });
    expect((await router.decide('1', { tenant: 'acme' })).stage).toBe('live');
    expect((await router.decide('1', { tenant: 'globex' })).stage).toBe('dualwrite');
    expect((await router.decide('1', { tenant: 'acme', targetingKey: 'user-1' })).stage).toBe('live');
    expect((await router.decide('1', undefined)).stage).toBe('dualwrite');
    resolver.close();
  });

  it("during a flag outage each tenant keeps its own last known stage; an unseen tenant gets the migration's default", async () => {
    const flags = withOutage(await canaryTenantFlags());
    const resolver = createStageResolver({ flags, ttlMs: 0 });
    const router = new MigrationRouter(migration, resolver, {});
    expect((await router.decide(undefined, { tenant: 'globex' })).stage).toBe('dualwrite');
    expect((await router.decide(undefined, { tenant: 'acme' })).stage).toBe('live');
    flags.down = true;
    expect((await router.decide(undefined, { tenant: 'globex' })).stage).toBe('dualwrite');
    expect((await router.decide(undefined, { tenant: 'acme' })).stage).toBe('live');
    expect((await router.decide(undefined, { tenant: 'initech' })).stage).toBe(migration.defaultStage);
    resolver.close();
  });
});
