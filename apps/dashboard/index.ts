/**
 * `flagshift/dashboard`: a small local web page for operators. Per migration it shows the
 * stage and read percentage, the fleet's mismatch rate over time, recent redacted mismatch
 * samples with their field diffs, latency per side, backfill progress and the last
 * verification, refreshed live; with a flag control it also ramps and kills, each change
 * confirmed in the page first and authorized by the dashboard token (pasted into the page
 * once per tab, sent in a header). No framework: `node:http`, one HTML page with inline CSS
 * and its script (TypeScript under `browser/`, bundled at build), and a JSON API.
 *
 * Metrics reach it from the processes that serve traffic, through the database: start
 * `createMetricsPublisher` (from `flagshift/lifecycle`) next to their repositories.
 *
 * @example
 * ```ts
 * import pg from 'pg';
 * import { createPostgresFlagControl, startDashboard } from 'flagshift/dashboard';
 * import { createPgDriver } from 'flagshift/pg';
 *
 * const driver = createPgDriver(new pg.Pool({ connectionString: process.env.DATABASE_URL }));
 * const dashboard = await startDashboard({
 *   driver,
 *   migrations: [usernameRename],
 *   flags: createPostgresFlagControl(driver), // omit, or readOnly: true, for a read-only page
 *   token: process.env.FLAGSHIFT_DASHBOARD_TOKEN, // unset: one is generated, in dashboard.token
 * });
 * console.log(`dashboard at ${dashboard.url}`); // never log the token
 * // ... later
 * await dashboard.close();
 * ```
 *
 * @module
 */
export type { EventView } from './dashboard-events.js';
export type { GateView } from './dashboard-gate.js';
export type {
  BackfillView,
  DashboardState,
  FlagsView,
  Known,
  MigrationView,
  ThresholdsView,
  VerificationView,
} from './dashboard-state.js';
export {
  createPostgresFlagControl,
  type DashboardFlagControl,
  type FlagControlDb,
  type PostgresFlagControlOptions,
  type StoredMigrationFlags,
} from './flag-control.js';
export { SERIES_WINDOWS, type SeriesWindow } from './series-windows.js';
export { type Dashboard, type DashboardOptions, startDashboard } from './start-dashboard.js';
