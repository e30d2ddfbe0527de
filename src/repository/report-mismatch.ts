/**
 * How a mismatch is reported, by repositories and by the SQL router alike: a metric event
 * whose sample is stamped now, and an OpenFeature `track` event for flag providers that
 * track (best effort: a provider's failure never reaches the data path).
 */
import type { FlagContext, FlagSource, Route } from '../flags/index.js';
import type { MetricEvent, Operation } from '../metrics/index.js';
import type { FieldDiff } from '../shadow/index.js';

/** What a mismatch is reported with. */
export interface MismatchReport {
  readonly migration: string;
  readonly route: Route;
  readonly operation: Operation;
  /** The entity's key as the sample shows it: redacted unless the migration opted into raw values; `null` for a result set. */
  readonly key: unknown;
  readonly diffs: readonly FieldDiff[];
  /** The flag context `track` is called with. */
  readonly context: FlagContext;
}

/** Emits `report` through `emit` and tells `flags` (when it tracks events). */
export function reportMismatch(
  emit: (event: MetricEvent) => void,
  flags: FlagSource | undefined,
  report: MismatchReport,
): void {
  const { migration, route, operation, key, diffs } = report;
  const { stage, effective } = route;
  emit({
    type: 'mismatch',
    migration,
    stage,
    route: effective,
    sample: { migration, stage, route: effective, operation, key, diffs, at: new Date().toISOString() },
  });
  if (flags?.track === undefined) return;
  try {
    flags.track('flagshift.mismatch', report.context, {
      migration,
      stage,
      route: effective,
      operation,
      fields: diffs.map((diff) => diff.field).join(','),
    });
  } catch {
    // Tracking is best effort and never reaches the data path.
  }
}
