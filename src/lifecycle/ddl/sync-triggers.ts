/**
 * Sync triggers keep the old and new columns consistent for writers that don't go through
 * the SDK: old application versions, other services, psql. They run the SQL forms of the
 * migration's transforms, so a row written by SQL ends up as the SDK would have written it.
 *
 * Same row (old and new columns in one table), a `BEFORE INSERT OR UPDATE` trigger:
 * - INSERT: new columns all NULL (or at their default) and old not all NULL: new := forward(old);
 *   old all NULL and new not: old := backward(new).
 * - UPDATE: old changed and new didn't: new := forward(old). New changed and old didn't:
 *   old := backward(new), but only when new differs from forward(old), so a backfill that
 *   writes new = forward(old) never rewrites old through a lossy backward transform. Both
 *   changed (an SDK dual write): left alone.
 *
 * Across tables (`moveColumn`): an `AFTER INSERT OR UPDATE` trigger on the main table
 * upserts the side row when the old columns changed, a `BEFORE DELETE` trigger removes
 * the side row with the main row, and an `AFTER INSERT OR UPDATE` trigger on the side
 * table updates the main row's old columns when the new ones changed (again only when new
 * differs from forward(old)). A transaction-local setting, `flagshift.sync`, holds the
 * migration's name while one trigger writes the other table, so the write doesn't bounce
 * back.
 *
 * A backfill's batch writes new := forward(old), which each trigger would check and leave
 * alone (same row) or queue an event for that changes nothing (across tables). So every
 * trigger but the delete one carries `WHEN (pg_trigger_depth() > 0 OR
 * current_setting('flagshift.backfill', true) IS DISTINCT FROM '<migration>')`: the
 * backfill sets that setting for its batch's transaction, and the trigger isn't called for
 * the batch's own rows. A write a trigger makes (depth above 0), even in that transaction,
 * still syncs.
 */

import type { TableCatalog } from '../../catalog/index.js';
import { ConfigurationError, type Queryable, sqlLiteral } from '../../kernel/index.js';
import {
  type BoundColumn,
  type BoundMapping,
  castType,
  type Migration,
  type QualifiedName,
} from '../../model/index.js';
import { backwardSql, comparableSql, forwardSql } from '../sql-forms.js';
import type { TransactionMark } from '../state/index.js';
import { derivedIdentifier, qualifiedName } from './names.js';

/** Options of {@link syncTriggerSql}. */
export interface SyncTriggerOptions {
  /**
   * SQL types of columns, as the catalog knows them (`planExpand` passes them). A typed
   * column gets exact comparisons: forward values are cast to the column's type before
   * they are compared with it, and `json` columns are compared as `jsonb`.
   * @default the types the migration declares
   */
  readonly columnTypes?: ReadonlyMap<BoundColumn, string>;
  /**
   * SQL default expressions of new columns. On INSERT, a new column holding its default
   * counts as not written, so an old writer's row still gets new := forward(old).
   * @default no defaults
   */
  readonly defaults?: ReadonlyMap<BoundColumn, string>;
}

/** A trigger function the sync triggers run. */
export interface SyncFunction {
  /** SQL name, schema-qualified when the table is. */
  readonly name: string;
  /** The PL/pgSQL body, exactly as stored in `pg_proc.prosrc`. */
  readonly body: string;
  /** `CREATE OR REPLACE FUNCTION ...`. */
  readonly sql: string;
  /** `DROP FUNCTION IF EXISTS ...`. */
  readonly drop: string;
}

/** A trigger of the sync triggers. */
export interface SyncTrigger {
  /** Unquoted trigger name (unique per table). */
  readonly name: string;
  readonly table: QualifiedName;
  /** The function it executes (a {@link SyncFunction} name). */
  readonly function: string;
  /**
   * Whether it has the `WHEN` condition that skips a backfill's batches
   * ({@link BACKFILL_SETTING}); all but the delete trigger have it.
   */
  readonly skipsBackfill: boolean;
  /** `CREATE TRIGGER ...`. */
  readonly sql: string;
  /**
   * `CREATE OR REPLACE TRIGGER ...` (PostgreSQL 14+): puts the condition on a trigger an
   * earlier flagshift created without it.
   */
  readonly replace: string;
  /** `CREATE OR REPLACE TRIGGER ...` without the condition, as earlier versions created it: the undo of {@link replace}. */
  readonly unconditioned: string;
  /** `DROP TRIGGER IF EXISTS ... ON ...`. */
  readonly drop: string;
}

/** Every function and trigger that keeps a migration's sides in sync. */
export interface SyncObjects {
  readonly functions: readonly SyncFunction[];
  readonly triggers: readonly SyncTrigger[];
}

/** The transaction-local setting that marks a write made by a cross-table sync trigger. */
export const SYNC_SETTING = 'flagshift.sync';

/**
 * The transaction-local setting a backfill's batch sets to its migration's name, so that
 * migration's sync triggers skip the batch's own writes (they would change nothing).
 */
export const BACKFILL_SETTING = 'flagshift.backfill';

/**
 * The mark a backfill batch of `migration` sets for its transaction
 * (`set_config(setting, value, true)`), and its sync triggers' condition tests.
 */
export function backfillMark(migration: string): TransactionMark {
  return { setting: BACKFILL_SETTING, value: migration };
}

/** Quote tag of the function bodies. */
const TAG = '$flagshift$';

/**
 * The statements that create a migration's sync triggers: the functions first, then the
 * triggers. Names derive from the migration name (`flagshift_<name>_<hash>_sync`, ...).
 *
 * @example
 * ```ts
 * import { syncTriggerSql } from 'flagshift/lifecycle';
 *
 * for (const statement of syncTriggerSql(usernameRename)) await driver.query(statement);
 * ```
 */
export function syncTriggerSql(migration: Migration, options: SyncTriggerOptions = {}): string[] {
  const objects = syncTriggerObjects(migration, options);
  return [...objects.functions.map((fn) => fn.sql), ...objects.triggers.map((trigger) => trigger.sql)];
}

/** The functions and triggers of {@link syncTriggerSql}, with their names and drop statements. */
export function syncTriggerObjects(migration: Migration, options: SyncTriggerOptions = {}): SyncObjects {
  const builder = new Builder(migration, options);
  const functions: SyncFunction[] = [];
  const triggers: SyncTrigger[] = [];
  const main = migration.table.table;
  const sameRow = migration.mappings.filter((mapping) => mapping.newTable === undefined);
  const crossTable = migration.mappings.filter((mapping) => mapping.newTable !== undefined);
  if (sameRow.length > 0) {
    const fn = builder.fn(main, 'sync', builder.sameRowBody(sameRow));
    functions.push(fn);
    triggers.push(builder.trigger('sync', main, 'BEFORE INSERT OR UPDATE', fn, true));
  }
  if (crossTable.length > 0) {
    const fn = builder.fn(main, 'fwd', builder.mainBody(crossTable));
    functions.push(fn);
    triggers.push(builder.trigger('fwd', main, 'AFTER INSERT OR UPDATE', fn, true));
    triggers.push(builder.trigger('del', main, 'BEFORE DELETE', fn, false));
    for (const [index, side] of migration.sideTables.entries()) {
      const back = builder.fn(side.table, `back${index}`, builder.sideBody(side.mappings));
      functions.push(back);
      triggers.push(builder.trigger(`back${index}`, side.table, 'AFTER INSERT OR UPDATE', back, true));
    }
  }
  return { functions, triggers };
}

/**
 * Whether `trigger` exists on its table without the condition that skips a backfill's
 * batches: an earlier flagshift created it so. It still keeps the sides in sync, but is
 * called for every row a batch writes. One whose firing someone changed (disabled, say)
 * is left alone: replacing a trigger fires it as created again.
 */
function lacksBackfillSkip(trigger: SyncTrigger, catalog: TableCatalog | undefined): boolean {
  return (
    trigger.skipsBackfill &&
    catalog?.triggers.has(trigger.name) === true &&
    !catalog.conditionalTriggers.has(trigger.name) &&
    !catalog.refiredTriggers.has(trigger.name)
  );
}

/**
 * The `triggers` an earlier flagshift created without the condition that skips a
 * backfill's batches, which `expand` replaces in place ({@link SyncTrigger.replace}).
 * `CREATE OR REPLACE TRIGGER` needs PostgreSQL 14+: before it, none (the triggers stay as
 * they are, syncing the sides; only the backfill's rows still call them).
 */
export async function triggersToReplace(
  db: Queryable,
  triggers: readonly SyncTrigger[],
  catalogs: ReadonlyMap<string, TableCatalog>,
): Promise<SyncTrigger[]> {
  const stale = triggers.filter((trigger) => lacksBackfillSkip(trigger, catalogs.get(trigger.table.quoted)));
  if (stale.length === 0) return [];
  const { rows } = await db.query<{ version: unknown }>(`SELECT current_setting('server_version_num')::int AS version`);
  return Number(rows[0]?.version) >= 140000 ? stale : [];
}

/** `record.column`, the column of a trigger's row (`NEW`, `OLD`) or of an aliased table. */
const row = (record: string) => (column: BoundColumn) => `${record}.${column.quoted}`;
const NEW = row('NEW');
const OLD = row('OLD');
const M = row('m');

class Builder {
  readonly #migration: Migration;
  readonly #options: SyncTriggerOptions;

  constructor(migration: Migration, options: SyncTriggerOptions) {
    this.#migration = migration;
    this.#options = options;
  }

  name(suffix: string): string {
    return derivedIdentifier(['flagshift', this.#migration.name], suffix);
  }

  fn(table: QualifiedName, suffix: string, body: string): SyncFunction {
    if (body.includes(TAG)) {
      throw new ConfigurationError(
        `migration "${this.#migration.name}": an SQL form contains ${TAG}, which the trigger body can't hold`,
      );
    }
    const name = qualifiedName(table.schema, this.name(suffix));
    return {
      name,
      body,
      sql: `CREATE OR REPLACE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS ${TAG}${body}${TAG}`,
      drop: `DROP FUNCTION IF EXISTS ${name}()`,
    };
  }

  /** A trigger running `fn`; `skipsBackfill` adds the condition that skips the backfill's batches. */
  trigger(suffix: string, table: QualifiedName, timing: string, fn: SyncFunction, skipsBackfill: boolean): SyncTrigger {
    const name = this.name(suffix);
    const mark = backfillMark(this.#migration.name);
    const when = skipsBackfill
      ? ` WHEN (pg_trigger_depth() > 0 OR current_setting(${sqlLiteral(mark.setting)}, true) IS DISTINCT FROM ${sqlLiteral(mark.value)})`
      : '';
    const definition = (condition: string) =>
      `"${name}" ${timing} ON ${table.quoted} FOR EACH ROW${condition} EXECUTE FUNCTION ${fn.name}()`;
    return {
      name,
      table,
      function: fn.name,
      skipsBackfill,
      sql: `CREATE TRIGGER ${definition(when)}`,
      replace: `CREATE OR REPLACE TRIGGER ${definition(when)}`,
      unconditioned: `CREATE OR REPLACE TRIGGER ${definition('')}`,
      drop: `DROP TRIGGER IF EXISTS "${name}" ON ${table.quoted}`,
    };
  }

  /** The BEFORE trigger body for mappings whose old and new columns share the row. */
  sameRowBody(mappings: readonly BoundMapping[]): string {
    const blocks = mappings.map((mapping) => {
      const forward = forwardSql(this.#migration, mapping, (name) => NEW(columnNamed(mapping.oldColumns, name)));
      const backward = backwardSql(this.#migration, mapping, (name) => NEW(columnNamed(mapping.newColumns, name)));
      const setNew = assignments(mapping.newColumns, NEW, forward);
      const setOld = assignments(mapping.oldColumns, NEW, backward);
      const newUnset = mapping.newColumns
        .map((column) => {
          const fallback = this.#options.defaults?.get(column);
          const isNull = `${NEW(column)} IS NULL`;
          return fallback === undefined ? isNull : `(${isNull} OR ${this.same(NEW(column), fallback, column)})`;
        })
        .join(' AND ');
      return `  -- ${mapping.fields.join(', ')}
  IF TG_OP = 'INSERT' THEN
    IF ${newUnset} AND NOT (${allNull(mapping.oldColumns, NEW)}) THEN
${setNew}
    ELSIF ${allNull(mapping.oldColumns, NEW)} AND NOT (${allNull(mapping.newColumns, NEW)}) THEN
${setOld}
    END IF;
  ELSIF ${this.changed(mapping.oldColumns, NEW, OLD)} THEN
    IF NOT (${this.changed(mapping.newColumns, NEW, OLD)}) THEN
${setNew}
    END IF;
  ELSIF (${this.changed(mapping.newColumns, NEW, OLD)}) AND (${this.differsFromForward(mapping.newColumns, NEW, forward)}) THEN
${setOld}
  END IF;`;
    });
    return `
BEGIN
${blocks.join('\n')}
  RETURN NEW;
END
`;
  }

  /** The main table's AFTER INSERT OR UPDATE / BEFORE DELETE body for cross-table mappings. */
  mainBody(mappings: readonly BoundMapping[]): string {
    const keyColumns = this.#mainKeyColumns();
    const deletes = this.#migration.sideTables.map(({ table, keyColumns: keys }) => {
      const match = keys.map((column, index) => `${column.quoted} = OLD.${keyColumns[index]!.quoted}`).join(' AND ');
      return `    DELETE FROM ${table.quoted} WHERE ${match};`;
    });
    const upserts = mappings.map((mapping) => {
      const side = mapping.newTable!;
      const forward = forwardSql(this.#migration, mapping, (name) => NEW(columnNamed(mapping.oldColumns, name)));
      const columns = [...side.keyColumns, ...mapping.newColumns];
      const values = [...keyColumns.map(NEW), ...forward];
      const target = side.keyColumns.map((column) => column.quoted).join(', ');
      const set = mapping.newColumns.map((column) => `${column.quoted} = EXCLUDED.${column.quoted}`).join(', ');
      const differs = mapping.newColumns
        .map((column) => this.distinct(`s.${column.quoted}`, `EXCLUDED.${column.quoted}`, column))
        .join(' OR ');
      return this.#followOnChange(
        mapping,
        mapping.oldColumns,
        `INSERT INTO ${side.table.quoted} AS s (${columns.map((column) => column.quoted).join(', ')})
      VALUES (${values.join(', ')})
      ON CONFLICT (${target}) DO UPDATE SET ${set} WHERE ${differs};`,
      );
    });
    return `
DECLARE
  flagshift_previous text := current_setting('${SYNC_SETTING}', true);
  flagshift_sync boolean;
BEGIN
  IF TG_OP = 'DELETE' THEN
${deletes.join('\n')}
    RETURN OLD;
  END IF;
  IF coalesce(flagshift_previous, '') = ${sqlLiteral(this.#migration.name)} THEN
    RETURN NULL;
  END IF;
${upserts.join('\n')}
  RETURN NULL;
END
`;
  }

  /** A side table's AFTER INSERT OR UPDATE body: the main row's old columns follow the new ones. */
  sideBody(mappings: readonly BoundMapping[]): string {
    const main = this.#migration.table;
    const keyColumns = this.#mainKeyColumns();
    const updates = mappings.map((mapping) => {
      const side = mapping.newTable!;
      const backward = backwardSql(this.#migration, mapping, (name) => NEW(columnNamed(mapping.newColumns, name)));
      const forward = forwardSql(this.#migration, mapping, (name) => M(columnNamed(mapping.oldColumns, name)));
      const set = mapping.oldColumns.map((column, index) => `${column.quoted} = ${backward[index]}`).join(', ');
      const match = keyColumns.map((column, index) => `${M(column)} = NEW.${side.keyColumns[index]!.quoted}`);
      return this.#followOnChange(
        mapping,
        mapping.newColumns,
        `UPDATE ${main.table.quoted} AS m SET ${set}
      WHERE ${match.join(' AND ')} AND (${this.differsFromForward(mapping.newColumns, NEW, forward)});`,
      );
    });
    return `
DECLARE
  flagshift_previous text := current_setting('${SYNC_SETTING}', true);
  flagshift_sync boolean;
BEGIN
  IF coalesce(flagshift_previous, '') = ${sqlLiteral(this.#migration.name)} THEN
    RETURN NULL;
  END IF;
${updates.join('\n')}
  RETURN NULL;
END
`;
  }

  /** The main table's key columns, in key order. */
  #mainKeyColumns(): BoundColumn[] {
    const main = this.#migration.table;
    return main.keyFields.map((field) => main.columns[field]!);
  }

  /**
   * A cross-table trigger's block for one mapping: when the row is inserted with `source`
   * set, or updated with `source` changed, runs `statement` with the sync setting marking
   * this migration, so the trigger on the other table doesn't echo the change back.
   */
  #followOnChange(mapping: BoundMapping, source: readonly BoundColumn[], statement: string): string {
    return `  -- ${mapping.fields.join(', ')}
  IF TG_OP = 'INSERT' THEN
    flagshift_sync := NOT (${allNull(source, NEW)});
  ELSE
    flagshift_sync := ${this.changed(source, NEW, OLD)};
  END IF;
  IF flagshift_sync THEN
    PERFORM set_config('${SYNC_SETTING}', ${sqlLiteral(this.#migration.name)}, true);
    ${statement}
    PERFORM set_config('${SYNC_SETTING}', coalesce(flagshift_previous, ''), true);
  END IF;`;
  }

  typeOf(column: BoundColumn): string | undefined {
    return this.#options.columnTypes?.get(column) ?? column.type;
  }

  /** `a IS DISTINCT FROM b` for values of `column`'s type, also for types without `=`. */
  distinct(a: string, b: string, column: BoundColumn): string {
    const type = this.typeOf(column);
    return `${comparableSql(a, type)} IS DISTINCT FROM ${comparableSql(b, type)}`;
  }

  same(a: string, b: string, column: BoundColumn): string {
    return `NOT (${this.distinct(a, `(${b})`, column)})`;
  }

  /** Whether any of `columns` differs between the two row references. */
  changed(columns: readonly BoundColumn[], a: (c: BoundColumn) => string, b: (c: BoundColumn) => string): string {
    return columns.map((column) => this.distinct(a(column), b(column), column)).join(' OR ');
  }

  /** Whether the new columns differ from `forward` (expressions over the old columns), cast to their types. */
  differsFromForward(
    columns: readonly BoundColumn[],
    row: (c: BoundColumn) => string,
    forward: readonly string[],
  ): string {
    return columns
      .map((column, index) => {
        const type = this.typeOf(column);
        const value = type === undefined ? `(${forward[index]})` : `(${forward[index]})::${castType(type)}`;
        return this.distinct(row(column), value, column);
      })
      .join(' OR ');
  }
}

function columnNamed(columns: readonly BoundColumn[], name: string): BoundColumn {
  return columns.find((column) => column.name === name)!;
}

function allNull(columns: readonly BoundColumn[], row: (c: BoundColumn) => string): string {
  return columns.map((column) => `${row(column)} IS NULL`).join(' AND ');
}

function assignments(columns: readonly BoundColumn[], row: (c: BoundColumn) => string, values: readonly string[]) {
  return columns.map((column, index) => `      ${row(column)} := ${values[index]};`).join('\n');
}
