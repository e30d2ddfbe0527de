/**
 * An in-process flag source for tests, demos and users' own tests, with switches that
 * make a flag fail the ways real providers do.
 */
import type { FlagContext, FlagSource, FlagValueType } from './flag-source.js';

/** A way {@link MemoryFlags.fail} makes a flag misbehave. */
export type SimulatedFailure =
  /** `resolve` rejects, as a provider error. */
  | 'error'
  /** `resolve` never settles until {@link MemoryFlags.restore}, as a provider that hangs. */
  | 'hang'
  /** `resolve` returns `value` whatever its type, as a misconfigured flag. */
  | { readonly value: unknown };

/** A {@link FlagSource} held in memory. */
export interface MemoryFlags extends FlagSource {
  /** Answers asynchronously, like a real provider. */
  resolve(flagKey: string, type: FlagValueType, context: FlagContext): Promise<unknown>;
  /** Subscribes to {@link MemoryFlags.set} and {@link MemoryFlags.setMany}. Returns an unsubscribe function. */
  onConfigurationChanged(listener: () => void): () => void;
  /** Sets one flag and notifies configuration-changed listeners. */
  set(flagKey: string, value: string | number): void;
  /** Sets several flags and notifies listeners once. */
  setMany(values: Readonly<Record<string, string | number>>): void;
  /** The value set for `flagKey`, or `undefined`. Ignores simulated failures. */
  get(flagKey: string): string | number | undefined;
  /**
   * Makes `flagKey` fail until {@link MemoryFlags.restore}. Listeners are not notified:
   * a failing provider does not announce itself, so cached decisions stay until they expire.
   */
  fail(flagKey: string, failure: SimulatedFailure): void;
  /** Ends a simulated failure. Evaluations hanging on `flagKey` then settle with its current value. */
  restore(flagKey: string): void;
  /** How many times `resolve` has been called, per flag key: for asserting caching. */
  readonly calls: ReadonlyMap<string, number>;
}

/**
 * Creates an in-memory flag source. `resolve` answers asynchronously, like a real
 * provider, rejects for a flag that was never set, and returns the stored value whatever
 * type is asked for (so a number stored under a stage flag shows up as a type fallback).
 *
 * @param initial - Flags to start with, by key. @default {}
 *
 * @example
 * ```ts
 * const flags = createMemoryFlags({ 'users-rename.stage': 'dualwrite', 'users-rename.read-percent': 0 });
 * flags.set('users-rename.stage', 'live');
 * flags.fail('users-rename.stage', 'hang'); // evaluations now time out
 * flags.restore('users-rename.stage');
 * ```
 */
export function createMemoryFlags(initial: Readonly<Record<string, string | number>> = {}): MemoryFlags {
  const values = new Map<string, string | number>(Object.entries(initial));
  const failures = new Map<string, SimulatedFailure>();
  const hanging = new Map<string, Set<() => void>>();
  const listeners = new Set<() => void>();
  const calls = new Map<string, number>();

  function notify(): void {
    for (const listener of [...listeners]) {
      try {
        listener();
      } catch {
        // One listener's failure must not keep the others from hearing of the change.
      }
    }
  }

  function lookup(flagKey: string): string | number {
    const value = values.get(flagKey);
    if (value === undefined) throw new Error(`flag "${flagKey}" is not set`);
    return value;
  }

  return {
    calls,
    resolve(flagKey: string, _type: FlagValueType, _context: FlagContext): Promise<unknown> {
      calls.set(flagKey, (calls.get(flagKey) ?? 0) + 1);
      const failure = failures.get(flagKey);
      if (failure === undefined) return Promise.resolve().then(() => lookup(flagKey));
      if (failure === 'error') return Promise.reject(new Error(`simulated error for flag "${flagKey}"`));
      if (failure === 'hang') {
        return new Promise((resolve, reject) => {
          let waiters = hanging.get(flagKey);
          if (waiters === undefined) {
            waiters = new Set();
            hanging.set(flagKey, waiters);
          }
          waiters.add(() => {
            try {
              resolve(lookup(flagKey));
            } catch (error) {
              reject(error);
            }
          });
        });
      }
      return Promise.resolve(failure.value);
    },
    // Values are stored per flag, never per context: every entity sees the same one.
    variesByTargetingKey: () => false,
    onConfigurationChanged(listener: () => void): () => void {
      // Wrapped so the same function can subscribe twice and unsubscribe each separately.
      const entry = () => listener();
      listeners.add(entry);
      return () => {
        listeners.delete(entry);
      };
    },
    set(flagKey, value) {
      values.set(flagKey, value);
      notify();
    },
    setMany(entries) {
      for (const [flagKey, value] of Object.entries(entries)) values.set(flagKey, value);
      notify();
    },
    get(flagKey) {
      return values.get(flagKey);
    },
    fail(flagKey, failure) {
      failures.set(flagKey, failure);
    },
    restore(flagKey) {
      failures.delete(flagKey);
      const waiters = hanging.get(flagKey);
      hanging.delete(flagKey);
      if (waiters !== undefined) for (const settle of waiters) settle();
    },
  };
}
