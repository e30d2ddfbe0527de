/**
 * Part 4: backfilling a rename (`username` from `user_name`) on a large table, three ways,
 * each while a steady load of point reads and dual writes runs through the SDK:
 *
 * - `flagshift`: `createBackfill(driver, migration).run()` with its defaults (keyset
 *   batches of adaptive size, each committed with its checkpoint and followed by a pause
 *   of 0.3 times its duration).
 * - `single-statement`: one `UPDATE users SET username = user_name`, the throughput limit,
 *   which holds every row's lock until it commits.
 * - `naive-loop`: what blog posts recommend, batches of 1000 ids with a 50 ms sleep.
 *
 * Every approach starts from a freshly created table, so none inherits another's bloat.
 * Before the first measured run, flagshift's backfill (twice) and the single statement run
 * unmeasured on a small table of their own; the naive loop sends the single statement's
 * kind of `UPDATE`.
 */
import { createBackfill } from 'flagshift/lifecycle';
import { createPgDriver } from 'flagshift/pg';
import pg from 'pg';
import { createUsers, usersMigration, usersRepository } from './fixture.js';
import { type LoadSummary, startLoad } from './load.js';
import { ratio, round, sleep } from './stats.js';

/** One approach's run. */
export interface BackfillRun {
  readonly approach: 'flagshift' | 'single-statement' | 'naive-loop';
  /** Which of the approach's runs this is (1 on). */
  readonly repeat: number;
  readonly description: string;
  readonly rows: number;
  readonly seconds: number;
  readonly rowsPerSecond: number;
  /** Rows whose new column the approach changed, where it reports it. */
  readonly rowsChanged: number | undefined;
  /** Rows whose `username` still differs from `user_name` afterwards (0: complete). */
  readonly rowsLeftBehind: number;
  /** The concurrent load while it ran. */
  readonly load: LoadSummary;
  /** The load with no backfill, measured just before this run on the same fresh table. */
  readonly baseline: LoadSummary;
  /** The load's p99 during the run over its p99 in {@link baseline}. */
  readonly p99Ratio: number;
}

/** Part 4's results. */
export interface BackfillResults {
  readonly rows: number;
  /** Operations per second of the concurrent load. */
  readonly loadRate: number;
  /** The load with no backfill running, before the first run (each run has its own). */
  readonly baseline: LoadSummary;
  readonly runs: readonly BackfillRun[];
}

/** Knobs of {@link runBackfills}. */
export interface BackfillBenchOptions {
  readonly connectionString: string;
  readonly rows: number;
  /** How long the load alone is measured. */
  readonly baselineSeconds: number;
  /** Operations per second of the concurrent load. */
  readonly loadRate: number;
  /** Connections of the load's pool. */
  readonly loadConnections: number;
  /** Runs of flagshift and of the single statement (the naive loop, at a minute a run, runs once). */
  readonly repeats: number;
  readonly log: (line: string) => void;
}

const SCHEMA = 'bench_backfill';
const WARM_SCHEMA = 'bench_backfill_warmup';
const WARM_ROWS = 50_000;
const NAIVE_BATCH = 1000;
const NAIVE_SLEEP_MS = 50;

/** Runs part 4. */
export async function runBackfills(options: BackfillBenchOptions): Promise<BackfillResults> {
  const { log } = options;
  const migration = usersMigration(SCHEMA);
  const admin = new pg.Client({ connectionString: options.connectionString });
  admin.on('error', () => undefined);
  await admin.connect();
  const loadPool = new pg.Pool({ connectionString: options.connectionString, max: options.loadConnections });
  loadPool.on('error', () => undefined);
  const repo = usersRepository(migration, loadPool, 'dualwrite');
  // The backfill's own connections, opened before any run and kept open between them
  // (no idle timeout): like the single statement's and the naive loop's connection, they
  // are not part of what a run times.
  const backfillPool = new pg.Pool({ connectionString: options.connectionString, max: 2, idleTimeoutMillis: 0 });
  backfillPool.on('error', () => undefined);
  const backfillDriver = createPgDriver(backfillPool);
  for (const client of await Promise.all([backfillPool.connect(), backfillPool.connect()])) client.release();

  const fresh = async () => {
    log(`creating ${SCHEMA}.users with ${options.rows} rows, username empty`);
    await createUsers(admin, SCHEMA, options.rows, false);
    // The backfill's own state (checkpoints, ranges) from an earlier approach or run.
    await admin.query('DROP SCHEMA IF EXISTS flagshift CASCADE');
    await repo.check();
    // Writes out what building the table dirtied, so that neither the baseline nor the
    // run that follows shares the machine with the checkpointer flushing the fixture.
    await admin.query('CHECKPOINT');
  };
  const leftBehind = async () => {
    const { rows } = await admin.query<{ n: string }>(
      `SELECT count(*) AS n FROM ${SCHEMA}.users WHERE username IS DISTINCT FROM user_name`,
    );
    return Number(rows[0]!.n);
  };

  // Warm-up of each approach's code, in this process and in the server, on a small table
  // of its own: the first backfill a process runs compiles its functions while the load's
  // callbacks wait, which measured several times the p99 of the runs after it.
  const warmMigration = usersMigration(WARM_SCHEMA);
  await createUsers(admin, WARM_SCHEMA, WARM_ROWS, false);
  await createBackfill(backfillDriver, warmMigration, { restart: true }).run();
  await admin.query(`UPDATE ${WARM_SCHEMA}.users SET username = NULL`);
  await createBackfill(backfillDriver, warmMigration, { restart: true }).run();
  await admin.query(`UPDATE ${WARM_SCHEMA}.users SET username = user_name`);
  await admin.query(`DROP SCHEMA ${WARM_SCHEMA} CASCADE`);

  await fresh();
  const load = startLoad(repo, { rate: options.loadRate, rows: options.rows });
  try {
    // Warm-up: connections, JIT, the table in shared buffers.
    await sleep(1000);
    const runs: BackfillRun[] = [];
    const approaches: [BackfillRun['approach'], string, () => Promise<number | undefined>][] = [
      [
        'flagshift',
        'createBackfill(driver, migration).run(), default options',
        async () => (await createBackfill(backfillDriver, migration, { restart: true }).run()).rowsChanged,
      ],
      [
        'single-statement',
        `UPDATE ${SCHEMA}.users SET username = user_name`,
        async () => (await admin.query(`UPDATE ${SCHEMA}.users SET username = user_name`)).rowCount ?? undefined,
      ],
      [
        'naive-loop',
        `UPDATE ... WHERE id >= $1 AND id < $1 + ${NAIVE_BATCH}, then sleep ${NAIVE_SLEEP_MS} ms`,
        async () => {
          let changed = 0;
          for (let low = 1; low <= options.rows; low += NAIVE_BATCH) {
            const result = await admin.query(
              `UPDATE ${SCHEMA}.users SET username = user_name WHERE id >= $1 AND id < $2`,
              [low, low + NAIVE_BATCH],
            );
            changed += result.rowCount ?? 0;
            await sleep(NAIVE_SLEEP_MS);
          }
          return changed;
        },
      ],
    ];
    // flagshift and the single statement take turns, so drift in the machine reaches both
    // alike; the headline numbers are the medians of their runs.
    const schedule: { approach: (typeof approaches)[number]; repeat: number }[] = [];
    for (let repeat = 1; repeat <= options.repeats; repeat++) {
      schedule.push({ approach: approaches[0]!, repeat }, { approach: approaches[1]!, repeat });
    }
    schedule.push({ approach: approaches[2]!, repeat: 1 });
    for (const [index, step] of schedule.entries()) {
      const [approach, description, run] = step.approach;
      const { repeat } = step;
      if (index > 0) {
        await fresh();
        await sleep(1000);
      }
      // The baseline of each run is measured right before it, on its own fresh table: a
      // p99 swings with whatever else the machine does, so the two sides of a ratio are
      // taken as close together as they can be.
      load.measure();
      await sleep(options.baselineSeconds * 1000);
      const baseline = await load.take();
      log(
        `baseline load before ${approach}: ${baseline.opsPerSecond} ops/s, p50 ${baseline.all.medianUs}us, p99 ${baseline.all.p99Us}us`,
      );
      log(`backfill: ${approach}${approach === 'naive-loop' ? '' : ` (run ${repeat} of ${options.repeats})`}`);
      load.measure();
      const started = performance.now();
      const rowsChanged = await run();
      const seconds = (performance.now() - started) / 1000;
      const during = await load.take();
      const result: BackfillRun = {
        approach,
        repeat,
        description,
        rows: options.rows,
        seconds: round(seconds),
        rowsPerSecond: Math.round(options.rows / seconds),
        rowsChanged,
        rowsLeftBehind: await leftBehind(),
        load: during,
        baseline,
        p99Ratio: ratio(during.all.p99Us, baseline.all.p99Us),
      };
      log(
        `  ${result.rowsPerSecond} rows/s in ${result.seconds}s; load p99 ${during.all.p99Us}us (x${result.p99Ratio} of baseline), max ${during.all.maxUs}us, ${result.rowsLeftBehind} rows left behind`,
      );
      // A failed operation's latency is not in the p99: a run whose load failed is not comparable.
      if (during.errors > 0 || baseline.errors > 0) {
        log(
          `  warning: ${during.errors} load operations failed during the run, ${baseline.errors} during its baseline`,
        );
      }
      runs.push(result);
    }
    return {
      rows: options.rows,
      loadRate: options.loadRate,
      baseline: runs[0]!.baseline,
      runs,
    };
  } finally {
    await load.stop();
    repo.close();
    await loadPool.end();
    await backfillPool.end();
    await admin.end();
  }
}
