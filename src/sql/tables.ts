/**
 * The migrated tables as the SQL rewriter sees them: for each table, which column names
 * the application uses (the new shape), which old columns hold the same fields, and the
 * SQL forms that turn one side into the other.
 */
import { ConfigurationError } from '../kernel/index.js';
import type { BoundMapping, Migration, Side, TableDefinition } from '../model/index.js';

/** A new column the application names, and where its values live on the old side. */
export interface MigratedColumn {
  readonly migration: Migration;
  readonly mapping: BoundMapping;
  /** Index of the column among the mapping's new columns (and fields). */
  readonly index: number;
  readonly name: string;
  readonly field: string;
  /**
   * Set for a cross-table mapping (`moveColumn`): the new side is a column of another
   * table sharing the key, reached by a correlated sub-query from the main row.
   */
  readonly side: SideColumn | undefined;
}

/** Where a moved column's new side lives. */
export interface SideColumn {
  /** `"schema"."table"` of the side table. */
  readonly table: string;
  readonly display: string;
  /** Side key column names, in the main key's order. */
  readonly keyColumns: readonly string[];
}

/** One table that migrations change. */
export interface MigratedTable {
  readonly definition: TableDefinition;
  readonly schema: string | undefined;
  readonly name: string;
  readonly migrations: readonly Migration[];
  /** New column name -> its migration and mapping. */
  readonly newColumns: ReadonlyMap<string, MigratedColumn>;
  /** Old column names of the mappings: the application never names them. */
  readonly oldColumns: ReadonlySet<string>;
  /** Every column the definition names (key, plain, new): for resolving unqualified names. */
  readonly known: ReadonlySet<string>;
  /** The application's shape of a row, in field order: each a plain column or a new column. */
  readonly shape: readonly { readonly column: string; readonly migrated: MigratedColumn | undefined }[];
  readonly keyColumns: readonly string[];
}

/**
 * The migrated tables of `migrations`, by table name. A cross-table mapping's (`moveColumn`)
 * new column is read from its side table by a correlated sub-query, and written there by
 * the moved write (`moved-writes.ts`) in the stages that write the side table.
 */
export function migratedTables(migrations: readonly Migration[]): Map<string, MigratedTable> {
  const byTable = new Map<string, { definition: TableDefinition; migrations: Migration[] }>();
  for (const migration of migrations) {
    const key = migration.table.table.quoted;
    const entry = byTable.get(key);
    if (entry === undefined)
      byTable.set(key, { definition: migration.table as TableDefinition, migrations: [migration] });
    else if (entry.definition !== migration.table) {
      throw new ConfigurationError(
        `routed SQL: migrations on ${migration.table.table.display} must share one table definition`,
      );
    } else entry.migrations.push(migration);
  }
  const tables = new Map<string, MigratedTable>();
  for (const { definition, migrations: own } of byTable.values()) {
    const newColumns = new Map<string, MigratedColumn>();
    const byField = new Map<string, MigratedColumn>();
    const oldColumns = new Set<string>();
    for (const migration of own) {
      for (const mapping of migration.mappings) {
        if (
          mapping.sql === undefined ||
          [...mapping.sql.forward, ...mapping.sql.backward].some((form) => form === '')
        ) {
          throw new ConfigurationError(
            `routed SQL: migration "${migration.name}" maps ${mapping.fields.map((f) => `"${f}"`).join(', ')} without SQL forms; give customMapping({ sql }) so statements can be rewritten`,
          );
        }
        const sideTable = mapping.newTable;
        const side: SideColumn | undefined =
          sideTable === undefined
            ? undefined
            : {
                table: sideTable.table.quoted,
                display: sideTable.table.display,
                keyColumns: sideTable.keyColumns.map((column) => column.name),
              };
        mapping.newColumns.forEach((column, index) => {
          const migrated = { migration, mapping, index, name: column.name, field: mapping.fields[index]!, side };
          newColumns.set(column.name, migrated);
          byField.set(migrated.field, migrated);
        });
        for (const column of mapping.oldColumns) oldColumns.add(column.name);
      }
    }
    // A moved column usually keeps its name in its new table: the name is the application's.
    for (const name of newColumns.keys()) oldColumns.delete(name);
    const shape = definition.fields.map((field) => {
      const migrated = byField.get(field);
      return { column: migrated?.name ?? definition.columns[field]!.name, migrated };
    });
    tables.set(definition.table.name, {
      definition,
      schema: definition.table.schema,
      name: definition.table.name,
      migrations: own,
      newColumns,
      oldColumns,
      known: new Set(shape.map((column) => column.column)),
      shape,
      keyColumns: definition.keyFields.map((field) => definition.columns[field]!.name),
    });
  }
  return tables;
}

/** How one migration's columns are routed in a statement. */
export interface Mode {
  readonly serves: Side;
  readonly writesOld: boolean;
  readonly writesNew: boolean;
  /** Fetch the other side too, to compare (reads only). */
  readonly compare: boolean;
}
