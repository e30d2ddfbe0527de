/**
 * A migration's charts over the selected window: the mismatch rate, each side's error
 * rate and each side's p99 latency, with the guardrail thresholds drawn as dashed lines.
 * Points sit on the database's clock (the middle of each bucket), so the browser's clock
 * skew can't shift them.
 */
import { h } from './dom.js';
import { int, minutes, ms, pct, seconds, time } from './format.js';
import { type ChartLine, type ChartSpec, createTimeChart, type TimeChart } from './time-chart.js';
import type { FleetView, MigrationMetricsView, MismatchRatePoint, SideSeriesPoint, ThresholdsView } from './types.js';

/** A line of a chart as the series gives it: role, label, value of a point, value at the window's ends. */
type LineOf<P> = readonly [ChartLine['role'], string, (p: P) => number | null, (number | null)?];

/** A dashed line at a guardrail's bound (`value` of a point; `edge` at the window's ends), unless the check is off. */
function threshold<P>(
  label: string,
  bound: number | false,
  value: (p: P, bound: number) => number | null,
  edge: (bound: number) => number | null,
): LineOf<P>[] {
  return bound === false ? [] : [['threshold', label, (p) => value(p, bound), edge(bound)]];
}

/** A chart with the line of text under it. */
interface ChartPanel {
  readonly root: HTMLElement;
  readonly chart: TimeChart;
  readonly note: HTMLElement;
}

/** The three charts of a card. */
export interface FleetCharts {
  readonly mismatch: ChartPanel;
  readonly errors: ChartPanel;
  readonly latency: ChartPanel;
}

function panel(testid: string): ChartPanel {
  const chart = createTimeChart(`${testid}-plot`);
  const note = h('p', { className: 'note' });
  return { root: h('div', { 'data-testid': testid }, chart.root, note), chart, note };
}

/** Builds the charts of a card, empty until {@link renderFleetCharts} or {@link clearFleetCharts}. */
export function createFleetCharts(): FleetCharts {
  return { mismatch: panel('mismatch-chart'), errors: panel('error-chart'), latency: panel('latency-chart') };
}

/** Shows `message` (text or an element) in place of every chart. */
export function clearFleetCharts(charts: FleetCharts, message: () => Node): void {
  for (const p of [charts.mismatch, charts.errors, charts.latency]) {
    p.chart.render(null, message());
    p.note.textContent = '';
  }
}

/**
 * Draws `x`'s series over the fleet's window, ending at `now` (the database's clock when
 * the state was read, in epoch milliseconds; the browser's when that is not a number).
 */
export function renderFleetCharts(
  charts: FleetCharts,
  x: MigrationMetricsView,
  thresholds: ThresholdsView,
  fleet: FleetView,
  now: number,
): void {
  const windowMs = fleet.status === 'ok' ? fleet.value.seriesWindowMs : 3600000;
  const bucketMs = fleet.status === 'ok' ? fleet.value.seriesBucketMs : 60000;
  const end = Number.isFinite(now) ? now : Date.now();
  const start = end - windowMs;
  const span = minutes(windowMs);
  const every = `one point per ${seconds(bucketMs)}`;
  const middle = (iso: string) => Math.min(end, Math.max(start, Date.parse(iso) + bucketMs / 2));
  // The window's ends are points too, so the axis and the threshold lines span the window.
  const spec = <P extends { readonly at: string }>(
    points: readonly P[],
    label: string,
    format: (value: number) => string,
    minTop: number,
    lines: readonly LineOf<P>[],
  ): ChartSpec | null =>
    points.length === 0
      ? null
      : {
          label: `${label} over the last ${span}`,
          start,
          end,
          format,
          minTop,
          at: [start, ...points.map((p) => middle(p.at)), end],
          lines: lines.map(([role, name, value, edge]) => ({
            role,
            label: name,
            values: [edge ?? null, ...points.map(value), edge ?? null],
          })),
        };
  const share = (v: number) => pct(v, v > 0 && v < 0.01 ? 2 : 1);

  const series = x.series;
  const maxMismatch = thresholds.maxMismatchRate;
  charts.mismatch.chart.render(
    spec(series, 'mismatch rate', share, maxMismatch === false ? 0.001 : maxMismatch, [
      ['rate', 'mismatch rate', (p) => p.rate],
      ...threshold<MismatchRatePoint>(
        `guardrail ${share(maxMismatch || 0)}`,
        maxMismatch,
        (_, b) => b,
        (b) => b,
      ),
    ]),
    h('p', { className: 'muted', text: `No comparisons in the last ${span}.` }),
  );
  const last = series[series.length - 1];
  charts.mismatch.note.textContent =
    last === undefined
      ? ''
      : `Latest ${time(last.at)}: ${pct(last.rate)} (${int(last.mismatches)} of ${int(last.comparisons)} comparisons); ${every}.`;

  const sides = x.sideSeries;
  const noSides = `No process published errors or latency per side in the last ${span}.`;
  const maxErrors = thresholds.maxNewErrorRate;
  charts.errors.chart.render(
    spec(sides, 'error rate per side', share, maxErrors === false ? 0.001 : maxErrors, [
      ['old', 'old', (p) => (p.old.operations > 0 ? p.old.errorRate : null)],
      ['new', 'new', (p) => (p.new.operations > 0 ? p.new.errorRate : null)],
      ...threshold<SideSeriesPoint>(
        `guardrail (new) ${share(maxErrors || 0)}`,
        maxErrors,
        (_, b) => b,
        (b) => b,
      ),
    ]),
    h('p', { className: 'muted', text: noSides }),
  );
  const lastSide = sides[sides.length - 1];
  charts.errors.note.textContent =
    lastSide === undefined
      ? ''
      : `Latest ${time(lastSide.at)}: old ${int(lastSide.old.errors)} of ${int(lastSide.old.operations)}, new ${int(lastSide.new.errors)} of ${int(lastSide.new.operations)} operations failed; ${every}.`;

  const ratio = thresholds.maxLatencyRatio;
  let peak = 0;
  for (const p of sides) peak = Math.max(peak, p.old.p99 ?? 0, p.new.p99 ?? 0);
  charts.latency.chart.render(
    spec(sides, 'p99 latency per side', ms, peak > 0 ? peak : 1, [
      ['old', 'old p99', (p) => p.old.p99],
      ['new', 'new p99', (p) => p.new.p99],
      // The guardrail compares the sides: the new side's bound moves with the old side's p99.
      ...threshold<SideSeriesPoint>(
        `guardrail (new) ${ratio}x old`,
        ratio,
        (p, b) => (p.old.p99 === null ? null : p.old.p99 * b),
        () => null,
      ),
    ]),
    h('p', { className: 'muted', text: noSides }),
  );
  charts.latency.note.textContent =
    lastSide === undefined
      ? ''
      : `Latest ${time(lastSide.at)}: old ${ms(lastSide.old.p99)}, new ${ms(lastSide.new.p99)} (the highest p99 any process published); ${every}.`;
}
