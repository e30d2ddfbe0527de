/** The online backfill, and the data plan and key SQL that verification and pre-flight share with it. */

export { createBackfill } from './backfill.js';
export type {
  Backfill,
  BackfillOptions,
  BackfillProgress,
  BackfillReport,
  BackfillState,
  BackfillThrottleInfo,
} from './backfill-options.js';
export { batchSql, heldOf, staleSql } from './batch-sql.js';
export { allTargets, inspectMigration, loadDataPlan } from './data-plan.js';
export { keyFromJson, keyJoin, keyList, keyOrder, keyRow, keyToJson } from './key-sql.js';
export { DEFAULT_MAX_PAUSE_RATIO, DEFAULT_TARGET_BATCH_MS, sleep } from './pacing.js';
export type {
  DataPlan,
  KeyColumn,
  MigrationInspection,
  PlanProblem,
  SameRowTarget,
  SideTarget,
  TargetColumn,
} from './types.js';
