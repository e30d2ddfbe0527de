/**
 * A steady background load of point reads and updates through the SDK, whose latencies
 * are recorded while something else (a backfill) runs.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Repository } from 'flagshift';
import type { User } from './fixture.js';
import { random } from './interleave.js';
import { type LatencySummary, Samples, since, sleep } from './stats.js';

/** What a load recorded between {@link Load.measure} and {@link Load.take}. */
export interface LoadSummary {
  /** Reads and updates together. */
  readonly all: LatencySummary;
  readonly reads: LatencySummary;
  readonly updates: LatencySummary;
  /** Operations per second. */
  readonly opsPerSecond: number;
  /** Operations that failed (their latency is not counted). */
  readonly errors: number;
  /** Every latency of the window, in microseconds, in the order the operations ended. */
  readonly latenciesUs: Float64Array;
}

/** A running load. */
export interface Load {
  /** Starts a new measurement window; operations started before it are not counted. */
  measure(): void;
  /** Ends the window: waits for the operations started in it, and summarizes them. */
  take(): Promise<LoadSummary>;
  /** Stops starting operations and waits for those in flight. */
  stop(): Promise<void>;
}

/** Options of {@link startLoad}. */
export interface LoadOptions {
  /** Operations started per second, alternately a read and an update. */
  readonly rate: number;
  /** Ids are drawn from 1..rows. */
  readonly rows: number;
}

/** The operations started in one measurement window. */
class Window {
  readonly all = new Samples();
  readonly reads = new Samples();
  readonly updates = new Samples();
  readonly pending = new Set<Promise<void>>();
  readonly started = performance.now();
  ended = 0;
  errors = 0;
}

/**
 * Starts an open-loop load on `repo`: operations start on a fixed schedule whether or not
 * earlier ones have finished, so an operation that blocks (behind a row lock) delays
 * nothing but itself and shows up in the latencies, instead of silently lowering the
 * rate. Each latency runs from the operation's start to its end; with the pool's
 * connections all busy, it includes the wait for one.
 */
export function startLoad(repo: Repository<User, 'id'>, options: LoadOptions): Load {
  let stopped = false;
  let window = new Window();
  const next = random(7);
  const intervalMs = 1000 / options.rate;
  const fire = (n: number) => {
    const id = 1 + Math.floor(next() * options.rows);
    const read = (n & 1) === 0;
    const into = window;
    const start = performance.now();
    const op = read ? repo.get(id) : repo.update(id, { username: `user${id}` });
    const done: Promise<void> = op.then(
      () => {
        const us = since(start);
        (read ? into.reads : into.updates).add(us);
        into.all.add(us);
        into.pending.delete(done);
      },
      () => {
        into.errors++;
        into.pending.delete(done);
      },
    );
    into.pending.add(done);
  };
  const scheduler = async () => {
    const began = performance.now();
    let n = 0;
    while (!stopped) {
      // Start every operation that is due; timers fire late, so several may be.
      const due = Math.floor((performance.now() - began) / intervalMs);
      while (n <= due) fire(n++);
      await sleep(Math.max(1, began + n * intervalMs - performance.now()));
    }
    await Promise.all(window.pending);
  };
  const running = scheduler();
  return {
    measure() {
      window = new Window();
    },
    async take() {
      const closed = window;
      closed.ended = performance.now();
      window = new Window();
      await Promise.all(closed.pending);
      const seconds = (closed.ended - closed.started) / 1000;
      return {
        all: closed.all.summary(),
        reads: closed.reads.summary(),
        updates: closed.updates.summary(),
        opsPerSecond: Math.round(closed.all.count / seconds),
        errors: closed.errors,
        latenciesUs: closed.all.range(0, closed.all.count),
      };
    },
    async stop() {
      stopped = true;
      await running;
    },
  };
}

/** What {@link startLoadProcess} hands its process. */
export interface LoadProcessOptions extends LoadOptions {
  readonly connectionString: string;
  /** The schema of the `users` table the load reads and writes (mid-rename, `dualwrite`). */
  readonly schema: string;
  /** Connections of the load's pool. */
  readonly connections: number;
}

/** A message to the load's process. */
export type LoadRequest = { readonly id: number; readonly type: 'check' | 'start' | 'measure' | 'take' | 'stop' };

/** Its answer: a summary for `take`, an error's stack if the request failed. */
export interface LoadResponse {
  readonly id: number;
  readonly summary?: LoadSummary;
  readonly error?: string;
}

/** A {@link Load} in a process of its own, and the check of its repository after the table changed. */
export interface LoadProcess extends Omit<Load, 'measure'> {
  /** Starts a new measurement window, once the process has. */
  measure(): Promise<void>;
  /** Reloads the repository's view of the table (after it was dropped and created again). */
  check(): Promise<void>;
}

/**
 * Starts the load in a process of its own (bench/load-process.ts), as an application runs
 * apart from the CLI that backfills its table: call `check` once the table exists, then
 * the load starts.
 */
export async function startLoadProcess(options: LoadProcessOptions): Promise<LoadProcess> {
  const entry = fileURLToPath(new URL('./load-process.ts', import.meta.url));
  // The parent's own flags (`--import tsx`) load the TypeScript entry; values such as the
  // latencies' Float64Array cross as they are.
  const child = fork(entry, [JSON.stringify(options)], { serialization: 'advanced', stdio: 'inherit' });
  const waiting = new Map<number, { resolve: (response: LoadResponse) => void; reject: (error: Error) => void }>();
  let nextId = 0;
  const failAll = (error: Error) => {
    for (const { reject } of waiting.values()) reject(error);
    waiting.clear();
  };
  child.on('message', (response: LoadResponse) => {
    const pending = waiting.get(response.id);
    waiting.delete(response.id);
    if (response.error !== undefined) pending?.reject(new Error(`the load's process: ${response.error}`));
    else pending?.resolve(response);
  });
  child.on('error', failAll);
  child.on('exit', (code) => failAll(new Error(`the load's process exited (code ${code})`)));
  const ask = (type: LoadRequest['type']) =>
    new Promise<LoadResponse>((resolve, reject) => {
      const id = nextId++;
      waiting.set(id, { resolve, reject });
      child.send({ id, type } satisfies LoadRequest);
    });
  await ask('check');
  await ask('start');
  return {
    async check() {
      await ask('check');
    },
    async measure() {
      await ask('measure');
    },
    async take() {
      return (await ask('take')).summary!;
    },
    async stop() {
      await ask('stop');
    },
  };
}
