import { afterEach, describe, expect, it, vi } from 'vitest';
import { MAX_SHARED } from '../../src/flags/decision-cache.js';
import type { FlagSource } from '../../src/flags/flag-source.js';
import { createMemoryFlags, type MemoryFlags } from '../../src/flags/memory-flags.js';
import {
  createStageResolver,
  type MigrationFlags,
  type StageResolver,
  type StageResolverOptions,
} from '../../src/flags/stage-resolver.js';
import { ConfigurationError, FlagEvaluationError } from '../../src/kernel/errors.js';
import type { FlagFallbackEvent, MetricEvent, MetricsSink } from '../../src/metrics/events.js';

const STAGE = 'users-rename.stage';
const PERCENT = 'users-rename.read-percent';
const migration: MigrationFlags = {
  migration: 'users-rename',
  stageFlagKey: STAGE,
  percentFlagKey: PERCENT,
  defaultStage: 'dualwrite',
  defaultPercent: 0,
};
const ctx = { targetingKey: 'user-1' };

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const isPromise = (value: unknown): boolean => value instanceof Promise;

function recorder(): MetricsSink & { readonly fallbacks: FlagFallbackEvent[] } {
  const fallbacks: FlagFallbackEvent[] = [];
  return {
    fallbacks,
    record(event: MetricEvent) {
      if (event.type === 'flag-fallback') fallbacks.push(event);
    },
  };
}

const resolvers: StageResolver[] = [];
function resolverFor(flags: FlagSource, options: Partial<StageResolverOptions> = {}): StageResolver {
  const resolver = createStageResolver({ flags, ...options });
  resolvers.push(resolver);
  return resolver;
}

afterEach(() => {
  for (const resolver of resolvers.splice(0)) resolver.close();
  vi.useRealTimers();
});

function setup(
  values: Record<string, string | number> = { [STAGE]: 'live', [PERCENT]: 25 },
  options: Partial<StageResolverOptions> = {},
): { flags: MemoryFlags; metrics: ReturnType<typeof recorder>; resolver: StageResolver } {
  const flags = createMemoryFlags(values);
  const metrics = recorder();
  const resolver = resolverFor(flags, { metrics, timeoutMs: 20, ...options });
  return { flags, metrics, resolver };
}

describe('options', () => {
  it.each([
    [{ cacheSize: 0 }, /option "cacheSize" must be an integer of at least 1, got 0/],
    [{ cacheSize: 1.5 }, /option "cacheSize" .* got 1\.5/],
    [{ ttlMs: -1 }, /option "ttlMs" .* got -1/],
    [{ ttlMs: '1000' }, /option "ttlMs" .* got "1000"/],
    [{ timeoutMs: 0 }, /option "timeoutMs" .* got 0/],
    [{ timeoutMs: Number.POSITIVE_INFINITY }, /option "timeoutMs" .* got Infinity/],
    [{ metrics: {} }, /option "metrics" must be a metrics sink .* got an object/],
    [{ ttl: 5 }, /stage resolver option "ttl" is not a known option/],
  ])('rejects %o eagerly with a ConfigurationError naming the option and value', (bad, message) => {
    const make = () => createStageResolver({ flags: createMemoryFlags(), ...bad } as unknown as StageResolverOptions);
    expect(make).toThrow(ConfigurationError);
    expect(make).toThrow(message);
  });

  it('rejects a missing or malformed flag source', () => {
    expect(() => createStageResolver({} as StageResolverOptions)).toThrow(/option "flags" .* got undefined/);
    expect(() => createStageResolver({ flags: {} } as StageResolverOptions)).toThrow(/option "flags" .* got an object/);
    expect(() => createStageResolver(null as unknown as StageResolverOptions)).toThrow(/must be an object, got null/);
  });
});

describe('resolving', () => {
  it('evaluates the stage and percent flags with the context', async () => {
    const { flags, resolver } = setup({ [STAGE]: 'live', [PERCENT]: 12.5 });
    const resolve = vi.spyOn(flags, 'resolve');
    const decision = await resolver.resolve(migration, ctx, 'user-1');
    expect(decision).toEqual({ stage: 'live', percent: 12.5 });
    expect(resolve).toHaveBeenCalledWith(STAGE, 'string', ctx);
    expect(resolve).toHaveBeenCalledWith(PERCENT, 'number', ctx);
  });

  it('accepts a source that answers synchronously', async () => {
    const values: Record<string, unknown> = { [STAGE]: 'rampdown', [PERCENT]: 100 };
    const resolver = resolverFor({ resolve: (key) => values[key] });
    expect(await resolver.resolve(migration, ctx, 'k')).toEqual({ stage: 'rampdown', percent: 100 });
  });

  it('cache hit: returns the cached decision synchronously, without evaluating again', async () => {
    const { flags, resolver } = setup();
    const first = await resolver.resolve(migration, ctx, 'user-1');
    const second = resolver.resolve(migration, ctx, 'user-1');
    expect(isPromise(second)).toBe(false);
    expect(second).toBe(first);
    expect(flags.calls.get(STAGE)).toBe(1);
    expect(flags.calls.get(PERCENT)).toBe(1);
  });

  it('caches per cache key', async () => {
    const { flags, resolver } = setup();
    await resolver.resolve(migration, ctx, 'user-1');
    expect(isPromise(resolver.resolve(migration, { targetingKey: 'user-2' }, 'user-2'))).toBe(true);
    expect(flags.calls.get(STAGE)).toBe(2);
  });

  it('dedupes concurrent misses for one cache key into one evaluation', async () => {
    const { flags, resolver } = setup();
    const a = resolver.resolve(migration, ctx, 'user-1');
    const b = resolver.resolve(migration, ctx, 'user-1');
    expect(isPromise(a)).toBe(true);
    expect(b).toBe(a);
    expect(await a).toBe(await b);
    expect(flags.calls.get(STAGE)).toBe(1);
    expect(flags.calls.get(PERCENT)).toBe(1);
  });

  it('ttl: a decision expires after ttlMs and is evaluated again', async () => {
    const flags = createMemoryFlags({ [STAGE]: 'shadow', [PERCENT]: 0 });
    // No onConfigurationChanged: only the TTL can bring the change in.
    const resolver = resolverFor({ resolve: flags.resolve }, { ttlMs: 20 });
    expect(await resolver.resolve(migration, ctx, 'k')).toEqual({ stage: 'shadow', percent: 0 });
    flags.set(STAGE, 'live');
    expect(resolver.resolve(migration, ctx, 'k')).toEqual({ stage: 'shadow', percent: 0 });
    await sleep(60);
    const next = resolver.resolve(migration, ctx, 'k');
    expect(isPromise(next)).toBe(true);
    expect(await next).toEqual({ stage: 'live', percent: 0 });
  });

  it('ttl: a decision shared by every entity (no cache key) expires after ttlMs too', async () => {
    const flags = createMemoryFlags({ [STAGE]: 'shadow', [PERCENT]: 0 });
    const resolver = resolverFor({ resolve: flags.resolve }, { ttlMs: 20 });
    expect(await resolver.resolve(migration, {}, '')).toEqual({ stage: 'shadow', percent: 0 });
    flags.set(STAGE, 'live');
    expect(resolver.resolve(migration, {}, '')).toEqual({ stage: 'shadow', percent: 0 });
    await sleep(60);
    const next = resolver.resolve(migration, {}, '');
    expect(isPromise(next)).toBe(true);
    expect(await next).toEqual({ stage: 'live', percent: 0 });
  });

  it('a shared fallback decision expires within 250 ms, like one per cache key', async () => {
    const { flags, resolver } = setup(undefined, { ttlMs: 10000 });
    flags.fail(STAGE, 'error');
    await resolver.resolve(migration, {}, '');
    expect(isPromise(resolver.resolve(migration, {}, ''))).toBe(false);
    flags.restore(STAGE);
    await sleep(300);
    expect(isPromise(resolver.resolve(migration, {}, ''))).toBe(true);
  });

  it('ttlMs 0 evaluates on every call', async () => {
    const { flags, resolver } = setup(undefined, { ttlMs: 0 });
    await resolver.resolve(migration, ctx, 'k');
    const again = resolver.resolve(migration, ctx, 'k');
    expect(isPromise(again)).toBe(true);
    await again;
    expect(flags.calls.get(STAGE)).toBe(2);
  });

  it('configuration change: clears the cache at once, so a kill reaches the data path', async () => {
    const { flags, resolver } = setup({ [STAGE]: 'live', [PERCENT]: 50 });
    await resolver.resolve(migration, ctx, 'k');
    flags.set(STAGE, 'dualwrite');
    const next = resolver.resolve(migration, ctx, 'k');
    expect(isPromise(next)).toBe(true);
    expect(await next).toEqual({ stage: 'dualwrite', percent: 50 });
  });

  it('configuration change during an evaluation: its result is returned but not cached', async () => {
    let listener: (() => void) | undefined;
    const pending: Array<(value: unknown) => void> = [];
    const source: FlagSource = {
      resolve: (key) => (key === STAGE ? new Promise((resolve) => pending.push(resolve)) : Promise.resolve(0)),
      onConfigurationChanged: (l) => {
        listener = l;
        return () => {};
      },
    };
    const resolver = resolverFor(source, { timeoutMs: 1000 });
    const first = resolver.resolve(migration, ctx, 'k');
    listener?.();
    pending.shift()?.('live');
    expect(await first).toEqual({ stage: 'live', percent: 0 });
    const second = resolver.resolve(migration, ctx, 'k');
    expect(isPromise(second)).toBe(true);
    pending.shift()?.('off');
    expect(await second).toEqual({ stage: 'off', percent: 0 });
  });

  it('clear(): drops cached decisions', async () => {
    const { resolver } = setup();
    await resolver.resolve(migration, ctx, 'k');
    resolver.clear();
    expect(isPromise(resolver.resolve(migration, ctx, 'k'))).toBe(true);
  });

  it('close(): unsubscribes from configuration changes', async () => {
    const { flags, resolver } = setup({ [STAGE]: 'live', [PERCENT]: 50 });
    await resolver.resolve(migration, ctx, 'k');
    resolver.close();
    resolver.close();
    flags.set(STAGE, 'off');
    expect(resolver.resolve(migration, ctx, 'k')).toEqual({ stage: 'live', percent: 50 });
  });

  it('a source whose subscription throws still resolves', async () => {
    const flags = createMemoryFlags({ [STAGE]: 'live', [PERCENT]: 1 });
    const resolver = resolverFor({
      resolve: flags.resolve,
      onConfigurationChanged: () => {
        throw new Error('no events here');
      },
    });
    expect(await resolver.resolve(migration, ctx, 'k')).toEqual({ stage: 'live', percent: 1 });
  });
});

describe('when the flag system fails', () => {
  it.each([
    ['error', 'error'],
    ['hang', 'timeout'],
  ] as const)('%s with no last known good: uses the declared default and counts reason %s', async (failure, reason) => {
    const { flags, metrics, resolver } = setup();
    flags.fail(STAGE, failure);
    flags.fail(PERCENT, failure);
    expect(await resolver.resolve(migration, ctx, 'k')).toEqual({ stage: 'dualwrite', percent: 0 });
    // The default stage is not live, so the percent flag's failure decides nothing and isn't counted.
    expect(metrics.fallbacks).toEqual([
      { type: 'flag-fallback', migration: 'users-rename', flagKey: STAGE, reason, source: 'default' },
    ]);
  });

  it('a failing percent flag is counted only while the stage is live', async () => {
    const { flags, metrics, resolver } = setup({ [STAGE]: 'shadow', [PERCENT]: 10 });
    flags.fail(PERCENT, 'error');
    expect(await resolver.resolve(migration, ctx, 'a')).toEqual({ stage: 'shadow', percent: 0 });
    expect(metrics.fallbacks).toEqual([]);
    flags.set(STAGE, 'live');
    expect(await resolver.resolve(migration, ctx, 'b')).toEqual({ stage: 'live', percent: 0 });
    expect(metrics.fallbacks).toMatchObject([{ flagKey: PERCENT, reason: 'error', source: 'default' }]);
  });

  it.each([
    ['error', 'error'],
    ['hang', 'timeout'],
  ] as const)('%s after a good value: keeps the last known good and counts reason %s', async (failure, reason) => {
    const { flags, metrics, resolver } = setup({ [STAGE]: 'live', [PERCENT]: 40 });
    await resolver.resolve(migration, ctx, 'k');
    flags.fail(STAGE, failure);
    flags.fail(PERCENT, failure);
    resolver.clear();
    expect(await resolver.resolve(migration, ctx, 'k')).toEqual({ stage: 'live', percent: 40 });
    expect(metrics.fallbacks.map((e) => [e.flagKey, e.reason, e.source])).toEqual([
      [STAGE, reason, 'last-known-good'],
      [PERCENT, reason, 'last-known-good'],
    ]);
  });

  it.each([
    ['a string that is no stage', STAGE, { value: 'turbo' }],
    ['a number for the stage', STAGE, { value: 3 }],
    ['a percent of 150', PERCENT, { value: 150 }],
    ['a negative percent', PERCENT, { value: -1 }],
    ['a percent given as the string "50"', PERCENT, { value: '50' }],
    ['a NaN percent', PERCENT, { value: Number.NaN }],
  ])('wrong type (%s): falls back and counts reason type', async (_name, flagKey, failure) => {
    const { flags, metrics, resolver } = setup({ [STAGE]: 'live', [PERCENT]: 30 });
    flags.fail(flagKey, failure);
    const decision = await resolver.resolve(migration, ctx, 'first');
    expect(decision).toEqual(flagKey === STAGE ? { stage: 'dualwrite', percent: 30 } : { stage: 'live', percent: 0 });
    expect(metrics.fallbacks).toEqual([
      { type: 'flag-fallback', migration: 'users-rename', flagKey, reason: 'type', source: 'default' },
    ]);
    flags.restore(flagKey);
    await resolver.resolve(migration, ctx, 'second');
    flags.fail(flagKey, failure);
    expect(await resolver.resolve(migration, ctx, 'third')).toEqual({ stage: 'live', percent: 30 });
    expect(metrics.fallbacks[1]).toMatchObject({ flagKey, reason: 'type', source: 'last-known-good' });
  });

  it('a FlagEvaluationError with reason "type" counts as a type fallback', async () => {
    const metrics = recorder();
    const resolver = resolverFor(
      {
        resolve: async (key) => {
          if (key === STAGE) throw new FlagEvaluationError('TYPE_MISMATCH', { reason: 'type' });
          return 5;
        },
      },
      { metrics },
    );
    expect(await resolver.resolve(migration, ctx, 'k')).toEqual({ stage: 'dualwrite', percent: 5 });
    expect(metrics.fallbacks).toMatchObject([{ flagKey: STAGE, reason: 'type' }]);
  });

  it('a synchronous throw from the source counts as an error', async () => {
    const metrics = recorder();
    const resolver = resolverFor(
      {
        resolve: () => {
          throw new Error('provider exploded');
        },
      },
      { metrics },
    );
    expect(await resolver.resolve(migration, ctx, 'k')).toEqual({ stage: 'dualwrite', percent: 0 });
    expect(metrics.fallbacks.map((e) => [e.flagKey, e.reason])).toEqual([[STAGE, 'error']]);
  });

  it('last known good is kept per flag key, across cache keys', async () => {
    const { flags, resolver } = setup({ [STAGE]: 'live', [PERCENT]: 70 });
    await resolver.resolve(migration, ctx, 'user-1');
    flags.fail(STAGE, 'error');
    expect(await resolver.resolve(migration, { targetingKey: 'user-2' }, 'user-2')).toEqual({
      stage: 'live',
      percent: 70,
    });
  });

  it('time-out: a hanging flag settles after timeoutMs', async () => {
    vi.useFakeTimers();
    const { flags, metrics, resolver } = setup(undefined, { timeoutMs: 50 });
    flags.fail(STAGE, 'hang');
    let settled = false;
    const decision = Promise.resolve(resolver.resolve(migration, ctx, 'k')).then((d) => {
      settled = true;
      return d;
    });
    await vi.advanceTimersByTimeAsync(49);
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(settled).toBe(true);
    expect(await decision).toEqual({ stage: 'dualwrite', percent: 25 });
    expect(metrics.fallbacks).toMatchObject([{ flagKey: STAGE, reason: 'timeout', source: 'default' }]);
  });

  it('a fallback decision is cached briefly: a dead provider does not add the time-out to every call', async () => {
    const { flags, metrics, resolver } = setup(undefined, { ttlMs: 10000 });
    flags.fail(STAGE, 'hang');
    await resolver.resolve(migration, ctx, 'k');
    expect(isPromise(resolver.resolve(migration, ctx, 'k'))).toBe(false);
    expect(metrics.fallbacks).toHaveLength(1);
  });

  it('a fallback decision expires within 250 ms, so recovery is quick, while good ones keep their TTL', async () => {
    const { flags, resolver } = setup(undefined, { ttlMs: 10000 });
    await resolver.resolve(migration, ctx, 'good');
    flags.fail(STAGE, 'error');
    await resolver.resolve(migration, ctx, 'bad');
    flags.restore(STAGE);
    await sleep(300);
    expect(isPromise(resolver.resolve(migration, ctx, 'bad'))).toBe(true);
    expect(isPromise(resolver.resolve(migration, ctx, 'good'))).toBe(false);
  });

  it('a late result updates the last known good and the cached decision', async () => {
    const { flags, resolver } = setup({ [STAGE]: 'shadow', [PERCENT]: 10 });
    flags.fail(STAGE, 'hang');
    expect(await resolver.resolve(migration, ctx, 'k')).toEqual({ stage: 'dualwrite', percent: 10 });
    flags.restore(STAGE);
    await sleep(0);
    expect(resolver.resolve(migration, ctx, 'k')).toEqual({ stage: 'shadow', percent: 10 });
    flags.fail(STAGE, 'error');
    expect(await resolver.resolve(migration, ctx, 'other')).toEqual({ stage: 'shadow', percent: 10 });
  });

  it('a late result updates a decision shared by every entity (no cache key) too', async () => {
    const { flags, resolver } = setup({ [STAGE]: 'shadow', [PERCENT]: 10 });
    flags.fail(STAGE, 'hang');
    expect(await resolver.resolve(migration, {}, '')).toEqual({ stage: 'dualwrite', percent: 10 });
    flags.restore(STAGE);
    await sleep(0);
    expect(resolver.resolve(migration, {}, '')).toEqual({ stage: 'shadow', percent: 10 });
  });

  it('decisions of many segments stay bounded by cacheSize, past the shared ones', async () => {
    const flags = createMemoryFlags({ [STAGE]: 'shadow', [PERCENT]: 10 });
    const resolver = resolverFor({ resolve: flags.resolve }, { cacheSize: 10, ttlMs: 600_000 });
    const segment = (n: number): MigrationFlags => ({ ...migration, segment: `request=${n}` });
    for (let n = 0; n < MAX_SHARED + 50; n++) await resolver.resolve(segment(n), {}, '');
    // The first segments fill the shared map and are kept; the last ones share the LRU's 10 places.
    expect(isPromise(resolver.resolve(segment(0), {}, ''))).toBe(false);
    expect(isPromise(resolver.resolve(segment(MAX_SHARED + 49), {}, ''))).toBe(false);
    expect(isPromise(resolver.resolve(segment(MAX_SHARED), {}, ''))).toBe(true);
  });

  it('a late result older than a recorded one does not replace the last known good', async () => {
    // A source without change events: a slow answer from before the stage moved lands
    // after a newer evaluation has recorded the new stage.
    let answer: (flagKey: string) => unknown = (flagKey) => (flagKey === STAGE ? 'shadow' : 10);
    const metrics = recorder();
    const resolver = resolverFor({ resolve: (flagKey) => answer(flagKey) }, { metrics, timeoutMs: 20, ttlMs: 0 });
    let landOld: (stage: string) => void = () => {};
    answer = (flagKey) => (flagKey === STAGE ? new Promise((resolve) => (landOld = resolve)) : 10);
    expect(await resolver.resolve(migration, ctx, 'k')).toEqual({ stage: 'dualwrite', percent: 10 });
    answer = (flagKey) => (flagKey === STAGE ? 'live' : 10);
    expect(await resolver.resolve(migration, ctx, 'k')).toEqual({ stage: 'live', percent: 10 });
    landOld('off');
    await sleep(0);
    answer = () => {
      throw new Error('provider down');
    };
    expect(await resolver.resolve(migration, ctx, 'k')).toEqual({ stage: 'live', percent: 10 });
    expect(metrics.fallbacks.at(-2)).toMatchObject({ flagKey: STAGE, reason: 'error', source: 'last-known-good' });
  });

  describe('per-entity evaluation', () => {
    const perEntity: MigrationFlags = { ...migration, defaultStage: 'off', evaluation: 'per-entity' };
    const at = (targetingKey: string) => ({ targetingKey });

    /** A provider that picks each entity's stage from `stages` (others `off`), until it goes down. */
    function provider(stages: Record<string, string>, options: Partial<StageResolverOptions> = {}) {
      const state = { down: false };
      const metrics = recorder();
      const resolver = resolverFor(
        {
          resolve: (flagKey, _type, context) => {
            if (state.down) throw new Error('provider down');
            return flagKey === STAGE ? (stages[String(context.targetingKey)] ?? 'off') : 100;
          },
        },
        { metrics, ...options },
      );
      const resolve = (key: string) => resolver.resolve(perEntity, at(key), key);
      return { state, metrics, resolver, resolve };
    }

    it('keeps the last known good stage of each entity, not of the entity evaluated last', async () => {
      const { state, metrics, resolver, resolve } = provider({ 'user-1': 'dualwrite' });
      expect(await resolve('user-1')).toEqual({ stage: 'dualwrite', percent: 100 });
      expect(await resolve('user-2')).toEqual({ stage: 'off', percent: 100 });
      state.down = true;
      resolver.clear();
      expect(await resolve('user-1')).toEqual({ stage: 'dualwrite', percent: 100 });
      expect(await resolve('user-2')).toEqual({ stage: 'off', percent: 100 });
      expect(metrics.fallbacks.map((e) => [e.flagKey, e.source])).toEqual([
        [STAGE, 'last-known-good'],
        [STAGE, 'last-known-good'],
      ]);
    });

    it('an entity never seen, once the migration has begun, gets dualwrite: writes both sides, reads old', async () => {
      const { state, metrics, resolver, resolve } = provider({ 'user-1': 'dualwrite', 'user-2': 'live' });
      await resolve('user-1');
      await resolve('user-2');
      await resolve('user-3');
      state.down = true;
      resolver.clear();
      expect(await resolve('user-9')).toEqual({ stage: 'dualwrite', percent: 100 });
      // The percentage matters only in live: its failure is not counted here.
      expect(metrics.fallbacks).toMatchObject([{ flagKey: STAGE, source: 'last-known-good' }]);
    });

    it('an entity never seen gets dualwrite, not complete, while some entity is not complete', async () => {
      const { state, resolver, resolve } = provider({ 'user-1': 'complete', 'user-2': 'shadow' });
      await resolve('user-1');
      await resolve('user-2');
      state.down = true;
      resolver.clear();
      expect(await resolve('user-9')).toMatchObject({ stage: 'dualwrite' });
    });

    it('an entity never seen gets complete when every entity seen is complete', async () => {
      const { state, resolver, resolve } = provider({ 'user-1': 'complete', 'user-2': 'complete' });
      await resolve('user-1');
      await resolve('user-2');
      state.down = true;
      resolver.clear();
      expect(await resolve('user-9')).toMatchObject({ stage: 'complete' });
    });

    it('before the migration has begun, an entity never seen gets the declared default', async () => {
      const { state, metrics, resolver, resolve } = provider({});
      await resolve('user-1');
      state.down = true;
      resolver.clear();
      expect(await resolve('user-9')).toMatchObject({ stage: 'off' });
      expect(metrics.fallbacks).toMatchObject([{ flagKey: STAGE, source: 'default' }]);
    });

    it('a source whose values do not vary by targeting key is evaluated once for every entity', async () => {
      const flags = createMemoryFlags({ [STAGE]: 'live', [PERCENT]: 30 });
      const resolver = resolverFor(flags, { cacheSize: 2 });
      const decisions = await Promise.all(
        Array.from({ length: 50 }, (_, i) => resolver.resolve(perEntity, at(`user-${i}`), `user-${i}`)),
      );
      expect(new Set(decisions).size).toBe(1);
      expect(decisions[0]).toEqual({ stage: 'live', percent: 30 });
      expect(flags.calls.get(STAGE)).toBe(1);
      expect(flags.calls.get(PERCENT)).toBe(1);
    });

    it('entities are evaluated one by one when either flag may vary by targeting key, or the source cannot say', async () => {
      for (const varies of [
        (flagKey: string) => flagKey === PERCENT,
        (): boolean => {
          throw new Error('unknown');
        },
      ]) {
        const seen: unknown[] = [];
        const resolver = resolverFor({
          resolve: (flagKey, _type, context) => {
            if (flagKey === STAGE) seen.push(context.targetingKey);
            return flagKey === STAGE ? 'shadow' : 100;
          },
          variesByTargetingKey: varies,
        });
        await resolver.resolve(perEntity, at('user-1'), 'user-1');
        await resolver.resolve(perEntity, at('user-2'), 'user-2');
        expect(seen).toEqual(['user-1', 'user-2']);
      }
    });

    it('a shared evaluation is not cached once the source says the flags now vary by entity', async () => {
      const state = { varies: false };
      const seen: unknown[] = [];
      const resolver = resolverFor({
        resolve: (flagKey, _type, context) => {
          if (flagKey === STAGE) {
            seen.push(context.targetingKey);
            // The first evaluation finds a rule on the flag, as an OpenFeature reason would say.
            if (seen.length === 1) state.varies = true;
          }
          return flagKey === STAGE ? 'shadow' : 100;
        },
        variesByTargetingKey: () => state.varies,
      });
      await resolver.resolve(perEntity, at('user-1'), 'user-1');
      // Static again: had user-1's value been cached for all, user-2 would be served it.
      state.varies = false;
      await resolver.resolve(perEntity, at('user-2'), 'user-2');
      expect(seen).toEqual(['user-1', 'user-2']);
    });

    it('shared evaluations fall back to the flag last known good when the provider goes down', async () => {
      const flags = createMemoryFlags({ [STAGE]: 'dualwrite', [PERCENT]: 0 });
      const metrics = recorder();
      const resolver = resolverFor(flags, { metrics, timeoutMs: 10 });
      await resolver.resolve(perEntity, at('user-1'), 'user-1');
      flags.fail(STAGE, 'error');
      resolver.clear();
      expect(await resolver.resolve(perEntity, at('user-9'), 'user-9')).toEqual({ stage: 'dualwrite', percent: 0 });
      expect(metrics.fallbacks).toMatchObject([{ flagKey: STAGE, source: 'last-known-good' }]);
    });

    it('an entity that fell out of the bounded memory is treated as never seen, not as the entity evaluated last', async () => {
      const { state, resolver, resolve } = provider({ 'user-1': 'shadow', 'user-2': 'dualwrite' }, { cacheSize: 2 });
      await resolve('user-1');
      await resolve('user-2');
      await resolve('user-3'); // off; evicts user-1
      state.down = true;
      resolver.clear();
      expect(await resolve('user-1')).toMatchObject({ stage: 'dualwrite' });
    });
  });

  it('a throwing metrics sink never reaches the data path', async () => {
    const flags = createMemoryFlags({ [PERCENT]: 5 });
    const resolver = resolverFor(flags, {
      metrics: {
        record() {
          throw new Error('exporter down');
        },
      },
    });
    expect(await resolver.resolve(migration, ctx, 'k')).toEqual({ stage: 'dualwrite', percent: 5 });
  });
});
