/**
 * The one reader of the system catalog: what it says about the tables, indexes,
 * constraints, triggers and functions a migration touches, and what other sessions are
 * doing to them (the statistics and lock views). Every statement over `pg_catalog` lives
 * in this folder, and every reader returns the types of `types.ts`.
 */
export { loadLongTransactions, loadRelationLocks, type OpenTransaction, type RelationLock } from './activity.js';
export { checkColumns, type MigrationColumnState, missingColumnsError, tablesOf } from './column-check.js';
export { loadColumnFacts, loadColumns } from './column-sets.js';
export { loadFunctionSources } from './function-sources.js';
export { existingRelations, loadIndexValidity, loadTableSize, type TableSize } from './relations.js';
export { hasIndexLeadingWith, hasUniqueIndexOn, hasUniqueKey, loadTableCatalog } from './table-catalog.js';
export type {
  CatalogColumn,
  CatalogConstraint,
  CatalogIndex,
  ColumnFacts,
  ColumnGenerator,
  ColumnSets,
  FunctionSources,
  TableCatalog,
} from './types.js';
