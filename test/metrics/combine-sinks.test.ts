import { describe, expect, it } from 'vitest';
import { ConfigurationError } from '../../src/kernel/errors.js';
import { combineSinks } from '../../src/metrics/combine-sinks.js';
import type { MetricEvent, MetricsSink } from '../../src/metrics/events.js';
import { createMemoryMetrics } from '../../src/metrics/memory-metrics.js';

const M = 'users-rename';

function latency(milliseconds: number, side: 'old' | 'new' | 'both' = 'old', migration = M): MetricEvent {
  return { type: 'latency', migration, side, operation: 'get', milliseconds };
}

describe('combineSinks', () => {
  it('metrics: fans every event out to each sink in order', () => {
    const seen: string[] = [];
    const a: MetricsSink = { record: (e) => seen.push(`a:${e.type}`) };
    const b: MetricsSink = { record: (e) => seen.push(`b:${e.type}`) };
    const sink = combineSinks(a, undefined, b);
    sink.record(latency(1));
    sink.record({ type: 'comparison', migration: M, stage: 'shadow', route: 'shadow', matched: true });
    expect(seen).toEqual(['a:latency', 'b:latency', 'a:comparison', 'b:comparison']);
  });

  it('metrics: a throwing sink neither throws nor starves the others', () => {
    const memory = createMemoryMetrics();
    const broken: MetricsSink = {
      record: () => {
        throw new Error('exporter down');
      },
    };
    const sink = combineSinks(broken, memory, broken);
    expect(() =>
      sink.record({ type: 'comparison', migration: M, stage: 'shadow', route: 'shadow', matched: true }),
    ).not.toThrow();
    expect(memory.snapshot().totals.comparisons).toBe(1);
  });

  it('metrics: rejects something that is not a sink', () => {
    expect(() => combineSinks({} as MetricsSink)).toThrow(ConfigurationError);
    expect(() => combineSinks(null as unknown as MetricsSink)).toThrow(/position 0/);
  });
});
