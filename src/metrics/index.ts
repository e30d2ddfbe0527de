/**
 * Metric events, the one table of series and labels every exporter reads (and the sink
 * that keeps it in a backend), and the in-memory sink.
 */
export { combineSinks } from './combine-sinks.js';
export { dispatchMetricEvent, type MetricEventHandlers } from './dispatch-metric-event.js';
export type {
  ComparisonEvent,
  ErrorEvent,
  FallbackReason,
  FlagFallbackEvent,
  LatencyEvent,
  MetricEvent,
  MetricEventOf,
  MetricsSink,
  MismatchEvent,
  MismatchSample,
  Operation,
  ReadEvent,
  WriteEvent,
} from './events.js';
export {
  type BackfillProgressValue,
  type GuardrailsLike,
  guardrailsOption,
  wholeOption,
} from './exporter-inputs.js';
export {
  GUARDRAIL_REASONS,
  type GuardrailEvent,
  type GuardrailReason,
  type GuardrailTrip,
} from './guardrail-events.js';
export { createMemoryMetrics, type MemoryMetrics, type MemoryMetricsOptions } from './memory-metrics.js';
export {
  type JsonValue,
  type LatencySide,
  type LatencySummary,
  type MetricsSnapshot,
  type MetricsTotals,
  type MigrationMetrics,
  type MismatchSampleSnapshot,
  sideOperations,
} from './metrics-snapshot.js';
export {
  type LabelContext,
  labelNames,
  SERIES,
  type Series,
  type SeriesBackendName,
  type SeriesInputs,
  type SeriesRow,
  type SeriesSource,
  seriesNames,
} from './series.js';
export {
  createSeriesSink,
  type SeriesBackend,
  type SeriesInstrument,
  type SeriesLabels,
  type SeriesPull,
  type SeriesSink,
  type SeriesSinkOptions,
} from './series-sink.js';
