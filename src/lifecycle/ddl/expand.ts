/**
 * Expand: everything the new side of a migration needs before dual writes start. New
 * columns (nullable, or with a constant default, which PostgreSQL 11+ adds without
 * rewriting the table), the side table of a cross-table move when it is missing, indexes
 * built with `CREATE INDEX CONCURRENTLY`, and the sync triggers. The plan is read off the
 * catalog, so it contains exactly what is missing: a second run plans nothing.
 */
import { z } from 'zod';
import { hasUniqueKey, loadFunctionSources, loadTableCatalog, type TableCatalog } from '../../catalog/index.js';
import {
  ConfigurationError,
  type Driver,
  describeValue,
  parseOptions,
  type Queryable,
  sqlLiteral,
} from '../../kernel/index.js';
import {
  type BoundColumn,
  type BoundMapping,
  identifierProblem,
  type Migration,
  type QualifiedName,
} from '../../model/index.js';
import { forgetBackfill, recordEvent } from '../state/index.js';
import { derivedIdentifier, qualifiedName } from './names.js';
import {
  type DdlOptions,
  type DdlReport,
  type DdlStep,
  ddlOptionExpectations,
  ddlOptionsOf,
  ddlOptionsShape,
  runDdl,
} from './run-ddl.js';
import { syncTriggerObjects, triggersToReplace } from './sync-triggers.js';

/** An index on new columns, built by expand. */
export interface ExpandIndex {
  /** New columns of the migration, all in the same table, in index order. */
  readonly columns: readonly string[];
  /** @default false */
  readonly unique?: boolean;
  /** @default `<table>_<columns>_idx` (with a hash suffix when that is too long) */
  readonly name?: string;
}

/** Options of {@link planExpand} and {@link expand}. */
export interface ExpandOptions extends DdlOptions {
  /**
   * Constant defaults of new columns, by column name: a string, number or boolean,
   * written as a literal of the column's type. PostgreSQL 11+ adds such a column without
   * rewriting the table. The INSERT sync rule treats a new column at its default as unset.
   * @default none: new columns are added nullable, without default
   */
  readonly defaults?: Readonly<Record<string, string | number | boolean>>;
  /** Indexes to build on new columns, with `CREATE INDEX CONCURRENTLY`. @default [] */
  readonly indexes?: readonly ExpandIndex[];
  /**
   * Create the side table of a cross-table move when it doesn't exist: key columns typed
   * like the main table's key, the new columns, a primary key, and a foreign key to the
   * main table with `ON DELETE CASCADE`. When false, a missing side table is an error.
   * @default true
   */
  readonly createSideTables?: boolean;
  /** Create the sync triggers. @default true */
  readonly syncTriggers?: boolean;
}

/** What {@link expand} did. */
export interface ExpandReport {
  readonly migration: string;
  /** The planned steps; empty when everything existed already. */
  readonly steps: readonly DdlStep[];
  readonly ddl: DdlReport;
}

const expandOptionsSchema = z.strictObject({
  ...ddlOptionsShape,
  defaults: z.record(z.string(), z.union([z.string(), z.number().finite(), z.boolean()])).optional(),
  indexes: z
    .array(
      z.strictObject({
        columns: z.array(z.string()).min(1),
        unique: z.boolean().optional(),
        name: z
          .string()
          .refine((name) => identifierProblem(name) === undefined, 'must be a plain identifier (letters, digits, _)')
          .optional(),
      }),
    )
    .optional(),
  createSideTables: z.boolean().optional(),
  syncTriggers: z.boolean().optional(),
});

const EXPECTED = {
  ...ddlOptionExpectations,
  defaults: 'constant defaults by new column name (strings, finite numbers or booleans)',
  indexes: 'a list of indexes ({ columns, unique, name })',
  columns: 'a non-empty list of column names',
  unique: 'a boolean',
  name: 'a plain identifier (letters, digits, _)',
  createSideTables: 'a boolean',
  syncTriggers: 'a boolean',
};

/**
 * The steps that expand `migration` from the current state of the database, in order:
 * add columns, create side tables, build indexes, create the sync functions and triggers.
 * Only what is missing is planned; an index left invalid by an interrupted build is
 * dropped and built again; a sync function whose body differs is replaced.
 *
 * @example
 * ```ts
 * import { planExpand } from 'flagshift/lifecycle';
 *
 * for (const step of await planExpand(driver, usernameRename)) console.log(`${step.sql};`);
 * ```
 */
export async function planExpand(db: Queryable, migration: Migration, options: ExpandOptions = {}): Promise<DdlStep[]> {
  parseOptions(`expand of migration "${migration.name}"`, expandOptionsSchema, options ?? {}, EXPECTED);
  return new ExpandPlanner(migration, options).plan(db);
}

/**
 * Plans and runs the expand of `migration` (see {@link planExpand} and `runDdl`),
 * then records an `expand` event in the state tables when it changed anything. With
 * `dryRun`, returns the SQL and changes nothing.
 *
 * @example
 * ```ts
 * import { expand } from 'flagshift/lifecycle';
 *
 * const report = await expand(driver, usernameRename, { lockTimeoutMs: 200, onEvent: (e) => console.log(e.message) });
 * console.log(report.ddl.sql.join(';\n'));
 * ```
 */
export async function expand(driver: Driver, migration: Migration, options: ExpandOptions = {}): Promise<ExpandReport> {
  const steps = await planExpand(driver, migration, options);
  // New columns start empty: a backfill pass recorded before (say, before the columns were
  // dropped by expand's rollback) filled nothing that is left, and must not count as done.
  // Forgotten first, so a step failing after the columns are added can't leave it behind.
  const backfillReset =
    options.dryRun !== true &&
    steps.some((step) => step.addsColumns === true) &&
    (await forgetBackfill(driver, migration.name, options.stateSchema));
  const ddl = await runDdl(driver, steps, { ...ddlOptionsOf(options), migration: migration.name });
  if (!ddl.dryRun && steps.length > 0) {
    await recordEvent(
      driver,
      migration.name,
      'expand',
      {
        steps: ddl.steps.map((step) => ({ description: step.step.description, attempts: step.attempts })),
        ...(backfillReset ? { backfillReset: true } : {}),
        // Replacing triggers an earlier flagshift created leaves how the application's
        // writes land as it was: a verification from before still stands.
        ...(steps.every((step) => step.refresh === true) ? { writePathChanged: false } : {}),
      },
      options.stateSchema,
    );
  }
  return { migration: migration.name, steps, ddl };
}

/** A column expand adds, with the SQL type it gets. */
interface PlannedColumn {
  readonly column: BoundColumn;
  readonly type: string;
  readonly defaultSql: string | undefined;
}

class ExpandPlanner {
  readonly #migration: Migration;
  readonly #options: ExpandOptions;
  readonly #label: string;

  constructor(migration: Migration, options: ExpandOptions) {
    this.#migration = migration;
    this.#options = options;
    this.#label = `migration "${migration.name}"`;
  }

  async plan(db: Queryable): Promise<DdlStep[]> {
    const migration = this.#migration;
    const mainTable = migration.table.table;
    const main = await loadTableCatalog(db, mainTable);
    if (!main.exists) {
      throw new ConfigurationError(`table ${mainTable.display} named by ${this.#label} does not exist`);
    }
    // Every same-row new column there and old ones gone: contract ran, there is nothing to expand.
    const sameRowNew = migration.mappings.flatMap((mapping) =>
      mapping.newTable === undefined ? mapping.newColumns.map((column) => column.name) : [],
    );
    const contracted = sameRowNew.length > 0 && sameRowNew.every((column) => main.columns.has(column));
    this.requireColumns(
      main,
      [
        ...migration.table.keyFields.map((field) => migration.table.columns[field]!.name),
        ...migration.mappings.flatMap((mapping) => mapping.oldColumns.map((column) => column.name)),
      ],
      contracted
        ? 'the new columns are there and the old ones gone: contract has dropped them, and there is nothing to expand'
        : 'old and key columns must exist before expand',
    );
    this.checkDefaults();
    const steps: DdlStep[] = [];
    const types = new Map<BoundColumn, string>();
    const defaults = new Map<BoundColumn, string>();
    for (const mapping of migration.mappings) {
      for (const column of mapping.oldColumns) types.set(column, main.columns.get(column.name)!.type);
    }
    const catalogs = new Map<string, TableCatalog>([[mainTable.quoted, main]]);

    // Same-row new columns.
    const sameRow = migration.mappings.filter((mapping) => mapping.newTable === undefined);
    const added = this.missingColumns(main, sameRow, main, types, defaults);
    if (added.length > 0) steps.push(addColumns(mainTable, added));

    // Side tables of cross-table moves.
    for (const side of migration.sideTables) {
      const catalog = await loadTableCatalog(db, side.table);
      catalogs.set(side.table.quoted, catalog);
      const keyColumns = side.keyColumns;
      if (!catalog.exists) {
        if (this.#options.createSideTables === false) {
          throw new ConfigurationError(
            `side table ${side.table.display} of ${this.#label} does not exist; create it (keyed like ${mainTable.display}), or let expand create it (createSideTables)`,
          );
        }
        const columns = this.missingColumns(catalog, side.mappings, main, types, defaults);
        steps.push(createSideTable(migration, side.table, keyColumns, columns, main));
        continue;
      }
      this.requireColumns(
        catalog,
        keyColumns.map((column) => column.name),
        'the key columns of a side table must exist',
      );
      if (
        !hasUniqueKey(
          catalog,
          keyColumns.map((column) => column.name),
        )
      ) {
        throw new ConfigurationError(
          `side table ${side.table.display} of ${this.#label} has no primary key or unique constraint on (${keyColumns.map((column) => column.name).join(', ')}); add one, the sync triggers upsert on it`,
        );
      }
      const columns = this.missingColumns(catalog, side.mappings, main, types, defaults);
      if (columns.length > 0) steps.push(addColumns(side.table, columns));
    }

    steps.push(...this.indexSteps(catalogs));
    if (this.#options.syncTriggers !== false) steps.push(...(await this.triggerSteps(db, catalogs, types, defaults)));
    return steps;
  }

  requireColumns(catalog: TableCatalog, columns: readonly string[], why: string): void {
    const missing = columns.filter((column) => !catalog.columns.has(column));
    if (missing.length > 0) {
      throw new ConfigurationError(
        `column${missing.length > 1 ? 's' : ''} ${missing.map((column) => `"${catalog.table.display}.${column}"`).join(', ')} named by ${this.#label} ${missing.length > 1 ? 'do' : 'does'} not exist (${why})`,
      );
    }
  }

  checkDefaults(): void {
    const newColumns = new Set(this.#migration.mappings.flatMap((m) => m.newColumns.map((c) => c.name)));
    for (const column of Object.keys(this.#options.defaults ?? {})) {
      if (!newColumns.has(column)) {
        throw new ConfigurationError(
          `expand of ${this.#label} option "defaults" must name new columns of the migration, got ${describeValue(column)}`,
          { path: `defaults.${column}` },
        );
      }
    }
  }

  /**
   * New columns of `mappings` missing from `catalog`, with their types. Records every new
   * column's type in `types` and its constant default, if any, in `defaults`.
   */
  missingColumns(
    catalog: TableCatalog,
    mappings: readonly BoundMapping[],
    main: TableCatalog,
    types: Map<BoundColumn, string>,
    defaults: Map<BoundColumn, string>,
  ): PlannedColumn[] {
    const planned: PlannedColumn[] = [];
    for (const mapping of mappings) {
      for (const [index, column] of mapping.newColumns.entries()) {
        const existing = catalog.columns.get(column.name);
        const value = this.#options.defaults?.[column.name];
        if (existing !== undefined) {
          types.set(column, existing.type);
          // Rendered as on the run that added the column, so the trigger body doesn't change.
          if (value !== undefined) {
            defaults.set(column, literalOf(value, this.typeOf(mapping, index, main, catalog.table, existing.type)));
          } else if (existing.default !== undefined && CONSTANT.test(existing.default)) {
            defaults.set(column, existing.default);
          }
          continue;
        }
        const type = this.typeOf(mapping, index, main, catalog.table);
        types.set(column, type);
        const defaultSql = value === undefined ? undefined : literalOf(value, type);
        if (defaultSql !== undefined) defaults.set(column, defaultSql);
        planned.push({ column, type, defaultSql });
      }
    }
    return planned;
  }

  /**
   * The SQL type of new column `index` of `mapping`: declared, or the old column's for a
   * rename or move, else `fallback`.
   */
  typeOf(mapping: BoundMapping, index: number, main: TableCatalog, table: QualifiedName, fallback?: string): string {
    const column = mapping.newColumns[index]!;
    if (column.type !== undefined) return column.type;
    if ((mapping.kind === 'rename' || mapping.kind === 'move') && mapping.oldColumns.length === 1) {
      return main.columns.get(mapping.oldColumns[0]!.name)!.type;
    }
    if (fallback !== undefined) return fallback;
    throw new ConfigurationError(
      `new column "${table.display}.${column.name}" of ${this.#label} has no SQL type, and a ${mapping.kind} mapping can't infer one; give it one in the mapping (e.g. { column: '${column.name}', type: 'text' })`,
    );
  }

  indexSteps(catalogs: ReadonlyMap<string, TableCatalog>): DdlStep[] {
    const steps: DdlStep[] = [];
    for (const [at, index] of (this.#options.indexes ?? []).entries()) {
      const table = this.indexTable(index, at);
      const catalog = catalogs.get(table.quoted)!;
      const name = index.name ?? derivedIdentifier([table.name, ...index.columns], 'idx');
      const indexName = qualifiedName(table.schema, name);
      const existing = catalog.indexes.get(name);
      if (existing?.valid) continue;
      if (existing !== undefined) {
        steps.push({
          phase: 'expand',
          description: `drop invalid index ${indexName} (left by an interrupted build)`,
          sql: `DROP INDEX CONCURRENTLY IF EXISTS ${indexName}`,
          transactional: false,
        });
      }
      const columns = index.columns.map((column) => `"${column}"`).join(', ');
      steps.push({
        phase: 'expand',
        description: `build ${index.unique ? 'unique ' : ''}index ${indexName} on ${table.display} (${index.columns.join(', ')})`,
        sql: `CREATE ${index.unique ? 'UNIQUE ' : ''}INDEX CONCURRENTLY ${quoted(name)} ON ${table.quoted} (${columns})`,
        transactional: false,
        rollback: `DROP INDEX CONCURRENTLY IF EXISTS ${indexName}`,
      });
    }
    return steps;
  }

  /** The table all columns of `index` are new columns of. */
  indexTable(index: ExpandIndex, at: number): QualifiedName {
    const tables = index.columns.map((name) => {
      for (const mapping of this.#migration.mappings) {
        if (mapping.newColumns.some((column) => column.name === name)) {
          return mapping.newTable?.table ?? this.#migration.table.table;
        }
      }
      throw new ConfigurationError(
        `expand of ${this.#label} option "indexes.${at}.columns" must name new columns of the migration, got ${describeValue(name)}`,
        { path: `indexes.${at}.columns` },
      );
    });
    if (tables.some((table) => table.quoted !== tables[0]!.quoted)) {
      throw new ConfigurationError(
        `expand of ${this.#label} option "indexes.${at}.columns" must name columns of one table, got ${describeValue(index.columns)}`,
        { path: `indexes.${at}.columns` },
      );
    }
    return tables[0]!;
  }

  async triggerSteps(
    db: Queryable,
    catalogs: ReadonlyMap<string, TableCatalog>,
    types: ReadonlyMap<BoundColumn, string>,
    defaults: ReadonlyMap<BoundColumn, string>,
  ): Promise<DdlStep[]> {
    const objects = syncTriggerObjects(this.#migration, { columnTypes: types, defaults });
    const sources = await loadFunctionSources(
      db,
      objects.functions.map((fn) => fn.name),
    );
    const steps: DdlStep[] = [];
    for (const fn of objects.functions) {
      const source = sources.get(fn.name);
      if (source === fn.body) continue;
      steps.push({
        phase: 'expand',
        description: `${source === undefined ? 'create' : 'replace'} sync function ${fn.name}()`,
        sql: fn.sql,
        transactional: true,
        rollback: fn.drop,
      });
    }
    const stale = await triggersToReplace(db, objects.triggers, catalogs);
    for (const trigger of objects.triggers) {
      if (catalogs.get(trigger.table.quoted)?.triggers.has(trigger.name)) {
        if (stale.includes(trigger)) {
          steps.push({
            phase: 'expand',
            description: `replace sync trigger "${trigger.name}" on ${trigger.table.display} (skip the backfill's own writes)`,
            sql: trigger.replace,
            transactional: true,
            refresh: true,
            rollback: trigger.unconditioned,
          });
        }
        continue;
      }
      steps.push({
        phase: 'expand',
        description: `create sync trigger "${trigger.name}" on ${trigger.table.display}`,
        sql: trigger.sql,
        transactional: true,
        rollback: trigger.drop,
      });
    }
    return steps;
  }
}

function addColumns(table: QualifiedName, columns: readonly PlannedColumn[]): DdlStep {
  const adds = columns.map(
    ({ column, type, defaultSql }) =>
      `ADD COLUMN IF NOT EXISTS ${column.quoted} ${type}${defaultSql === undefined ? '' : ` DEFAULT ${defaultSql}`}`,
  );
  return {
    phase: 'expand',
    description: `add column${columns.length > 1 ? 's' : ''} ${columns.map(({ column }) => column.name).join(', ')} to ${table.display}`,
    sql: `ALTER TABLE ${table.quoted} ${adds.join(', ')}`,
    transactional: true,
    addsColumns: true,
    rollback: `ALTER TABLE ${table.quoted} ${columns.map(({ column }) => `DROP COLUMN IF EXISTS ${column.quoted}`).join(', ')}`,
  };
}

/**
 * `CREATE TABLE` of a missing side table. Its foreign key is declared inline: the table is
 * new and empty, so there is nothing for `NOT VALID` to defer, and the brief lock it takes
 * on the main table is bounded by `lock_timeout` like every other step.
 */
function createSideTable(
  migration: Migration,
  table: QualifiedName,
  keyColumns: readonly BoundColumn[],
  columns: readonly PlannedColumn[],
  main: TableCatalog,
): DdlStep {
  const mainKeys = migration.table.keyFields.map((field) => migration.table.columns[field]!);
  const keys = keyColumns.map((column, index) => `${column.quoted} ${main.columns.get(mainKeys[index]!.name)!.type}`);
  const values = columns.map(
    ({ column, type, defaultSql }) =>
      `${column.quoted} ${type}${defaultSql === undefined ? '' : ` DEFAULT ${defaultSql}`}`,
  );
  const keyList = keyColumns.map((column) => column.quoted).join(', ');
  const foreignKey = derivedIdentifier([table.name, migration.table.table.name], 'fkey');
  return {
    phase: 'expand',
    description: `create side table ${table.display} (keyed like ${migration.table.table.display})`,
    sql: `CREATE TABLE IF NOT EXISTS ${table.quoted} (${[...keys, ...values].join(', ')}, PRIMARY KEY (${keyList}), CONSTRAINT ${quoted(foreignKey)} FOREIGN KEY (${keyList}) REFERENCES ${migration.table.table.quoted} (${mainKeys.map((column) => column.quoted).join(', ')}) ON DELETE CASCADE ON UPDATE CASCADE)`,
    transactional: true,
    addsColumns: true,
    rollback: `DROP TABLE IF EXISTS ${table.quoted}`,
  };
}

/**
 * A default the catalog shows for a constant (`'x'::text`, `42`, `true`): the sync trigger
 * compares new values with it, so it must have no side effects (not `nextval(...)`).
 */
const CONSTANT =
  /^(?:'(?:[^']|'')*'|-?\d+(?:\.\d+)?|true|false)(?:::[A-Za-z_][\w ."]*(?:\(\d+(?:,\s*\d+)?\))?(?:\[\])*)?$/i;

/** A constant of `type`: `'text'::type`, a number or a boolean. */
function literalOf(value: string | number | boolean, type: string): string {
  if (typeof value === 'string') return `${sqlLiteral(value)}::${type}`;
  return `${String(value)}::${type}`;
}

function quoted(name: string): string {
  return `"${name}"`;
}
