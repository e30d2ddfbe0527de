/**
 * A promise and its resolve, for sequencing concurrent call chains in a test: one chain
 * awaits `promise`, another calls `resolve` when it has reached the point that matters.
 */
export interface Deferred {
  readonly promise: Promise<void>;
  resolve(): void;
}

/** A new {@link Deferred}. */
export function deferred(): Deferred {
  let resolve = () => {};
  const promise = new Promise<void>((done) => {
    resolve = done;
  });
  return { promise, resolve: () => resolve() };
}
