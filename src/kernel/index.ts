/**
 * The kernel: errors, the driver seam (queries, transactions, savepoints, decoding what
 * drivers return), and option checks.
 */

export { describeValue, previewValue, safeString } from './describe-value.js';
export {
  type Continuation,
  canNest,
  continueWith,
  type Driver,
  inOneTransaction,
  type NestingQueryable,
  type Queryable,
  type QueryResult,
  queryInto,
  runPipeline,
  type Statement,
} from './driver.js';
export { isoOf, parseIntArray, parseJson, parseTextArray, sqlLiteral, toDate } from './driver-values.js';
export {
  ConfigurationError,
  ConsistencyError,
  DriverError,
  ErrorCode,
  FlagEvaluationError,
  FlagshiftError,
  StageTransitionError,
  toDriverError,
  ValidationError,
} from './errors.js';
export { Mutex } from './mutex.js';
export { importOptionalPeers } from './optional-peers.js';
export {
  firstIssue,
  type OptionExpectations,
  type OptionIssue,
  optionError,
  parseOptions,
} from './options.js';
export { underSavepoint } from './savepoints.js';
export {
  type AsyncContext,
  type ExecuteStatement,
  type TransactionScope,
  TransactionScopes,
} from './transaction-scopes.js';
