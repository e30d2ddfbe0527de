/**
 * Label values from metric events, bounded by core's shared rules (src/metric-labels.ts):
 * what doesn't fit its label's known set becomes `other`. Prometheus uses core's names
 * unchanged; the label names themselves (`code`, `sides`, ...) are chosen in
 * prometheus-metrics.ts.
 */
export * from '../../src/metric-labels.js';
