/** Metric events, the series and labels every sink exports, and the in-memory sink. */
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
  gaugeMigration,
  gaugePercent,
  gaugeStage,
  guardrailsOption,
  parseExporterOptions,
  progressRatio,
} from './exporter-inputs.js';
export {
  GUARDRAIL_REASONS,
  type GuardrailEvent,
  type GuardrailReason,
  type GuardrailTrip,
} from './guardrail-events.js';
export {
  errorCodeLabel,
  fallbackReasonLabel,
  fallbackSourceLabel,
  flagKeyLabel,
  guardrailReasonLabel,
  migrationLabel,
  OTHER,
  operationLabel,
  sideLabel,
  sidesLabel,
  stageLabel,
} from './labels.js';
export { createMemoryMetrics, type MemoryMetrics, type MemoryMetricsOptions } from './memory-metrics.js';
export type {
  JsonValue,
  LatencySide,
  LatencySummary,
  MetricsSnapshot,
  MetricsTotals,
  MigrationMetrics,
  MismatchSampleSnapshot,
} from './metrics-snapshot.js';
