import { readFile } from 'node:fs/promises';
import type { MetricEvent } from 'flagshift';
import { createPrometheusMetrics } from 'flagshift/prometheus';
import { describe, expect, it } from 'vitest';
import { createGuardrails } from '../../../src/guardrails/guardrails.js';

const DASHBOARD = new URL('../../../examples/grafana-dashboard.json', import.meta.url);

/** Every `expr` of the dashboard (panel targets and annotations), and the variable queries. */
function expressions(dashboard: unknown): string[] {
  const out: string[] = [];
  const walk = (value: unknown): void => {
    if (Array.isArray(value)) value.forEach(walk);
    else if (value !== null && typeof value === 'object') {
      for (const [key, child] of Object.entries(value)) {
        if ((key === 'expr' || key === 'definition') && typeof child === 'string') out.push(child);
        else walk(child);
      }
    }
  };
  walk(dashboard);
  return out;
}

/** Series names and their label names, as the exporter exposes them after one event of each kind. */
async function exposed(): Promise<Map<string, Set<string>>> {
  const guardrails = createGuardrails({ thresholds: { maxMismatchRate: 0, minComparisons: 1 } });
  const prometheus = createPrometheusMetrics({ guardrails });
  const events: MetricEvent[] = [
    { type: 'read', migration: 'm', stage: 'shadow', route: 'shadow', served: 'old', operation: 'get', count: 1 },
    {
      type: 'write',
      migration: 'm',
      stage: 'shadow',
      route: 'shadow',
      sides: ['old', 'new'],
      operation: 'insert',
      count: 1,
    },
    { type: 'comparison', migration: 'm', stage: 'shadow', route: 'shadow', matched: false },
    {
      type: 'mismatch',
      migration: 'm',
      stage: 'shadow',
      route: 'shadow',
      sample: { migration: 'm', stage: 'shadow', route: 'shadow', operation: 'get', key: null, diffs: [], at: '' },
    },
    { type: 'error', migration: 'm', stage: 'shadow', route: 'shadow', side: 'new', operation: 'get', code: '42703' },
    { type: 'latency', migration: 'm', side: 'both', operation: 'get', milliseconds: 1 },
    { type: 'flag-fallback', migration: 'm', flagKey: 'k', reason: 'error', source: 'default' },
  ];
  for (const event of events) {
    prometheus.record(event);
    guardrails.record(event);
  }
  prometheus.setReadPercent('m', 5);
  prometheus.setBackfillProgress('m', 0.5);
  prometheus.setStage('m', 'shadow');
  const series = new Map<string, Set<string>>();
  for (const line of (await prometheus.registry.metrics()).split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s/.exec(line);
    if (match === null) continue;
    const labels = series.get(match[1]!) ?? new Set<string>();
    for (const label of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) labels.add(label[1]!);
    series.set(match[1]!, labels);
  }
  return series;
}

describe('grafana dashboard', () => {
  it('is valid JSON with unique panel ids, each query panel on the dashboard data source variable', async () => {
    const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8'));
    expect(dashboard.uid).toBe('flagshift-migrations');
    const panels = dashboard.panels as {
      id: number;
      type: string;
      datasource?: { uid: string };
      targets?: unknown[];
    }[];
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
    for (const panel of panels.filter((p) => p.type !== 'row')) {
      expect(panel.datasource?.uid).toBe('$' + '{datasource}');
      expect(panel.targets?.length).toBeGreaterThan(0);
    }
    const variables = (dashboard.templating.list as { name: string }[]).map((v) => v.name);
    expect(variables).toEqual(['datasource', 'migration']);
  });

  it('every PromQL expression names series and labels the Prometheus exporter exposes', async () => {
    const dashboard = JSON.parse(await readFile(DASHBOARD, 'utf8'));
    const series = await exposed();
    const exprs = expressions(dashboard);
    expect(exprs.length).toBeGreaterThan(10);
    const used = new Set<string>();
    for (const expr of exprs) {
      const names = [...expr.matchAll(/\b(flagshift_[a-zA-Z0-9_]+)\b/g)].map((m) => m[1]!);
      expect(names.length, expr).toBeGreaterThan(0);
      const labels = new Set<string>();
      for (const name of names) {
        expect(series.has(name), `${name} in ${expr}`).toBe(true);
        used.add(name);
        for (const label of series.get(name)!) labels.add(label);
      }
      const referenced = [
        ...[...expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)].flatMap((m) => m[1]!.split(',')),
        ...[...expr.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*"/g)].map((m) => m[1]!),
        ...[...expr.matchAll(/label_values\([^,]+,\s*([a-zA-Z_][a-zA-Z0-9_]*)\)/g)].map((m) => m[1]!),
      ].map((label) => label.trim());
      for (const label of referenced) expect(labels.has(label), `label ${label} in ${expr}`).toBe(true);
      // Balanced brackets: a cheap guard against a broken edit.
      for (const [open, close] of ['()', '{}', '[]']) {
        expect(expr.split(open!).length, expr).toBe(expr.split(close!).length);
      }
    }
    // The panels the dashboard promises.
    expect([...used].sort()).toEqual([
      'flagshift_backfill_progress_ratio',
      'flagshift_comparisons_total',
      'flagshift_errors_total',
      'flagshift_flag_fallbacks_total',
      'flagshift_guardrail_tripped',
      'flagshift_guardrail_trips_total',
      'flagshift_latency_seconds_bucket',
      'flagshift_mismatches_total',
      'flagshift_read_percent',
      'flagshift_reads_total',
      'flagshift_stage',
      'flagshift_writes_total',
    ]);
    expect(exprs.some((e) => e.startsWith('histogram_quantile(0.5,'))).toBe(true);
    expect(exprs.some((e) => e.startsWith('histogram_quantile(0.99,'))).toBe(true);
  });
});
