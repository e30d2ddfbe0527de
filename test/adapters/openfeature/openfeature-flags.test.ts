import { randomUUID } from 'node:crypto';
import {
  type EvaluationContext,
  InMemoryProvider,
  OpenFeature,
  type Provider,
  type ResolutionDetails,
} from '@openfeature/server-sdk';
import { afterAll, describe, expect, it, vi } from 'vitest';
import {
  createOpenFeatureFlags,
  type OpenFeatureClientLike,
  OpenFeatureEvaluationError,
  toEvaluationContext,
} from '../../../adapters/openfeature/index.js';
import { createStageResolver, type MigrationFlags } from '../../../src/flags/stage-resolver.js';
import { ConfigurationError } from '../../../src/kernel/errors.js';
import type { FlagFallbackEvent, MetricsSink } from '../../../src/metrics/events.js';

const STAGE = 'orders-split.stage';
const PERCENT = 'orders-split.read-percent';
const migration: MigrationFlags = {
  migration: 'orders-split',
  stageFlagKey: STAGE,
  percentFlagKey: PERCENT,
  defaultStage: 'dualwrite',
  defaultPercent: 0,
};
const ctx = { targetingKey: 'order-1' };

type FlagConfiguration = ConstructorParameters<typeof InMemoryProvider>[0];

function staticFlag(value: string | number) {
  return { variants: { only: value }, defaultVariant: 'only', disabled: false };
}

async function withProvider(provider: Provider): Promise<string> {
  const domain = `flagshift-test-${randomUUID()}`;
  await OpenFeature.setProviderAndWait(domain, provider);
  return domain;
}

function recorder(): MetricsSink & { readonly fallbacks: FlagFallbackEvent[] } {
  const fallbacks: FlagFallbackEvent[] = [];
  return {
    fallbacks,
    record(event) {
      if (event.type === 'flag-fallback') fallbacks.push(event);
    },
  };
}

afterAll(async () => {
  await OpenFeature.close();
});

describe('openfeature flags', () => {
  it('resolves string and number flags through a real provider', async () => {
    const config: FlagConfiguration = { [STAGE]: staticFlag('shadow'), [PERCENT]: staticFlag(12.5) };
    const flags = createOpenFeatureFlags({ domain: await withProvider(new InMemoryProvider(config)) });
    expect(await flags.resolve(STAGE, 'string', ctx)).toBe('shadow');
    expect(await flags.resolve(PERCENT, 'number', ctx)).toBe(12.5);
    const resolver = createStageResolver({ flags });
    expect(await resolver.resolve(migration, ctx, 'order-1')).toEqual({ stage: 'shadow', percent: 12.5 });
    resolver.close();
  });

  it('passes the targeting key and attributes to the provider', async () => {
    const contextEvaluator = vi.fn((context: EvaluationContext) =>
      context.targetingKey === 'vip' && context['tier'] === 'gold' ? 'on' : 'off',
    );
    const provider = new InMemoryProvider({
      [STAGE]: { variants: { on: 'live', off: 'off' }, defaultVariant: 'off', disabled: false, contextEvaluator },
    });
    const flags = createOpenFeatureFlags({ domain: await withProvider(provider) });
    expect(await flags.resolve(STAGE, 'string', { targetingKey: 'vip', tier: 'gold' })).toBe('live');
    expect(await flags.resolve(STAGE, 'string', { targetingKey: 'someone', tier: 'gold' })).toBe('off');
  });

  it('uses the client it is given', async () => {
    const domain = await withProvider(new InMemoryProvider({ [STAGE]: staticFlag('complete') }));
    const flags = createOpenFeatureFlags({ client: OpenFeature.getClient(domain) });
    expect(await flags.resolve(STAGE, 'string', ctx)).toBe('complete');
  });

  it('configuration change: fires the listener and the resolver serves the new stage', async () => {
    const provider = new InMemoryProvider({ [STAGE]: staticFlag('live'), [PERCENT]: staticFlag(100) });
    const flags = createOpenFeatureFlags({ domain: await withProvider(provider) });
    const resolver = createStageResolver({ flags, ttlMs: 60_000 });
    const listener = vi.fn();
    flags.onConfigurationChanged?.(listener);
    expect(await resolver.resolve(migration, ctx, 'order-1')).toEqual({ stage: 'live', percent: 100 });

    provider.putConfiguration({ [STAGE]: staticFlag('dualwrite'), [PERCENT]: staticFlag(100) });
    await vi.waitFor(() => expect(listener).toHaveBeenCalled());
    expect(await resolver.resolve(migration, ctx, 'order-1')).toEqual({ stage: 'dualwrite', percent: 100 });
    resolver.close();
  });

  it('per-entity: flags the provider reports STATIC are evaluated once for every entity, targeted ones per entity', async () => {
    const perEntity: MigrationFlags = { ...migration, evaluation: 'per-entity' };
    const contextEvaluator = vi.fn((context: EvaluationContext) => (context.targetingKey === 'vip' ? 'on' : 'off'));
    const provider = new InMemoryProvider({ [STAGE]: staticFlag('shadow'), [PERCENT]: staticFlag(100) });
    const flags = createOpenFeatureFlags({ domain: await withProvider(provider) });
    expect(flags.variesByTargetingKey?.(STAGE)).toBe(true);
    const resolver = createStageResolver({ flags, ttlMs: 60_000 });
    expect(await resolver.resolve(perEntity, { targetingKey: 'a' }, 'a')).toEqual({ stage: 'shadow', percent: 100 });
    expect(flags.variesByTargetingKey?.(STAGE)).toBe(false);
    // The first entity was evaluated on its own, before the reasons were known; from the
    // next one on, one shared evaluation serves every entity from the cache.
    expect(await resolver.resolve(perEntity, { targetingKey: 'b' }, 'b')).toEqual({ stage: 'shadow', percent: 100 });
    const shared = resolver.resolve(perEntity, { targetingKey: 'c' }, 'c');
    expect(shared).not.toBeInstanceOf(Promise);
    expect(shared).toEqual({ stage: 'shadow', percent: 100 });

    // A rule added to the stage flag: the reasons are forgotten with the change, and
    // entities are evaluated one by one again.
    flags.onConfigurationChanged?.(() => resolver.clear());
    provider.putConfiguration({
      [STAGE]: { variants: { on: 'live', off: 'off' }, defaultVariant: 'off', disabled: false, contextEvaluator },
      [PERCENT]: staticFlag(100),
    });
    await vi.waitFor(() => expect(flags.variesByTargetingKey?.(STAGE)).toBe(true));
    expect(await resolver.resolve(perEntity, { targetingKey: 'vip' }, 'vip')).toMatchObject({ stage: 'live' });
    expect(await resolver.resolve(perEntity, { targetingKey: 'b' }, 'b')).toMatchObject({ stage: 'off' });
    resolver.close();
  });

  it('unsubscribing removes only its own handler', async () => {
    const provider = new InMemoryProvider({ [STAGE]: staticFlag('live') });
    const flags = createOpenFeatureFlags({ domain: await withProvider(provider) });
    const removed = vi.fn();
    const kept = vi.fn();
    const unsubscribe = flags.onConfigurationChanged?.(removed);
    flags.onConfigurationChanged?.(kept);
    unsubscribe?.();
    provider.putConfiguration({ [STAGE]: staticFlag('off') });
    await vi.waitFor(() => expect(kept).toHaveBeenCalled());
    expect(removed).not.toHaveBeenCalled();
  });

  it.each([
    ['a number variant for the stage flag', STAGE, 7],
    ['a string variant for the percent flag', PERCENT, '50'],
  ])('TYPE_MISMATCH (%s) counts a type fallback', async (_name, flagKey, value) => {
    // Live, so the percent flag decides something and its failure is counted.
    const config: FlagConfiguration = {
      [STAGE]: staticFlag('live'),
      [PERCENT]: staticFlag(20),
      [flagKey]: staticFlag(value),
    };
    const flags = createOpenFeatureFlags({ domain: await withProvider(new InMemoryProvider(config)) });
    await expect(flags.resolve(flagKey, flagKey === STAGE ? 'string' : 'number', ctx)).rejects.toMatchObject({
      errorCode: 'TYPE_MISMATCH',
      code: 'flag-evaluation',
      reason: 'type',
    });
    const metrics = recorder();
    const resolver = createStageResolver({ flags, metrics });
    await resolver.resolve(migration, ctx, 'order-1');
    expect(metrics.fallbacks).toEqual([
      { type: 'flag-fallback', migration: 'orders-split', flagKey, reason: 'type', source: 'default' },
    ]);
    resolver.close();
  });

  it('a string that names no stage counts a type fallback', async () => {
    const config: FlagConfiguration = { [STAGE]: staticFlag('yolo'), [PERCENT]: staticFlag(20) };
    const flags = createOpenFeatureFlags({ domain: await withProvider(new InMemoryProvider(config)) });
    const metrics = recorder();
    const resolver = createStageResolver({ flags, metrics });
    expect(await resolver.resolve(migration, ctx, 'order-1')).toEqual({ stage: 'dualwrite', percent: 20 });
    expect(metrics.fallbacks).toMatchObject([{ flagKey: STAGE, reason: 'type' }]);
    resolver.close();
  });

  it('a provider whose resolve methods throw counts an error fallback', async () => {
    const fail = (): Promise<ResolutionDetails<never>> => {
      throw new Error('provider exploded');
    };
    const provider: Provider = {
      metadata: { name: 'exploding' },
      runsOn: 'server',
      resolveBooleanEvaluation: fail,
      resolveStringEvaluation: fail,
      resolveNumberEvaluation: fail,
      resolveObjectEvaluation: fail,
    };
    const flags = createOpenFeatureFlags({ domain: await withProvider(provider) });
    await expect(flags.resolve(STAGE, 'string', ctx)).rejects.toBeInstanceOf(OpenFeatureEvaluationError);
    const metrics = recorder();
    const resolver = createStageResolver({ flags, metrics });
    expect(await resolver.resolve(migration, ctx, 'order-1')).toEqual({ stage: 'dualwrite', percent: 0 });
    // The default stage is not live: only the stage flag's failure decided anything.
    expect(metrics.fallbacks.map((e) => [e.flagKey, e.reason])).toEqual([[STAGE, 'error']]);
    resolver.close();
  });

  it('a missing flag counts an error fallback', async () => {
    const flags = createOpenFeatureFlags({ domain: await withProvider(new InMemoryProvider({})) });
    await expect(flags.resolve(STAGE, 'string', ctx)).rejects.toMatchObject({
      errorCode: 'FLAG_NOT_FOUND',
      code: 'flag-evaluation',
      reason: 'error',
    });
  });

  it('track: forwards to the client, drops a non-numeric value, and swallows errors', () => {
    const track = vi.fn();
    const client = {
      getStringDetails: vi.fn(),
      getNumberDetails: vi.fn(),
      addHandler: vi.fn(),
      removeHandler: vi.fn(),
      track,
    };
    const flags = createOpenFeatureFlags({ client: client as unknown as OpenFeatureClientLike });
    flags.track?.('flagshift.mismatch', { targetingKey: 'k', fn: () => 1 }, { migration: 'm', value: 'x', count: 2 });
    expect(track).toHaveBeenCalledWith('flagshift.mismatch', { targetingKey: 'k' }, { migration: 'm', count: 2 });
    track.mockImplementation(() => {
      throw new Error('tracking down');
    });
    expect(() => flags.track?.('e', {}, {})).not.toThrow();
    const { track: _omit, ...withoutTrack } = client;
    const old = createOpenFeatureFlags({ client: withoutTrack as unknown as OpenFeatureClientLike });
    expect(() => old.track?.('e', {}, {})).not.toThrow();
  });

  it('rejects bad options with a ConfigurationError', () => {
    expect(() => createOpenFeatureFlags({ domain: '' })).toThrow(ConfigurationError);
    expect(() => createOpenFeatureFlags({ domain: '' })).toThrow(/option "domain" .* got ""/);
    expect(() => createOpenFeatureFlags({ client: {} as OpenFeatureClientLike })).toThrow(/option "client"/);
    expect(() => createOpenFeatureFlags({ client: OpenFeature.getClient(), domain: 'x' })).toThrow(
      /exclude each other/,
    );
  });
});

describe('evaluation context mapping', () => {
  it('keeps the targeting key and JSON attributes and drops the rest', () => {
    const when = new Date(0);
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic['self'] = cyclic;
    const mapped = toEvaluationContext({
      targetingKey: 'user-1',
      plan: 'pro',
      seats: 3,
      admin: false,
      nothing: null,
      when,
      tags: ['a', 1, undefined, () => 0],
      nested: { ok: true, nan: Number.NaN, big: 10n },
      fn: () => 1,
      sym: Symbol('s'),
      undef: undefined,
      map: new Map([['a', 1]]),
      cyclic,
    });
    expect(mapped).toEqual({
      targetingKey: 'user-1',
      plan: 'pro',
      seats: 3,
      admin: false,
      nothing: null,
      when,
      tags: ['a', 1],
      nested: { ok: true },
      cyclic: { name: 'loop' },
    });
  });

  it('omits a targeting key that is not a string', () => {
    expect(toEvaluationContext({ targetingKey: 42 as unknown as string })).toEqual({});
  });
});
