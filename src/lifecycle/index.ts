/**
 * `flagshift/lifecycle`: the schema side of a migration, driven by the same definition
 * as the repository. Plan it, expand (new columns, indexes, sync triggers), backfill
 * online, verify row by row, and only then contract.
 *
 * @example
 * ```ts
 * import { contract, createBackfill, expand, formatPlan, planMigration, verify } from 'flagshift/lifecycle';
 *
 * console.log(formatPlan(await planMigration(driver, usernameRename)));
 * await expand(driver, usernameRename);
 * await createBackfill(driver, usernameRename, { onProgress: (p) => console.log(p.rowsDone) }).run();
 * const report = await verify(driver, usernameRename);
 * if (report.passed) await contract(driver, usernameRename, { stage: 'complete' });
 * ```
 *
 * @module
 */
export {
  type Backfill,
  type BackfillOptions,
  type BackfillProgress,
  type BackfillReport,
  type BackfillState,
  type BackfillThrottleInfo,
  createBackfill,
} from './backfill/backfill.js';
export { compatViewSql } from './ddl/compat-view.js';
export {
  type ContractGate,
  type ContractGateOptions,
  type ContractOptions,
  type ContractPlanOptions,
  ContractRefusedError,
  type ContractReport,
  contract,
  contractGate,
  planContract,
} from './ddl/contract.js';
export { type ExpandIndex, type ExpandOptions, type ExpandReport, expand, planExpand } from './ddl/expand.js';
export {
  type DdlOptions,
  type DdlReport,
  type DdlStep,
  type DdlStepReport,
  ddlStatements,
  formatSql,
  runDdl,
} from './ddl/run-ddl.js';
export { SYNC_SETTING, syncTriggerSql } from './ddl/sync-triggers.js';
export { formatPlan, type Phase, type PlanOptions, type PlanStep, planMigration } from './plan.js';
export {
  PreflightCode,
  type PreflightOptions,
  type PreflightReport,
  type PreflightSampleBatch,
  type PreflightWarning,
  preflight,
} from './preflight.js';
export {
  createMetricsPublisher,
  ensureMetricsTables,
  type FleetMetrics,
  type FleetMigrationMetrics,
  type MetricsPublisher,
  type MetricsPublisherOptions,
  type MetricsPublisherStats,
  type MismatchRatePoint,
  type PublishingProcess,
  type ReadMetricsOptions,
  readMetrics,
} from './state/metrics-store.js';
export {
  type BackfillStatus,
  backfillStatus,
  DEFAULT_STATE_SCHEMA,
  ensureStateTables,
  type LifecycleEvent,
  type LifecycleEventKind,
  type LifecycleOptions,
  lastVerification,
  lastWritePathChange,
  listEvents,
  type RecordedEvent,
  recordEvent,
  recordVerification,
  type VerificationRecord,
} from './state/state.js';
export {
  type VerificationColumn,
  type VerificationExample,
  type VerificationProgress,
  type VerificationReport,
  type VerifyOptions,
  verify,
} from './verify.js';
