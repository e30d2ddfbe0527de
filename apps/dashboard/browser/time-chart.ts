/**
 * A chart of values over time, drawn by uPlot (a small, well-kept canvas chart library,
 * bundled into the page). One chart is built per panel and updated in place on every
 * refresh, so the page doesn't rebuild canvases, and listeners never pile up.
 */
import uPlot from 'uplot';
import uPlotCss from 'uplot/dist/uPlot.min.css';
import { h } from './dom.js';

/** One line of a chart: `values` has one entry per x (`null` where nothing was measured). */
export interface ChartLine {
  readonly label: string;
  readonly values: readonly (number | null)[];
  /** `threshold` lines are dashed: a bound, not a measurement. */
  readonly role: 'old' | 'new' | 'rate' | 'threshold';
}

/** What a chart shows. */
export interface ChartSpec {
  /** For assistive technology: what the chart is of. */
  readonly label: string;
  /** Times of the values, in epoch milliseconds, ascending. */
  readonly at: readonly number[];
  readonly lines: readonly ChartLine[];
  /** The x axis spans `[start, end]` (epoch ms), whatever the values. */
  readonly start: number;
  readonly end: number;
  /** Formats a value for the axis and the legend. */
  readonly format: (value: number) => string;
  /** The y axis reaches at least this, so a quiet series still shows its bound. */
  readonly minTop: number;
}

/** A chart on the page. */
export interface TimeChart {
  readonly root: HTMLElement;
  /** Shows `spec`, or `empty` (text) instead of a chart. */
  render(spec: ChartSpec | null, empty: Node): void;
}

const HEIGHT = 150;

let styled = false;

/** uPlot's own stylesheet, added once under the page's CSP nonce (taken from this script's element). */
function addStylesheet(): void {
  if (styled) return;
  styled = true;
  const nonce = document.querySelector<HTMLScriptElement>('script[nonce]')?.nonce ?? '';
  const style = h('style', { nonce });
  style.textContent = uPlotCss;
  document.head.append(style);
}

function cssColor(name: string, fallback: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
}

function stroke(role: ChartLine['role']): string {
  if (role === 'old') return cssColor('--accent', '#2f6fdf');
  if (role === 'new') return cssColor('--warn', '#b7791f');
  return cssColor('--bad', '#c8372d');
}

/** Builds an empty chart; call {@link TimeChart.render} to fill it. */
export function createTimeChart(testid: string): TimeChart {
  const root = h('div', { 'data-testid': testid, className: 'time-chart' });
  let plot: uPlot | undefined;
  let shape = '';
  let latest: ChartSpec | undefined;

  function build(spec: ChartSpec, width: number): uPlot {
    addStylesheet();
    const muted = cssColor('--muted', '#5d6670');
    const line = cssColor('--line', '#dde1e6');
    const axis = {
      stroke: muted,
      font: '11px system-ui, sans-serif',
      grid: { stroke: line, width: 1 },
      ticks: { stroke: line, width: 1 },
    };
    const options: uPlot.Options = {
      width,
      height: HEIGHT,
      series: [
        {},
        ...spec.lines.map((l) => ({
          label: l.label,
          stroke: stroke(l.role),
          width: l.role === 'threshold' ? 1 : 1.5,
          ...(l.role === 'threshold' ? { dash: [6, 4], points: { show: false } } : { points: { size: 5 } }),
          value: (_: uPlot, v: number | null) => (v == null ? '-' : (latest?.format ?? String)(v)),
        })),
      ],
      scales: {
        x: { time: true, range: () => [(latest?.start ?? 0) / 1000, (latest?.end ?? 0) / 1000] },
        y: {
          range: (_u, _min, max) => [0, Math.max(max ?? 0, latest?.minTop ?? 0) * 1.15 || 1],
        },
      },
      axes: [axis, { ...axis, size: 64, values: (_u, ticks) => ticks.map((t) => (latest?.format ?? String)(t)) }],
      cursor: { points: { show: false } },
      legend: { show: true, live: true },
    };
    return new uPlot(options, data(spec), root);
  }

  return {
    root,
    render(spec, empty) {
      latest = spec ?? undefined;
      if (spec === null || spec.at.length === 0) {
        plot?.destroy();
        plot = undefined;
        shape = '';
        root.replaceChildren(empty);
        root.removeAttribute('role');
        root.removeAttribute('aria-label');
        return;
      }
      root.setAttribute('role', 'img');
      root.setAttribute('aria-label', spec.label);
      // The panel's width, less nothing: uPlot sizes the canvas, the page sizes the panel.
      const width = Math.max(240, Math.floor(root.parentElement?.clientWidth || 360));
      const next = spec.lines.map((l) => `${l.role}:${l.label}`).join('|');
      if (plot === undefined || next !== shape) {
        plot?.destroy();
        root.replaceChildren();
        plot = build(spec, width);
        shape = next;
        return;
      }
      if (plot.width !== width) plot.setSize({ width, height: HEIGHT });
      plot.setData(data(spec));
    },
  };
}

function data(spec: ChartSpec): uPlot.AlignedData {
  return [spec.at.map((t) => t / 1000), ...spec.lines.map((l) => [...l.values])] as uPlot.AlignedData;
}
