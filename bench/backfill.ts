/**
 * Part 4: backfilling a rename (`username` from `user_name`) as users run it: after
 * `expand`, so the sync triggers are on, while a steady load of point reads and dual writes
 * runs through the SDK in a process of its own (bench/load-process.ts), as an application
 * runs apart from the CLI that backfills its table. Each round runs, each on a freshly created and expanded table:
 *
 * - `flagshift`: `createBackfill(driver, migration).run()` with its defaults.
 * - `keyset-loop`: a plain keyset loop, one autocommitted `UPDATE` of the next batch per
 *   round trip, no sleep, with the batch size flagshift's latest run averaged.
 * - `single-statement`: one `UPDATE users SET username = user_name`, the throughput limit,
 *   which holds every row's lock until it commits.
 *
 * Before round 1, an unmeasured round 0 runs each approach once on the full table with
 * the load running; before every baseline period and run, a checkpoint and a `sync` write
 * out what earlier work left to write. The rounds go through the six orders of the three
 * approaches ({@link ORDERS}), so over six rounds each approach runs in each place twice,
 * first (right after the round's baseline period) included, and right after each of the
 * others twice. Rotating one order (flagshift, loop, statement; loop, statement,
 * flagshift; ...) evens out the first place only: flagshift then always ran right after
 * the single statement or first, and the loop right after flagshift or first. The ratios
 * are per round, so drift in the machine reaches both sides of each ratio alike; the
 * rounds give their spread. The load's p99 during flagshift's runs is compared with the
 * load alone in the rounds' baseline periods (before each round's first run), cut into
 * windows of as many operations as the runs had (but into no fewer than the knob's
 * windows), so a baseline window's p99 is read from as many samples as the runs' (a p99
 * of fewer samples sits on fewer of the slowest ones); the baseline is the median of
 * their p99s ({@link PooledP99}). The keyset loop's p99 is compared with the same
 * baseline periods, a reference for what a backfill of the same batches costs the load at
 * all.
 */
import { execFile, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createBackfill, expand } from 'flagshift/lifecycle';
import { createPgDriver } from 'flagshift/pg';
import pg from 'pg';
import { createUsers, usersMigration } from './fixture.js';
import { type LoadSummary, startLoadProcess } from './load.js';
import { median, quantile, ratio, round, sleep } from './stats.js';

/** The approaches of a round, in the order of the first round. */
const APPROACHES = ['flagshift', 'keyset-loop', 'single-statement'] as const;
export type BackfillApproach = (typeof APPROACHES)[number];

/**
 * The order of each round, from round 1 on and again after six: every order of the three.
 * Round 1 starts with flagshift, whose batch size the loop then runs.
 */
const ORDERS: readonly (readonly BackfillApproach[])[] = [
  ['flagshift', 'keyset-loop', 'single-statement'],
  ['keyset-loop', 'single-statement', 'flagshift'],
  ['single-statement', 'flagshift', 'keyset-loop'],
  ['flagshift', 'single-statement', 'keyset-loop'],
  ['single-statement', 'keyset-loop', 'flagshift'],
  ['keyset-loop', 'flagshift', 'single-statement'],
];

/** One approach's run in one round. */
export interface BackfillRun {
  readonly approach: BackfillApproach;
  /** The round (1 on). */
  readonly round: number;
  readonly description: string;
  readonly rows: number;
  readonly seconds: number;
  readonly rowsPerSecond: number;
  /** Rows per batch: flagshift's average, the loop's fixed size; undefined for the single statement. */
  readonly batchSize: number | undefined;
  /** Rows whose `username` still differs from `user_name` afterwards (0: complete). */
  readonly rowsLeftBehind: number;
  /** The concurrent load while it ran. */
  readonly load: Omit<LoadSummary, 'latenciesUs'>;
  /**
   * flagshift's and the keyset loop's runs: the load's p99 in each window (of as many
   * operations as the run) of the baseline period before the round's first run.
   */
  readonly baselineP99Us: readonly number[];
}

/** Part 4's results. */
export interface BackfillResults {
  readonly rows: number;
  /** Operations per second of the concurrent load. */
  readonly loadRate: number;
  readonly loadSettleSeconds: number;
  readonly warmupRuns: number;
  readonly baselineWindows: number;
  readonly windowSeconds: number;
  readonly runs: readonly BackfillRun[];
  /** Per round: flagshift's rows/s over the keyset loop's. */
  readonly vsKeysetLoop: readonly number[];
  /** Per round: flagshift's rows/s over the single statement's. */
  readonly vsSingleStatement: readonly number[];
  /** The load's p99 over flagshift's runs, their operations pooled, against the baseline ({@link PooledP99}). */
  readonly p99: PooledP99;
  /** The same for the keyset loop's runs, against the same baseline periods: a reference. */
  readonly keysetLoopP99: PooledP99;
}

/**
 * The load's p99 over every operation of an approach's runs (all rounds), against the
 * baseline periods of all rounds cut into windows of as many operations: the median
 * window's p99 is the baseline. One run of about 800 operations puts its p99 on its eighth
 * slowest, so a single stall of a few milliseconds decides it; pooled, the p99 rests on
 * the rounds' slowest operations together, and a bad round counts instead of being
 * outvoted by the median of rounds.
 */
export interface PooledP99 {
  readonly operations: number;
  readonly p99Us: number;
  readonly baselineP99Us: readonly number[];
  /** `p99Us` over the median of `baselineP99Us`. */
  readonly ratio: number;
  /**
   * How far the ratio moves: the p99 with each round left out in turn (all of them when
   * there is one round), against each baseline window of as many operations.
   */
  readonly spread: readonly number[];
}

/** Knobs of {@link runBackfills}. */
export interface BackfillBenchOptions {
  readonly connectionString: string;
  readonly rows: number;
  readonly rounds: number;
  /** Baseline windows of the load alone before each flagshift run (the period is windows x seconds). */
  readonly baselineWindows: number;
  readonly windowSeconds: number;
  /** Operations per second of the concurrent load. */
  readonly loadRate: number;
  /**
   * Seconds the load runs alone, unmeasured, before the first round. In its first seconds
   * a new load's own p99 was 2 to 4 times its later one, and the first round's runs
   * measured higher p99s than the same approach's in later rounds.
   */
  readonly loadSettleSeconds: number;
  /**
   * Runs of each approach on a small table of its own before the rounds, so the rounds
   * measure a backfill whose code is compiled, as most of a long backfill is. After one
   * run, the backfill process was still optimizing its functions in every round: about
   * ten of V8's compilations a run, on threads that took a core from the load while the
   * batch ran on the other (up to 80 ms a run; 0 to 20 ms after 40 runs).
   */
  readonly warmupRuns: number;
  /** Connections of the load's pool. */
  readonly loadConnections: number;
  readonly log: (line: string) => void;
}

const execFileAsync = promisify(execFile);

const SCHEMA = 'bench_backfill';
const WARM_SCHEMA = 'bench_backfill_warmup';
const WARM_ROWS = 50_000;

function keysetStatement(schema: string): string {
  // The batch is a key range, so the UPDATE is an index range scan, as flagshift's batch
  // is; a join with the batch's keys lets the planner scan the whole table per batch.
  return `WITH batch AS MATERIALIZED (SELECT id FROM ${schema}.users WHERE id > $1 ORDER BY id LIMIT $2),
     bound AS (SELECT max(id) AS last, count(*) AS n FROM batch),
     done AS (UPDATE ${schema}.users u SET username = u.user_name
               WHERE u.id > $1 AND u.id <= (SELECT last FROM bound))
     SELECT last, n FROM bound`;
}

/** What part 4's process answers: its results, or an error's stack. */
export interface BackfillProcessAnswer {
  readonly results?: BackfillResults;
  readonly error?: string;
}

/**
 * {@link runBackfills} in a process of its own (bench/backfill-process.ts), which has run
 * nothing else: users run a backfill from the CLI, in a fresh process. In the benchmark's
 * own process, after the other parts, flagshift's backfill ran beside a heap of about
 * 200 MB of their data, whose collection took CPU the load, on two cores, was short of.
 */
export function runBackfillsApart(options: Omit<BackfillBenchOptions, 'log'>): Promise<BackfillResults> {
  const entry = fileURLToPath(new URL('./backfill-process.ts', import.meta.url));
  // The parent's own flags (`--import tsx`) load the TypeScript entry; its lines go to our stdout.
  const child = fork(entry, [JSON.stringify(options)], { serialization: 'advanced', stdio: 'inherit' });
  return new Promise((resolve, reject) => {
    let answered = false;
    child.on('message', (answer: BackfillProcessAnswer) => {
      answered = true;
      if (answer.error !== undefined) reject(new Error(`part 4's process: ${answer.error}`));
      else resolve(answer.results!);
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (!answered) reject(new Error(`part 4's process exited without results (code ${code})`));
    });
  });
}

/** Runs part 4. */
export async function runBackfills(options: BackfillBenchOptions): Promise<BackfillResults> {
  const { log } = options;
  const admin = new pg.Client({ connectionString: options.connectionString });
  admin.on('error', () => undefined);
  await admin.connect();
  // The backfill's own connections, opened before any run and kept open between them
  // (no idle timeout): like the loop's and the single statement's connection, they are not
  // part of what a run times.
  const backfillPool = new pg.Pool({ connectionString: options.connectionString, max: 2, idleTimeoutMillis: 0 });
  backfillPool.on('error', () => undefined);
  const driver = createPgDriver(backfillPool);
  for (const client of await Promise.all([backfillPool.connect(), backfillPool.connect()])) client.release();

  const prepare = async (schema: string, rows: number) => {
    await createUsers(admin, schema, rows, false);
    // The backfill's own state (checkpoints, ranges) from an earlier run.
    await admin.query('DROP SCHEMA IF EXISTS flagshift CASCADE');
    // As users run it: expand installs the sync triggers every approach then writes through.
    await expand(driver, usersMigration(schema));
  };
  const approaches: Record<BackfillApproach, (schema: string, batch: number) => Promise<number | undefined>> = {
    flagshift: async (schema) => {
      const report = await createBackfill(driver, usersMigration(schema), { restart: true }).run();
      return report.batches === 0 ? undefined : Math.round(report.rowsDone / report.batches);
    },
    'keyset-loop': async (schema, batch) => {
      const text = keysetStatement(schema);
      let last = 0;
      for (;;) {
        const { rows } = await admin.query<{ last: string | null; n: string }>({
          name: `bench_keyset_${schema}`,
          text,
          values: [last, batch],
        });
        if (rows[0]?.last === null || rows[0] === undefined) return batch;
        last = Number(rows[0].last);
      }
    },
    'single-statement': async (schema) => {
      await admin.query(`UPDATE ${schema}.users SET username = user_name`);
      return undefined;
    },
  };
  // Writes out what the last run and building the table dirtied, so neither the baseline
  // nor the run shares the machine with writing it out. The server has `fsync` off
  // (bench/postgres.ts), so a checkpoint leaves its writes, and the WAL, in the operating
  // system's cache, which writes them out about 30 s later: after the warm-up 1.2 GB
  // waited, and Linux wrote it out in bursts of about 300 MB every 5 s, through the
  // settle period and the first round. `sync` writes it all out now, outside any
  // measured period.
  let syncs = true;
  const settleWrites = async () => {
    await admin.query('CHECKPOINT');
    if (!syncs) return;
    await execFileAsync('sync').catch((error: Error) => {
      syncs = false;
      log(`  warning: sync failed (${error.message}); the operating system writes its cache out when it chooses`);
    });
  };
  const leftBehind = async () => {
    const { rows } = await admin.query<{ n: string }>(
      `SELECT count(*) AS n FROM ${SCHEMA}.users WHERE username IS DISTINCT FROM user_name`,
    );
    return Number(rows[0]!.n);
  };

  // Warm-up of each approach's code, in this process and in the server, on a small table
  // of its own ({@link BackfillBenchOptions.warmupRuns}): a process goes on compiling a
  // backfill's functions over its first thousand batches and more, and the server plans
  // its statements; neither belongs in the rounds. Runs after the first find the rows
  // filled, and do the same work in this process over them.
  for (const approach of APPROACHES) {
    await prepare(WARM_SCHEMA, WARM_ROWS);
    for (let run = 0; run < options.warmupRuns; run++) await approaches[approach](WARM_SCHEMA, 1000);
  }
  await admin.query(`DROP SCHEMA ${WARM_SCHEMA} CASCADE`);
  // The warm-up built and dropped over a hundred tables, triggers and functions; vacuumed
  // now, the catalogs leave autovacuum less to do from them during the rounds.
  await admin.query('VACUUM');

  log(`creating ${SCHEMA}.users with ${options.rows} rows, username empty, expanded`);
  await prepare(SCHEMA, options.rows);
  const load = await startLoadProcess({
    connectionString: options.connectionString,
    schema: SCHEMA,
    rows: options.rows,
    rate: options.loadRate,
    connections: options.loadConnections,
  });
  const fresh = async () => {
    log(`creating ${SCHEMA}.users with ${options.rows} rows, username empty, expanded`);
    await prepare(SCHEMA, options.rows);
    await load.check();
  };
  log(`the load alone for ${options.loadSettleSeconds} s before the first round`);
  await sleep(options.loadSettleSeconds * 1000);
  try {
    const runs: BackfillRun[] = [];
    const vsKeysetLoop: number[] = [];
    const vsSingleStatement: number[] = [];
    // Every latency of the load alone (the rounds' baseline periods) and during each approach's runs.
    const baselines: Float64Array[] = [];
    const during: Record<'flagshift' | 'keyset-loop', Float64Array[]> = { flagshift: [], 'keyset-loop': [] };
    // The batch size of flagshift's latest run, which the loop runs (round 1 starts with flagshift).
    let batch = 1000;
    // Round 0, not measured: one run of each approach on the full table, the load running.
    // The first runs after the load started measured its highest p99s, whichever approach
    // ran them: round 1's first run (always flagshift's) was the slowest of flagshift's six
    // in 13 of 20 runs of part 4; with the writes synced before each run (above), the
    // loop's run right after it was the slowest of the loop's six in 3 of 4. With this
    // round as well: flagshift's round 1 run in 1 of 3, the loop's in none.
    for (const [index, approach] of APPROACHES.entries()) {
      if (index > 0) await fresh();
      await settleWrites();
      const size = await approaches[approach](SCHEMA, batch);
      if (approach === 'flagshift' && size !== undefined) batch = size;
    }
    for (let roundNo = 1; roundNo <= options.rounds; roundNo++) {
      const order = ORDERS[(roundNo - 1) % ORDERS.length]!;
      // The load alone before the round's first run, the baseline of the runs' p99s.
      let baseline: Float64Array | undefined;
      const rates = new Map<BackfillApproach, number>();
      for (const [position, approach] of order.entries()) {
        await fresh();
        await settleWrites();
        await sleep(500);
        if (position === 0) {
          await load.measure();
          await sleep(options.baselineWindows * options.windowSeconds * 1000);
          baseline = (await load.take()).latenciesUs;
          baselines.push(baseline);
        }
        await load.measure();
        const started = performance.now();
        const batchSize = await approaches[approach](SCHEMA, batch);
        const seconds = (performance.now() - started) / 1000;
        const { latenciesUs, ...summary } = await load.take();
        // The single statement holds every row's lock to its end: its load p99 is not measured.
        const measured = approach === 'single-statement' ? undefined : during[approach];
        measured?.push(latenciesUs);
        const baselineP99Us =
          measured === undefined || baseline === undefined
            ? []
            : windowP99s(baseline, summary.all.count, options.baselineWindows);
        if (approach === 'flagshift' && batchSize !== undefined) batch = batchSize;
        const rowsPerSecond = Math.round(options.rows / seconds);
        rates.set(approach, rowsPerSecond);
        const run: BackfillRun = {
          approach,
          round: roundNo,
          description: describe(approach, batch),
          rows: options.rows,
          seconds: round(seconds),
          rowsPerSecond,
          batchSize,
          rowsLeftBehind: await leftBehind(),
          load: summary,
          baselineP99Us,
        };
        log(
          `round ${roundNo} ${approach.padEnd(16)} ${rowsPerSecond} rows/s in ${run.seconds}s${batchSize === undefined ? '' : `, ${batchSize} rows/batch`}; load p99 ${summary.all.p99Us}us${baselineP99Us.length === 0 ? '' : ` (baselines ${baselineP99Us.join(', ')}us)`}, ${run.rowsLeftBehind} rows left behind`,
        );
        if (summary.errors > 0) log(`  warning: ${summary.errors} load operations failed during the run`);
        runs.push(run);
      }
      vsKeysetLoop.push(ratio(rates.get('flagshift')!, rates.get('keyset-loop')!));
      vsSingleStatement.push(ratio(rates.get('flagshift')!, rates.get('single-statement')!));
    }
    const p99 = pooledP99(during.flagshift, baselines, options.baselineWindows);
    const keysetLoopP99 = pooledP99(during['keyset-loop'], baselines, options.baselineWindows);
    log(
      `load p99 over the runs pooled, against the baseline: flagshift ${p99.p99Us}us (x${p99.ratio}), keyset loop ${keysetLoopP99.p99Us}us (x${keysetLoopP99.ratio}); baseline windows ${p99.baselineP99Us.join(', ')}us`,
    );
    return {
      rows: options.rows,
      loadRate: options.loadRate,
      loadSettleSeconds: options.loadSettleSeconds,
      warmupRuns: options.warmupRuns,
      baselineWindows: options.baselineWindows,
      windowSeconds: options.windowSeconds,
      runs,
      vsKeysetLoop,
      vsSingleStatement,
      p99,
      keysetLoopP99,
    };
  } finally {
    await load.stop();
    await backfillPool.end();
    await admin.end();
  }
}

/** {@link PooledP99} of `runs` (one per round) against `baselines`, cut into at least `windows` windows. */
export function pooledP99(
  runs: readonly Float64Array[],
  baselines: readonly Float64Array[],
  windows: number,
): PooledP99 {
  const baseline = concat(baselines);
  const all = concat(runs).sort();
  const baselineP99Us = windowP99s(baseline, all.length, windows);
  const p99Us = round(quantile(all, 0.99));
  const subsets = runs.length < 2 ? [runs] : runs.map((_, left) => runs.filter((__, index) => index !== left));
  const spread = subsets.flatMap((subset) => {
    const some = concat(subset).sort();
    const p99 = quantile(some, 0.99);
    return windowP99s(baseline, some.length, windows).map((window) => ratio(p99, window));
  });
  return { operations: all.length, p99Us, baselineP99Us, ratio: ratio(p99Us, median(baselineP99Us)), spread };
}

function concat(parts: readonly Float64Array[]): Float64Array {
  const out = new Float64Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/**
 * The p99 of each window of `size` consecutive latencies of `samples` (a shorter remainder
 * is left out); when that makes fewer than `atLeast` windows (a run longer than the
 * baseline period allows), of `atLeast` equal windows instead.
 */
export function windowP99s(samples: Float64Array, size: number, atLeast: number): number[] {
  const count = Math.max(atLeast, Math.floor(samples.length / Math.max(1, size)));
  const width = Math.floor(samples.length / count);
  const out: number[] = [];
  for (let index = 0; index < count && width > 0; index++) {
    out.push(round(quantile(samples.slice(index * width, (index + 1) * width).sort(), 0.99)));
  }
  return out;
}

function describe(approach: BackfillApproach, batch: number): string {
  if (approach === 'flagshift') return 'createBackfill(driver, migration).run(), default options';
  if (approach === 'keyset-loop')
    return `WITH batch AS (SELECT id ... WHERE id > $last ORDER BY id LIMIT ${batch}) UPDATE ... WHERE id > $last AND id <= max(batch.id), autocommitted, back to back`;
  return `UPDATE ${SCHEMA}.users SET username = user_name`;
}
