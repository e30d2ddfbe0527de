/**
 * What `GET /api/state` returns: per migration, its flags, the promotion gate of its next
 * step, the fleet's metrics, its backfill, its last verification and its timeline of
 * events, each read on its own so one failing source shows as "unknown" (with the
 * reason) instead of blanking the page. Nothing is invented: a value the dashboard can't
 * read is reported as unknown, never as a default.
 */

import { resolveFlagTable } from '../../adapters/postgres-flags/flag-table.js';
import { getMigrationFlags } from '../../adapters/postgres-flags/migration-flags.js';
import type { Migration, Queryable, Stage } from '../../src/index.js';
import {
  backfillStatus,
  existingRelations,
  existingStateTables,
  lastVerification,
  lastWritePathChange,
  type ResolvedThresholds,
  verifiedBefore,
} from '../../src/internal.js';
import {
  type FleetMetrics,
  type FleetMigrationMetrics,
  type ReadMetricsOptions,
  readMetrics,
} from '../../src/lifecycle/index.js';
import { type EventView, readTimeline } from './dashboard-events.js';
import { type GateView, readGate } from './dashboard-gate.js';
import type { DashboardFlagControl } from './flag-control.js';

/** A value read from one source, or why it could not be. */
export type Known<T> =
  | { readonly status: 'ok'; readonly value: T }
  | { readonly status: 'unknown'; readonly reason: string };

/** A migration's stage and read percentage, and where they were read. */
export interface FlagsView {
  /** `control`: the dashboard's flag control; `postgres-flags`: the PostgreSQL flag table. */
  readonly source: 'control' | 'postgres-flags';
  /** `null` when the flag is unset or holds something else (see `raw`). */
  readonly stage: Stage | null;
  readonly percent: number | null;
  /** Stored values that are not a stage / a percentage, as stored. */
  readonly raw: { readonly stage: unknown; readonly percent: unknown };
  readonly updatedAt: string | null;
  readonly updatedBy: string | null;
}

/** Backfill progress from the checkpoint tables; `null` when the migration was never backfilled. */
export interface BackfillView {
  readonly status: 'running' | 'done';
  readonly pass: number;
  readonly rowsDone: number;
  readonly rowsChanged: number;
  readonly totalEstimate: number;
  /** `rowsDone / totalEstimate` in 0..1 (1 when done); `null` while nothing is estimated. */
  readonly fraction: number | null;
  readonly rangesDone: number;
  readonly rangeCount: number;
  readonly activeWorkers: number;
  readonly startedAt: string;
  readonly updatedAt: string;
  readonly finishedAt: string | null;
}

/** The latest verification; `null` when the migration was never verified. */
export interface VerificationView {
  readonly passed: boolean;
  /** When it finished. */
  readonly at: string;
  /** When it started reading rows: what it proves holds from here. */
  readonly startedAt: string;
  readonly checkedRows: number;
  readonly mismatchedRows: number;
  readonly missingRows: number;
  /**
   * When the write path changed after this verification started (it then proves nothing
   * about writes since, including to rows it had already passed).
   */
  readonly writePathChangedAt: string | null;
}

/** The guardrail thresholds the charts draw; `false` where the check is off. */
export interface ThresholdsView {
  readonly maxMismatchRate: number | false;
  readonly maxNewErrorRate: number | false;
  /** The new side's p99 may reach this many times the old side's. */
  readonly maxLatencyRatio: number | false;
}

/** One migration on the dashboard. */
export interface MigrationView {
  readonly name: string;
  readonly description: string;
  readonly table: string;
  readonly fields: readonly string[];
  readonly defaultStage: Stage;
  readonly stageFlagKey: string;
  readonly percentFlagKey: string;
  readonly flags: Known<FlagsView>;
  /** `null` when no fresh process reported this migration. */
  readonly metrics: Known<FleetMigrationMetrics | null>;
  readonly backfill: Known<BackfillView | null>;
  readonly verification: Known<VerificationView | null>;
  /** The latest events of its event log, newest first; empty when there is none. */
  readonly events: Known<readonly EventView[]>;
  /** The promotion gate of its next step; `null` at `complete`, or without a flag control that checks moves. */
  readonly gate: Known<GateView | null>;
  /** Its guardrail thresholds, as the dashboard was told them (`startDashboard`'s `guardrails`). */
  readonly thresholds: ThresholdsView;
}

/** The body of `GET /api/state`. */
export interface DashboardState {
  readonly generatedAt: string;
  /** Whether ramp and kill controls are offered. */
  readonly controls: boolean;
  /** Fleet-wide metrics facts: publishing processes and the series' bucket width. */
  readonly fleet: Known<{
    readonly published: boolean;
    readonly processes: number;
    readonly staleProcesses: number;
    readonly seriesBucketMs: number;
    readonly seriesWindowMs: number;
  }>;
  readonly migrations: readonly MigrationView[];
}

/** Where the state is read from. */
export interface StateSources {
  readonly db: Queryable;
  readonly migrations: readonly Migration[];
  readonly flags: DashboardFlagControl | undefined;
  /** Whether changes are offered (a flag control, and not read-only). */
  readonly controls: boolean;
  readonly stateSchema: string;
  readonly flagTable: { readonly schema?: string; readonly table?: string };
  /** The guardrail thresholds of a migration. */
  readonly thresholdsOf: (migration: string) => ResolvedThresholds;
  readonly metrics: Required<Pick<ReadMetricsOptions, 'seriesWindowMs' | 'seriesBucketMs' | 'sampleLimit'>> &
    Pick<ReadMetricsOptions, 'maxAgeMs'>;
}

function thresholdsView(t: ResolvedThresholds): ThresholdsView {
  return { maxMismatchRate: t.maxMismatchRate, maxNewErrorRate: t.maxNewErrorRate, maxLatencyRatio: t.maxLatencyRatio };
}

function reasonOf(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.length > 500 ? `${message.slice(0, 500)}...` : message;
}

async function known<T>(read: () => Promise<T>): Promise<Known<T>> {
  try {
    return { status: 'ok', value: await read() };
  } catch (error) {
    return { status: 'unknown', reason: reasonOf(error) };
  }
}

function iso(date: Date | undefined | null): string | null {
  return date instanceof Date && !Number.isNaN(date.getTime()) ? date.toISOString() : null;
}

async function readFlags(sources: StateSources, migration: Migration, flagTableExists: boolean): Promise<FlagsView> {
  if (sources.flags?.get !== undefined) {
    const stored = await sources.flags.get(migration);
    return {
      source: 'control',
      stage: stored.stage ?? null,
      percent: stored.percent ?? null,
      raw: { stage: stored.raw?.stage ?? null, percent: stored.raw?.percent ?? null },
      updatedAt: iso(stored.updatedAt),
      updatedBy: stored.updatedBy ?? null,
    };
  }
  if (!flagTableExists) {
    const table = resolveFlagTable(sources.flagTable, 'dashboard flag table').display;
    throw new Error(`no flag control was given and there is no PostgreSQL flag table ${table} to read the flags from`);
  }
  const state = await getMigrationFlags(sources.db, migration, sources.flagTable);
  return {
    source: 'postgres-flags',
    stage: state.stage ?? null,
    percent: state.percent ?? null,
    raw: { stage: state.raw.stage ?? null, percent: state.raw.percent ?? null },
    updatedAt: iso(state.updatedAt),
    updatedBy: state.updatedBy ?? null,
  };
}

async function readBackfill(sources: StateSources, migration: Migration): Promise<BackfillView | null> {
  const status = await backfillStatus(sources.db, migration.name, sources.stateSchema);
  if (status === undefined) return null;
  const fraction =
    status.status === 'done'
      ? 1
      : status.totalEstimate > 0
        ? Math.min(1, status.rowsDone / status.totalEstimate)
        : null;
  return {
    status: status.status,
    pass: status.pass,
    rowsDone: status.rowsDone,
    rowsChanged: status.rowsChanged,
    totalEstimate: status.totalEstimate,
    fraction,
    rangesDone: status.rangesDone,
    rangeCount: status.rangeCount,
    activeWorkers: status.activeWorkers,
    startedAt: iso(status.startedAt) ?? '',
    updatedAt: iso(status.updatedAt) ?? '',
    finishedAt: iso(status.finishedAt),
  };
}

async function readVerification(
  sources: StateSources,
  migration: Migration,
  eventsExist: boolean,
): Promise<VerificationView | null> {
  const last = await lastVerification(sources.db, migration.name, sources.stateSchema);
  if (last === undefined) return null;
  const changed = eventsExist ? await lastWritePathChange(sources.db, migration.name, sources.stateSchema) : undefined;
  return {
    passed: last.passed,
    at: iso(last.at) ?? '',
    startedAt: iso(last.startedAt) ?? '',
    checkedRows: last.checkedRows,
    mismatchedRows: last.mismatchedRows,
    missingRows: last.missingRows,
    writePathChangedAt: changed !== undefined && verifiedBefore(last, changed) ? iso(changed) : null,
  };
}

/**
 * Reads the dashboard's state. It reads only: a dashboard must not change the database it
 * watches, and may run as a role that can't. What a missing table would hold is reported
 * as absent (`null`), never as an error.
 */
export async function collectDashboardState(sources: StateSources): Promise<DashboardState> {
  const tables = await known(() =>
    existingStateTables(sources.db, sources.stateSchema, ['backfill_checkpoints', 'verifications', 'events']),
  );
  const flagTable = await known(async () => {
    const { quoted } = resolveFlagTable(sources.flagTable, 'dashboard flag table');
    return (await existingRelations(sources.db, [quoted])).has(quoted);
  });
  const fleet: Known<FleetMetrics> = await known(() =>
    readMetrics(sources.db, { schema: sources.stateSchema, ...sources.metrics }),
  );

  const migrations: MigrationView[] = [];
  for (const migration of sources.migrations) {
    const flags = await known(async () => {
      if (flagTable.status === 'unknown' && sources.flags?.get === undefined) throw new Error(flagTable.reason);
      return readFlags(sources, migration, flagTable.status === 'ok' && flagTable.value);
    });
    const metrics: Known<FleetMigrationMetrics | null> =
      fleet.status === 'ok' ? { status: 'ok', value: fleet.value.migrations[migration.name] ?? null } : fleet;
    const backfill = await known(async () => {
      if (tables.status === 'unknown') throw new Error(tables.reason);
      return tables.value.has('backfill_checkpoints') ? readBackfill(sources, migration) : null;
    });
    const verification = await known(async () => {
      if (tables.status === 'unknown') throw new Error(tables.reason);
      return tables.value.has('verifications')
        ? readVerification(sources, migration, tables.value.has('events'))
        : null;
    });
    const events = await known(async () => {
      if (tables.status === 'unknown') throw new Error(tables.reason);
      return tables.value.has('events') ? readTimeline(sources.db, migration.name, sources.stateSchema) : [];
    });
    const gate = await known(async () => {
      if (flags.status === 'unknown') throw new Error(flags.reason);
      return readGate(sources.flags, migration, flags.value);
    });
    migrations.push({
      name: migration.name,
      description: migration.description,
      table: migration.table.table.display,
      fields: migration.fields,
      defaultStage: migration.defaultStage,
      stageFlagKey: migration.stageFlagKey,
      percentFlagKey: migration.percentFlagKey,
      flags,
      metrics,
      backfill,
      verification,
      events,
      gate,
      thresholds: thresholdsView(sources.thresholdsOf(migration.name)),
    });
  }
  return {
    generatedAt: fleet.status === 'ok' ? fleet.value.readAt : new Date().toISOString(),
    controls: sources.controls,
    fleet:
      fleet.status === 'ok'
        ? {
            status: 'ok',
            value: {
              published: fleet.value.published,
              processes: fleet.value.processes.length,
              staleProcesses: fleet.value.staleProcesses,
              seriesBucketMs: fleet.value.seriesBucketMs,
              seriesWindowMs: sources.metrics.seriesWindowMs,
            },
          }
        : fleet,
    migrations,
  };
}
