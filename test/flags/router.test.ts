import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { isInReadPercentage } from '../../src/flags/bucketing.js';
import type { FlagContext, FlagSource, FlagValueType } from '../../src/flags/flag-source.js';
import { createMemoryFlags, type MemoryFlags } from '../../src/flags/memory-flags.js';
import { MigrationRouter, migrationFlags, type PinnedDecisions, type Route, routeFor } from '../../src/flags/router.js';
import { createStageResolver, type FlagDecision, type StageResolver } from '../../src/flags/stage-resolver.js';
import { rename } from '../../src/model/mappings.js';
import { defineMigration, type FlagEvaluation, type Migration } from '../../src/model/migration.js';
import { STAGES, type Stage } from '../../src/model/stages.js';
import { defineTable } from '../../src/model/table.js';

// The stage table of docs/STAGES.md, transcribed: reads run, value returned, writes, compare.
const CONTRACT: Record<Stage, { reads: string; serves: string; writes: string; compares: boolean }> = {
  off: { reads: 'old', serves: 'old', writes: 'old', compares: false },
  dualwrite: { reads: 'old', serves: 'old', writes: 'old + new', compares: false },
  shadow: { reads: 'old and new', serves: 'old', writes: 'old + new', compares: true },
  live: { reads: 'old and new', serves: 'new', writes: 'old + new', compares: true },
  rampdown: { reads: 'new', serves: 'new', writes: 'old + new', compares: false },
  complete: { reads: 'new', serves: 'new', writes: 'new', compares: false },
};

/** A route in the words of the docs/STAGES.md table. */
function describeRoute(route: Route) {
  const sides = (old: boolean, neu: boolean, both: string) =>
    old && neu ? both : old ? 'old' : neu ? 'new' : 'nothing';
  return {
    reads: sides(route.readsOld, route.readsNew, 'old and new'),
    serves: route.serves,
    writes: sides(route.writesOld, route.writesNew, 'old + new'),
    compares: route.compares,
  };
}

describe('routeFor: the stage table of docs/STAGES.md', () => {
  it('covers exactly the six stages', () => {
    expect([...STAGES]).toEqual(Object.keys(CONTRACT));
  });

  for (const stage of STAGES) {
    it(`${stage}: reads ${CONTRACT[stage].reads}, serves ${CONTRACT[stage].serves}, writes ${CONTRACT[stage].writes}, ${CONTRACT[stage].compares ? 'compares' : 'does not compare'}`, () => {
      const route = routeFor(stage, true);
      expect(describeRoute(route)).toEqual(CONTRACT[stage]);
      expect(route.stage).toBe(stage);
      expect(route.effective).toBe(stage);
    });
  }

  it('live inside the ramp serves new and compares', () => {
    expect(routeFor('live', true)).toMatchObject({ stage: 'live', effective: 'live', serves: 'new', compares: true });
  });

  it('live outside the ramp behaves as shadow: reads both, serves old, writes both, compares', () => {
    const route = routeFor('live', false);
    expect(route.stage).toBe('live');
    expect(route.effective).toBe('shadow');
    expect(describeRoute(route)).toEqual(CONTRACT.shadow);
  });

  for (const stage of STAGES.filter((name) => name !== 'live')) {
    it(`${stage} ignores the ramp`, () => {
      expect(routeFor(stage, false)).toEqual(routeFor(stage, true));
    });
  }

  it('returns shared frozen routes', () => {
    expect(routeFor('shadow', true)).toBe(routeFor('shadow', false));
    expect(Object.isFrozen(routeFor('live', false))).toBe(true);
  });
});

interface Evaluation {
  readonly flagKey: string;
  readonly type: FlagValueType;
  readonly context: FlagContext;
}

function spy(inner: MemoryFlags): FlagSource & { readonly evaluations: Evaluation[] } {
  const evaluations: Evaluation[] = [];
  return {
    evaluations,
    resolve(flagKey, type, context) {
      evaluations.push({ flagKey, type, context: { ...context } });
      return inner.resolve(flagKey, type, context);
    },
    onConfigurationChanged: (listener) => inner.onConfigurationChanged(listener),
  };
}

const users = defineTable({
  name: 'users',
  key: 'id',
  entity: z.object({ id: z.string(), username: z.string() }),
});

function migration(evaluation: FlagEvaluation): Migration {
  return defineMigration({
    name: 'users-rename',
    table: users,
    mappings: [rename({ field: 'username', from: 'user_name', to: 'username' })],
    defaultStage: 'dualwrite',
    flags: { evaluation },
  }) as unknown as Migration;
}

const STAGE_KEY = 'flagshift.users-rename.stage';
const PERCENT_KEY = 'flagshift.users-rename.read-percent';

const resolvers: StageResolver[] = [];
afterEach(() => {
  for (const resolver of resolvers.splice(0)) resolver.close();
});

function setup(
  evaluation: FlagEvaluation,
  values: Record<string, string | number> = { [STAGE_KEY]: 'live', [PERCENT_KEY]: 50 },
) {
  const memory = createMemoryFlags(values);
  const source = spy(memory);
  const resolver = createStageResolver({ flags: source, ttlMs: 60_000, timeoutMs: 1_000 });
  resolvers.push(resolver);
  const router = new MigrationRouter(migration(evaluation), resolver, { service: 'api' });
  return { memory, source, resolver, router };
}

/** An entity key inside (`inside`) or outside a read percentage of the migration. */
function keyAt(percent: number, inside: boolean, prefix = 'user-'): string {
  for (let index = 0; ; index++) {
    const key = `${prefix}${index}`;
    if (isInReadPercentage(percent, STAGE_KEY, key) === inside) return key;
  }
}

describe('migrationFlags', () => {
  it('hands the resolver the migration flag keys and defaults', () => {
    expect(migrationFlags(migration('per-migration'))).toEqual({
      migration: 'users-rename',
      stageFlagKey: STAGE_KEY,
      percentFlagKey: PERCENT_KEY,
      defaultStage: 'dualwrite',
      defaultPercent: 0,
      evaluation: 'per-migration',
    });
    // Per-entity, so the resolver keeps the last known good per entity.
    expect(migrationFlags(migration('per-entity')).evaluation).toBe('per-entity');
  });
});

describe('MigrationRouter: per-migration evaluation', () => {
  it('evaluates the flags once, without the entity key, for every entity', async () => {
    const { source, router } = setup('per-migration');
    const first = await router.decide('user-1', undefined);
    const second = await router.decide('user-2', undefined);
    expect(first).toEqual({ stage: 'live', percent: 50 });
    expect(second).toBe(first);
    expect(source.evaluations.map((evaluation) => evaluation.flagKey).sort()).toEqual([PERCENT_KEY, STAGE_KEY]);
    for (const evaluation of source.evaluations) {
      expect(evaluation.context).toEqual({ service: 'api' });
      expect(evaluation.context).not.toHaveProperty('targetingKey');
    }
  });

  it('asks for the stage as a string and the percentage as a number', async () => {
    const { source, router } = setup('per-migration');
    await router.decide('user-1', undefined);
    const types = Object.fromEntries(source.evaluations.map((evaluation) => [evaluation.flagKey, evaluation.type]));
    expect(types).toEqual({ [STAGE_KEY]: 'string', [PERCENT_KEY]: 'number' });
  });

  it('evaluates with the call context, and per call targeting key, merged over the base context', async () => {
    const { source, router } = setup('per-migration');
    await router.decide('user-1', { targetingKey: 'tenant-7', region: 'eu' });
    expect(source.evaluations[0]?.context).toEqual({ service: 'api', targetingKey: 'tenant-7', region: 'eu' });
    await router.decide('user-2', { targetingKey: 'tenant-7', region: 'eu' });
    expect(source.evaluations).toHaveLength(2);
    await router.decide('user-2', { targetingKey: 'tenant-8' });
    expect(source.evaluations).toHaveLength(4);
  });
});

describe('MigrationRouter: per-entity evaluation', () => {
  it('passes the entity key as the targeting key, one evaluation per entity', async () => {
    const { source, router } = setup('per-entity');
    await router.decide('user-1', undefined);
    await router.decide('user-2', undefined);
    await router.decide('user-1', undefined);
    const contexts = source.evaluations.filter((evaluation) => evaluation.flagKey === STAGE_KEY).map((e) => e.context);
    expect(contexts).toEqual([
      { service: 'api', targetingKey: 'user-1' },
      { service: 'api', targetingKey: 'user-2' },
    ]);
  });

  it('lets the call context targeting key replace the entity key', async () => {
    const { source, router } = setup('per-entity');
    await router.decide('user-1', { targetingKey: 'request-9', region: 'eu' });
    expect(source.evaluations[0]?.context).toEqual({ service: 'api', region: 'eu', targetingKey: 'request-9' });
  });

  it('routes each entity by the stage its own evaluation gave', async () => {
    const memory = createMemoryFlags({ [STAGE_KEY]: 'shadow', [PERCENT_KEY]: 100 });
    const source: FlagSource = {
      resolve: (flagKey, type, context) =>
        flagKey === STAGE_KEY && context.targetingKey === 'vip' ? 'complete' : memory.resolve(flagKey, type, context),
    };
    const resolver = createStageResolver({ flags: source, ttlMs: 60_000 });
    resolvers.push(resolver);
    const router = new MigrationRouter(migration('per-entity'), resolver, {});
    const vip = await router.decide('vip', undefined);
    const other = await router.decide('someone', undefined);
    expect(router.route(vip, 'vip', undefined).effective).toBe('complete');
    expect(router.route(other, 'someone', undefined).effective).toBe('shadow');
  });
});

describe('MigrationRouter: routing within live', () => {
  const decision = (percent: number): FlagDecision => ({ stage: 'live', percent });

  it('serves new to an entity whose bucket is inside the read percentage', () => {
    const { router } = setup('per-migration');
    const key = keyAt(50, true);
    expect(router.route(decision(50), key, undefined)).toMatchObject({ effective: 'live', serves: 'new' });
  });

  it('serves old and compares for an entity outside the read percentage', () => {
    const { router } = setup('per-migration');
    const key = keyAt(50, false);
    expect(router.route(decision(50), key, undefined)).toMatchObject({
      stage: 'live',
      effective: 'shadow',
      serves: 'old',
      readsNew: true,
      compares: true,
    });
  });

  it('at 0% serves nobody new and at 100% everybody', () => {
    const { router } = setup('per-migration');
    for (const key of ['a', 'b', 'c', 'user-1', 'üñí']) {
      expect(router.route(decision(0), key, undefined).serves).toBe('old');
      expect(router.route(decision(100), key, undefined).serves).toBe('new');
    }
  });

  it('buckets by the call context targeting key instead of the entity key', () => {
    const { router } = setup('per-migration');
    const inside = keyAt(50, true);
    const outside = keyAt(50, false);
    expect(router.route(decision(50), outside, { targetingKey: inside }).effective).toBe('live');
    expect(router.route(decision(50), inside, { targetingKey: outside }).effective).toBe('shadow');
  });

  it('ignores the percentage outside live', () => {
    const { router } = setup('per-migration');
    const outside = keyAt(50, false);
    expect(router.route({ stage: 'rampdown', percent: 0 }, outside, undefined).serves).toBe('new');
    expect(router.route({ stage: 'shadow', percent: 100 }, outside, undefined).serves).toBe('old');
  });
});

describe('MigrationRouter: pinned decisions', () => {
  it('takes the decision at first use and reuses it after the flags change', async () => {
    const { memory, source, router } = setup('per-migration', { [STAGE_KEY]: 'dualwrite', [PERCENT_KEY]: 0 });
    const pinned: PinnedDecisions = new Map();
    const first = await router.decide('user-1', undefined, pinned);
    expect(first).toEqual({ stage: 'dualwrite', percent: 0 });
    expect(pinned.get('users-rename')).toBe(first);

    memory.set(STAGE_KEY, 'complete');
    const evaluations = source.evaluations.length;
    const again = router.decide('user-2', undefined, pinned);
    expect(again).toBe(first);
    expect(source.evaluations).toHaveLength(evaluations);

    expect(await router.decide('user-2', undefined)).toEqual({ stage: 'complete', percent: 0 });
  });

  it('gives concurrent first uses one decision', async () => {
    const { router } = setup('per-entity');
    const pinned: PinnedDecisions = new Map();
    const [a, b] = await Promise.all([
      router.decide('user-1', undefined, pinned),
      router.decide('user-2', undefined, pinned),
    ]);
    expect(b).toBe(a);
    expect(pinned.size).toBe(1);
  });

  it('reuses a decision already pinned without evaluating', () => {
    const { source, router } = setup('per-migration');
    const decision: FlagDecision = { stage: 'rampdown', percent: 0 };
    const pinned: PinnedDecisions = new Map([['users-rename', decision]]);
    expect(router.decide('user-1', undefined, pinned)).toBe(decision);
    expect(source.evaluations).toHaveLength(0);
  });
});
