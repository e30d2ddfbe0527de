/** Feeding several sinks as one, each isolated from the others' failures. */
import { ConfigurationError } from '../kernel/index.js';
import type { MetricEvent, MetricsSink } from './events.js';

/**
 * A sink that passes every event to each of `sinks` in order. A sink that throws is
 * skipped for that event; the others still receive it. `undefined` entries are dropped,
 * so optional exporters can be listed directly.
 *
 * @throws {ConfigurationError} when an entry is not a sink.
 * @example
 * ```ts
 * import { combineSinks, createMemoryMetrics } from 'flagshift';
 * const memory = createMemoryMetrics();
 * const sink = combineSinks(memory, undefined);
 * ```
 */
export function combineSinks(...sinks: readonly (MetricsSink | undefined)[]): MetricsSink {
  const targets: MetricsSink[] = [];
  sinks.forEach((sink, index) => {
    if (sink === undefined) return;
    if (typeof (sink as Partial<MetricsSink> | null)?.record !== 'function') {
      throw new ConfigurationError(`metrics sink at position ${index} has no record() function`, {
        path: `sinks[${index}]`,
      });
    }
    targets.push(sink);
  });
  return {
    record(event: MetricEvent): void {
      for (const sink of targets) {
        try {
          sink.record(event);
        } catch {
          // Isolated by contract: one failing exporter must not starve the others.
        }
      }
    },
  };
}
