/**
 * The stage resolver's cache of decisions, each kept for its own time to live. A decision
 * shared by every entity of a migration (a handful per process, asked on every read) sits in
 * a plain map and is dropped by a timer when its time is up, so a hit reads no clock and
 * moves nothing. Decisions of single entities (up to millions) sit in a bounded LRU cache
 * that reads the clock on every lookup.
 */
import { LRUCache } from 'lru-cache';

/** A shared decision and the timer that drops it. */
interface SharedEntry<V> {
  readonly value: V;
  readonly timer: ReturnType<typeof setTimeout>;
}

/** Values by key, each for its own time to live; see the module comment. */
export class DecisionCache<V extends object> {
  readonly #shared = new Map<string, SharedEntry<V>>();
  readonly #perEntity: LRUCache<string, V>;

  /** `max`: how many single-entity values are kept at most. */
  constructor(max: number) {
    // ttlResolution 0: read the clock on every lookup. lru-cache's default (1 ms) instead
    // caches the clock and arms a timer to forget it, a timer per millisecond of traffic,
    // which costs more than the clock read (and lets entries outlive their TTL).
    this.#perEntity = new LRUCache<string, V>({ max, ttlResolution: 0 });
  }

  /** The value of `key` while its time to live lasts. */
  get(key: string): V | undefined {
    const shared = this.#shared.get(key);
    if (shared !== undefined) return shared.value;
    return this.#perEntity.get(key);
  }

  /** {@link get} without refreshing the key's place in the LRU order. */
  peek(key: string): V | undefined {
    return this.#shared.get(key)?.value ?? this.#perEntity.peek(key);
  }

  /**
   * Keeps `value` under `key` for `ttlMs`. `shared`: the value serves every entity (few
   * keys, asked often). A shared value is dropped when its timer fires: at `ttlMs` at the
   * earliest, and later by as long as the event loop is kept from running timers.
   */
  set(key: string, value: V, ttlMs: number, shared: boolean): void {
    this.#dropShared(key);
    if (!shared) {
      this.#perEntity.set(key, value, { ttl: ttlMs });
      return;
    }
    this.#perEntity.delete(key);
    const timer = setTimeout(() => {
      if (this.#shared.get(key)?.value === value) this.#shared.delete(key);
    }, ttlMs);
    // A cached decision must not keep the process alive.
    timer.unref?.();
    this.#shared.set(key, { value, timer });
  }

  /** Forgets every value. */
  clear(): void {
    for (const entry of this.#shared.values()) clearTimeout(entry.timer);
    this.#shared.clear();
    this.#perEntity.clear();
  }

  #dropShared(key: string): void {
    const entry = this.#shared.get(key);
    if (entry === undefined) return;
    clearTimeout(entry.timer);
    this.#shared.delete(key);
  }
}
