/**
 * The mismatch rate over time, drawn as inline SVG: one point per bucket of the series,
 * placed on the database's clock so the browser's clock skew can't shift them.
 */
import { h, s } from './dom.js';
import { int, minutes, pct, seconds, time } from './format.js';
import type { FleetView, MismatchRatePoint } from './types.js';

const WIDTH = 360;
const HEIGHT = 140;
const LEFT = 40;
const BOTTOM = 18;
const TOP = 8;

/**
 * The chart of `series` over the fleet's window, ending at `now` (the database's clock when
 * the state was read, in epoch milliseconds; the browser's when that is not a number).
 */
export function mismatchChart(series: readonly MismatchRatePoint[], fleet: FleetView, now: number): HTMLElement {
  const windowMs = fleet.status === 'ok' ? fleet.value.seriesWindowMs : 3600000;
  const bucketMs = fleet.status === 'ok' ? fleet.value.seriesBucketMs : 60000;
  const last = series[series.length - 1];
  if (last === undefined) {
    return h('p', { className: 'muted', text: `No comparisons in the last ${minutes(windowMs)}.` });
  }
  const end = Number.isFinite(now) ? now : Date.now();
  const start = end - windowMs;
  let peak = 0;
  for (const point of series) peak = Math.max(peak, point.rate);
  const yMax = peak <= 0 ? 0.01 : Math.min(1, niceCeil(peak));
  const xOf = (iso: string) => LEFT + ((Date.parse(iso) + bucketMs / 2 - start) / windowMs) * (WIDTH - LEFT - 4);
  const yOf = (rate: number) => TOP + (1 - rate / yMax) * (HEIGHT - TOP - BOTTOM);
  const svg = s('svg', {
    className: 'chart',
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    role: 'img',
    'aria-label': `mismatch rate over the last ${minutes(windowMs)}`,
  });
  svg.append(
    s('line', { className: 'axis', x1: LEFT, y1: yOf(0), x2: WIDTH - 4, y2: yOf(0) }),
    s('line', { className: 'axis', x1: LEFT, y1: TOP, x2: LEFT, y2: yOf(0) }),
    s('text', { x: LEFT - 4, y: TOP + 8, 'text-anchor': 'end' }, pct(yMax, yMax < 0.1 ? 1 : 0)),
    s('text', { x: LEFT - 4, y: yOf(0), 'text-anchor': 'end' }, '0%'),
    s('text', { x: LEFT, y: HEIGHT - 4 }, `-${minutes(windowMs)}`),
    s('text', { x: WIDTH - 4, y: HEIGHT - 4, 'text-anchor': 'end' }, 'now'),
  );
  const coords = series.map((point) => [Math.max(LEFT, xOf(point.at)), yOf(point.rate)] as const);
  svg.append(
    s('polyline', {
      className: 'line',
      points: coords.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' '),
    }),
  );
  series.forEach((point, i) => {
    const [x, y] = coords[i]!;
    svg.append(
      s(
        'circle',
        { className: 'dot', cx: x.toFixed(1), cy: y.toFixed(1), r: 2.5 },
        s(
          'title',
          null,
          `${time(point.at)}: ${int(point.mismatches)} of ${int(point.comparisons)} mismatched (${pct(point.rate)})`,
        ),
      ),
    );
  });
  return h(
    'div',
    null,
    svg,
    h(
      'p',
      { className: 'note' },
      `Latest ${time(last.at)}: ${pct(last.rate)} (${int(last.mismatches)} of ${int(last.comparisons)} comparisons); ` +
        `one point per ${seconds(bucketMs)}.`,
    ),
  );
}

/** The smallest of 1, 2, 2.5, 5 and 10 times a power of ten that is at least `value`. */
function niceCeil(value: number): number {
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (value <= step * magnitude) return step * magnitude;
  return 10 * magnitude;
}
