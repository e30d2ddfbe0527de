import type { Metric } from 'prom-client';
import { z } from 'zod';
import { ConfigurationError, type MetricsSink, type Stage } from '../../src/index.js';
import {
  type BackfillProgressValue,
  createSeriesSink,
  type GuardrailsLike,
  guardrailsOption,
  labelNames,
  parseOptions,
  type Series,
  type SeriesBackend,
  seriesNames,
  wholeOption,
} from '../../src/internal.js';
import type { RegistryLike } from './metrics-handler.js';
import { promClient } from './peer.js';

const { Counter, Gauge, Histogram, Registry } = promClient;
type Registry = InstanceType<typeof Registry>;

/**
 * The part of a prom-client `Registry` flagshift uses; a real `Registry` is one. Declared
 * here so that flagshift's types hold in a project without prom-client.
 */
export interface PrometheusRegistryLike extends RegistryLike {
  /** Registers a metric; called by prom-client's metric constructors. */
  registerMetric(metric: never): void;
  /** The metric registered under `name`, if any. */
  getSingleMetric(name: string): unknown;
}

/** Options of {@link createPrometheusMetrics}. */
export interface PrometheusMetricsOptions {
  /**
   * The registry to register the metrics on. Metrics already registered under the same
   * names (by another sink on this registry) are reused.
   * @default a new `Registry`
   */
  readonly registry?: PrometheusRegistryLike;
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
  readonly registry: PrometheusRegistryLike;
  /** Sets `read_percent{migration}`: the read-percentage flag's value, 0 to 100. */
  setReadPercent(migration: string, percent: number): void;
  /** Sets `backfill_progress_ratio{migration}`, 0 to 1 (`done / total`; `1` when `total` is 0). */
  setBackfillProgress(migration: string, progress: BackfillProgressValue): void;
  /** Sets `stage{migration,stage}`: 1 for `stage`, 0 for the other five. */
  setStage(migration: string, stage: Stage): void;
  /** Stops watching the guardrails given in the options. The metrics stay registered. */
  close(): void;
}

/** The metric names (without prefix) {@link createPrometheusMetrics} registers, read off the series table. */
export const PROMETHEUS_METRIC_NAMES = seriesNames('prometheus');

/** The histogram whose buckets the `latencyBuckets` option replaces. */
const LATENCY = 'latency_seconds';

const optionsSchema = z.strictObject({
  registry: z
    .custom<Registry>(
      (value) =>
        typeof (value as Partial<PrometheusRegistryLike> | null)?.registerMetric === 'function' &&
        typeof (value as Partial<PrometheusRegistryLike>).getSingleMetric === 'function',
    )
    .optional(),
  prefix: z
    .string()
    .regex(/^([a-zA-Z_:][a-zA-Z0-9_:]*)?$/)
    .optional(),
  latencyBuckets: wholeOption(
    z
      .array(z.number().positive())
      .min(1)
      // A bound given twice makes two series of one `le`, which Prometheus refuses.
      .refine((bounds) => new Set(bounds).size === bounds.length),
  ).optional(),
  guardrails: guardrailsOption.optional(),
});

const expected = {
  registry: 'a prom-client Registry',
  prefix: 'a Prometheus metric name prefix (letters, digits, "_" and ":", not starting with a digit)',
  latencyBuckets: 'a non-empty array of distinct positive numbers',
  guardrails: 'guardrails from createGuardrails() (with subscribe and status)',
};

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
 * | `flagshift_reads_total` | counter | `migration`, `stage`, `route`, `side` (served), `operation` |
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
  const valid = parseOptions('prometheus metrics', optionsSchema, options, expected);
  const registry = valid.registry ?? new Registry();
  const prefix = valid.prefix ?? 'flagshift_';
  const registers = [registry];
  const configOf = (series: Series) => ({
    name: prefix + series.prometheus.name,
    help: series.help,
    labelNames: labelNames(series, 'prometheus'),
    registers,
  });

  const backend: SeriesBackend = {
    name: 'prometheus',
    instrument(series) {
      const config = configOf(series);
      switch (series.kind) {
        case 'counter': {
          const counter = registered(registry, config.name, Counter, () => new Counter(config));
          return { record: (value, labels) => counter.inc(labels, value) };
        }
        case 'histogram': {
          const { buckets = [], divisor = 1, name } = series.prometheus;
          const bounds = name === LATENCY && valid.latencyBuckets !== undefined ? valid.latencyBuckets : buckets;
          const histogram = registered(
            registry,
            config.name,
            Histogram,
            () => new Histogram({ ...config, buckets: [...bounds].sort((a, b) => a - b) }),
          );
          return { record: (value, labels) => histogram.observe(labels, value / divisor) };
        }
        case 'gauge': {
          const gauge = registered(registry, config.name, Gauge, () => new Gauge(config));
          return { record: (value, labels) => gauge.set(labels, value) };
        }
      }
    },
    collected(series, pull) {
      const config = configOf(series);
      registered(
        registry,
        config.name,
        Gauge,
        () =>
          new Gauge({
            ...config,
            collect(this: InstanceType<typeof Gauge>) {
              pull?.((value, labels) => this.set(labels, value));
            },
          }),
      );
    },
  };
  return { registry, ...createSeriesSink(backend, { guardrails: valid.guardrails }) };
}
