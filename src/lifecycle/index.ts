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
} from './backfill/index.js';
export {
  type ContractGate,
  type ContractGateOptions,
  type ContractOptions,
  type ContractPlanOptions,
  ContractRefusedError,
  type ContractReport,
  ContractStoppedError,
  compatViewSql,
  contract,
  contractGate,
  type DdlOptions,
  type DdlReport,
  type DdlStep,
  type DdlStepReport,
  ddlStatements,
  type ExpandIndex,
  type ExpandOptions,
  type ExpandReport,
  expand,
  formatSql,
  planContract,
  planExpand,
} from './ddl/index.js';
export {
  type FleetMember,
  type FleetMemberState,
  type FleetMemberStatus,
  type FleetOptions,
  type FleetReport,
  type FleetStatus,
  type FleetStatusOptions,
  type FleetStep,
  fleetStatus,
  migrationInSchema,
  runFleet,
} from './fleet/index.js';
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
  checkPromotion,
  DEFAULT_PROMOTION_GATE,
  describeMove,
  describePosition,
  type FlagPosition,
  nextPosition,
  type PromotionCheck,
  type PromotionCheckOptions,
  type PromotionEvidence,
  type PromotionGateOptions,
  PromotionRefusedError,
  RAMP_PERCENTS,
  servesMoreNew,
} from './promotion/index.js';
export { renderSqlForm } from './sql-forms.js';
export {
  createMetricsPublisher,
  DEFAULT_STATE_SCHEMA,
  type FleetMetrics,
  type FleetMigrationMetrics,
  type LifecycleEvent,
  type LifecycleEventKind,
  type LifecycleOptions,
  type MetricsPublisher,
  type MetricsPublisherOptions,
  type MetricsPublisherStats,
  type MismatchRatePoint,
  type PublishingProcess,
  type ReadMetricsOptions,
  readMetrics,
  recordEvent,
} from './state/index.js';
export {
  type VerificationColumn,
  type VerificationExample,
  type VerificationProgress,
  type VerificationReport,
  type VerifyOptions,
  verify,
} from './verify.js';
