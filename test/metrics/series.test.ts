import { OPENTELEMETRY_INSTRUMENT_NAMES } from 'flagshift/opentelemetry';
import { PROMETHEUS_METRIC_NAMES } from 'flagshift/prometheus';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { METRIC_EVENT_TYPES } from '../../src/metrics/events.js';
import { labelNames, SERIES, type Series, seriesNames } from '../../src/metrics/series.js';

const rows: readonly Series[] = SERIES;
const backends = ['prometheus', 'opentelemetry'] as const;

describe('series table', () => {
  it('series: every metric event feeds at least one series', () => {
    for (const type of METRIC_EVENT_TYPES) {
      expect(
        rows.some((row) => row.source === type),
        type,
      ).toBe(true);
    }
  });

  it('series: names are unique in each backend, and the exporters list them in table order', () => {
    for (const backend of backends) {
      const names = rows.map((row) => row[backend].name);
      expect(new Set(names).size).toBe(names.length);
      expect(seriesNames(backend)).toEqual(names);
    }
    expect(PROMETHEUS_METRIC_NAMES).toEqual(seriesNames('prometheus'));
    expect(OPENTELEMETRY_INSTRUMENT_NAMES).toEqual(seriesNames('opentelemetry'));
    expect(Object.isFrozen(PROMETHEUS_METRIC_NAMES)).toBe(true);
  });

  it('series: no two labels of a series share a name in a backend', () => {
    for (const row of rows) {
      for (const backend of backends) {
        const names = labelNames(row, backend);
        expect(names.every((name) => typeof name === 'string' && name !== '')).toBe(true);
        expect(new Set(names).size, `${row[backend].name}: ${names.join(', ')}`).toBe(names.length);
      }
    }
  });

  it('series: a histogram has buckets in both backends, ascending', () => {
    for (const row of rows.filter((r) => r.kind === 'histogram')) {
      for (const backend of backends) {
        const buckets = row[backend].buckets ?? [];
        expect(buckets.length).toBeGreaterThan(0);
        expect([...buckets].sort((a, b) => a - b)).toEqual(buckets);
      }
    }
  });

  it('types: the name lists are tuples of the literal names', () => {
    expectTypeOf(PROMETHEUS_METRIC_NAMES[0]).toEqualTypeOf<'reads_total'>();
    expectTypeOf(OPENTELEMETRY_INSTRUMENT_NAMES[5]).toEqualTypeOf<'flag.fallbacks'>();
    expectTypeOf(PROMETHEUS_METRIC_NAMES).toEqualTypeOf(seriesNames('prometheus'));
  });
});
