/**
 * The interface a flag system implements for flagshift. `flagshift/openfeature` adapts
 * any OpenFeature provider; tests and the demo can use `createMemoryFlags()`.
 */

/** Evaluation context: who is asking. `targetingKey` is the entity (or request) key. */
export interface FlagContext {
  readonly targetingKey?: string;
  readonly [attribute: string]: unknown;
}

/** The type a flag is read as. */
export type FlagValueType = 'string' | 'number';

/**
 * A source of flag values. Implementations may throw, hang or return the wrong type:
 * flagshift guards every call with a time-out, a type check and a fallback, so none of
 * that ever reaches the data path.
 */
export interface FlagSource {
  /**
   * Resolves `flagKey` for `context`. Throw to report a provider error; a
   * `FlagEvaluationError` with `reason: 'type'` is counted as a wrong-type fallback rather
   * than an error.
   */
  resolve(flagKey: string, type: FlagValueType, context: FlagContext): unknown | Promise<unknown>;
  /**
   * Subscribes to the provider's configuration-changed event, so cached decisions are
   * dropped at once. Returns an unsubscribe function.
   */
  onConfigurationChanged?(listener: () => void): () => void;
  /**
   * Whether `flagKey`'s value may differ between two contexts that differ only in their
   * `targetingKey`. A source that answers `false` lets a `per-entity` migration share one
   * evaluation (and one cached decision) across all its entities, which then cost a cache
   * hit and a bucketing hash each, however many there are; entities still move into the
   * read percentage by their own key. Omitted, or `true`: every entity is evaluated on its own.
   */
  variesByTargetingKey?(flagKey: string): boolean;
  /** Reports an event (a mismatch) to providers that support tracking. Must not throw. */
  track?(eventName: string, context: FlagContext, details: Readonly<Record<string, string | number | boolean>>): void;
}
