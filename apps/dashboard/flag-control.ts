/**
 * The ramp and kill controls the dashboard offers, and their implementation over the
 * PostgreSQL flag table (`flagshift/postgres-flags`): a write there reaches every
 * process's provider through `NOTIFY`, so a click in the page changes the data path of
 * the whole fleet.
 */

import {
  getMigrationFlags,
  killMigration,
  type MigrationFlagChange,
  type SetMigrationFlagsOptions,
  setMigrationFlags,
} from '../../adapters/postgres-flags/migration-flags.js';
import type { Migration, Stage } from '../../src/index.js';
import { resolveGate } from '../../src/internal.js';
import { checkPromotion, type FlagPosition, type PromotionCheck } from '../../src/lifecycle/index.js';

/** A migration's stage and read percentage as the flag system holds them. */
export interface StoredMigrationFlags {
  /** `undefined` when unset or not a stage. */
  readonly stage: Stage | undefined;
  /** `undefined` when unset or not a number from 0 to 100. */
  readonly percent: number | undefined;
  /** The values as stored, when they are not what is expected (shown to the operator). */
  readonly raw?: { readonly stage: unknown; readonly percent: unknown };
  readonly updatedAt?: Date | undefined;
  readonly updatedBy?: string | null | undefined;
}

/**
 * What the dashboard needs to ramp and kill migrations. Give it only where a change made
 * here reaches every process (the PostgreSQL flag provider): a control that changes one
 * process's flags would show a ramp the fleet never saw.
 */
export interface DashboardFlagControl {
  /** The stored flags; without it the dashboard reads the PostgreSQL flag table, if there is one. */
  get?(migration: Migration): Promise<StoredMigrationFlags>;
  /** Sets the stage and/or read percentage. Throw a `ValidationError` or `StageTransitionError` to refuse. */
  set(migration: Migration, change: MigrationFlagChange): Promise<unknown>;
  /** Sends every read back to the old side. Throw a `StageTransitionError` to refuse. */
  kill(migration: Migration): Promise<unknown>;
  /**
   * What `set` would say now of moving from `from` to `to`, changing nothing: the page
   * shows the promotion gate's progress for the next step with it. Without it, no gate
   * is shown.
   */
  checkMove?(migration: Migration, from: FlagPosition, to: FlagPosition): Promise<PromotionCheck>;
}

/**
 * Options of {@link createPostgresFlagControl}. Changes made from the dashboard pass the
 * same checks and promotion gate as `setMigrationFlags` (with `gate`), and are never forced.
 */
export interface PostgresFlagControlOptions extends Omit<SetMigrationFlagsOptions, 'force'> {
  /**
   * Recorded as `updated_by` and in the event log.
   * @default 'flagshift dashboard'
   */
  readonly actor?: string;
}

/** What {@link createPostgresFlagControl} runs on: a flagshift driver. */
export type FlagControlDb = Parameters<typeof setMigrationFlags>[0];

/**
 * Ramp and kill controls over the PostgreSQL flag table, with `setMigrationFlags`,
 * `killMigration` and `getMigrationFlags` from `flagshift/postgres-flags`. Each change is
 * logged in the lifecycle event log under `actor`.
 *
 * @example
 * ```ts
 * import { createPostgresFlagControl, startDashboard } from 'flagshift/dashboard';
 *
 * const dashboard = await startDashboard({
 *   driver,
 *   migrations: [usernameRename],
 *   flags: createPostgresFlagControl(driver),
 * });
 * ```
 */
export function createPostgresFlagControl(
  db: FlagControlDb,
  options: PostgresFlagControlOptions = {},
): DashboardFlagControl {
  resolveGate(options.gate);
  // Never forced from the page, whatever an untyped caller passed.
  const write = { ...options, force: false, actor: options.actor ?? 'flagshift dashboard' };
  return {
    async get(migration) {
      const state = await getMigrationFlags(db, migration, options);
      return {
        stage: state.stage,
        percent: state.percent,
        raw: { stage: state.raw.stage, percent: state.raw.percent },
        updatedAt: state.updatedAt,
        updatedBy: state.updatedBy,
      };
    },
    set: (migration, change) => setMigrationFlags(db, migration, change, write),
    // The same check and thresholds `set` applies, so the page's progress is what a click will meet.
    checkMove: (migration, from, to) =>
      checkPromotion(db, migration, from, to, {
        // Shown, not written: it must not wait on a contract that holds the migration's lock.
        lock: false,
        ...(options.stateSchema === undefined ? {} : { stateSchema: options.stateSchema }),
        ...(options.gate === undefined ? {} : { gate: options.gate }),
      }),
    kill: (migration) =>
      killMigration(db, migration, { ...write, reason: options.reason ?? 'killed from the dashboard' }),
  };
}
