/**
 * The data plan of a migration: its tables read off the catalog (key column types, unique
 * indexes, which columns exist) and its new columns' forward forms cast to each column's
 * real type, so what the backfill writes is what verification compares.
 */
import { hasUniqueIndexOn, loadTableCatalog, type TableCatalog } from '../../catalog/index.js';
import { ConfigurationError, type Queryable } from '../../kernel/index.js';
import {
  type BoundColumn,
  type BoundMapping,
  castType,
  type Migration,
  type QualifiedName,
} from '../../model/index.js';
import { backwardSql, comparableSql, forwardSql } from '../sql-forms.js';
import type { DataPlan, MigrationInspection, PlanProblem, SameRowTarget, SideTarget, TargetColumn } from './types.js';

/** Reads the catalog for `migration` and builds its {@link DataPlan}, or lists what is wrong. */
export async function inspectMigration(db: Queryable, migration: Migration): Promise<MigrationInspection> {
  const tableName = migration.table.table;
  const main = await loadTableCatalog(db, tableName);
  const problems: PlanProblem[] = [];
  const label = `migration "${migration.name}"`;
  if (!main.exists) {
    problems.push({ code: 'table-missing', message: `table "${tableName.display}" named by ${label} does not exist` });
    return { main, sides: [], problems, plan: undefined };
  }
  const keyNames = migration.table.keyFields.map((field) => migration.table.columns[field]!.name);
  const missing: string[] = [];
  // Old columns gone and every other one there: contract ran, not expand still to run.
  const missingOld: string[] = [];
  const need = (table: TableCatalog, column: string) => {
    if (!table.columns.has(column)) missing.push(`${table.table.display}.${column}`);
  };
  for (const name of keyNames) need(main, name);
  if (keyNames.every((name) => main.columns.has(name)) && !hasUniqueIndexOn(main, keyNames)) {
    problems.push({
      code: 'key-not-unique',
      message: `key (${keyNames.join(', ')}) of table "${tableName.display}" has no primary key or unique index; keyset batches need a unique key`,
    });
  }
  const sameRow: SameRowTarget[] = [];
  const sideTables = new Map<string, { side: SideTarget; catalog: TableCatalog; columns: TargetColumn[] }>();
  const sideOld: BoundColumn[] = [];
  for (const mapping of migration.mappings) {
    for (const column of mapping.oldColumns) {
      if (!main.columns.has(column.name)) missingOld.push(`${main.table.display}.${column.name}`);
      need(main, column.name);
    }
    const forward = (alias: string) => forwardSql(migration, mapping, (column) => `${alias}."${column}"`);
    if (mapping.newTable === undefined) {
      for (const column of mapping.newColumns) need(main, column.name);
      if (!mapping.newColumns.every((column) => main.columns.has(column.name))) continue;
      const targets = mapping.newColumns.map((column, index) => target(column, index, main, forward));
      const held = mapping.kind === 'rename' ? undefined : heldSql(migration, mapping, targets, main);
      for (const each of targets) sameRow.push({ ...each, held });
      continue;
    }
    const side = mapping.newTable;
    let entry = sideTables.get(side.table.quoted);
    if (entry === undefined) {
      const catalog = await loadTableCatalog(db, side.table);
      if (!catalog.exists) {
        problems.push({
          code: 'table-missing',
          message: `table "${side.table.display}" named by ${label} does not exist`,
        });
        continue;
      }
      const columns: TargetColumn[] = [];
      entry = { side: { table: side.table, keyColumns: side.keyColumns, columns }, catalog, columns };
      sideTables.set(side.table.quoted, entry);
      const sideKey = side.keyColumns.map((column) => column.name);
      for (const name of sideKey) need(catalog, name);
      if (sideKey.every((name) => catalog.columns.has(name)) && !hasUniqueIndexOn(catalog, sideKey)) {
        problems.push({
          code: 'side-key-not-unique',
          message: `key (${sideKey.join(', ')}) of table "${side.table.display}" has no primary key or unique index; the backfill upserts side rows on it`,
        });
      }
    }
    for (const column of mapping.oldColumns) if (!sideOld.some((c) => c.name === column.name)) sideOld.push(column);
    for (const [index, column] of mapping.newColumns.entries()) {
      need(entry.catalog, column.name);
      entry.columns.push(target(column, index, entry.catalog, forward));
    }
  }
  if (missing.length > 0) {
    problems.push({
      code: 'columns-missing',
      message: `column${missing.length > 1 ? 's' : ''} ${missing.map((c) => `"${c}"`).join(', ')} named by ${label} ${missing.length > 1 ? 'do' : 'does'} not exist; ${
        missingOld.length === missing.length
          ? 'the old columns are gone (contract dropped them, or the migration names the wrong ones): there is nothing left to fill or compare'
          : 'run expand first'
      }`,
      columns: missing,
    });
  }
  const sides = [...sideTables.values()];
  if (problems.length > 0) return { main, sides: sides.map((s) => s.catalog), problems, plan: undefined };
  const plan: DataPlan = {
    migration,
    table: tableName,
    key: keyNames.map((name) => ({ name, quoted: `"${name}"`, type: main.columns.get(name)!.type })),
    sameRow,
    sides: sides.map((s) => s.side),
    sideOldColumns: sideOld,
  };
  return { main, sides: sides.map((s) => s.catalog), problems, plan };
}

/** {@link inspectMigration}, throwing a {@link ConfigurationError} naming the first problem. */
export async function loadDataPlan(db: Queryable, migration: Migration): Promise<DataPlan> {
  const inspection = await inspectMigration(db, migration);
  if (inspection.plan === undefined) {
    throw new ConfigurationError(inspection.problems.map((problem) => problem.message).join('; '));
  }
  return inspection.plan;
}

function target(
  column: BoundColumn,
  index: number,
  catalog: TableCatalog,
  forward: (alias: string) => string[],
): TargetColumn {
  const type = catalog.columns.get(column.name)?.type ?? column.type ?? 'text';
  // Rendering validates the SQL form now, so a bad form fails before any batch runs.
  forward('t');
  return { column, type, forward: (alias) => `(${forward(alias)[index]!})::${castType(type)}` };
}

/** {@link SameRowTarget.held} of a mapping whose new columns, with their forward forms, are `targets`. */
function heldSql(
  migration: Migration,
  mapping: BoundMapping,
  targets: readonly TargetColumn[],
  catalog: TableCatalog,
): (alias: string) => string {
  // Rendering validates the backward forms now, as target() does the forward ones.
  backwardSql(migration, mapping, (column) => `t."${column}"`);
  const oldTypes = mapping.oldColumns.map((column) => catalog.columns.get(column.name)?.type ?? column.type ?? 'text');
  // A value of the old column j, in its type, in the form a comparison takes.
  const asOld = (sql: string, j: number) => comparableSql(`(${sql})::${castType(oldTypes[j]!)}`, oldTypes[j]);
  return (alias) => {
    const current = targets.map((each) => comparableSql(`${alias}.${each.column.quoted}`, each.type)).join(', ');
    const forward = targets.map((each) => comparableSql(each.forward(alias), each.type)).join(', ');
    const old = mapping.oldColumns.map((column, j) => asOld(`${alias}.${column.quoted}`, j)).join(', ');
    const derived = backwardSql(migration, mapping, (column) => `${alias}."${column}"`)
      .map(asOld)
      .join(', ');
    // CASE, so the backward forms run only for rows whose new side was written and differs.
    return `(CASE WHEN ROW(${current}) IS NOT DISTINCT FROM ROW(${forward}) THEN true
       WHEN ROW(${current}) IS NULL THEN false
       ELSE ROW(${old}) IS NOT DISTINCT FROM ROW(${derived}) END)`;
  };
}

/** Every target column of the plan, main table first. */
export function allTargets(
  plan: DataPlan,
): { table: QualifiedName; side: SideTarget | undefined; target: TargetColumn }[] {
  return [
    ...plan.sameRow.map((target) => ({ table: plan.table, side: undefined, target })),
    ...plan.sides.flatMap((side) => side.columns.map((target) => ({ table: side.table, side, target }))),
  ];
}
