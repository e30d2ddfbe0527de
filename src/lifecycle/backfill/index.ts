/** The online backfill. */

export {
  type Backfill,
  type BackfillOptions,
  type BackfillProgress,
  type BackfillReport,
  type BackfillState,
  type BackfillThrottleInfo,
  createBackfill,
  DEFAULT_PAUSE_RATIO,
} from './backfill.js';
export {
  allTargets,
  batchSql,
  type CatalogTable,
  type DataPlan,
  hasIndexLeadingWith,
  hasUniqueIndexOn,
  heldOf,
  inspectMigration,
  keyFromJson,
  keyJoin,
  keyList,
  keyOrder,
  keyRow,
  keyToJson,
  loadDataPlan,
  type MigrationInspection,
  readCatalogTable,
  sleep,
  staleSql,
} from './backfill-sql.js';
