/**
 * Where a migration's schema stands, read off the catalog: which new and old columns and
 * which sync triggers exist, and whether contract ran. What a stage that reads or writes
 * a side needs before the flag moves there, and what status shows.
 */
import { loadTableCatalog, type TableCatalog } from '../../catalog/index.js';
import type { Queryable } from '../../kernel/index.js';
import type { Migration, QualifiedName } from '../../model/index.js';
import { DEFAULT_STATE_SCHEMA, lastSchemaChange } from '../state/index.js';
import { syncTriggerObjects } from './sync-triggers.js';

/** Which of a migration's columns and sync triggers the database has. */
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
  const catalogOf = async (table: QualifiedName): Promise<TableCatalog> => {
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

/**
 * When `migration` was contracted, if it was and stays so: every old column is gone and
 * the latest expand or contract in the event log is a contract. `undefined` otherwise
 * (also when the state tables don't exist).
 */
export async function contractedAt(
  db: Queryable,
  migration: Migration,
  stateSchema: string = DEFAULT_STATE_SCHEMA,
): Promise<Date | undefined> {
  const schema = await schemaState(db, migration);
  const oldCount = migration.mappings.reduce((sum, mapping) => sum + mapping.oldColumns.length, 0);
  if (!schema.tableExists || schema.missingOld.length < oldCount || schema.missingNew.length > 0) return undefined;
  const change = await lastSchemaChange(db, migration.name, stateSchema);
  return change?.kind === 'contract' ? change.at : undefined;
}
