/**
 * `flagshift/prometheus`: flagshift's metric events as Prometheus metrics with
 * `prom-client` (an optional peer dependency), guardrail trips included, and a ready
 * request listener for `/metrics`.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * import { combineSinks, createGuardrails, createMemoryMetrics } from 'flagshift';
 * import { createPrometheusMetrics, metricsHandler } from 'flagshift/prometheus';
 *
 * const guardrails = createGuardrails();
 * const prometheus = createPrometheusMetrics({ guardrails });
 * createServer(metricsHandler(prometheus.registry)).listen(9464);
 * const metrics = combineSinks(createMemoryMetrics(), prometheus, guardrails);
 * // createRepository(migration, { driver, flags, metrics, readGuard: guardrails });
 * ```
 *
 * @module
 */

export type { BackfillProgressValue, GuardrailsLike } from '../../src/internal.js';
export { type MetricsHandlerOptions, metricsHandler, type RegistryLike } from './metrics-handler.js';
export {
  createPrometheusMetrics,
  PROMETHEUS_METRIC_NAMES,
  type PrometheusMetrics,
  type PrometheusMetricsOptions,
  type PrometheusRegistryLike,
} from './prometheus-metrics.js';
