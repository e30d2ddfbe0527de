import type { Queryable } from '../../src/driver.js';
import { loadTableCatalog, type TableCatalog } from '../../src/lifecycle/ddl-catalog.js';
import { syncTriggerObjects } from '../../src/lifecycle/sync-triggers.js';
import type { Migration } from '../../src/migration.js';

/**
 * Which of a migration's columns and sync triggers the database has, read off the
 * catalog: what a stage that reads or writes a side needs before the flag moves there.
 */
export interface SchemaState {
  /** Whether the main table exists; when it doesn't, nothing else here means anything. */
  readonly tableExists: boolean;
  /** New columns not there yet (`table.column`): expand has not run. */
  readonly missingNew: readonly string[];
  /** Old columns no longer there (`table.column`): contract dropped them. */
  readonly missingOld: readonly string[];
  /** Whether every sync trigger is installed (expand ran, contract did not). */
  readonly syncTriggers: boolean;
}

/** Reads the {@link SchemaState} of `migration`. */
export async function schemaState(db: Queryable, migration: Migration): Promise<SchemaState> {
  const catalogs = new Map<string, TableCatalog>();
  const catalogOf = async (table: Migration['table']['table']): Promise<TableCatalog> => {
    let catalog = catalogs.get(table.quoted);
    if (catalog === undefined) {
      catalog = await loadTableCatalog(db, table);
      catalogs.set(table.quoted, catalog);
    }
    return catalog;
  };
  const main = await catalogOf(migration.table.table);
  const missingNew: string[] = [];
  const missingOld: string[] = [];
  for (const mapping of migration.mappings) {
    const newTable = mapping.newTable?.table ?? migration.table.table;
    const newCatalog = await catalogOf(newTable);
    for (const column of mapping.newColumns) {
      if (!newCatalog.columns.has(column.name)) missingNew.push(`${newTable.display}.${column.name}`);
    }
    for (const column of mapping.oldColumns) {
      if (!main.columns.has(column.name)) missingOld.push(`${migration.table.table.display}.${column.name}`);
    }
  }
  let syncTriggers = true;
  for (const trigger of syncTriggerObjects(migration).triggers) {
    if (!(await catalogOf(trigger.table)).triggers.has(trigger.name)) syncTriggers = false;
  }
  return { tableExists: main.exists, missingNew, missingOld, syncTriggers };
}
