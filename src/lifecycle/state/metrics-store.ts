/**
 * Fleet metrics in the database: every process that serves traffic publishes its
 * in-memory metrics snapshot now and then, and operators (the dashboard, the CLI) read
 * the sum over all live processes, plus a short history for "mismatch rate over time".
 * The database is already shared by every process, so no metrics backend is needed to
 * see what the whole fleet sees.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { z } from 'zod';
import { ConfigurationError, type Queryable } from '../../kernel/index.js';
import type {
  JsonValue,
  LatencySide,
  LatencySummary,
  MemoryMetrics,
  MetricsSnapshot,
  MetricsTotals,
  MismatchSampleSnapshot,
} from '../../metrics/index.js';
import { identifierProblem, type Side, STAGES, type Stage } from '../../model/index.js';

/** The default schema of flagshift's state tables. */
const DEFAULT_SCHEMA = 'flagshift';
const LATENCY_SIDES: readonly LatencySide[] = ['old', 'new', 'both'];

/** Options of {@link createMetricsPublisher}. */
export interface MetricsPublisherOptions {
  /** Where to publish: any flagshift driver (each publish is one statement). */
  readonly driver: Queryable;
  /** The process's metrics, e.g. the `createMemoryMetrics()` its repositories report to. */
  readonly metrics: Pick<MemoryMetrics, 'snapshot'>;
  /**
   * How often to publish, in milliseconds.
   * @default 5000
   */
  readonly intervalMs?: number;
  /**
   * Identifies this process's row; two processes must not share one.
   * @default `${hostname}:${pid}:${random}`
   */
  readonly processId?: string;
  /**
   * Schema of flagshift's state tables; `metrics_snapshots` and `metrics_history` are
   * created there when missing.
   * @default 'flagshift'
   */
  readonly stateSchema?: string;
  /**
   * How long history rows (and rows of processes that stopped publishing) are kept, in
   * milliseconds. Every publish prunes what is older.
   * @default 21600000 (6 hours)
   */
  readonly retentionMs?: number;
  /**
   * Called with each failed publish. Failures never reach the data path; they are counted
   * in {@link MetricsPublisher.stats}.
   * @default a `console.warn` on the first failure and on each recovery
   */
  readonly onError?: (error: unknown) => void;
}

/** What a publisher has done so far. */
export interface MetricsPublisherStats {
  readonly published: number;
  readonly errors: number;
  /** The most recent failure, cleared by the next success. */
  readonly lastError: unknown;
}

/** A running publisher. Create with {@link createMetricsPublisher}. */
export interface MetricsPublisher {
  readonly processId: string;
  /** Publishes now (waiting for a publish in flight first). Resolves `false` on failure; never rejects. */
  publish(): Promise<boolean>;
  stats(): MetricsPublisherStats;
  /** Stops the timer and publishes one last time, so the final counts are seen. Never rejects. */
  stop(): Promise<void>;
}

const identifier = z
  .string()
  .refine((value) => identifierProblem(value) === undefined, 'must be a plain identifier (letters, digits, _)');

const publisherSchema = z.strictObject({
  driver: z.custom<Queryable>(
    (value) => typeof (value as Partial<Queryable> | null)?.query === 'function',
    'must be a driver from flagshift/pg or flagshift/pglite',
  ),
  metrics: z.custom<Pick<MemoryMetrics, 'snapshot'>>(
    (value) => typeof (value as Partial<MemoryMetrics> | null)?.snapshot === 'function',
    'must have a snapshot() function, like createMemoryMetrics()',
  ),
  intervalMs: z.number().int().min(10).max(3_600_000).optional(),
  processId: z.string().min(1).max(200).optional(),
  stateSchema: identifier.optional(),
  retentionMs: z
    .number()
    .int()
    .min(1000)
    .max(30 * 86_400_000)
    .optional(),
  onError: z.function().optional(),
});

function configurationError(what: string, error: z.ZodError): ConfigurationError {
  const issue = error.issues[0]!;
  const path = issue.path.join('.');
  if (issue.code === 'unrecognized_keys') {
    return new ConfigurationError(`${what} option "${issue.keys[0]}" is not a known option`, { path: issue.keys[0] });
  }
  return new ConfigurationError(`${what} option "${path}" ${issue.message}`, { path, cause: error });
}

/** `"schema"`, checked. */
function quoteSchema(schema: string): string {
  const problem = identifierProblem(schema);
  if (problem !== undefined) {
    throw new ConfigurationError(`option "stateSchema": ${JSON.stringify(schema)} ${problem}`, { path: 'stateSchema' });
  }
  return `"${schema}"`;
}

function sqlLiteral(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

/**
 * Creates `metrics_snapshots` and `metrics_history` when missing. One DO block under an
 * advisory lock, so processes starting together don't race on `CREATE TABLE IF NOT EXISTS`.
 * An administrator can run it once (or the same DDL) and grant a publishing role only
 * `INSERT, UPDATE, DELETE` on the two tables.
 */
export async function ensureMetricsTables(db: Queryable, schema: string = DEFAULT_SCHEMA): Promise<void> {
  const s = quoteSchema(schema);
  // Looked up first, so a role without CREATE can publish into tables an administrator made.
  const present = await db.query<{ n: number }>(
    'SELECT ((to_regclass($1) IS NOT NULL)::int + (to_regclass($2) IS NOT NULL)::int) AS n',
    [`${s}.metrics_snapshots`, `${s}.metrics_history`],
  );
  if (present.rows[0]?.n === 2) return;
  await db.query(`DO $flagshift$
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('flagshift.metrics-tables'), hashtext(${sqlLiteral(schema)}));
  CREATE SCHEMA IF NOT EXISTS ${s};
  CREATE TABLE IF NOT EXISTS ${s}.metrics_snapshots (
    process_id text PRIMARY KEY,
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    interval_ms integer NOT NULL,
    snapshot jsonb NOT NULL
  );
  CREATE TABLE IF NOT EXISTS ${s}.metrics_history (
    migration text NOT NULL,
    process_id text NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    comparisons bigint NOT NULL,
    mismatches bigint NOT NULL
  );
  CREATE INDEX IF NOT EXISTS metrics_history_at ON ${s}.metrics_history (at);
  CREATE INDEX IF NOT EXISTS metrics_history_migration_at ON ${s}.metrics_history (migration, at);
END
$flagshift$`);
}

/**
 * Starts publishing a process's metrics: every `intervalMs` its snapshot is upserted into
 * `<stateSchema>.metrics_snapshots` (one row per process) and the comparisons and
 * mismatches since the previous publish are appended to `metrics_history`, in one
 * statement that also prunes rows older than `retentionMs`. The timer is `unref`'d, so it
 * never keeps a process alive.
 *
 * A publish that fails (the database is down, the role can't create the tables) is
 * counted and reported to `onError`, never thrown: metrics must not reach the data path.
 * Counts it could not publish are carried into the next publish.
 *
 * @throws {ConfigurationError} when an option is invalid.
 * @example
 * ```ts
 * import { createMemoryMetrics, createRepository } from 'flagshift';
 * import { createMetricsPublisher } from 'flagshift/lifecycle';
 *
 * const metrics = createMemoryMetrics();
 * const repo = createRepository(usernameRename, { driver, flags, metrics });
 * const publisher = createMetricsPublisher({ driver, metrics });
 * // ... on shutdown:
 * await publisher.stop();
 * ```
 */
export function createMetricsPublisher(options: MetricsPublisherOptions): MetricsPublisher {
  const parsed = publisherSchema.safeParse(options);
  if (!parsed.success) throw configurationError('metrics publisher', parsed.error);
  const { driver, metrics } = parsed.data;
  const intervalMs = parsed.data.intervalMs ?? 5000;
  const schema = parsed.data.stateSchema ?? DEFAULT_SCHEMA;
  const retentionMs = parsed.data.retentionMs ?? 6 * 3_600_000;
  const processId = parsed.data.processId ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const s = quoteSchema(schema);
  let failing = false;
  const onError =
    (options.onError as ((error: unknown) => void) | undefined) ??
    ((error: unknown) => {
      if (failing) return;
      console.warn(`flagshift: publishing metrics to ${schema}.metrics_snapshots failed (will retry): ${error}`);
    });

  let tablesReady = false;
  let published = 0;
  let errors = 0;
  let lastError: unknown;
  let stopped = false;
  let inFlight: Promise<boolean> | undefined;
  // Cumulative counts last published per migration: history rows carry the difference.
  let lastCounts = new Map<string, { comparisons: number; mismatches: number }>();

  const statement = `WITH snap AS (
  INSERT INTO ${s}.metrics_snapshots AS m (process_id, updated_at, interval_ms, snapshot)
  VALUES ($1, clock_timestamp(), $2, $3::jsonb)
  ON CONFLICT (process_id) DO UPDATE
    SET updated_at = EXCLUDED.updated_at, interval_ms = EXCLUDED.interval_ms, snapshot = EXCLUDED.snapshot
  RETURNING 1
), history AS (
  INSERT INTO ${s}.metrics_history (migration, process_id, at, comparisons, mismatches)
  SELECT d.key, $1, clock_timestamp(), (d.value->>0)::bigint, (d.value->>1)::bigint
    FROM jsonb_each($4::jsonb) AS d
  RETURNING 1
), pruned_history AS (
  DELETE FROM ${s}.metrics_history WHERE at < clock_timestamp() - $5::double precision * interval '1 millisecond'
  RETURNING 1
), pruned_processes AS (
  DELETE FROM ${s}.metrics_snapshots
   WHERE updated_at < clock_timestamp() - $5::double precision * interval '1 millisecond' AND process_id <> $1
  RETURNING 1
)
SELECT (SELECT count(*) FROM history)::int AS history`;

  async function publishOnce(): Promise<boolean> {
    try {
      const snapshot = metrics.snapshot();
      const counts = new Map<string, { comparisons: number; mismatches: number }>();
      const deltas: Record<string, [number, number]> = {};
      for (const [name, m] of Object.entries(snapshot.migrations)) {
        const now = { comparisons: m.comparisons, mismatches: m.mismatches };
        counts.set(name, now);
        const before = lastCounts.get(name);
        // A reset() since the last publish makes the counters smaller: count from zero.
        const reset =
          before === undefined || now.comparisons < before.comparisons || now.mismatches < before.mismatches;
        const comparisons = reset ? now.comparisons : now.comparisons - before.comparisons;
        const mismatches = reset ? now.mismatches : now.mismatches - before.mismatches;
        if (comparisons > 0 || mismatches > 0) deltas[name] = [comparisons, mismatches];
      }
      if (!tablesReady) {
        await ensureMetricsTables(driver, schema);
        tablesReady = true;
      }
      await driver.query(statement, [
        processId,
        intervalMs,
        JSON.stringify(snapshot),
        JSON.stringify(deltas),
        retentionMs,
      ]);
      lastCounts = counts;
      published++;
      if (failing) {
        failing = false;
        if (options.onError === undefined) console.warn(`flagshift: publishing metrics works again`);
      }
      lastError = undefined;
      return true;
    } catch (error) {
      errors++;
      lastError = error;
      // The tables may have been dropped; look again next time.
      tablesReady = false;
      try {
        onError(error);
      } catch {
        // A broken error listener must not break the publisher either.
      }
      failing = true;
      return false;
    }
  }

  function publish(): Promise<boolean> {
    // One publish at a time: a slow database must not pile statements up.
    const previous = inFlight ?? Promise.resolve(true);
    const next = previous.then(publishOnce);
    inFlight = next;
    void next.finally(() => {
      if (inFlight === next) inFlight = undefined;
    });
    return next;
  }

  const timer = setInterval(() => {
    if (inFlight === undefined && !stopped) void publish();
  }, intervalMs);
  timer.unref();

  return {
    processId,
    publish,
    stats: () => ({ published, errors, lastError }),
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      await publish();
    },
  };
}

/** Options of {@link readMetrics}. */
export interface ReadMetricsOptions {
  /**
   * Schema of flagshift's state tables.
   * @default 'flagshift'
   */
  readonly schema?: string;
  /**
   * A process's snapshot counts while it is younger than this, in milliseconds.
   * @default three of that process's own publish intervals, plus one second
   */
  readonly maxAgeMs?: number;
  /**
   * How far back the mismatch-rate series goes, in milliseconds.
   * @default 3600000 (1 hour)
   */
  readonly seriesWindowMs?: number;
  /**
   * Width of one point of the series, in milliseconds.
   * @default 60000
   */
  readonly seriesBucketMs?: number;
  /**
   * Most mismatch samples returned per migration (newest first).
   * @default 50
   */
  readonly sampleLimit?: number;
}

/** One point of the mismatch-rate series: the comparisons made in `[at, at + bucketMs)`. */
export interface MismatchRatePoint {
  /** Start of the bucket, ISO-8601. */
  readonly at: string;
  readonly comparisons: number;
  readonly mismatches: number;
  /** `mismatches / comparisons`. */
  readonly rate: number;
}

/**
 * One migration over every fresh process. Counters are sums (since each process started
 * or last reset its metrics), so `mismatchRate` is the fleet's, recomputed from the sums.
 */
export interface FleetMigrationMetrics extends MetricsTotals {
  /**
   * Latency per side over all processes. Percentiles can't be merged exactly from
   * summaries, so `p50`, `p90`, `p99` and `max` are the highest of any process: an upper
   * bound of the fleet's own percentile (a pooled percentile never exceeds the largest
   * per-process one), and the slow process is the one to look at. `mean` is weighted by
   * each process's window; `count` and `window` are sums.
   */
  readonly latency: Readonly<Record<LatencySide, LatencySummary>>;
  /** The most recent mismatch samples of every process, newest first. */
  readonly recentMismatches: readonly MismatchSampleSnapshot[];
  /** Fresh processes that reported this migration. */
  readonly processes: number;
  /** Mismatch rate over time, oldest first; buckets without comparisons are absent. */
  readonly series: readonly MismatchRatePoint[];
}

/** A process whose snapshot was summed. */
export interface PublishingProcess {
  readonly processId: string;
  /** When it last published, ISO-8601 (database clock). */
  readonly updatedAt: string;
}

/** What {@link readMetrics} returns. */
export interface FleetMetrics {
  /** The database's clock when read, ISO-8601. */
  readonly readAt: string;
  /** Whether the metrics tables exist (no process ever published when they don't). */
  readonly published: boolean;
  /** Fresh processes, most recent first. */
  readonly processes: readonly PublishingProcess[];
  /** Processes whose rows are too old to count: stopped or unable to reach the database. */
  readonly staleProcesses: number;
  /** By migration name, in name order. */
  readonly migrations: Readonly<Record<string, FleetMigrationMetrics>>;
  readonly seriesBucketMs: number;
}

const readSchema = z.strictObject({
  schema: identifier.optional(),
  maxAgeMs: z.number().int().min(1).optional(),
  seriesWindowMs: z
    .number()
    .int()
    .min(1000)
    .max(30 * 86_400_000)
    .optional(),
  seriesBucketMs: z.number().int().min(100).max(86_400_000).optional(),
  sampleLimit: z.number().int().min(0).max(10_000).optional(),
});

/**
 * Reads what every process published: the snapshots of fresh processes summed per
 * migration, and each migration's mismatch rate over time from the history. When no
 * process ever published (the tables don't exist), returns empty metrics with
 * `published: false`; nothing is created.
 *
 * @throws {ConfigurationError} when an option is invalid.
 * @throws the driver's error when the database fails.
 * @example
 * ```ts
 * import { readMetrics } from 'flagshift/lifecycle';
 *
 * const fleet = await readMetrics(driver, { seriesWindowMs: 15 * 60_000, seriesBucketMs: 10_000 });
 * console.log(fleet.migrations['users-username']?.mismatchRate);
 * ```
 */
export async function readMetrics(db: Queryable, options: ReadMetricsOptions = {}): Promise<FleetMetrics> {
  const parsed = readSchema.safeParse(options);
  if (!parsed.success) throw configurationError('read metrics', parsed.error);
  const schema = parsed.data.schema ?? DEFAULT_SCHEMA;
  const s = quoteSchema(schema);
  const bucketMs = parsed.data.seriesBucketMs ?? 60_000;
  const windowMs = parsed.data.seriesWindowMs ?? 3_600_000;
  const sampleLimit = parsed.data.sampleLimit ?? 50;
  const maxAgeMs = parsed.data.maxAgeMs ?? null;

  const clock = await db.query<{ now: unknown; tables: number }>(
    `SELECT clock_timestamp() AS now,
            ((to_regclass($1) IS NOT NULL)::int + (to_regclass($2) IS NOT NULL)::int) AS tables`,
    [`${s}.metrics_snapshots`, `${s}.metrics_history`],
  );
  const readAt = isoOf(clock.rows[0]?.now);
  if (clock.rows[0]?.tables !== 2) {
    return { readAt, published: false, processes: [], staleProcesses: 0, migrations: {}, seriesBucketMs: bucketMs };
  }

  const { rows } = await db.query<{ process_id: string; updated_at: unknown; snapshot: unknown; fresh: boolean }>(
    `SELECT process_id, updated_at, snapshot,
            updated_at >= clock_timestamp() - coalesce($1::double precision, interval_ms * 3.0 + 1000) * interval '1 millisecond' AS fresh
       FROM ${s}.metrics_snapshots ORDER BY updated_at DESC`,
    [maxAgeMs],
  );
  const fresh = rows.filter((row) => row.fresh);
  const series = await db.query<{ migration: string; bucket: unknown; comparisons: unknown; mismatches: unknown }>(
    `SELECT migration,
            floor(extract(epoch FROM at)::double precision * 1000 / $1::double precision) * $1::double precision AS bucket,
            sum(comparisons)::bigint AS comparisons, sum(mismatches)::bigint AS mismatches
       FROM ${s}.metrics_history
      WHERE at >= clock_timestamp() - $2::double precision * interval '1 millisecond'
      GROUP BY 1, 2 ORDER BY 1, 2`,
    [bucketMs, windowMs],
  );

  const merged = new Map<string, MigrationAccumulator>();
  for (const row of fresh) {
    const snapshot = parseJson(row.snapshot) as Partial<MetricsSnapshot> | null;
    const migrations = snapshot?.migrations;
    if (typeof migrations !== 'object' || migrations === null) continue;
    for (const [name, metrics] of Object.entries(migrations)) {
      if (typeof metrics !== 'object' || metrics === null) continue;
      let acc = merged.get(name);
      if (acc === undefined) {
        acc = newAccumulator();
        merged.set(name, acc);
      }
      accumulate(acc, metrics as unknown as Record<string, unknown>);
    }
  }
  const points = new Map<string, MismatchRatePoint[]>();
  for (const row of series.rows) {
    const comparisons = Number(row.comparisons);
    if (!(comparisons > 0)) continue;
    const mismatches = Number(row.mismatches);
    let list = points.get(row.migration);
    if (list === undefined) {
      list = [];
      points.set(row.migration, list);
    }
    list.push({
      at: new Date(Number(row.bucket)).toISOString(),
      comparisons,
      mismatches,
      rate: mismatches / comparisons,
    });
  }

  const names = [...new Set([...merged.keys(), ...points.keys()])].sort();
  const migrations: Record<string, FleetMigrationMetrics> = {};
  for (const name of names) {
    const acc = merged.get(name) ?? newAccumulator();
    Object.defineProperty(migrations, name, {
      value: finish(acc, points.get(name) ?? [], sampleLimit),
      enumerable: true,
      writable: true,
    });
  }
  return {
    readAt,
    published: true,
    processes: fresh.map((row) => ({ processId: row.process_id, updatedAt: isoOf(row.updated_at) })),
    staleProcesses: rows.length - fresh.length,
    migrations,
    seriesBucketMs: bucketMs,
  };
}

interface LatencyAccumulator {
  count: number;
  window: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  weightedMean: number;
}

interface MigrationAccumulator {
  processes: number;
  reads: { total: number; entities: number; bySide: Record<Side, number>; byStage: Record<Stage, number> };
  writes: { total: number; entities: number; bySide: Record<Side, number>; byOperation: Record<string, number> };
  comparisons: number;
  matched: number;
  mismatches: number;
  errors: { total: number; bySide: Record<Side, number>; byCode: Record<string, number> };
  fallbacks: {
    total: number;
    byReason: Record<string, number>;
    bySource: Record<string, number>;
    byFlag: Record<string, number>;
  };
  latency: Record<LatencySide, LatencyAccumulator>;
  samples: MismatchSampleSnapshot[];
}

function zeroLatency(): LatencyAccumulator {
  return { count: 0, window: 0, p50: 0, p90: 0, p99: 0, max: 0, weightedMean: 0 };
}

function newAccumulator(): MigrationAccumulator {
  return {
    processes: 0,
    reads: {
      total: 0,
      entities: 0,
      bySide: { old: 0, new: 0 },
      byStage: Object.fromEntries(STAGES.map((stage) => [stage, 0])) as Record<Stage, number>,
    },
    writes: { total: 0, entities: 0, bySide: { old: 0, new: 0 }, byOperation: {} },
    comparisons: 0,
    matched: 0,
    mismatches: 0,
    errors: { total: 0, bySide: { old: 0, new: 0 }, byCode: {} },
    fallbacks: {
      total: 0,
      byReason: { error: 0, timeout: 0, type: 0 },
      bySource: { 'last-known-good': 0, default: 0 },
      byFlag: {},
    },
    latency: { old: zeroLatency(), new: zeroLatency(), both: zeroLatency() },
    samples: [],
  };
}

/** A count from another process's JSON: anything but a finite non-negative number is 0. */
function count(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : 0;
}

function record(value: unknown): Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

/** Adds `source`'s counts into `target`: only known keys when `open` is false. */
function addCounts(target: Record<string, number>, source: unknown, open: boolean): void {
  for (const [key, value] of Object.entries(record(source))) {
    if (!open && !Object.hasOwn(target, key)) continue;
    const n = count(value);
    if (n === 0 && Object.hasOwn(target, key)) continue;
    // defineProperty: a key like "__proto__" from the database stays a plain key.
    Object.defineProperty(target, key, {
      value: (Object.hasOwn(target, key) ? target[key]! : 0) + n,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
}

function accumulate(acc: MigrationAccumulator, m: Record<string, unknown>): void {
  acc.processes++;
  const reads = record(m['reads']);
  acc.reads.total += count(reads['total']);
  acc.reads.entities += count(reads['entities']);
  addCounts(acc.reads.bySide, reads['bySide'], false);
  addCounts(acc.reads.byStage, reads['byStage'], false);
  const writes = record(m['writes']);
  acc.writes.total += count(writes['total']);
  acc.writes.entities += count(writes['entities']);
  addCounts(acc.writes.bySide, writes['bySide'], false);
  addCounts(acc.writes.byOperation, writes['byOperation'], true);
  acc.comparisons += count(m['comparisons']);
  acc.matched += count(m['matched']);
  acc.mismatches += count(m['mismatches']);
  const errors = record(m['errors']);
  acc.errors.total += count(errors['total']);
  addCounts(acc.errors.bySide, errors['bySide'], false);
  addCounts(acc.errors.byCode, errors['byCode'], true);
  const fallbacks = record(m['flagFallbacks']);
  acc.fallbacks.total += count(fallbacks['total']);
  addCounts(acc.fallbacks.byReason, fallbacks['byReason'], false);
  addCounts(acc.fallbacks.bySource, fallbacks['bySource'], false);
  addCounts(acc.fallbacks.byFlag, fallbacks['byFlag'], true);
  const latency = record(m['latency']);
  for (const side of LATENCY_SIDES) {
    const l = record(latency[side]);
    const target = acc.latency[side];
    const window = count(l['window']);
    target.count += count(l['count']);
    target.window += window;
    target.weightedMean += count(l['mean']) * window;
    target.p50 = Math.max(target.p50, count(l['p50']));
    target.p90 = Math.max(target.p90, count(l['p90']));
    target.p99 = Math.max(target.p99, count(l['p99']));
    target.max = Math.max(target.max, count(l['max']));
  }
  const samples = m['recentMismatches'];
  if (Array.isArray(samples)) {
    for (const sample of samples) {
      const checked = checkSample(sample);
      if (checked !== undefined) acc.samples.push(checked);
    }
  }
}

/** A sample from another process's JSON, or `undefined` when it is not one. */
function checkSample(value: unknown): MismatchSampleSnapshot | undefined {
  const sample = record(value);
  if (typeof sample['migration'] !== 'string' || typeof sample['at'] !== 'string' || !Array.isArray(sample['diffs'])) {
    return undefined;
  }
  const diffs = sample['diffs'].map((diff) => {
    const d = record(diff);
    return {
      field: String(d['field'] ?? ''),
      kind: String(d['kind'] ?? 'value') as MismatchSampleSnapshot['diffs'][number]['kind'],
      old: (d['old'] ?? null) as JsonValue,
      new: (d['new'] ?? null) as JsonValue,
    };
  });
  return {
    migration: sample['migration'],
    stage: String(sample['stage'] ?? '') as Stage,
    operation: String(sample['operation'] ?? '') as MismatchSampleSnapshot['operation'],
    key: (sample['key'] ?? null) as JsonValue,
    diffs,
    at: sample['at'],
  };
}

function finish(acc: MigrationAccumulator, series: MismatchRatePoint[], sampleLimit: number): FleetMigrationMetrics {
  const latency = Object.fromEntries(
    LATENCY_SIDES.map((side) => {
      const l = acc.latency[side];
      return [
        side,
        {
          count: l.count,
          window: l.window,
          p50: l.p50,
          p90: l.p90,
          p99: l.p99,
          max: l.max,
          mean: l.window === 0 ? 0 : l.weightedMean / l.window,
        },
      ];
    }),
  ) as Record<LatencySide, LatencySummary>;
  const samples = acc.samples
    .map((sample, index) => ({ sample, index, time: Date.parse(sample.at) }))
    // Newest first; unparseable times last; ties keep the order they came in.
    .sort(
      (a, b) =>
        (Number.isNaN(b.time) ? -Infinity : b.time) - (Number.isNaN(a.time) ? -Infinity : a.time) || a.index - b.index,
    )
    .slice(0, sampleLimit)
    .map(({ sample }) => sample);
  return {
    reads: acc.reads,
    writes: { ...acc.writes, byOperation: sortedKeys(acc.writes.byOperation) },
    comparisons: acc.comparisons,
    matched: acc.matched,
    mismatches: acc.mismatches,
    mismatchRate: acc.comparisons === 0 ? 0 : Math.min(1, acc.mismatches / acc.comparisons),
    errors: { ...acc.errors, byCode: sortedKeys(acc.errors.byCode) },
    flagFallbacks: {
      total: acc.fallbacks.total,
      byReason: acc.fallbacks.byReason as MetricsTotals['flagFallbacks']['byReason'],
      bySource: acc.fallbacks.bySource as MetricsTotals['flagFallbacks']['bySource'],
      byFlag: sortedKeys(acc.fallbacks.byFlag),
    },
    latency,
    recentMismatches: samples,
    processes: acc.processes,
    series,
  };
}

function sortedKeys(map: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const key of Object.keys(map).sort()) {
    Object.defineProperty(out, key, { value: map[key], enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function parseJson(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  try {
    return JSON.parse(value);
  } catch {
    return undefined;
  }
}

function isoOf(value: unknown): string {
  const date = value instanceof Date ? value : new Date(String(value));
  return Number.isNaN(date.getTime()) ? String(value) : date.toISOString();
}
