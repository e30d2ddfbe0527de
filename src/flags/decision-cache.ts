/**
 * The stage resolver's cache of decisions, each kept for its own time to live.
 *
 * A decision shared by every entity of a migration (a handful per process, asked on every
 * read) sits in a small plain map and is dropped by a timer at its expiry, so a hit is one
 * lookup with no clock read and no LRU order to move. A timer runs late while the event
 * loop is kept from running timers, and one armed under a test's fake timers may never
 * run, so every 64th hit of an entry also reads the clock: a shared decision outlives its
 * time to live by at most the timer's delay or 63 hits.
 *
 * Decisions of single entities (up to millions), and shared ones past the small map's
 * bound (segments named by per-request attributes), sit in a bounded LRU cache that reads
 * the clock on every lookup.
 */
import { LRUCache } from 'lru-cache';

/** How many shared decisions the plain map holds; more go to the LRU cache. */
export const MAX_SHARED = 256;

/** Every how many hits a shared decision's expiry is checked on the clock (a power of two). */
const CLOCK_CHECK_EVERY = 64;

/** A shared decision: its value, its expiry (`performance.now()` ms) and the timer that drops it. */
interface SharedEntry<V> {
  readonly value: V;
  readonly expires: number;
  readonly timer: ReturnType<typeof setTimeout>;
  hits: number;
}

/** Values by key, each for its own time to live; see the module comment. */
export class DecisionCache<V extends object> {
  readonly #shared = new Map<string, SharedEntry<V>>();
  readonly #lru: LRUCache<string, V>;

  /** `max`: how many values the LRU cache keeps at most. */
  constructor(max: number) {
    // ttlResolution 0: read the clock on every lookup. lru-cache's default (1 ms) instead
    // caches the clock and arms a timer to forget it, a timer per millisecond of traffic,
    // which costs more than the clock read (and lets entries outlive their TTL).
    this.#lru = new LRUCache<string, V>({ max, ttlResolution: 0 });
  }

  /** The value of `key` while its time to live lasts. */
  get(key: string): V | undefined {
    const shared = this.#shared.get(key);
    if (shared === undefined) return this.#lru.get(key);
    shared.hits = (shared.hits + 1) & (CLOCK_CHECK_EVERY - 1);
    if (shared.hits === 0 && performance.now() >= shared.expires) {
      this.#drop(key, shared);
      return undefined;
    }
    return shared.value;
  }

  /** {@link get} without refreshing the key's place in the LRU order; reads the clock. */
  peek(key: string): V | undefined {
    const shared = this.#shared.get(key);
    if (shared === undefined) return this.#lru.peek(key);
    return performance.now() < shared.expires ? shared.value : undefined;
  }

  /**
   * Keeps `value` under `key` for `ttlMs`. `shared`: the value serves every entity of a
   * migration (few keys, asked on every read); it goes to the plain map while that has room.
   */
  set(key: string, value: V, ttlMs: number, shared: boolean): void {
    const previous = this.#shared.get(key);
    if (previous !== undefined) this.#drop(key, previous);
    if (!shared || (this.#shared.size >= MAX_SHARED && !this.#dropExpired())) {
      this.#lru.set(key, value, { ttl: ttlMs });
      return;
    }
    this.#lru.delete(key);
    const timer = setTimeout(() => {
      if (this.#shared.get(key) === entry) this.#shared.delete(key);
    }, ttlMs);
    // A cached decision must not keep the process alive.
    timer.unref?.();
    const entry: SharedEntry<V> = { value, expires: performance.now() + ttlMs, timer, hits: 0 };
    this.#shared.set(key, entry);
  }

  /** Forgets every value. */
  clear(): void {
    for (const entry of this.#shared.values()) clearTimeout(entry.timer);
    this.#shared.clear();
    this.#lru.clear();
  }

  #drop(key: string, entry: SharedEntry<V>): void {
    clearTimeout(entry.timer);
    this.#shared.delete(key);
  }

  /** Drops the plain map's expired entries (their timers late); whether that made room. */
  #dropExpired(): boolean {
    const now = performance.now();
    for (const [key, entry] of this.#shared) if (entry.expires <= now) this.#drop(key, entry);
    return this.#shared.size < MAX_SHARED;
  }
}
