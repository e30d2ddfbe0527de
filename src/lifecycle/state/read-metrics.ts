/**
 * What the fleet sees: the sum of every live process's published metrics, and each
 * migration's mismatch rate, error rate and p99 latency per side over time, read from the fleet metrics tables by operators
 * (the dashboard, the CLI's status) without a metrics backend.
 */
import { z } from 'zod';
import { isoOf, parseJson, parseOptions, type Queryable } from '../../kernel/index.js';
import { aggregateFleet, type FleetMigrationMetrics } from './fleet-aggregation.js';
import { lifecycleOptionExpectations, lifecycleOptionsShape } from './lifecycle-options.js';
import { readHistory, readMetricsClock, readSideHistory, readSnapshots } from './metrics-tables.js';
import { DEFAULT_STATE_SCHEMA } from './state-schema.js';

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
   * How far back the series (mismatch rate, and error rate and latency per side) go, in milliseconds.
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

const MAX_WINDOW_MS = 30 * 86_400_000;

const readSchema = z.strictObject({
  schema: lifecycleOptionsShape.stateSchema,
  maxAgeMs: z.number().int().min(1).optional(),
  seriesWindowMs: z.number().int().min(1000).max(MAX_WINDOW_MS).optional(),
  seriesBucketMs: z.number().int().min(100).max(86_400_000).optional(),
  sampleLimit: z.number().int().min(0).max(10_000).optional(),
});

const READ_EXPECTED = {
  schema: lifecycleOptionExpectations.stateSchema,
  maxAgeMs: 'an integer of at least 1',
  seriesWindowMs: `an integer from 1000 to ${MAX_WINDOW_MS}`,
  seriesBucketMs: 'an integer from 100 to 86400000',
  sampleLimit: 'an integer from 0 to 10000',
};

/**
 * Reads what every process published: the snapshots of fresh processes summed per
 * migration, and each migration's mismatch rate, and error rate and p99 latency per side,
 * over time from the history. When no
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
  const parsed = parseOptions('read metrics', readSchema, options, READ_EXPECTED);
  const schema = parsed.schema ?? DEFAULT_STATE_SCHEMA;
  const bucketMs = parsed.seriesBucketMs ?? 60_000;
  const windowMs = parsed.seriesWindowMs ?? 3_600_000;
  const sampleLimit = parsed.sampleLimit ?? 50;
  const maxAgeMs = parsed.maxAgeMs ?? null;

  const clock = await readMetricsClock(db, schema);
  const readAt = isoOf(clock.now);
  if (!clock.published) {
    return { readAt, published: false, processes: [], staleProcesses: 0, migrations: {}, seriesBucketMs: bucketMs };
  }
  const rows = await readSnapshots(db, schema, maxAgeMs);
  const fresh = rows.filter((row) => row.fresh);
  const history = await readHistory(db, schema, bucketMs, windowMs);
  // Installs from before metrics_sides have no side history until a publisher creates it.
  const sideHistory = clock.sides ? await readSideHistory(db, schema, bucketMs, windowMs) : [];
  return {
    readAt,
    published: true,
    processes: fresh.map((row) => ({ processId: row.processId, updatedAt: isoOf(row.updatedAt) })),
    staleProcesses: rows.length - fresh.length,
    migrations: aggregateFleet(
      fresh.map((row) => parseJson(row.snapshot)),
      history,
      sideHistory,
      sampleLimit,
    ),
    seriesBucketMs: bucketMs,
  };
}

/**
 * The live processes' snapshots summed per migration, without the series, samples or
 * process list: the figures the promotion gate judges, in two statements. Empty when no
 * process ever published.
 */
export async function readFleetTotals(
  db: Queryable,
  schema: string = DEFAULT_STATE_SCHEMA,
): Promise<Readonly<Record<string, FleetMigrationMetrics>>> {
  if (!(await readMetricsClock(db, schema)).published) return {};
  const fresh = (await readSnapshots(db, schema, null)).filter((row) => row.fresh);
  return aggregateFleet(
    fresh.map((row) => parseJson(row.snapshot)),
    [],
    [],
    0,
  );
}
