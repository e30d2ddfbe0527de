/**
 * `flagshift/opentelemetry`: flagshift's metric events recorded with an OpenTelemetry
 * meter (`@opentelemetry/api`, an optional peer dependency), with the feature-flag
 * semantic conventions' attributes, guardrail trips included.
 *
 * @example
 * ```ts
 * import { metrics } from '@opentelemetry/api';
 * import { combineSinks, createGuardrails } from 'flagshift';
 * import { createOpenTelemetryMetrics } from 'flagshift/opentelemetry';
 *
 * const guardrails = createGuardrails();
 * const otel = createOpenTelemetryMetrics({ meter: metrics.getMeter('orders-api'), guardrails });
 * const sink = combineSinks(otel, guardrails);
 * // createRepository(migration, { driver, flags, metrics: sink, readGuard: guardrails });
 * ```
 *
 * @module
 */

export type { BackfillProgressValue, GuardrailsLike } from '../../src/internal.js';
export {
  type AttributesLike,
  type CounterLike,
  createOpenTelemetryMetrics,
  type HistogramLike,
  type InstrumentOptionsLike,
  type MeterLike,
  type MeterProviderLike,
  type MigrationFlagKeyLike,
  type ObservableGaugeLike,
  type ObservableResultLike,
  OPENTELEMETRY_INSTRUMENT_NAMES,
  type OpenTelemetryMetrics,
  type OpenTelemetryMetricsOptions,
} from './opentelemetry-metrics.js';
