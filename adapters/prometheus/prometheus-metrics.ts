import { Counter, Gauge, Histogram, type Metric, Registry } from 'prom-client';
import { z } from 'zod';
import { ConfigurationError, type MetricEvent, type MetricsSink, STAGES, type Stage } from '../../src/index.js';
import {
  type BackfillProgressValue,
  errorCodeLabel,
  fallbackReasonLabel,
  fallbackSourceLabel,
  type GuardrailsLike,
  gaugeMigration,
  gaugePercent,
  gaugeStage,
  guardrailReasonLabel,
  guardrailsOption,
  migrationLabel,
  operationLabel,
  parseExporterOptions,
  progressRatio,
  sideLabel,
  sidesLabel,
  stageLabel,
} from '../../src/internal.js';

/** Options of {@link createPrometheusMetrics}. */
export interface PrometheusMetricsOptions {
  /**
   * The registry to register the metrics on. Metrics already registered under the same
   * names (by another sink on this registry) are reused.
   * @default a new `Registry`
   */
  readonly registry?: Registry;
  /**
   * Prefix of every metric name.
   * @default 'flagshift_'
   */
  readonly prefix?: string;
  /**
   * Upper bounds of the latency histogram's buckets, in seconds.
   * @default [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
   */
  readonly latencyBuckets?: readonly number[];
  /**
   * Guardrails (from `createGuardrails`) to export: `guardrail_trips_total` counts trips,
   * `guardrail_tripped` is 1 while a migration's reads are held on the old side.
   * @default none
   */
  readonly guardrails?: GuardrailsLike;
}

/** A metrics sink that records into prom-client metrics, and setters for gauges the events don't carry. */
export interface PrometheusMetrics extends MetricsSink {
  /** The registry the metrics are on, for {@link metricsHandler} or your own endpoint. */
  readonly registry: Registry;
  /** Sets `read_percent{migration}`: the read-percentage flag's value, 0 to 100. */
  setReadPercent(migration: string, percent: number): void;
  /** Sets `backfill_progress_ratio{migration}`, 0 to 1 (`done / total`; `1` when `total` is 0). */
  setBackfillProgress(migration: string, progress: BackfillProgressValue): void;
  /** Sets `stage{migration,stage}`: 1 for `stage`, 0 for the other five. */
  setStage(migration: string, stage: Stage): void;
  /** Stops watching the guardrails given in the options. The metrics stay registered. */
  close(): void;
}

/** The metric names (without prefix) {@link createPrometheusMetrics} registers. */
export const PROMETHEUS_METRIC_NAMES = Object.freeze([
  'reads_total',
  'writes_total',
  'comparisons_total',
  'mismatches_total',
  'errors_total',
  'flag_fallbacks_total',
  'latency_seconds',
  'guardrail_trips_total',
  'guardrail_tripped',
  'read_percent',
  'backfill_progress_ratio',
  'stage',
] as const);

const DEFAULT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const optionsSchema = z.strictObject({
  registry: z
    .custom<Registry>(
      (value) =>
        typeof (value as Partial<Registry> | null)?.registerMetric === 'function' &&
        typeof (value as Partial<Registry>).getSingleMetric === 'function',
    )
    .optional(),
  prefix: z
    .string()
    .regex(/^([a-zA-Z_:][a-zA-Z0-9_:]*)?$/)
    .optional(),
  latencyBuckets: z.array(z.number().positive()).min(1).optional(),
  guardrails: guardrailsOption.optional(),
});

const expected: Record<string, string> = {
  registry: 'a prom-client Registry',
  prefix: 'a Prometheus metric name prefix (letters, digits, "_" and ":", not starting with a digit)',
  latencyBuckets: 'a non-empty array of positive numbers',
  guardrails: 'guardrails from createGuardrails() (with subscribe and status)',
};

function validate(options: unknown): z.infer<typeof optionsSchema> {
  return parseExporterOptions('prometheus metrics', optionsSchema, expected, options);
}

/**
 * Reuses the metric registered under `name` when there is one (a second sink on the same
 * registry), so the two share series instead of prom-client throwing on re-registration.
 */
function registered<M extends Metric>(
  registry: Registry,
  name: string,
  kind: abstract new (...args: never[]) => M,
  create: () => M,
): M {
  const existing = registry.getSingleMetric(name);
  if (existing === undefined) return create();
  if (!(existing instanceof kind)) {
    throw new ConfigurationError(
      `prometheus metric "${name}" is already registered on this registry as another kind of metric`,
      { path: 'registry' },
    );
  }
  return existing;
}

/**
 * Records flagshift's metric events as Prometheus metrics with prom-client (an optional
 * peer dependency). Labels are bounded: migration, stage, side, operation, comparison
 * result, SQLSTATE, fallback reason and source, never entity keys or values; a value
 * outside its label's known set is exported as `other`.
 *
 * | metric (default prefix) | type | labels |
 * |---|---|---|
 * | `flagshift_reads_total` | counter | `migration`, `stage`, `side` (served), `operation` |
 * | `flagshift_writes_total` | counter | `migration`, `stage`, `sides` (`old`/`new`/`both`), `operation` |
 * | `flagshift_comparisons_total` | counter | `migration`, `stage`, `result` (`matched`/`mismatched`) |
 * | `flagshift_mismatches_total` | counter | `migration`, `stage` |
 * | `flagshift_errors_total` | counter | `migration`, `side`, `code` (SQLSTATE or flagshift code) |
 * | `flagshift_flag_fallbacks_total` | counter | `migration`, `reason`, `source` |
 * | `flagshift_latency_seconds` | histogram | `migration`, `side` (`old`/`new`/`both`), `operation` |
 * | `flagshift_guardrail_trips_total` | counter | `migration`, `reason` |
 * | `flagshift_guardrail_tripped` | gauge | `migration` |
 * | `flagshift_read_percent` | gauge | `migration` |
 * | `flagshift_backfill_progress_ratio` | gauge | `migration` |
 * | `flagshift_stage` | gauge | `migration`, `stage` |
 *
 * `reads_total` counts read operations (a `getMany` once per side it served), like the
 * in-memory sink's `reads.bySide`.
 *
 * @param options - See {@link PrometheusMetricsOptions}. @default {}
 * @throws {ConfigurationError} when an option is invalid.
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * import { createPrometheusMetrics, metricsHandler } from 'flagshift/prometheus';
 *
 * const prometheus = createPrometheusMetrics();
 * createServer(metricsHandler(prometheus.registry)).listen(9464);
 * // createRepository(migration, { driver, flags, metrics: prometheus });
 * prometheus.setReadPercent('users-username', 10);
 * ```
 */
export function createPrometheusMetrics(options: PrometheusMetricsOptions = {}): PrometheusMetrics {
  const valid = validate(options);
  const registry = valid.registry ?? new Registry();
  const prefix = valid.prefix ?? 'flagshift_';
  const registers = [registry];
  const counter = (name: string, help: string, labelNames: readonly string[]) =>
    registered(
      registry,
      prefix + name,
      Counter,
      () => new Counter({ name: prefix + name, help, labelNames, registers }),
    );
  const gauge = (name: string, help: string, labelNames: readonly string[]) =>
    registered(registry, prefix + name, Gauge, () => new Gauge({ name: prefix + name, help, labelNames, registers }));

  const reads = counter('reads_total', 'Read operations, by the side whose value the caller got.', [
    'migration',
    'stage',
    'side',
    'operation',
  ]);
  const writes = counter('writes_total', 'Acknowledged write operations, by the sides written.', [
    'migration',
    'stage',
    'sides',
    'operation',
  ]);
  const comparisons = counter('comparisons_total', 'Old/new comparisons of an entity or a result set.', [
    'migration',
    'stage',
    'result',
  ]);
  const mismatches = counter('mismatches_total', 'Comparisons whose old and new values differed.', [
    'migration',
    'stage',
  ]);
  const errors = counter('errors_total', 'Failed statements or sides, by SQLSTATE or flagshift error code.', [
    'migration',
    'side',
    'code',
  ]);
  const fallbacks = counter('flag_fallbacks_total', 'Flag evaluations that fell back to a stored decision.', [
    'migration',
    'reason',
    'source',
  ]);
  const latency = registered(
    registry,
    `${prefix}latency_seconds`,
    Histogram,
    () =>
      new Histogram({
        name: `${prefix}latency_seconds`,
        help: 'Database round trips of flagshift operations, by the sides they touched.',
        labelNames: ['migration', 'side', 'operation'],
        buckets: [...(valid.latencyBuckets ?? DEFAULT_BUCKETS)].sort((a, b) => a - b),
        registers,
      }),
  );
  const trips = counter('guardrail_trips_total', 'Guardrail trips, by the threshold crossed.', ['migration', 'reason']);
  const readPercent = gauge('read_percent', 'Read-percentage flag of a migration (0 to 100), as last set.', [
    'migration',
  ]);
  const backfill = gauge('backfill_progress_ratio', 'Share of the table the backfill has done (0 to 1).', [
    'migration',
  ]);
  const stage = gauge('stage', 'Stage of a migration, as last set: 1 for the current stage, 0 for the others.', [
    'migration',
    'stage',
  ]);

  const guardrails = valid.guardrails;
  const trippedName = `${prefix}guardrail_tripped`;
  registered(
    registry,
    trippedName,
    Gauge,
    () =>
      new Gauge({
        name: trippedName,
        help: 'Whether a migration is held on the old side by a tripped guardrail (1) or not (0).',
        labelNames: ['migration'],
        registers,
        collect(this: Gauge) {
          if (guardrails === undefined) return;
          try {
            for (const status of guardrails.status()) {
              this.set({ migration: migrationLabel(status.migration) }, status.tripped ? 1 : 0);
            }
          } catch {
            // A broken guardrails object must not fail the scrape of every other metric.
          }
        },
      }),
  );
  const unsubscribe = guardrails?.subscribe((event) => {
    if (event.type !== 'trip') return;
    trips.inc({ migration: migrationLabel(event.trip.migration), reason: guardrailReasonLabel(event.trip.reason) });
  });

  function record(event: MetricEvent): void {
    const migration = migrationLabel(event.migration);
    switch (event.type) {
      case 'read':
        reads.inc({
          migration,
          stage: stageLabel(event.stage),
          side: sideLabel(event.served),
          operation: operationLabel(event.operation),
        });
        return;
      case 'write':
        writes.inc({
          migration,
          stage: stageLabel(event.stage),
          sides: sidesLabel(event.sides),
          operation: operationLabel(event.operation),
        });
        return;
      case 'comparison':
        comparisons.inc({
          migration,
          stage: stageLabel(event.stage),
          result: event.matched ? 'matched' : 'mismatched',
        });
        return;
      case 'mismatch':
        mismatches.inc({ migration, stage: stageLabel(event.stage) });
        return;
      case 'error':
        errors.inc({ migration, side: sideLabel(event.side), code: errorCodeLabel(event.code) });
        return;
      case 'latency':
        if (!Number.isFinite(event.milliseconds) || event.milliseconds < 0) return;
        latency.observe(
          { migration, side: sideLabel(event.side, true), operation: operationLabel(event.operation) },
          event.milliseconds / 1000,
        );
        return;
      case 'flag-fallback':
        fallbacks.inc({
          migration,
          reason: fallbackReasonLabel(event.reason),
          source: fallbackSourceLabel(event.source),
        });
        return;
    }
  }

  return {
    registry,
    record(event: MetricEvent): void {
      try {
        record(event);
      } catch {
        // A sink must never throw into the data path; a malformed event is dropped.
      }
    },
    setReadPercent(migration: string, percent: number): void {
      const name = gaugeMigration(migration);
      readPercent.set({ migration: name }, gaugePercent(name, percent));
    },
    setBackfillProgress(migration: string, progress: BackfillProgressValue): void {
      const name = gaugeMigration(migration);
      backfill.set({ migration: name }, progressRatio(name, progress));
    },
    setStage(migration: string, current: Stage): void {
      const name = gaugeMigration(migration);
      gaugeStage(name, current);
      for (const each of STAGES) stage.set({ migration: name, stage: each }, each === current ? 1 : 0);
    },
    close(): void {
      unsubscribe?.();
    },
  };
}
