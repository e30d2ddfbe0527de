/**
 * Part 3: routing alone, no database. A decision is what the repository does per entity
 * and migration before it touches the database: resolve the flags (cached, guarded) and
 * turn the decision into a route, bucketing the entity in `live`.
 */
import { InMemoryProvider, OpenFeature } from '@openfeature/server-sdk';
import { createMemoryFlags, createStageResolver, type FlagSource, type Stage } from 'flagshift';
import { createOpenFeatureFlags } from 'flagshift/openfeature';
import { usersMigration } from './fixture.js';
import { median, round } from './stats.js';

// The router is not part of the public API: it is loaded from beside the module that
// `flagshift` resolves to, so part 3 measures the same build as parts 1, 2 and 4 (the
// compiled package after `npm run build`), not the TypeScript source.
const routerModule = import.meta.resolve('flagshift').replace(/index\.(js|ts)$/, 'flags/router.$1');
const { MigrationRouter } = (await import(routerModule)) as typeof import('../src/flags/router.js');

/** One routing configuration's result. */
export interface RoutingResult {
  readonly name: string;
  readonly description: string;
  readonly stage: Stage;
  readonly percent: number;
  readonly decisions: number;
  /** Distinct entity keys cycled through. */
  readonly keys: number;
  /** Median over the measured batches. */
  readonly decisionsPerSecond: number;
  /** Each measured batch's rate: the spread. */
  readonly batchRates: readonly number[];
  /** Nanoseconds per decision at that median. */
  readonly nsPerDecision: number;
  /** Share of decisions routed to the new side (a check that routing did its work). */
  readonly servedNewShare: number;
}

/** Knobs of {@link runRouting}. */
export interface RoutingOptions {
  /** Decisions per batch on warm caches. */
  readonly decisions: number;
  /** Decisions per batch on cold caches (every decision evaluates the flags). */
  readonly coldDecisions: number;
  /** Measured batches per configuration (after one warm-up batch). */
  readonly batches: number;
  readonly log: (line: string) => void;
}

const DOMAIN = 'flagshift-bench';

interface Config {
  readonly name: string;
  readonly description: string;
  /** `per-key`: a provider whose stage may differ per targeting key (it doesn't say otherwise). */
  readonly source: 'memory' | 'openfeature' | 'per-key';
  readonly keys: number;
  readonly stage: Stage;
  readonly percent: number;
  readonly ttlMs: number;
  readonly evaluation: 'per-migration' | 'per-entity';
}

const PER_ENTITY_KEYS = [10_000, 100_000, 1_000_000] as const;

function perEntity(source: 'memory' | 'per-key', keys: number): Config {
  const label = keys >= 1_000_000 ? `${keys / 1_000_000}m` : `${keys / 1000}k`;
  return {
    name: `per-entity-${source === 'memory' ? '' : 'per-key-'}${label}`,
    description:
      source === 'memory'
        ? `per-entity evaluation, ${label} distinct keys, default cache size, memory flags (same value for every key), live at 50%`
        : `per-entity evaluation, ${label} distinct keys, default cache size, a provider whose stage may differ per key (one evaluation per key and TTL), live at 50%`,
    source,
    keys,
    stage: 'live',
    percent: 50,
    ttlMs: 60_000,
    evaluation: 'per-entity',
  };
}

const CONFIGS: readonly Config[] = [
  {
    name: 'warm',
    description: 'memory flags, cache warm, live at 50% (every entity bucketed)',
    source: 'memory',
    stage: 'live',
    percent: 50,
    ttlMs: 60_000,
    evaluation: 'per-migration',
    keys: 10_000,
  },
  {
    name: 'warm-off',
    description: 'memory flags, cache warm, off (no bucketing)',
    source: 'memory',
    stage: 'off',
    percent: 0,
    ttlMs: 60_000,
    evaluation: 'per-migration',
    keys: 10_000,
  },
  {
    name: 'cold',
    description: 'memory flags, no cache (ttl 0): both flags evaluated per decision, live at 50%',
    source: 'memory',
    stage: 'live',
    percent: 50,
    ttlMs: 0,
    evaluation: 'per-migration',
    keys: 10_000,
  },
  {
    name: 'openfeature-warm',
    description: 'OpenFeature InMemoryProvider, cache warm, live at 50%',
    source: 'openfeature',
    stage: 'live',
    percent: 50,
    ttlMs: 60_000,
    evaluation: 'per-migration',
    keys: 10_000,
  },
  {
    name: 'openfeature-cold',
    description: 'OpenFeature InMemoryProvider, no cache (ttl 0): both flags evaluated per decision, live at 50%',
    source: 'openfeature',
    stage: 'live',
    percent: 50,
    ttlMs: 0,
    evaluation: 'per-migration',
    keys: 10_000,
  },
  ...PER_ENTITY_KEYS.map((keys) => perEntity('memory', keys)),
  ...PER_ENTITY_KEYS.map((keys) => perEntity('per-key', keys)),
  {
    name: 'openfeature-per-entity-1m',
    description:
      'OpenFeature InMemoryProvider, per-entity evaluation, 1m distinct keys, default cache size, flags without rules (reason STATIC), live at 50%',
    source: 'openfeature',
    keys: 1_000_000,
    stage: 'live',
    percent: 50,
    ttlMs: 60_000,
    evaluation: 'per-entity',
  },
];

/** The decision cache size the resolver uses unless told otherwise. */
const DEFAULT_CACHE_SIZE = 10_000;

/** Runs part 3. */
export async function runRouting(options: RoutingOptions): Promise<RoutingResult[]> {
  const keys = Array.from({ length: Math.max(...CONFIGS.map((config) => config.keys)) }, (_, i) => String(i + 1));
  const results: RoutingResult[] = [];
  for (const config of CONFIGS) {
    const migration = usersMigration('bench_routing', config.evaluation);
    const flags = await flagSource(config, migration.stageFlagKey, migration.percentFlagKey);
    // The default cache size, as applications run it: more active keys than it holds is
    // what per-entity routing meets in production.
    const resolver = createStageResolver({ flags, ttlMs: config.ttlMs });
    const router = new MigrationRouter(migration, resolver, Object.freeze({}));
    // Every decision evaluates the provider: no cache, or more keys per provider key than it holds.
    const cold = config.ttlMs === 0 || (config.source === 'per-key' && config.keys > DEFAULT_CACHE_SIZE);
    const batch = cold ? options.coldDecisions : options.decisions;
    let servedNew = 0;
    let total = 0;
    let cursor = 0;
    // The repository's loop: a cached decision comes back synchronously and is not awaited.
    const runBatch = async (count: number): Promise<number> => {
      const started = performance.now();
      for (let i = 0; i < count; i++) {
        const key = keys[cursor]!;
        cursor = cursor + 1 === config.keys ? 0 : cursor + 1;
        const pending = router.decide(key, undefined, undefined);
        const decision = pending instanceof Promise ? await pending : pending;
        if (router.route(decision, key, undefined).serves === 'new') servedNew++;
      }
      return performance.now() - started;
    };
    // Warm-up: JIT, and every key's decision cached.
    await runBatch(cold ? batch : Math.max(batch, config.keys));
    servedNew = 0;
    const rates: number[] = [];
    for (let b = 0; b < options.batches; b++) {
      const ms = await runBatch(batch);
      total += batch;
      rates.push(batch / (ms / 1000));
    }
    resolver.close();
    const rate = median(rates);
    const result: RoutingResult = {
      name: config.name,
      description: config.description,
      stage: config.stage,
      percent: config.percent,
      decisions: total,
      keys: config.keys,
      batchRates: rates.map((r) => Math.round(r)),
      decisionsPerSecond: Math.round(rate),
      nsPerDecision: round(1e9 / rate),
      servedNewShare: round(servedNew / total),
    };
    options.log(
      `${config.name.padEnd(18)} ${Math.round(rate).toLocaleString('en-US').padStart(12)} decisions/s  (${result.nsPerDecision} ns each)`,
    );
    results.push(result);
  }
  await OpenFeature.clearProviders();
  return results;
}

async function flagSource(config: Config, stageKey: string, percentKey: string): Promise<FlagSource> {
  if (config.source === 'memory') return createMemoryFlags({ [stageKey]: config.stage, [percentKey]: config.percent });
  if (config.source === 'per-key') {
    // The same values, from a source that doesn't promise they are the same for every key
    // (as a provider with per-entity rules can't): each key is evaluated on its own.
    const memory = createMemoryFlags({ [stageKey]: config.stage, [percentKey]: config.percent });
    return { resolve: (flagKey, type, context) => memory.resolve(flagKey, type, context) };
  }
  const provider = new InMemoryProvider({
    [stageKey]: { variants: { current: config.stage }, defaultVariant: 'current', disabled: false },
    [percentKey]: { variants: { current: config.percent }, defaultVariant: 'current', disabled: false },
  });
  await OpenFeature.setProviderAndWait(DOMAIN, provider);
  return createOpenFeatureFlags({ domain: DOMAIN });
}
