/** What the system catalog says about the tables a migration touches. */
export {
  type ColumnSets,
  checkColumns,
  loadColumns,
  type MigrationColumnState,
  missingColumnsError,
  tablesOf,
} from './columns.js';
export { hasUniqueKey, loadFunctionSources, loadTableCatalog, type TableCatalog } from './table-catalog.js';
