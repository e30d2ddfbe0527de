/** Metric events, the series and labels every sink exports, and the in-memory sink. */
export type {
  ComparisonEvent,
  ErrorEvent,
  FallbackReason,
  FlagFallbackEvent,
  LatencyEvent,
  MetricEvent,
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
export {
  combineSinks,
  createMemoryMetrics,
  type JsonValue,
  type LatencySide,
  type LatencySummary,
  type MemoryMetrics,
  type MemoryMetricsOptions,
  type MetricsSnapshot,
  type MetricsTotals,
  type MigrationMetrics,
  type MismatchSampleSnapshot,
} from './memory-metrics.js';
