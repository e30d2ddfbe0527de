/**
 * The time windows the page offers for its charts, shared by the server (which reads the
 * series for the one asked for) and the page (which lists them). Each has 60 to 96
 * points: enough to see a trend, few enough to read in a glance.
 */

/** A window of the charts: how far back, and the width of one point. */
export interface SeriesWindow {
  /** What `GET /api/state?window=` takes. */
  readonly name: string;
  /** For the page's menu. */
  readonly label: string;
  readonly windowMs: number;
  readonly bucketMs: number;
}

/** From 5 minutes at 5-second points, for watching a ramp, to 24 hours, for the night before. */
export const SERIES_WINDOWS: readonly SeriesWindow[] = [
  { name: '5m', label: '5 min', windowMs: 300_000, bucketMs: 5_000 },
  { name: '15m', label: '15 min', windowMs: 900_000, bucketMs: 15_000 },
  { name: '1h', label: '1 h', windowMs: 3_600_000, bucketMs: 60_000 },
  { name: '6h', label: '6 h', windowMs: 21_600_000, bucketMs: 300_000 },
  { name: '24h', label: '24 h', windowMs: 86_400_000, bucketMs: 900_000 },
];
