/**
 * The one internal entry of flagshift's core, for its own adapters and applications:
 * what they share with the core that is not public API. Not exported by the package.
 */
export { existingRelations } from './catalog/index.js';
export { type ResolvedThresholds, validateGuardrailsOptions } from './guardrails/index.js';
export {
  type AsyncContext,
  continueWith,
  describeValue,
  type ExecuteStatement,
  importOptionalPeers,
  inOneTransaction,
  Mutex,
  type OptionExpectations,
  optionError,
  parseOptions,
  previewValue,
  queryInto,
  type TransactionScope,
  TransactionScopes,
} from './kernel/index.js';
export { DEFAULT_MAX_PAUSE_RATIO, DEFAULT_TARGET_BATCH_MS } from './lifecycle/backfill/index.js';
export { contractedAt, type SchemaState, schemaState } from './lifecycle/ddl/index.js';
export { resolveGate } from './lifecycle/promotion/index.js';
export {
  type BackfillStatus,
  backfillStatus,
  existingStateTables,
  lastSchemaChange,
  lastVerification,
  lastWritePathChange,
  listEvents,
  type RecordedEvent,
  stateTablesExist,
  type VerificationRecord,
  verifiedBefore,
} from './lifecycle/state/index.js';
export {
  type BackfillProgressValue,
  createSeriesSink,
  type GuardrailsLike,
  guardrailsOption,
  labelNames,
  type Series,
  type SeriesBackend,
  seriesNames,
  wholeOption,
} from './metrics/index.js';
export { identifierProblem } from './model/index.js';
export {
  createSqlRouter,
  type RoutedQuery,
  type SqlNode,
  type SqlParser,
  type SqlResult,
  type SqlRouter,
  type SqlRouterOptions,
  type SqlRouterStats,
  type SqlSession,
} from './sql/index.js';
