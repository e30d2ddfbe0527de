/**
 * Turns the parts' results into `bench/results.json` (the headline measures at the top,
 * each with its spread, target and verdict; everything measured below them), the markdown
 * summary `bench/results.md` (also pasted into BENCHMARKS.md) and the table printed at the end.
 */
import type { BackfillResults } from './backfill.js';
import type { Comparison } from './comparison.js';
import type { Machine } from './machine.js';
import type { RoutingResult } from './routing.js';
import type { SaturationResult } from './saturation.js';
import type { SqlRouterResults } from './sql-router.js';
import { type Measure, measureOf, median, type Target } from './stats.js';

/** The knobs a run used. */
export interface Knobs {
  readonly rows: number;
  readonly iterations: number;
  readonly pageIterations: number;
  readonly warmup: number;
  readonly saturationOps: number;
  readonly saturationBlocks: number;
  readonly decisions: number;
  readonly coldDecisions: number;
  readonly batches: number;
  readonly backfillRows: number;
  readonly backfillRounds: number;
  readonly loadRate: number;
  readonly loadSettleSeconds: number;
  readonly backfillWarmupRuns: number;
  readonly baselineWindows: number;
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
  readonly saturation: readonly SaturationResult[] | undefined;
  /** Part 6: pages of a keyset-paged `find`. */
  readonly pages: readonly Comparison[] | undefined;
  readonly routing: readonly RoutingResult[] | undefined;
  readonly backfill: BackfillResults | undefined;
  readonly sqlRouter?: SqlRouterResults | undefined;
}

const AT_MOST = (bound: number): Target => ({ bound, better: 'lower' });
const AT_LEAST = (bound: number): Target => ({ bound, better: 'higher' });

/** One line of the targets table. */
interface TargetRow extends Measure {
  readonly metric: string;
}

function fromComparison(comparison: Comparison | undefined, target: Target): Measure | null {
  if (comparison === undefined) return null;
  return measureOf(comparison.medianRatio, comparison.blockRatios, target);
}

/** How the saturated table names the rows whose baseline is not raw `pg` sending the SDK's statement. */
const SATURATED_LABELS: Readonly<Record<string, string>> = {
  'shadow/two-queries': 'shadow (baseline: two-query read)',
  'off/over-driver': "off (baseline: the SDK's pg driver)",
  'off/raw-vs-raw': 'control: raw `pg` in both columns',
};

/** The object written to `bench/results.json`. */
export function resultsJson(results: RunResults): Record<string, unknown> {
  const point = (name: string) => results.pointOps?.find((c) => c.name === name);
  const saturated = (name: string) => results.saturation?.find((s) => s.name === name);
  const satMeasure = (name: string, target: Target) => {
    const s = saturated(name);
    return s === undefined ? null : measureOf(s.ratio, s.blockRatios, target);
  };
  const perEntity1m = results.routing?.find((r) => r.name === 'per-entity-1m');
  const b = results.backfill;
  const twoQuery = point('read-shadow/two-queries');
  const twoQuerySaturated = saturated('shadow/two-queries');
  const headline = {
    read_ratio_same_sql: {
      off: fromComparison(point('read-off/same-sql'), AT_MOST(1.05)),
      shadow: fromComparison(point('read-shadow/same-sql'), AT_MOST(1.05)),
      live: fromComparison(point('read-live/same-sql'), AT_MOST(1.05)),
      complete: fromComparison(point('read-complete/same-sql'), AT_MOST(1.05)),
    },
    dual_write_ratio_same_sql: fromComparison(point('dual-write/same-sql'), AT_MOST(1.1)),
    saturated_throughput_ratio: {
      off: satMeasure('off', AT_LEAST(0.95)),
      shadow: satMeasure('shadow', AT_LEAST(0.95)),
      live: satMeasure('live', AT_LEAST(0.95)),
    },
    // The control: raw `pg` against itself at saturation, against the same target, for
    // what the verdict says of a ratio that is 1 on this machine.
    saturated_throughput_ratio_raw_vs_raw: satMeasure('off/raw-vs-raw', AT_LEAST(0.95)),
    // A reference: the repository's read against the SDK's own driver sending the same
    // statement, against the same target, for what the repository costs over its driver
    // (the headline's baseline is raw `pg`, whose query object the driver does without).
    saturated_throughput_ratio_over_driver: satMeasure('off/over-driver', AT_LEAST(0.95)),
    decisions_per_second_1m_keys_per_entity:
      perEntity1m === undefined
        ? null
        : measureOf(perEntity1m.decisionsPerSecond, perEntity1m.batchRates, AT_LEAST(1_000_000)),
    backfill_vs_keyset_loop: b === undefined ? null : measureOf(median(b.vsKeysetLoop), b.vsKeysetLoop, AT_LEAST(0.8)),
    backfill_vs_single_statement:
      b === undefined ? null : measureOf(median(b.vsSingleStatement), b.vsSingleStatement, AT_LEAST(0.5)),
    backfill_p99_ratio: b === undefined ? null : measureOf(b.p99.ratio, b.p99.spread, AT_MOST(2)),
    // A reference: the same measure for the plain keyset loop of the same batches, against
    // the same target, for what any backfill this fast costs the load's tail on this machine.
    backfill_p99_ratio_keyset_loop:
      b === undefined || b.keysetLoopP99.operations === 0
        ? null
        : measureOf(b.keysetLoopP99.ratio, b.keysetLoopP99.spread, AT_MOST(2)),
    // The reference row: flagshift's one-statement shadow read against the LaunchDarkly-style
    // two-query read. Above 1, flagshift's lead; the target says the lead must not be lost.
    shadow_read_lead_over_two_queries: {
      latency_one_connection:
        twoQuery === undefined
          ? null
          : measureOf(
              1 / twoQuery.medianRatio,
              twoQuery.blockRatios.map((r) => 1 / r),
              AT_LEAST(1),
            ),
      throughput_saturated:
        twoQuerySaturated === undefined
          ? null
          : measureOf(twoQuerySaturated.ratio, twoQuerySaturated.blockRatios, AT_LEAST(1)),
    },
  };
  const targets: TargetRow[] = [];
  const collect = (metric: string, value: unknown) => {
    if (value === null) return;
    if (typeof value === 'object' && value !== null && 'verdict' in value) {
      targets.push({ metric, ...(value as Measure) });
      return;
    }
    for (const [key, inner] of Object.entries(value as Record<string, unknown>)) collect(`${metric}.${key}`, inner);
  };
  for (const [metric, value] of Object.entries(headline)) collect(metric, value);
  const addedUs = Object.fromEntries((results.pointOps ?? []).map((c) => [c.name, c.addedUs]));
  return {
    ...headline,
    added_us_per_call: addedUs,
    saturated_cpu_us_added_per_call: Object.fromEntries((results.saturation ?? []).map((s) => [s.name, s.cpuUsAdded])),
    sql_router_point_read_ratio:
      results.sqlRouter?.comparisons.find((c) => c.name === 'point-read')?.medianRatio ?? null,
    sql_router_point_write_ratio:
      results.sqlRouter?.comparisons.find((c) => c.name === 'point-write')?.medianRatio ?? null,
    sql_router_plan_misses: results.sqlRouter?.planMisses ?? null,
    notes:
      "Latency ratios are SDK median over baseline median on one connection, interleaved per iteration; their spread is the same ratio over 10 consecutive blocks of the run. Saturated ratios are SDK throughput over baseline throughput with 16 callers on a pool of 8, in alternating blocks; the spread is over the blocks, and saturated_cpu_us_added_per_call is the CPU per call of the SDK blocks above that of the baseline blocks (of the main thread on Linux, of the whole process elsewhere), median over the block pairs. The control (saturated_throughput_ratio_raw_vs_raw, off/raw-vs-raw) runs raw pg on both sides, the off statement under a second name in place of the SDK read, measured and judged as the SDK rows: its true ratio is 1. saturated_throughput_ratio_over_driver (off/over-driver) is the off read against the SDK's own pg driver sending the same statement: what the repository costs over its driver, which sends named statements as its own protocol messages rather than through the query object of pg. Backfill ratios are per round (paired runs), the spread over the rounds; the p99 ratio is the p99 of every operation during the runs against the baseline periods cut into windows of as many operations, its spread the same ratio with each round left out in turn, against each window. Each spread is given as its middle half (first to third quartile of the per-block or per-round values) and its whole range. A verdict is met when the middle half meets the target, missed when none of it does, inconclusive otherwise.",
    targets,
    startedAt: results.startedAt,
    durationSeconds: results.durationSeconds,
    sdkEntry: results.sdkEntry,
    machine: results.machine,
    knobs: results.knobs,
    pointOps: results.pointOps ?? null,
    saturation: results.saturation ?? null,
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

function spreadOf(values: readonly number[]): string {
  return values.length === 0 ? '-' : `${fmt(Math.min(...values))} to ${fmt(Math.max(...values))}`;
}

/** The table of one-connection comparisons. */
function comparisonTable(comparisons: readonly Comparison[]): string {
  return table(
    [
      'operation',
      'baseline median (us)',
      'SDK median (us)',
      'ratio',
      'range (10 blocks)',
      'us added',
      'baseline p99',
      'SDK p99',
    ],
    comparisons.map((c) => [
      c.name,
      fmt(c.raw.medianUs),
      fmt(c.sdk.medianUs),
      c.medianRatio.toFixed(3),
      spreadOf(c.blockRatios),
      fmt(c.addedUs),
      fmt(c.raw.p99Us),
      fmt(c.sdk.p99Us),
    ]),
  );
}

/** The markdown summary (`bench/results.md`), also pasted into BENCHMARKS.md. */
export function resultsMarkdown(results: RunResults, json: Record<string, unknown>): string {
  const { machine, knobs } = results;
  const out: string[] = [];
  out.push(
    `Run at ${results.startedAt}, ${Math.round(results.durationSeconds)} s, measuring flagshift from \`${results.sdkEntry}\`. Machine: ${machine.cpus} CPUs (${machine.cpuModel}), ${machine.memoryGiB} GiB, Node ${machine.node}, ${machine.postgres}, ${machine.os}. Load average ${machine.loadAverageStart} at the start, ${machine.loadAverageEnd} at the end.`,
    '',
    `Knobs: ${Object.entries(knobs)
      .map(([key, value]) => `${key}=${Array.isArray(value) ? value.join(',') : value}`)
      .join(' ')}`,
    '',
    '### Targets',
    '',
    table(
      ['measure', 'value', 'middle half (IQR)', 'range', 'target', 'verdict'],
      (json['targets'] as TargetRow[]).map((t) => [
        `\`${t.metric}\``,
        fmt(t.value),
        `${fmt(t.spread.q1)} to ${fmt(t.spread.q3)}`,
        `${fmt(t.spread.min)} to ${fmt(t.spread.max)} (n=${t.spread.n})`,
        t.target,
        t.verdict,
      ]),
    ),
    '',
  );
  if (results.pointOps !== undefined) {
    out.push('### 1-2. Reads and updates by primary key, one connection', '');
    out.push(comparisonTable(results.pointOps), '', 'Statements:', '');
    const sql = new Map<string, string>();
    for (const c of results.pointOps) {
      sql.set(`baseline of ${c.name}`, c.rawSql);
      sql.set(`SDK ${c.name}`, c.sdkSql);
    }
    for (const [label, text] of sql) out.push(`- ${label}: \`${text}\``);
    out.push('');
  }
  if (results.saturation !== undefined) {
    out.push('### Saturated throughput: 16 callers, pool of 8', '');
    const cpu = results.saturation[0]?.cpuSource ?? 'main thread';
    out.push(
      table(
        [
          'read',
          'baseline ops/s',
          'SDK ops/s',
          'ratio',
          'range (blocks)',
          `baseline ${cpu} CPU (us/call)`,
          `SDK ${cpu} CPU (us/call)`,
          'us added',
          'range (blocks)',
        ],
        results.saturation.map((s) => [
          SATURATED_LABELS[s.name] ?? s.name,
          fmt(s.rawOpsPerSecond),
          fmt(s.sdkOpsPerSecond),
          s.ratio.toFixed(3),
          spreadOf(s.blockRatios),
          fmt(s.rawCpuUsPerCall),
          fmt(s.sdkCpuUsPerCall),
          fmt(s.cpuUsAdded),
          spreadOf(s.blockCpuUsAdded),
        ]),
      ),
      '',
    );
  }
  if (results.routing !== undefined) {
    out.push('### 3. Routing alone (resolve + route per entity, no database)', '');
    out.push(
      table(
        ['config', 'keys', 'decisions/s', 'range (batches)', 'ns/decision', 'description'],
        results.routing.map((r) => [
          r.name,
          fmt(r.keys),
          fmt(r.decisionsPerSecond),
          spreadOf(r.batchRates),
          fmt(r.nsPerDecision),
          r.description,
        ]),
      ),
      '',
    );
  }
  if (results.backfill !== undefined) {
    const b = results.backfill;
    out.push(`### 4. Backfill of a rename on ${fmt(b.rows)} rows, after expand, under load`, '');
    out.push(
      `Load: ${b.loadRate} operations/s (open loop), alternating \`repo.get\` and a dual-write \`repo.update\`, on a pool of 8, running alone for ${b.loadSettleSeconds} s before the first round. Before the rounds, each approach runs ${b.warmupRuns} times on a 50,000-row table of its own, so the rounds run compiled code, and then once on the full table with the load running (round 0, not measured). A checkpoint and a \`sync\` come before every baseline period and run. The load alone is measured for ${b.baselineWindows * b.windowSeconds} s before each round's first run; the rounds go through the six orders of the three approaches. A run's baseline p99s are its round's period cut into windows of as many operations as the run had.`,
      '',
      table(
        [
          'round',
          'approach',
          'seconds',
          'rows/s',
          'rows/batch',
          'load p50 (us)',
          'load p99 (us)',
          'baseline p99s (us)',
          'left behind',
        ],
        b.runs.map((run) => [
          run.round,
          run.approach,
          fmt(run.seconds),
          fmt(run.rowsPerSecond),
          run.batchSize ?? '-',
          fmt(run.load.all.medianUs),
          fmt(run.load.all.p99Us),
          run.baselineP99Us.length === 0 ? '-' : run.baselineP99Us.map(fmt).join(', '),
          run.rowsLeftBehind,
        ]),
      ),
      '',
      `Per round, flagshift over the keyset loop: ${b.vsKeysetLoop.join(', ')}; over the single statement: ${b.vsSingleStatement.join(', ')}. The load's p99 over every operation of an approach's runs, against the rounds' baseline periods cut into windows of as many operations (p99s ${b.p99.baselineP99Us.map(fmt).join(', ')} us, the median one the baseline): flagshift ${fmt(b.p99.p99Us)} us over ${fmt(b.p99.operations)} operations (x${b.p99.ratio}), the keyset loop ${fmt(b.keysetLoopP99.p99Us)} us over ${fmt(b.keysetLoopP99.operations)} (x${b.keysetLoopP99.ratio}). The spread of either is the same ratio with each round left out in turn, against each baseline window.`,
      '',
    );
    const described = new Map(b.runs.map((run) => [run.approach, run.description]));
    for (const [approach, description] of described) out.push(`- ${approach}: \`${description}\``);
    out.push('');
  }
  if (results.sqlRouter !== undefined) {
    out.push('### 5. The SQL router (one connection)', '');
    out.push(
      table(
        ['query', 'stage', 'bare median (us)', 'routed median (us)', 'ratio'],
        results.sqlRouter.comparisons.map((c) => [
          c.name,
          c.stage,
          fmt(c.bare.medianUs),
          fmt(c.routed.medianUs),
          c.medianRatio.toFixed(3),
        ]),
      ),
      '',
      `Plan cache: ${results.sqlRouter.planMisses} misses, ${results.sqlRouter.planHits} hits.`,
      '',
    );
  }
  if (results.pages !== undefined) {
    out.push('### 6. A keyset-paged `find`', '');
    out.push(comparisonTable(results.pages), '');
  }
  return out.join('\n');
}

/** The plain-text table printed at the end of a run. */
export function resultsTable(json: Record<string, unknown>): string {
  const targets = json['targets'] as TargetRow[];
  const width = Math.max(...targets.map((t) => t.metric.length));
  const lines = [
    '',
    `${'measure'.padEnd(width)}  ${'value'.padStart(12)}  ${'IQR'.padEnd(26)}  ${'range'.padEnd(26)}  ${'target'.padEnd(14)}  verdict`,
  ];
  for (const t of targets) {
    lines.push(
      `${t.metric.padEnd(width)}  ${fmt(t.value).padStart(12)}  ${`${fmt(t.spread.q1)} to ${fmt(t.spread.q3)}`.padEnd(26)}  ${`${fmt(t.spread.min)} to ${fmt(t.spread.max)}`.padEnd(26)}  ${t.target.padEnd(14)}  ${t.verdict}`,
    );
  }
  return lines.join('\n');
}
