/**
 * flagshift: zero-downtime PostgreSQL schema changes by expand-contract, routed by
 * feature flags and proven by shadow reads.
 *
 * @example
 * ```ts
 * import { z } from 'zod';
 * import { createMemoryFlags, createRepository, defineMigration, defineTable, rename } from 'flagshift';
 * import { openPglite } from 'flagshift/pglite';
 *
 * const users = defineTable({
 *   name: 'users',
 *   key: 'id',
 *   entity: z.object({ id: z.number().int(), username: z.string() }),
 * });
 * const usernameRename = defineMigration({
 *   name: 'users-username',
 *   table: users,
 *   mappings: [rename({ field: 'username', from: 'user_name', to: 'username', type: 'text' })],
 *   defaultStage: 'dualwrite',
 * });
 * const { driver } = await openPglite();
 * const repo = createRepository(usernameRename, { driver, flags: createMemoryFlags() });
 * ```
 *
 * @packageDocumentation
 */
export { bucketOf, isInReadPercentage } from './flags/bucketing.js';
export type { FlagContext, FlagSource, FlagValueType } from './flags/flag-source.js';
export { createMemoryFlags, type MemoryFlags, type SimulatedFailure } from './flags/memory-flags.js';
export { type Route, routeFor } from './flags/router.js';
export {
  createStageResolver,
  type FlagDecision,
  type MigrationFlags,
  type StageResolver,
  type StageResolverOptions,
} from './flags/stage-resolver.js';
export {
  createGuardrails,
  GUARDRAIL_REASONS,
  type GuardrailEvent,
  type GuardrailReason,
  type GuardrailStatus,
  type Guardrails,
  type GuardrailsOptions,
  type GuardrailThresholds,
  type GuardrailTrip,
  type GuardrailWindowFigures,
  type GuardrailWindowLatency,
  type ResolvedThresholds,
  type SafeStageState,
} from './guardrails/guardrails.js';
export type { Driver, NestingQueryable, Queryable, QueryResult } from './kernel/driver.js';
export {
  ConfigurationError,
  ConsistencyError,
  DriverError,
  ErrorCode,
  FlagshiftError,
  StageTransitionError,
  ValidationError,
} from './kernel/errors.js';
export type {
  ComparisonEvent,
  DiffKind,
  ErrorEvent,
  FallbackReason,
  FieldDiff,
  FlagFallbackEvent,
  LatencyEvent,
  MetricEvent,
  MetricsSink,
  MismatchEvent,
  MismatchSample,
  Operation,
  ReadEvent,
  WriteEvent,
} from './metrics/events.js';
export {
  combineSinks,
  createMemoryMetrics,
  type LatencySummary,
  type MemoryMetrics,
  type MemoryMetricsOptions,
  type MetricsSnapshot,
  type MigrationMetrics,
} from './metrics/memory-metrics.js';
export { type ColumnCodec, columnCodec, type LogicalKind, logicalKindOf } from './model/column-codec.js';
export { parseQualifiedName, type QualifiedName, quoteIdentifier } from './model/identifiers.js';
export {
  type ChangeTypeOptions,
  type ColumnRef,
  type CustomMappingOptions,
  changeType,
  customMapping,
  type MappingKind,
  type MappingSpec,
  type MergeOptions,
  type MoveColumnOptions,
  merge,
  moveColumn,
  type RenameOptions,
  rename,
  type SplitOptions,
  split,
} from './model/mappings.js';
export {
  type BoundMapping,
  defineMigration,
  type FlagEvaluation,
  type Migration,
  type MigrationOptions,
  type SideTable,
} from './model/migration.js';
export {
  effectiveStage,
  isStage,
  type Side,
  STAGE_BEHAVIOUR,
  STAGES,
  type Stage,
  type StageBehaviour,
} from './model/stages.js';
export {
  type BoundColumn,
  type ColumnOptions,
  defineTable,
  type EntityOf,
  type EntitySchema,
  type TableDefinition,
  type TableOptions,
} from './model/table.js';
export {
  type CallOptions,
  createRepository,
  type FindQuery,
  type KeyInput,
  type OrderBy,
  type ReadGuard,
  type Repository,
  type RepositoryOptions,
} from './repository/create-repository.js';
export {
  type CompareOptions,
  deepEqual,
  diffEntities,
  diffResultSets,
  type EntityDiff,
  type ResultSetDiff,
} from './shadow/compare.js';
export { redactValue } from './shadow/redact.js';
