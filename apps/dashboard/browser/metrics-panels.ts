/**
 * A migration's metrics as the fleet published them: the counters, the charts over time
 * (mismatch rate, error rate and p99 latency per side, with the guardrail thresholds), latency per side and the recent mismatch samples with their field diffs (values
 * redacted unless the application chose otherwise).
 */
import { type Child, h } from './dom.js';
import { clearFleetCharts, type FleetCharts, renderFleetCharts } from './fleet-charts.js';
import { int, json, ms, pct, time } from './format.js';
import { unknownValue } from './known-value.js';
import type { FleetView, LatencyView, MigrationView, MismatchSampleView } from './types.js';

/** Where a card shows its metrics. */
export interface MetricsParts {
  readonly rate: HTMLElement;
  readonly comparisons: HTMLElement;
  readonly reads: HTMLElement;
  readonly errors: HTMLElement;
  readonly charts: FleetCharts;
  readonly latency: HTMLElement;
  readonly samplesTitle: HTMLElement;
  readonly samples: HTMLElement;
}

/** Shows `m`'s metrics; `now` is the database's clock when the state was read (epoch ms). */
export function renderMetrics(parts: MetricsParts, m: MigrationView, fleet: FleetView, now: number): void {
  const p = parts;
  const counters = [p.rate, p.comparisons, p.reads, p.errors];
  if (m.metrics.status !== 'ok') {
    for (const node of counters) node.replaceChildren('unknown');
    const reason = m.metrics.reason;
    clearFleetCharts(p.charts, () => unknownValue(reason));
    p.latency.replaceChildren(unknownValue(m.metrics.reason));
    p.samplesTitle.textContent = 'Recent mismatches';
    p.samples.replaceChildren(unknownValue(m.metrics.reason));
    return;
  }
  const x = m.metrics.value;
  if (x === null) {
    const why =
      fleet.status === 'ok' && !fleet.value.published
        ? 'No process has published metrics yet (createMetricsPublisher).'
        : 'No process publishing metrics has reported this migration recently.';
    for (const node of counters) node.replaceChildren('-');
    clearFleetCharts(p.charts, () => h('p', { className: 'muted', text: why }));
    p.latency.replaceChildren(h('p', { className: 'muted', text: why }));
    p.samplesTitle.textContent = 'Recent mismatches';
    p.samples.replaceChildren(h('p', { className: 'muted', text: why }));
    return;
  }
  p.rate.replaceChildren(h('span', { className: x.mismatches > 0 ? 'bad' : '', text: pct(x.mismatchRate) }));
  p.comparisons.replaceChildren(`${int(x.comparisons)} (${int(x.mismatches)} mismatched)`);
  p.reads.replaceChildren(`${int(x.reads.bySide.old)} / ${int(x.reads.bySide.new)}`);
  p.errors.replaceChildren(`${int(x.errors.bySide.old)} / ${int(x.errors.bySide.new)}`);
  renderFleetCharts(p.charts, x, m.thresholds, fleet, now);
  p.latency.replaceChildren(
    latencyTable(x.latency),
    h('p', { className: 'note', text: `Percentiles: the highest of ${x.processes} process(es).` }),
  );
  p.samplesTitle.textContent = `Recent mismatches (${x.recentMismatches.length})`;
  p.samples.replaceChildren(samplesTable(x.recentMismatches));
}

const SIDES = ['old', 'new', 'both'] as const;

function latencyTable(latency: LatencyView): HTMLElement {
  const rows = SIDES.map((side) => {
    const l = latency[side];
    return h(
      'tr',
      { 'data-side': side },
      h('th', { text: side === 'both' ? 'both (one statement)' : side }),
      h('td', { className: 'num', text: int(l.count) }),
      h('td', { className: 'num', text: l.count ? ms(l.p50) : '-' }),
      h('td', { className: 'num', text: l.count ? ms(l.p90) : '-' }),
      h('td', { className: 'num', text: l.count ? ms(l.p99) : '-' }),
      h('td', { className: 'num', text: l.count ? ms(l.max) : '-' }),
    );
  });
  return table(
    ['side', 'count', 'p50', 'p90', 'p99', 'max'].map((t, i) => h('th', { className: i ? 'num' : '', text: t })),
    rows,
  );
}

/** A sample without diffs still gets a row. */
const NO_DIFF = { field: '', kind: '', old: null, new: null } as const;

/** The flag's stage, and the route the read took when it differs (`live, routed as shadow`). */
function stageOf(sample: MismatchSampleView): string {
  return sample.route === sample.stage ? sample.stage : `${sample.stage}, routed as ${sample.route}`;
}

function samplesTable(samples: readonly MismatchSampleView[]): HTMLElement {
  if (samples.length === 0) return h('p', { className: 'muted', text: 'No mismatches reported.' });
  return table(
    ['seen', 'stage', 'operation', 'key', 'field', 'kind', 'old', 'new'].map((t) => h('th', { text: t })),
    samples.map((sample) =>
      (sample.diffs.length ? sample.diffs : [NO_DIFF]).map((diff, i) =>
        h(
          'tr',
          { 'data-field': diff.field },
          h('td', { text: i === 0 ? time(sample.at) : '' }),
          h('td', { text: i === 0 ? stageOf(sample) : '' }),
          h('td', { text: i === 0 ? sample.operation : '' }),
          h('td', { className: 'mono', text: i === 0 ? json(sample.key) : '' }),
          h('td', { className: 'mono', 'data-testid': 'diff-field', text: diff.field }),
          h('td', { text: diff.kind }),
          h('td', { className: 'mono', text: json(diff.old) }),
          h('td', { className: 'mono', text: json(diff.new) }),
        ),
      ),
    ),
  );
}

/** A table with one header row. */
function table(headers: readonly HTMLElement[], rows: Child): HTMLElement {
  return h('table', null, h('thead', null, h('tr', null, headers)), h('tbody', null, rows));
}
