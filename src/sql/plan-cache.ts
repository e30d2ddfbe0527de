/**
 * The router's plans by statement text, bounded. Looked up on every statement, so a hit
 * is one map lookup and one flag write: eviction is second-chance ("clock") instead of
 * exact least-recently-used order, which would move the entry on every hit (lru-cache's
 * bookkeeping was a third of the warm router's own time per statement).
 */
interface Slot<V> {
  readonly value: V;
  /** Looked up since the last eviction sweep passed it. */
  used: boolean;
}

/** A bounded map from statement text to its plan; see the file's comment for the order of eviction. */
export class PlanCache<V> {
  readonly #slots = new Map<string, Slot<V>>();
  readonly #max: number;

  /** `max`: how many texts are kept (at least 1). */
  constructor(max: number) {
    if (!Number.isInteger(max) || max < 1)
      throw new RangeError(`plan cache size must be a positive integer, got ${max}`);
    this.#max = max;
  }

  /** How many texts are kept now. */
  get size(): number {
    return this.#slots.size;
  }

  /** The plan of `text`, marked as used, or `undefined`. */
  get(text: string): V | undefined {
    const slot = this.#slots.get(text);
    if (slot === undefined) return undefined;
    slot.used = true;
    return slot.value;
  }

  /**
   * Keeps `value` as the plan of `text`. When full, evicts the oldest text not looked up
   * since the sweep last passed it; those that were get a second chance at the back.
   */
  set(text: string, value: V): void {
    const slots = this.#slots;
    if (!slots.has(text)) {
      while (slots.size >= this.#max) {
        const [oldest, slot] = slots.entries().next().value as [string, Slot<V>];
        slots.delete(oldest);
        if (slot.used) {
          slot.used = false;
          slots.set(oldest, slot);
        }
      }
    }
    slots.set(text, { value, used: false });
  }
}
