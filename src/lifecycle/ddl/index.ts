/** Schema changes: expand, contract, sync triggers and the lock-safe runner. */
export { compatViewSql } from './compat-view.js';
export {
  type ContractGate,
  type ContractGateOptions,
  type ContractOptions,
  type ContractPlanOptions,
  ContractRefusedError,
  type ContractReport,
  ContractStoppedError,
  contract,
  contractGate,
  planContract,
} from './contract.js';
export { type ExpandIndex, type ExpandOptions, type ExpandReport, expand, planExpand } from './expand.js';
export {
  type BeforeStep,
  type DdlOptions,
  type DdlReport,
  type DdlStep,
  type DdlStepReport,
  ddlStatements,
  formatSql,
  runDdl,
} from './run-ddl.js';
export { contractedAt, type SchemaState, schemaState } from './schema-state.js';
export {
  BACKFILL_SETTING,
  backfillMark,
  SYNC_SETTING,
  syncTriggerObjects,
  syncTriggerSql,
  triggersToReplace,
} from './sync-triggers.js';
