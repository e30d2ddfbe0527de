/**
 * The lifecycle's state in the database: the event log, verification results, the
 * backfill's checkpoints and key ranges, and the fleet metrics tables. Every statement
 * over these tables lives in this folder, behind the functions exported here.
 */
export {
  type BackfillCheckpoint,
  type BackfillStatus,
  backfillStatus,
  type ClaimedRange,
  claimRange,
  type FinishedPass,
  finishPass,
  forgetBackfill,
  type LeasedRange,
  type LeaseRenewal,
  leasedRangeOf,
  leaseRenewalStatement,
  lockPassStart,
  type NewRange,
  openRangeCount,
  passRowsDone,
  type RangeAdvanceSql,
  rangeAdvanceSql,
  rangeDoneStatement,
  rangeHeldSql,
  readCheckpoint,
  releaseRange,
  startPass,
  type TransactionMark,
} from './backfill-ranges.js';
export {
  lastSchemaChange,
  lastStageChange,
  lastWritePathChange,
  listEvents,
  type RecordedEvent,
  recordEvent,
  type SchemaChange,
  type StageMove,
  stageMoves,
} from './events.js';
export type { FleetMigrationMetrics, MismatchRatePoint, SidePoint, SideSeriesPoint } from './fleet-aggregation.js';
export {
  FLEET_STEPS,
  type FleetStep,
  type FleetStepRecord,
  lastFleetStep,
  recordFleetStep,
} from './fleet-steps.js';
export {
  emitEvent,
  type LifecycleEvent,
  type LifecycleOptions,
  lifecycleOptionExpectations,
  lifecycleOptionsShape,
} from './lifecycle-options.js';
export {
  createMetricsPublisher,
  type MetricsPublisher,
  type MetricsPublisherOptions,
  type MetricsPublisherStats,
} from './metrics-publisher.js';
export { comparisonsSince, ensureMetricsTables, type PublishedComparisons } from './metrics-tables.js';
export { lockMigration } from './migration-lock.js';
export {
  type FleetMetrics,
  type PublishingProcess,
  type ReadMetricsOptions,
  readFleetTotals,
  readMetrics,
} from './read-metrics.js';
export {
  DEFAULT_STATE_SCHEMA,
  EVENT_KINDS,
  existingStateTables,
  type LifecycleEventKind,
  quoteStateSchema,
  STATE_TABLES,
  type StateTable,
  stateTablesExist,
} from './state-schema.js';
export { ensureStateTables } from './state-tables.js';
export { lastVerification, recordVerification, type VerificationRecord, verifiedBefore } from './verifications.js';
