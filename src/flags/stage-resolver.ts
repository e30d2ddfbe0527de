/**
 * The flag decision engine: turns a migration's stage and read-percentage flags into a
 * decision the data path can route by, and keeps every way a flag system fails (throws,
 * hangs, answers nonsense) away from the data path: the last known good decision, else the
 * migration's default stage (docs/STAGES.md, "When the flag system fails").
 */
import { z } from 'zod';
import { FlagEvaluationError, parseOptions } from '../kernel/index.js';
import type { FallbackReason, FlagFallbackEvent, MetricsSink } from '../metrics/index.js';
import { isStage, type Stage } from '../model/index.js';
import { DecisionCache } from './decision-cache.js';
import type { FlagContext, FlagSource, FlagValueType } from './flag-source.js';
import { type EntityGood, EntityMemory, type Known, remember } from './known-good.js';

/** The flags one migration is routed by. Built by `defineMigration`. */
export interface MigrationFlags {
  /** The migration's name, reported in fallback events. */
  readonly migration: string;
  /** A string flag naming one of the six stages. */
  readonly stageFlagKey: string;
  /** A number flag, 0 to 100 (fractions allowed): the share of entities read from new in `live`. */
  readonly percentFlagKey: string;
  /** The stage used when the stage flag fails and no value of it was ever good. */
  readonly defaultStage: Stage;
  /** The percentage used when the percent flag fails and no value of it was ever good. */
  readonly defaultPercent: number;
  /**
   * `per-entity` when each cache key is one entity that the provider may give a stage of
   * its own: the last known good stage is then kept per entity, not per flag.
   * @default 'per-migration'
   */
  readonly evaluation?: 'per-migration' | 'per-entity';
  /**
   * Which group of processes or tenants the evaluation context names (its attributes
   * other than `targetingKey`, such as `tenant` or `shard`), as one string; the router
   * derives it. Decisions and last known good values are kept per segment, so a stage a
   * rule gives one tenant (a canary at `live`) never reaches another, not even as the
   * fallback of a flag outage.
   * @default '' (one segment)
   */
  readonly segment?: string;
}

/** What the flags say for one migration and one evaluation context. */
export interface FlagDecision {
  readonly stage: Stage;
  readonly percent: number;
}

/** Options of {@link createStageResolver}. Validated when the resolver is created. */
export interface StageResolverOptions {
  /** Where flag values come from. */
  readonly flags: FlagSource;
  /**
   * Receives a `flag-fallback` event for every flag evaluation that fell back.
   * @default undefined (fallbacks are not reported)
   */
  readonly metrics?: MetricsSink;
  /**
   * How many decisions (one per stage flag and cache key) are kept, besides up to 256
   * that every entity of a migration shares (one per migration and segment).
   * @default 10000
   */
  readonly cacheSize?: number;
  /**
   * How long a decision is reused before the flags are evaluated again, in milliseconds.
   * `0` evaluates on every call (concurrent calls still share one evaluation).
   * @default 1000
   */
  readonly ttlMs?: number;
  /**
   * How long one flag evaluation may take before its fallback is used, in milliseconds.
   * @default 50
   */
  readonly timeoutMs?: number;
}

/** Resolves migration flags into decisions, cached and guarded. */
export interface StageResolver {
  /**
   * The decision for `flags` in `context`. `cacheKey` identifies the context (for
   * example the targeting key): calls with the same one share a cached decision.
   *
   * Never throws or rejects: a flag that errors, times out or has the wrong type is
   * replaced by its last known good value, else the migration's default. Returns
   * synchronously on a cache hit, without allocating.
   */
  resolve(flags: MigrationFlags, context: FlagContext, cacheKey: string): FlagDecision | Promise<FlagDecision>;
  /** Drops every cached decision, so the next call of each key evaluates the flags. */
  clear(): void;
  /** Unsubscribes from the flag source's configuration changes. The resolver keeps working, on its TTL alone. */
  close(): void;
}

const DEFAULT_CACHE_SIZE = 10000;
const DEFAULT_TTL_MS = 1000;
const DEFAULT_TIMEOUT_MS = 50;
// Long enough that a dead provider costs one time-out per key per quarter second rather
// than one per query; short enough that recovery reaches the data path quickly.
const FALLBACK_TTL_CAP_MS = 250;
// setTimeout fires at once for larger delays.
const MAX_TIMER_MS = 2147483647;

const optionsSchema = z.strictObject({
  flags: z.custom<FlagSource>((value) => typeof (value as Partial<FlagSource> | null)?.resolve === 'function'),
  metrics: z
    .custom<MetricsSink>((value) => typeof (value as Partial<MetricsSink> | null)?.record === 'function')
    .optional(),
  cacheSize: z.int().min(1).optional(),
  ttlMs: z.int().min(0).max(MAX_TIMER_MS).optional(),
  timeoutMs: z.int().min(1).max(MAX_TIMER_MS).optional(),
});

const EXPECTED: Readonly<Record<string, string>> = {
  flags: 'a flag source (an object with a resolve function)',
  metrics: 'a metrics sink (an object with a record function)',
  cacheSize: 'an integer of at least 1',
  ttlMs: `an integer from 0 to ${MAX_TIMER_MS}`,
  timeoutMs: `an integer from 1 to ${MAX_TIMER_MS}`,
};

function validate(options: unknown): z.infer<typeof optionsSchema> {
  return parseOptions('stage resolver', optionsSchema, options, EXPECTED);
}

// A failed evaluation. Module-private objects, so no value a source returns can pass for one.
interface Failure {
  readonly failed: FallbackReason;
}
const FAILED: Readonly<Record<FallbackReason, Failure>> = Object.freeze({
  error: Object.freeze({ failed: 'error' }),
  timeout: Object.freeze({ failed: 'timeout' }),
  type: Object.freeze({ failed: 'type' }),
});

function isFailure(outcome: unknown): outcome is Failure {
  return outcome === FAILED.error || outcome === FAILED.timeout || outcome === FAILED.type;
}

// A source may mark an error as a type mismatch (the OpenFeature adapter does, for
// TYPE_MISMATCH) so it is counted as 'type', like a wrong-typed value.
function failureOf(error: unknown): Failure {
  return error instanceof FlagEvaluationError && error.reason === 'type' ? FAILED.type : FAILED.error;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

function isPercent(value: unknown): value is number {
  return typeof value === 'number' && value >= 0 && value <= 100;
}

interface KeyPrefix {
  readonly stageFlagKey: string;
  readonly percentFlagKey: string;
  readonly segment: string | undefined;
  readonly prefix: string;
}
const keyPrefixes = new WeakMap<MigrationFlags, KeyPrefix>();

// The flag part of a cache key, built once per flags object: a key string built afresh on
// every call would be hashed afresh on every cache lookup, which costs more than the lookup.
// Checked against the object's current keys, so a caller that mutates it is still served right.
function cacheKeyPrefix(flags: MigrationFlags): string {
  const known = keyPrefixes.get(flags);
  if (
    known !== undefined &&
    known.stageFlagKey === flags.stageFlagKey &&
    known.percentFlagKey === flags.percentFlagKey &&
    known.segment === flags.segment
  )
    return known.prefix;
  // \u0001 marks a segment: no key of the one-segment form (`stage\0percent\0...`) can match.
  const prefix =
    flags.stageFlagKey +
    '\u0000' +
    flags.percentFlagKey +
    (flags.segment ? '\u0001' + flags.segment + '\u0000' : '\u0000');
  keyPrefixes.set(flags, {
    stageFlagKey: flags.stageFlagKey,
    percentFlagKey: flags.percentFlagKey,
    segment: flags.segment,
    prefix,
  });
  return prefix;
}

/** Where the last known good value of `flagKey` is kept: per flag key, and per segment when there is one. */
function knownKey(flags: MigrationFlags, flagKey: string): string {
  return flags.segment ? flagKey + '\u0001' + flags.segment : flagKey;
}

// One evaluation of a migration's two flags, kept so a result that arrives after its
// time-out can still correct the decision it left behind.
interface Evaluation {
  readonly flags: MigrationFlags;
  readonly key: string;
  /** Whether the decision is one entity's own (per-entity flags that vary by targeting key). */
  readonly entity: boolean;
  readonly generation: number;
  /** Taken when the evaluation began: orders its results against other evaluations'. */
  readonly sequence: number;
  stage: Stage;
  percent: number;
  stageFellBack: boolean;
  percentFellBack: boolean;
  decision: FlagDecision | undefined;
}

/**
 * Creates a stage resolver over a flag source.
 *
 * @param options - See {@link StageResolverOptions}.
 * @throws ConfigurationError when an option is invalid.
 *
 * @example
 * ```ts
 * import { createMemoryFlags } from './memory-flags.js';
 *
 * const flags = createMemoryFlags({ 'users-rename.stage': 'live', 'users-rename.read-percent': 10 });
 * const resolver = createStageResolver({ flags, ttlMs: 500 });
 * const migration = {
 *   migration: 'users-rename',
 *   stageFlagKey: 'users-rename.stage',
 *   percentFlagKey: 'users-rename.read-percent',
 *   defaultStage: 'dualwrite',
 *   defaultPercent: 0,
 * } as const;
 * const decision = await resolver.resolve(migration, { targetingKey: 'user-42' }, 'user-42');
 * // decision: { stage: 'live', percent: 10 }
 * resolver.close();
 * ```
 */
export function createStageResolver(options: StageResolverOptions): StageResolver {
  const valid = validate(options);
  const source = valid.flags;
  const metrics = valid.metrics;
  const ttlMs = valid.ttlMs ?? DEFAULT_TTL_MS;
  const timeoutMs = valid.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const fallbackTtlMs = Math.min(ttlMs, FALLBACK_TTL_CAP_MS);

  const cache = new DecisionCache<FlagDecision>(valid.cacheSize ?? DEFAULT_CACHE_SIZE);
  const inFlight = new Map<string, Promise<FlagDecision>>();
  // Per flag key (and segment) rather than per cache key: when the provider dies, an entity
  // never seen before should still get the stage the migration was last known to be in for
  // its tenant, not the default; never another tenant's stage.
  const lastStage = new Map<string, Known<Stage>>();
  const lastPercent = new Map<string, Known<number>>();
  // Numbers evaluations in the order they began. A result that lands after a newer
  // evaluation's result (a slow answer from before the stage moved) must not replace it.
  let sequence = 0;
  // Per-entity migrations: the last known good of each entity (what the provider chose for
  // it may differ from the entity evaluated last), bounded per stage flag like the decision
  // cache, so one migration's traffic never evicts another's memory.
  const entityMemories = new Map<string, EntityMemory>();

  function entityMemory(evaluation: Evaluation): EntityMemory | undefined {
    if (!evaluation.entity) return undefined;
    const flags = evaluation.flags;
    const key = knownKey(flags, flags.stageFlagKey);
    let memory = entityMemories.get(key);
    if (memory === undefined) {
      memory = new EntityMemory(valid.cacheSize ?? DEFAULT_CACHE_SIZE);
      entityMemories.set(key, memory);
    }
    return memory;
  }

  function entityGood(memory: EntityMemory, key: string): EntityGood {
    let good = memory.entities.get(key);
    if (good === undefined) {
      good = { stage: undefined, stageSequence: 0, percent: undefined, percentSequence: 0 };
      memory.entities.set(key, good);
    }
    return good;
  }

  function rememberStage(evaluation: Evaluation, stage: Stage): void {
    remember(lastStage, knownKey(evaluation.flags, evaluation.flags.stageFlagKey), stage, evaluation.sequence);
    const memory = entityMemory(evaluation);
    if (memory === undefined) return;
    const good = entityGood(memory, evaluation.key);
    if (good.stageSequence > evaluation.sequence) return;
    memory.count(good.stage, -1);
    good.stage = stage;
    good.stageSequence = evaluation.sequence;
    memory.count(stage, 1);
  }

  function rememberPercent(evaluation: Evaluation, percent: number): void {
    remember(lastPercent, knownKey(evaluation.flags, evaluation.flags.percentFlagKey), percent, evaluation.sequence);
    const memory = entityMemory(evaluation);
    if (memory === undefined) return;
    const good = entityGood(memory, evaluation.key);
    if (good.percentSequence > evaluation.sequence) return;
    good.percent = percent;
    good.percentSequence = evaluation.sequence;
  }

  // The last known good stage for an evaluation's key, else undefined (the default applies).
  function knownStage(evaluation: Evaluation): Stage | undefined {
    const memory = entityMemory(evaluation);
    if (memory === undefined) return lastStage.get(knownKey(evaluation.flags, evaluation.flags.stageFlagKey))?.value;
    return memory.entities.get(evaluation.key)?.stage ?? memory.unseen();
  }

  function knownPercent(evaluation: Evaluation): number | undefined {
    const own = entityMemory(evaluation)?.entities.get(evaluation.key)?.percent;
    return own ?? lastPercent.get(knownKey(evaluation.flags, evaluation.flags.percentFlagKey))?.value;
  }

  // Bumped on every invalidation. Results of evaluations begun before a change may be stale,
  // so they are returned to the callers that waited for them but neither cached nor remembered.
  let generation = 0;

  function invalidate(): void {
    generation++;
    cache.clear();
    inFlight.clear();
  }

  let unsubscribe: (() => void) | undefined;
  if (typeof source.onConfigurationChanged === 'function') {
    try {
      const result: unknown = source.onConfigurationChanged(invalidate);
      if (typeof result === 'function') unsubscribe = result as () => void;
    } catch {
      // Without change events the TTL alone bounds how long a decision stays stale.
    }
  }

  function report(migration: string, flagKey: string, reason: FallbackReason, from: FlagFallbackEvent['source']): void {
    if (metrics === undefined) return;
    try {
      metrics.record({ type: 'flag-fallback', migration, flagKey, reason, source: from });
    } catch {
      // Metrics never reach the data path.
    }
  }

  function guard(
    flagKey: string,
    type: FlagValueType,
    context: FlagContext,
    isValid: (value: unknown) => boolean,
    onLate: (value: unknown) => void,
  ): unknown {
    let raw: unknown;
    try {
      raw = source.resolve(flagKey, type, context);
      if (!isThenable(raw)) return isValid(raw) ? raw : FAILED.type;
    } catch (error) {
      return failureOf(error);
    }
    const pending = raw;
    return new Promise<unknown>((settle) => {
      let settled = false;
      const timer = setTimeout(() => {
        settled = true;
        settle(FAILED.timeout);
      }, timeoutMs);
      // A hung provider must not keep the process alive.
      timer.unref();
      Promise.resolve(pending).then(
        (value) => {
          clearTimeout(timer);
          const ok = isValid(value);
          if (!settled) {
            settled = true;
            settle(ok ? value : FAILED.type);
          } else if (ok) {
            onLate(value);
          }
        },
        (error: unknown) => {
          clearTimeout(timer);
          if (!settled) {
            settled = true;
            settle(failureOf(error));
          }
        },
      );
    });
  }

  function store(evaluation: Evaluation): FlagDecision {
    const decision: FlagDecision = Object.freeze({ stage: evaluation.stage, percent: evaluation.percent });
    evaluation.decision = decision;
    // A decision shared across entities is cached only while the source still says the
    // flags don't vary by entity: the evaluation itself may have told it otherwise (a
    // rule added to the flag), and one entity's value must not then serve them all.
    const shareable =
      evaluation.entity || evaluation.flags.evaluation !== 'per-entity' || !variesByEntity(evaluation.flags);
    if (ttlMs > 0 && evaluation.generation === generation && shareable) {
      const fellBack = evaluation.stageFellBack || evaluation.percentFellBack;
      // Keyed by the flags alone (no targeting key): the decision every entity of the
      // migration and segment reads, a handful per process.
      const shared = evaluation.key === cacheKeyPrefix(evaluation.flags);
      cache.set(evaluation.key, decision, fellBack ? fallbackTtlMs : ttlMs, shared);
    }
    return decision;
  }

  // A late result replaces the fallback in the cached decision, but only while that decision
  // is still the one cached: a newer evaluation or an invalidation wins.
  function lateStage(evaluation: Evaluation, value: unknown): void {
    if (evaluation.generation !== generation || !isStage(value)) return;
    rememberStage(evaluation, value);
    if (evaluation.decision === undefined || cache.peek(evaluation.key) !== evaluation.decision) return;
    evaluation.stage = value;
    evaluation.stageFellBack = false;
    store(evaluation);
  }

  function latePercent(evaluation: Evaluation, value: unknown): void {
    if (evaluation.generation !== generation || !isPercent(value)) return;
    rememberPercent(evaluation, value);
    if (evaluation.decision === undefined || cache.peek(evaluation.key) !== evaluation.decision) return;
    evaluation.percent = value;
    evaluation.percentFellBack = false;
    store(evaluation);
  }

  async function evaluate(
    flags: MigrationFlags,
    context: FlagContext,
    key: string,
    entity: boolean,
  ): Promise<FlagDecision> {
    const evaluation: Evaluation = {
      flags,
      key,
      entity,
      generation,
      sequence: ++sequence,
      stage: flags.defaultStage,
      percent: flags.defaultPercent,
      stageFellBack: true,
      percentFellBack: true,
      decision: undefined,
    };
    try {
      const [stageOutcome, percentOutcome] = await Promise.all([
        guard(flags.stageFlagKey, 'string', context, isStage, (value) => lateStage(evaluation, value)),
        guard(flags.percentFlagKey, 'number', context, isPercent, (value) => latePercent(evaluation, value)),
      ]);
      const current = evaluation.generation === generation;

      if (isFailure(stageOutcome)) {
        const known = knownStage(evaluation);
        if (known !== undefined) evaluation.stage = known;
        report(
          flags.migration,
          flags.stageFlagKey,
          stageOutcome.failed,
          known === undefined ? 'default' : 'last-known-good',
        );
      } else {
        evaluation.stage = stageOutcome as Stage;
        evaluation.stageFellBack = false;
        if (current) rememberStage(evaluation, evaluation.stage);
      }

      if (isFailure(percentOutcome)) {
        const known = knownPercent(evaluation);
        if (known !== undefined) evaluation.percent = known;
        // The percentage only matters in live: a percent flag that was never created
        // while a migration is in another stage is not an outage worth counting.
        if (evaluation.stage === 'live')
          report(
            flags.migration,
            flags.percentFlagKey,
            percentOutcome.failed,
            known === undefined ? 'default' : 'last-known-good',
          );
      } else {
        evaluation.percent = percentOutcome as number;
        evaluation.percentFellBack = false;
        if (current) rememberPercent(evaluation, evaluation.percent);
      }

      return store(evaluation);
    } catch {
      // Unreachable by design; if it is reached, the data path still gets a decision.
      return Object.freeze({
        stage: lastStage.get(knownKey(flags, flags.stageFlagKey))?.value ?? flags.defaultStage,
        percent: lastPercent.get(knownKey(flags, flags.percentFlagKey))?.value ?? flags.defaultPercent,
      });
    }
  }

  // Per-entity flags whose values the source says are the same for every targeting key
  // are evaluated once for all entities: an evaluation per entity would cost a provider
  // call per key and TTL, and at more active keys than the cache holds, one per decision.
  // Asked on every call, so a source may change its answer as its rules change.
  function variesByEntity(flags: MigrationFlags): boolean {
    if (typeof source.variesByTargetingKey !== 'function') return true;
    try {
      return (
        source.variesByTargetingKey(flags.stageFlagKey) !== false ||
        source.variesByTargetingKey(flags.percentFlagKey) !== false
      );
    } catch {
      // A source that can't say is taken at its word that values may differ per entity.
      return true;
    }
  }

  // Apart from resolve(), so that a cached decision's lookup allocates no scope for the
  // closure below: every read asks for one.
  function evaluateOnce(
    flags: MigrationFlags,
    context: FlagContext,
    key: string,
    entity: boolean,
  ): Promise<FlagDecision> {
    const pending = inFlight.get(key);
    if (pending !== undefined) return pending;
    const promise = evaluate(flags, context, key, entity);
    inFlight.set(key, promise);
    void promise.then(() => {
      if (inFlight.get(key) === promise) inFlight.delete(key);
    });
    return promise;
  }

  let closed = false;

  return {
    resolve(flags, context, cacheKey) {
      // Both flag keys: two migrations may share a stage flag but not a percent flag.
      const prefix = cacheKeyPrefix(flags);
      const entity = flags.evaluation === 'per-entity' && variesByEntity(flags);
      const key = cacheKey === '' || (flags.evaluation === 'per-entity' && !entity) ? prefix : prefix + cacheKey;
      const cached = cache.get(key);
      if (cached !== undefined) return cached;
      return evaluateOnce(flags, context, key, entity);
    },
    clear: invalidate,
    close() {
      if (closed) return;
      closed = true;
      try {
        unsubscribe?.();
      } catch {
        // Nothing to recover: the worst case is a listener that clears a cache nobody reads.
      }
    },
  };
}
