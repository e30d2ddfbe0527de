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
export {
  bucketOf,
  createMemoryFlags,
  createStageResolver,
  type FlagContext,
  type FlagDecision,
  type FlagSource,
  type FlagValueType,
  isInReadPercentage,
  type MemoryFlags,
  type MigrationFlags,
  type ReadGuard,
  type SimulatedFailure,
  type StageResolver,
  type StageResolverOptions,
} from './flags/index.js';
export {
  createGuardrails,
  type GuardrailStatus,
  type Guardrails,
  type GuardrailsOptions,
  type GuardrailThresholds,
  type GuardrailWindowFigures,
  type GuardrailWindowLatency,
  type ResolvedThresholds,
  type SafeStageState,
} from './guardrails/index.js';
export {
  ConfigurationError,
  ConsistencyError,
  type Continuation,
  type Driver,
  DriverError,
  ErrorCode,
  FlagEvaluationError,
  FlagshiftError,
  type NestingQueryable,
  type Queryable,
  type QueryResult,
  StageTransitionError,
  type Statement,
  ValidationError,
} from './kernel/index.js';
export {
  type ComparisonEvent,
  combineSinks,
  createMemoryMetrics,
  type ErrorEvent,
  type FallbackReason,
  type FlagFallbackEvent,
  GUARDRAIL_REASONS,
  type GuardrailEvent,
  type GuardrailReason,
  type GuardrailTrip,
  type LatencyEvent,
  type LatencySummary,
  type MemoryMetrics,
  type MemoryMetricsOptions,
  type MetricEvent,
  type MetricsSink,
  type MetricsSnapshot,
  type MigrationMetrics,
  type MismatchEvent,
  type MismatchSample,
  type Operation,
  type ReadEvent,
  type WriteEvent,
} from './metrics/index.js';
export {
  type BoundColumn,
  type BoundMapping,
  type ChangeTypeOptions,
  type ColumnCodec,
  type ColumnOptions,
  type ColumnRef,
  type CustomMappingOptions,
  changeType,
  customMapping,
  defineMigration,
  defineTable,
  type EntityOf,
  type EntitySchema,
  type FlagEvaluation,
  isStage,
  KILL_SWITCH,
  type LogicalKind,
  type MappingKind,
  type MappingSpec,
  type MergeOptions,
  type Migration,
  type MigrationOptions,
  type MoveColumnOptions,
  merge,
  moveColumn,
  type QualifiedName,
  type RenameOptions,
  rename,
  type Side,
  type SideTable,
  type SplitOptions,
  STAGE_BEHAVIOUR,
  STAGES,
  type Stage,
  type StageBehaviour,
  split,
  type TableDefinition,
  type TableOptions,
} from './model/index.js';
export {
  type CallOptions,
  createRepository,
  type EqualityOperators,
  type FieldOperators,
  type FindQuery,
  type Insertable,
  type KeyInput,
  type OrderBy,
  type Page,
  type PageQuery,
  type RangeOperators,
  type Repository,
  type RepositoryOptions,
  type TextOperators,
  type Where,
} from './repository/index.js';
export {
  type CompareOptions,
  type DiffKind,
  type FieldDiff,
  redactValue,
} from './shadow/index.js';
