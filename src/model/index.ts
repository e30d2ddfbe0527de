/** The model of a migration: tables, mappings, migrations, stages, codecs and identifiers. */
export { type ColumnCodec, castType, columnCodec, type LogicalKind, logicalKindOf } from './column-codec.js';
export { identifierProblem, parseQualifiedName, type QualifiedName, quoteIdentifier } from './identifiers.js';
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
} from './mappings.js';
export {
  type BoundMapping,
  defineMigration,
  type FlagEvaluation,
  type Migration,
  type MigrationOptions,
  type SideTable,
} from './migration.js';
export {
  effectiveStage,
  isStage,
  KILL_SWITCH,
  type Side,
  STAGE_BEHAVIOUR,
  STAGES,
  type Stage,
  type StageBehaviour,
} from './stages.js';
export {
  type BoundColumn,
  type ColumnOptions,
  defineTable,
  type EntityOf,
  type EntitySchema,
  type TableDefinition,
  type TableOptions,
} from './table.js';
