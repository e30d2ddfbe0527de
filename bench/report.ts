/**
 * Turns the parts' results into `bench/results.json` (headline numbers at the top level,
 * everything else below them), a markdown summary and the table printed at the end.
 */
import type { BackfillResults } from './backfill.js';
import type { Comparison } from './comparison.js';
import type { Machine } from './machine.js';
import type { RoutingResult } from './routing.js';
import type { SqlRouterResults } from './sql-router.js';
import { median, ratio } from './stats.js';

/** The knobs a run used. */
export interface Knobs {
  readonly rows: number;
  readonly iterations: number;
  readonly pageIterations: number;
  readonly warmup: number;
  readonly decisions: number;
  readonly coldDecisions: number;
  readonly batches: number;
  readonly backfillRows: number;
  readonly backfillRepeats: number;
  readonly loadRate: number;
  readonly baselineSeconds: number;
  readonly parts: readonly number[];
}

/** Everything a run measured. */
export interface RunResults {
  readonly machine: Machine;
  /** The module `import 'flagshift'` resolved to, relative to the project: the build measured. */
  readonly sdkEntry: string;
  readonly knobs: Knobs;
  readonly startedAt: string;
  readonly durationSeconds: number;
  readonly pointOps: readonly Comparison[] | undefined;
  /** Part 6: pages of a keyset-paged `find`. */
  readonly pages: readonly Comparison[] | undefined;
  readonly routing: readonly RoutingResult[] | undefined;
  readonly backfill: BackfillResults | undefined;
  readonly sqlRouter?: SqlRouterResults | undefined;
}

interface Target {
  readonly metric: string;
  readonly target: string;
  readonly value: number | null;
  readonly met: boolean | null;
}

const TARGETS: readonly [string, string, (value: number) => boolean][] = [
  ['read_off_ratio', '<= 1.05', (v) => v <= 1.05],
  ['read_shadow_ratio', '<= 1.15', (v) => v <= 1.15],
  ['read_live_ratio', '<= 1.05', (v) => v <= 1.05],
  ['dual_write_ratio', '<= 1.10', (v) => v <= 1.1],
  ['decisions_per_second_warm', '>= 1,000,000', (v) => v >= 1_000_000],
  ['backfill_vs_single_statement', '>= 0.5', (v) => v >= 0.5],
  ['backfill_p99_ratio', '<= 2', (v) => v <= 2],
  ['sql_router_point_read_ratio', '<= 1.05', (v) => v <= 1.05],
  ['sql_router_point_write_ratio', '<= 1.10', (v) => v <= 1.1],
];

function find(results: RunResults, name: string, connections: 'client' | 'pool8'): Comparison | undefined {
  return results.pointOps?.find((c) => c.name === name && c.connections === connections);
}

/** The headline ratio of a comparison: the worse of one connection and the pool of 8. */
function worse(results: RunResults, name: string): number | null {
  const ratios = (['client', 'pool8'] as const)
    .map((connections) => find(results, name, connections)?.medianRatio)
    .filter((value): value is number => value !== undefined);
  return ratios.length === 0 ? null : Math.max(...ratios);
}

/** The object written to `bench/results.json`. */
export function resultsJson(results: RunResults): Record<string, unknown> {
  const runsOf = (approach: string) => results.backfill?.runs.filter((run) => run.approach === approach) ?? [];
  const flagshiftRuns = runsOf('flagshift');
  const singleRuns = runsOf('single-statement');
  // Medians over the runs: one run's p99 is its slowest 1%, which the machine alone can move severalfold.
  const flagshift =
    flagshiftRuns.length === 0
      ? undefined
      : {
          rowsPerSecond: Math.round(median(flagshiftRuns.map((run) => run.rowsPerSecond))),
          p99Ratio: Math.round(median(flagshiftRuns.map((run) => run.p99Ratio)) * 1000) / 1000,
        };
  const single =
    singleRuns.length === 0
      ? undefined
      : { rowsPerSecond: Math.round(median(singleRuns.map((run) => run.rowsPerSecond))) };
  const headline: Record<string, number | null> = {
    read_off_ratio: worse(results, 'read-off'),
    read_shadow_ratio: worse(results, 'read-shadow'),
    read_live_ratio: worse(results, 'read-live'),
    dual_write_ratio: worse(results, 'dual-write'),
    decisions_per_second_warm: results.routing?.find((r) => r.name === 'warm')?.decisionsPerSecond ?? null,
    backfill_rows_per_second: flagshift?.rowsPerSecond ?? null,
    backfill_vs_single_statement:
      flagshift !== undefined && single !== undefined ? ratio(flagshift.rowsPerSecond, single.rowsPerSecond) : null,
    backfill_p99_ratio: flagshift?.p99Ratio ?? null,
    sql_router_point_read_ratio:
      results.sqlRouter?.comparisons.find((c) => c.name === 'point-read')?.medianRatio ?? null,
    sql_router_point_write_ratio:
      results.sqlRouter?.comparisons.find((c) => c.name === 'point-write')?.medianRatio ?? null,
    sql_router_plan_misses: results.sqlRouter?.planMisses ?? null,
  };
  const perConfig: Record<string, number | null> = {};
  for (const name of ['read-off', 'read-shadow', 'read-live', 'dual-write']) {
    for (const connections of ['client', 'pool8'] as const) {
      const key = `${name.replace('-', '_')}_ratio_${connections === 'client' ? 'one_connection' : 'pool8'}`;
      perConfig[key] = find(results, name, connections)?.medianRatio ?? null;
    }
  }
  for (const name of ['read-off', 'read-shadow', 'read-live', 'dual-write']) {
    perConfig[`${name.replace('-', '_')}_same_sql_ratio_one_connection`] =
      find(results, `${name}/same-sql`, 'client')?.medianRatio ?? null;
  }
  perConfig['read_off_with_metrics_ratio_one_connection'] =
    find(results, 'read-off/metrics', 'client')?.medianRatio ?? null;
  const perRun = {
    backfill_p99_ratio_runs: flagshiftRuns.map((run) => run.p99Ratio),
    backfill_rows_per_second_runs: flagshiftRuns.map((run) => run.rowsPerSecond),
    single_statement_rows_per_second_runs: singleRuns.map((run) => run.rowsPerSecond),
  };
  const targets: Target[] = TARGETS.map(([metric, target, check]) => {
    const value = headline[metric] ?? null;
    return { metric, target, value, met: value === null ? null : check(value) };
  });
  return {
    ...headline,
    ...perConfig,
    ...perRun,
    decisions_per_second_cold: results.routing?.find((r) => r.name === 'cold')?.decisionsPerSecond ?? null,
    decisions_per_second_openfeature_warm:
      results.routing?.find((r) => r.name === 'openfeature-warm')?.decisionsPerSecond ?? null,
    decisions_per_second_openfeature_cold:
      results.routing?.find((r) => r.name === 'openfeature-cold')?.decisionsPerSecond ?? null,
    notes:
      'Ratios are SDK median over raw median. The headline read/write ratios are the worse of one connection and a pool of 8; both are listed per config. The backfill numbers are medians over the runs of part 4, each run listed.',
    targets,
    startedAt: results.startedAt,
    durationSeconds: results.durationSeconds,
    sdkEntry: results.sdkEntry,
    machine: results.machine,
    knobs: results.knobs,
    pointOps: results.pointOps ?? null,
    pages: results.pages ?? null,
    routing: results.routing ?? null,
    backfill: results.backfill ?? null,
    sqlRouter: results.sqlRouter ?? null,
  };
}

function table(header: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const lines = [header, header.map(() => '---'), ...rows.map((row) => row.map(String))];
  return lines.map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}

function fmt(value: number): string {
  // Ratios keep three decimals; latencies and rates one.
  return value.toLocaleString('en-US', { maximumFractionDigits: Math.abs(value) < 10 ? 3 : 1 });
}

/** The table of raw-against-SDK comparisons, one row per comparison and connection setup. */
function comparisonTable(comparisons: readonly Comparison[]): string {
  return table(
    ['operation', 'connections', 'raw median', 'SDK median', 'ratio', 'raw p99', 'SDK p99', 'p99 ratio', 'ops/s'],
    comparisons.map((c) => [
      c.name,
      c.connections === 'client' ? '1' : '8 (pool)',
      fmt(c.raw.medianUs),
      fmt(c.sdk.medianUs),
      c.medianRatio.toFixed(3),
      fmt(c.raw.p99Us),
      fmt(c.sdk.p99Us),
      c.p99Ratio.toFixed(3),
      fmt(c.opsPerSecond),
    ]),
  );
}

/** The markdown summary (`bench/results.md`), also the basis of BENCHMARKS.md. */
export function resultsMarkdown(results: RunResults, json: Record<string, unknown>): string {
  const { machine, knobs } = results;
  const out: string[] = [];
  out.push(`# flagshift benchmark results`, '');
  out.push(
    `Run at ${results.startedAt}, ${Math.round(results.durationSeconds)} s, measuring flagshift from \`${results.sdkEntry}\`. Machine: ${machine.cpus} CPUs (${machine.cpuModel}), ${machine.memoryGiB} GiB, Node ${machine.node}, ${machine.postgres}, ${machine.os}. Load average ${machine.loadAverageStart} at the start, ${machine.loadAverageEnd} at the end.`,
    '',
  );
  out.push(
    `Knobs: BENCH_ROWS=${knobs.rows} BENCH_ITERATIONS=${knobs.iterations} BENCH_PAGE_ITERATIONS=${knobs.pageIterations} BENCH_WARMUP=${knobs.warmup} BENCH_DECISIONS=${knobs.decisions} BENCH_COLD_DECISIONS=${knobs.coldDecisions} BENCH_BATCHES=${knobs.batches} BENCH_BACKFILL_ROWS=${knobs.backfillRows} BENCH_BACKFILL_REPEATS=${knobs.backfillRepeats} BENCH_LOAD_RATE=${knobs.loadRate} BENCH_BASELINE_SECONDS=${knobs.baselineSeconds} BENCH_PARTS=${knobs.parts.join(',')}`,
    '',
  );
  out.push('## Targets', '');
  out.push(
    table(
      ['metric', 'target', 'value', 'met'],
      (json['targets'] as Target[]).map((t) => [
        `\`${t.metric}\``,
        t.target,
        t.value === null ? 'not run' : fmt(t.value),
        t.met === null ? '-' : t.met ? 'yes' : 'no',
      ]),
    ),
    '',
  );
  if (results.pointOps !== undefined) {
    out.push('## 1-2. Reads and updates by primary key, raw `pg` against the SDK', '');
    out.push(
      "Both sides interleaved in one run (alternating per iteration), on the same connection setup. Latencies in microseconds. Raw `pg` prepares its statement under a name, as the SDK's pg driver prepares its own (parsed and planned once per connection), on the same connection setup: like with like. In the `/same-sql` rows raw sends the SDK's own statement (in `shadow` and `live` it fetches both sides), prepared the same way, so their ratio is the SDK's own cost in process.",
      '',
    );
    out.push(comparisonTable(results.pointOps), '');
    const sql = new Map<string, string>();
    for (const c of results.pointOps) {
      sql.set(`raw ${c.name.startsWith('read') ? 'read' : 'update'}`, c.rawSql);
      sql.set(`SDK ${c.name}`, c.sdkSql);
    }
    out.push('Statements:', '');
    for (const [label, text] of sql) out.push(`- ${label}: \`${text}\``);
    out.push('');
  }
  if (results.routing !== undefined) {
    out.push('## 3. Routing alone (resolve + route per entity, no database)', '');
    out.push(
      table(
        ['config', 'decisions/s', 'ns/decision', 'description'],
        results.routing.map((r) => [r.name, fmt(r.decisionsPerSecond), fmt(r.nsPerDecision), r.description]),
      ),
      '',
    );
  }
  if (results.backfill !== undefined) {
    const b = results.backfill;
    const singleRates = b.runs.filter((run) => run.approach === 'single-statement').map((run) => run.rowsPerSecond);
    const single = singleRates.length === 0 ? undefined : { rowsPerSecond: median(singleRates) };
    out.push(`## 4. Backfill of a rename on ${fmt(b.rows)} rows, under load`, '');
    out.push(
      `Concurrent load: ${b.loadRate} operations/s (open loop), alternating \`repo.get\` and a dual-write \`repo.update\` by random id, on a pool of 8. Before the first measured run, flagshift's backfill (twice) and the single statement run unmeasured on a 50,000-row table of their own (warm-up). Each approach's baseline is the same load with no backfill, measured for ${results.knobs.baselineSeconds} s right before it on its own fresh table. flagshift and the single statement run ${results.knobs.backfillRepeats} times each, taking turns; the headline numbers are the medians of their runs (\`vs single\` here is each run over the single statement's median).`,
      '',
    );
    out.push(
      table(
        [
          'approach',
          'run',
          'seconds',
          'rows/s',
          'vs single',
          'load p50 (us)',
          'load p99 (us)',
          'baseline p99 (us)',
          'p99 vs baseline',
          'load max (us)',
          'left behind',
        ],
        b.runs.map((run) => {
          return [
            run.approach,
            run.repeat,
            fmt(run.seconds),
            fmt(run.rowsPerSecond),
            single === undefined ? '-' : ratio(run.rowsPerSecond, single.rowsPerSecond).toFixed(2),
            fmt(run.load.all.medianUs),
            fmt(run.load.all.p99Us),
            fmt(run.baseline.all.p99Us),
            run.p99Ratio.toFixed(2),
            fmt(run.load.all.maxUs),
            run.rowsLeftBehind,
          ];
        }),
      ),
      '',
    );
    const described = new Map(b.runs.map((run) => [run.approach, run.description]));
    for (const [approach, description] of described) out.push(`- ${approach}: ${description}`);
    out.push('');
  }
  if (results.pages !== undefined) {
    out.push('## 6. A keyset-paged `find`, raw `pg` against the SDK', '');
    out.push(
      "The 50 rows after a cursor, in key order, from 1,000 start positions spread over the table; both sides interleaved in one run. Raw sends the page as an application writes it by hand, one unnamed statement (`WHERE id > $1 ORDER BY id LIMIT 50`); the SDK selects the page's keys, then reads their rows routed per entity, two prepared statements. In the `/same-sql` rows raw sends the SDK's two statements, prepared the same way, so their ratio is the SDK's own cost in process. Latencies in microseconds.",
      '',
    );
    out.push(comparisonTable(results.pages), '', 'Statements:', '');
    const sql = new Map<string, string>();
    for (const c of results.pages) {
      sql.set(`raw ${c.name}`, c.rawSql);
      sql.set(`SDK ${c.name}`, c.sdkSql);
    }
    for (const [label, text] of sql) out.push(`- ${label}: \`${text}\``);
    out.push('');
  }
  return out.join('\n');
}

/** The plain-text table printed at the end of a run. */
export function resultsTable(json: Record<string, unknown>): string {
  const targets = json['targets'] as Target[];
  const width = Math.max(...targets.map((t) => t.metric.length));
  const lines = ['', 'metric'.padEnd(width) + '  value'.padStart(16) + '  target'.padEnd(16) + '  met'];
  for (const t of targets) {
    lines.push(
      `${t.metric.padEnd(width)}  ${(t.value === null ? 'not run' : fmt(t.value)).padStart(14)}  ${t.target.padEnd(14)}  ${
        t.met === null ? '-' : t.met ? 'yes' : 'NO'
      }`,
    );
  }
  lines.push(
    `${'backfill_rows_per_second'.padEnd(width)}  ${fmt((json['backfill_rows_per_second'] as number) ?? 0).padStart(14)}`,
  );
  return lines.join('\n');
}
