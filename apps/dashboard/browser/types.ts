/**
 * The shapes the page works with: the body of `GET /api/state` as the server types it (the
 * browser reads it as JSON, and every field of it is JSON already), and the parts of it the
 * modules here pass around.
 */
import type { DashboardState, MigrationView } from '../index.js';

export type { DashboardState, EventView, FlagsView, Known, MigrationView, ThresholdsView } from '../index.js';

/** The fleet-wide metrics facts of a {@link DashboardState}. */
export type FleetView = DashboardState['fleet'];

/** A migration's metrics over every fresh process, when some process reported it. */
export type MigrationMetricsView = NonNullable<Extract<MigrationView['metrics'], { status: 'ok' }>['value']>;

/** One point of the mismatch-rate series. */
export type MismatchRatePoint = MigrationMetricsView['series'][number];

/** One point of the per-side series (error rate and p99 latency of each side). */
export type SideSeriesPoint = MigrationMetricsView['sideSeries'][number];

/** Latency per side over the fleet. */
export type LatencyView = MigrationMetricsView['latency'];

/** One redacted mismatch sample with its field diffs. */
export type MismatchSampleView = MigrationMetricsView['recentMismatches'][number];

/** A change of stage and/or read percentage, as `POST /api/migrations/:name/flags` takes it. */
export interface FlagChange {
  stage?: string;
  percent?: number;
}
