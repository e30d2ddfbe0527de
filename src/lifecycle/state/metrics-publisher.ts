/**
 * Fleet metrics in the database: every process that serves traffic publishes its
 * in-memory metrics snapshot now and then, and operators (the dashboard, the CLI) read
 * the sum over all live processes (see `readMetrics`). The database is already shared by
 * every process, so no metrics backend is needed to see what the whole fleet sees.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { z } from 'zod';
import { parseOptions, type Queryable } from '../../kernel/index.js';
import { type MemoryMetrics, type MigrationMetrics, sideOperations } from '../../metrics/index.js';
import type { Side } from '../../model/index.js';
import { lifecycleOptionExpectations, lifecycleOptionsShape } from './lifecycle-options.js';
import { ensureMetricsTables, publishSnapshot } from './metrics-tables.js';
import { DEFAULT_STATE_SCHEMA } from './state-schema.js';

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
   * Schema of flagshift's state tables; `metrics_snapshots`, `metrics_history` and
   * `metrics_sides` are created there when missing.
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
  /** How many publishes succeeded and failed, and the last error. */
  stats(): MetricsPublisherStats;
  /** Stops the timer and publishes one last time, so the final counts are seen. Never rejects. */
  stop(): Promise<void>;
}

const MAX_RETENTION_MS = 30 * 86_400_000;

/** The cumulative counters a publish takes differences of. */
const COUNTERS = [
  'comparisons',
  'mismatches',
  'oldOperations',
  'oldErrors',
  'oldLatencies',
  'newOperations',
  'newErrors',
  'newLatencies',
] as const;

type PublishedCounts = Record<(typeof COUNTERS)[number], number>;

/** A `metrics_sides` row's figures: see `SnapshotPublish.sides`. */
type SideDelta = [number, number, number | null, number, number, number | null];

function countsOf(m: MigrationMetrics): PublishedCounts {
  return {
    comparisons: m.comparisons,
    mismatches: m.mismatches,
    oldOperations: sideOperations(m, 'old'),
    oldErrors: m.errors.bySide.old,
    oldLatencies: m.latency.old.count,
    newOperations: sideOperations(m, 'new'),
    newErrors: m.errors.bySide.new,
    newLatencies: m.latency.new.count,
  };
}

const publisherSchema = z.strictObject({
  driver: z.custom<Queryable>((value) => typeof (value as Partial<Queryable> | null)?.query === 'function'),
  metrics: z.custom<Pick<MemoryMetrics, 'snapshot'>>(
    (value) => typeof (value as Partial<MemoryMetrics> | null)?.snapshot === 'function',
  ),
  intervalMs: z.number().int().min(10).max(3_600_000).optional(),
  processId: z.string().min(1).max(200).optional(),
  stateSchema: lifecycleOptionsShape.stateSchema,
  retentionMs: z.number().int().min(1000).max(MAX_RETENTION_MS).optional(),
  onError: z.function().optional(),
});

const PUBLISHER_EXPECTED = {
  driver: 'a driver from flagshift/pg or flagshift/pglite',
  metrics: 'an object with a snapshot() function, like createMemoryMetrics()',
  intervalMs: 'an integer from 10 to 3600000',
  processId: 'a string of 1 to 200 characters',
  stateSchema: lifecycleOptionExpectations.stateSchema,
  retentionMs: `an integer from 1000 to ${MAX_RETENTION_MS}`,
  onError: 'a function',
};

/**
 * Starts publishing a process's metrics: every `intervalMs` its snapshot is upserted into
 * `<stateSchema>.metrics_snapshots` (one row per process), the comparisons and
 * mismatches since the previous publish are appended to `metrics_history` (stamped with
 * when that window began, the previous publish or the publisher's start, so the promotion
 * gate never takes comparisons made before a stage change for evidence after it), and each side's
 * operations, errors and p99 latency to `metrics_sides`, in one statement that also prunes
 * rows older than `retentionMs`. The timer is `unref`'d, so it
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
  const parsed = parseOptions('metrics publisher', publisherSchema, options, PUBLISHER_EXPECTED);
  const { driver, metrics } = parsed;
  const intervalMs = parsed.intervalMs ?? 5000;
  const schema = parsed.stateSchema ?? DEFAULT_STATE_SCHEMA;
  const retentionMs = parsed.retentionMs ?? 6 * 3_600_000;
  const processId = parsed.processId ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  let failing = false;
  const onError =
    (options.onError as ((error: unknown) => void) | undefined) ??
    ((error: unknown) => {
      if (failing) return;
      console.warn(`flagshift: publishing metrics to ${schema}.metrics_snapshots failed (will retry): ${error}`);
    });

  let tablesReady = false;
  let sidesReady = false;
  let published = 0;
  let errors = 0;
  let lastError: unknown;
  let stopped = false;
  let inFlight: Promise<boolean> | undefined;
  // Cumulative counts last published per migration: history rows carry the difference.
  let lastCounts = new Map<string, PublishedCounts>();
  // When the counts of the next history rows began to accrue: the last successful publish's
  // snapshot by the database's clock, or, before the first, this publisher's start by the process's.
  const createdAt = performance.now();
  let windowStart: Date | undefined;

  async function publishOnce(): Promise<boolean> {
    try {
      const snapshotAt = performance.now();
      const snapshot = metrics.snapshot();
      const counts = new Map<string, PublishedCounts>();
      const deltas: Record<string, [number, number]> = {};
      const sides: Record<string, SideDelta> = {};
      for (const [name, m] of Object.entries(snapshot.migrations)) {
        const now = countsOf(m);
        counts.set(name, now);
        const before = lastCounts.get(name);
        // A reset() since the last publish makes the counters smaller: count from zero.
        const reset = before === undefined || COUNTERS.some((key) => now[key] < before[key]);
        const since = (key: (typeof COUNTERS)[number]) => (reset ? now[key] : now[key] - before[key]);
        const comparisons = since('comparisons');
        const mismatches = since('mismatches');
        if (comparisons > 0 || mismatches > 0) deltas[name] = [comparisons, mismatches];
        // The window's p99 only when the side measured something since the last publish:
        // otherwise it describes an older interval than this row's.
        const p99 = (side: Side) => (since(`${side}Latencies`) > 0 ? m.latency[side].p99 : null);
        const side: SideDelta = [
          since('oldOperations'),
          since('oldErrors'),
          p99('old'),
          since('newOperations'),
          since('newErrors'),
          p99('new'),
        ];
        if (side.some((value) => value !== null && value > 0)) sides[name] = side;
      }
      if (!tablesReady) {
        sidesReady = await ensureMetricsTables(driver, schema);
        tablesReady = true;
        if (!sidesReady) {
          onError(
            new Error(
              `table ${schema}.metrics_sides is missing or this role can't write it, so error rates and latency per side are not published (comparisons still are); create it as the tables' owner and grant INSERT, UPDATE, DELETE on it to this role`,
            ),
          );
        }
      }
      const done = await publishSnapshot(driver, schema, {
        processId,
        intervalMs,
        snapshot: JSON.stringify(snapshot),
        deltas: JSON.stringify(deltas),
        windowStart,
        windowMs: performance.now() - createdAt,
        ...(sidesReady ? { sides: JSON.stringify(sides) } : {}),
        retentionMs,
      });
      lastCounts = counts;
      // The next window's counts began at the snapshot, before the publish ran: its time by
      // the database's clock, less everything since the snapshot by the process's, is never
      // later than the snapshot, so no comparison of this window is stamped into the next.
      // Never before this window's own stamp either: the windows stay in their order.
      const fromSnapshot = done.at.getTime() - (performance.now() - snapshotAt);
      windowStart = new Date(Math.max(fromSnapshot, done.windowAt.getTime() + 1));
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
