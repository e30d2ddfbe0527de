/**
 * Runs async functions one at a time, in call order. A single connection can hold only one
 * transaction, so a driver over one connection queues its statements and transactions here.
 */
export class Mutex {
  #tail: Promise<unknown> = Promise.resolve();

  /** Runs `fn` once every function queued before it has settled. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(fn);
    // The queue only waits on settlement; the caller sees the rejection through `result`.
    this.#tail = result.catch(() => undefined);
    return result;
  }
}
