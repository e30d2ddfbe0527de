/**
 * Runs two sides of a comparison in one run, interleaved: each worker alternates the two
 * sides every iteration (A then B, then B then A, ...), on the same connection setup, so
 * drift in the machine, the server's caches or the JIT falls on both sides alike.
 */
import { Samples, since } from './stats.js';

/** One operation of a side, given the entity id to work on and the iteration number. */
export type Operation = (id: number, iteration: number) => Promise<unknown>;

/** Options of {@link interleave}. */
export interface InterleaveOptions {
  /** Measured iterations per side, over all workers. */
  readonly iterations: number;
  /** Unmeasured iterations per side first (JIT, plan and buffer warm-up). */
  readonly warmup: number;
  /** Concurrent workers; each runs its iterations one after another. */
  readonly concurrency: number;
  /** Ids are drawn from 1..rows. */
  readonly rows: number;
  /** Seed of the id sequence, so every comparison touches the same rows. */
  readonly seed?: number;
}

/** The latencies of both sides, and the wall time of the measured part. */
export interface InterleaveResult {
  readonly a: Samples;
  readonly b: Samples;
  readonly wallMs: number;
}

/** A small deterministic PRNG (mulberry32), so runs draw the same ids. */
export function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Runs `a` and `b` interleaved; see the module comment. */
export async function interleave(a: Operation, b: Operation, options: InterleaveOptions): Promise<InterleaveResult> {
  const next = random(options.seed ?? 42);
  const id = () => 1 + Math.floor(next() * options.rows);
  const run = async (count: number, record: boolean, aSamples: Samples, bSamples: Samples) => {
    let iteration = 0;
    const timed = async (op: Operation, samples: Samples, key: number, i: number) => {
      const start = performance.now();
      await op(key, i);
      if (record) samples.add(since(start));
    };
    const worker = async () => {
      while (iteration < count) {
        const i = iteration++;
        const key = id();
        // Alternate which side goes first, so neither always follows the other.
        const [first, firstSamples, second, secondSamples] =
          (i & 1) === 0 ? [a, aSamples, b, bSamples] : [b, bSamples, a, aSamples];
        await timed(first, firstSamples, key, i);
        await timed(second, secondSamples, key, i);
      }
    };
    await Promise.all(Array.from({ length: options.concurrency }, worker));
  };
  await run(options.warmup, false, new Samples(), new Samples());
  const aSamples = new Samples(options.iterations);
  const bSamples = new Samples(options.iterations);
  const started = performance.now();
  await run(options.iterations, true, aSamples, bSamples);
  return { a: aSamples, b: bSamples, wallMs: performance.now() - started };
}
