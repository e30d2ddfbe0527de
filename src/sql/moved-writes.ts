/**
 * Writes over a table with a column moved to another table (`moveColumn`), in the stages
 * that write the side table: the application's INSERT, UPDATE or DELETE becomes ONE
 * statement whose data-modifying CTEs write the main row and upsert (or delete) the side
 * row, as a repository does in one transaction, and whose final SELECT gives the caller
 * the rows of the original RETURNING list (or their count). The router turns that result
 * back into the original command's: its tag, its row count, no rows without RETURNING.
 *
 * The side row gets the value the main row's old column was given (its forward form over
 * the written row) while the old side is written; in `complete` it gets the value the
 * statement assigns. A DELETE locks the main rows and deletes their side rows first, then
 * the main rows: the same lock order as a repository's delete and as the sync triggers'.
 */

import { type MovedResult, ROWS } from './moved-result.js';
import {
  columnRefNode,
  forEachNode,
  resTarget,
  type SqlNode,
  type SqlParser,
  targetName,
  valuesRows,
} from './parser.js';
import { entryByQualifier, newScope, type Refuse, rangeEntry, refNames } from './scope.js';
import { type FormCache, forwardExpression, HIDDEN_PREFIX, quoted, SIDE_ALIAS, sideForm } from './sql-forms.js';
import type { MigratedColumn, MigratedTable, Mode, SideColumn } from './tables.js';
import { unstableCall } from './volatility.js';

export type { MovedResult } from './moved-result.js';

/**
 * Marks an `excluded.<moved column>` reference in `complete`, where the proposed value is
 * on no main-table column: {@link movedStatement} takes it as the side row's value in
 * `SET <column> = EXCLUDED.<column>` and refuses it anywhere else.
 */
export const PROPOSED = `${HIDDEN_PREFIX}proposed`;
const MAIN = `${HIDDEN_PREFIX}main`;

/** One top-level write whose moved columns are written on their side table in this routing. */
export class MovedWrite {
  /** The statement's body (`UpdateStmt`'s, ...), rewritten in place for the main table. */
  readonly body: SqlNode;
  readonly command: MovedResult['command'];
  readonly table: MigratedTable;
  /** The original RETURNING list, detached before the rewrite: the final SELECT evaluates it. */
  readonly returning: SqlNode[] | undefined;
  /** Values the INSERT's VALUES rows (or the UPDATE's SET) give each moved column, per row. */
  readonly assigned = new Map<MigratedColumn, SqlNode[]>();
  /** Moved columns set by ON CONFLICT DO UPDATE, with their values. */
  readonly conflict = new Map<MigratedColumn, SqlNode>();

  constructor(body: SqlNode, command: MovedResult['command'], table: MigratedTable, returning: SqlNode[] | undefined) {
    this.body = body;
    this.command = command;
    this.table = table;
    this.returning = returning;
  }

  /** Every moved column the statement writes (assigned, then set on conflict), once each. */
  get written(): MigratedColumn[] {
    return [...new Set([...this.assigned.keys(), ...this.conflict.keys()])];
  }

  /** The command the caller sent, for the router to reshape the result to. */
  get result(): MovedResult {
    return { command: this.command, returning: this.returning !== undefined };
  }

  /** Records the values a write of the main table assigns to `mapping`'s moved columns. */
  assign(columns: readonly MigratedColumn[], fromColumnList: boolean, rows: readonly (readonly SqlNode[])[]): void {
    columns.forEach((column, index) => {
      const values = rows.map((row) => structuredClone(row[index]!));
      if (this.command === 'INSERT' && !fromColumnList) this.conflict.set(column, values[0]!);
      else this.assigned.set(column, values);
    });
  }
}

/**
 * The moved write `statement` is in this routing, or `undefined` when it writes no moved
 * column on its side table (it is rewritten as any other statement). Its RETURNING list is
 * detached: {@link movedStatement} evaluates it over the written rows.
 */
export function movedWriteOf(
  statement: SqlNode,
  tables: ReadonlyMap<string, MigratedTable>,
  modes: ReadonlyMap<string, Mode>,
  refuse: Refuse,
): MovedWrite | undefined {
  const kind = Object.keys(statement)[0]!;
  const commands: Record<string, MovedResult['command']> = {
    InsertStmt: 'INSERT',
    UpdateStmt: 'UPDATE',
    DeleteStmt: 'DELETE',
  };
  const command = commands[kind];
  if (command === undefined) return undefined;
  const body = statement[kind] as SqlNode;
  const table = rangeEntry(body.relation as SqlNode, newScope(undefined), tables).table;
  if (table === undefined) return undefined;
  const written = new Set(
    [...table.newColumns.values()]
      .filter((column) => column.side !== undefined && modes.get(column.migration.name)!.writesNew)
      .map((column) => column.name),
  );
  if (written.size === 0) return undefined;
  if (command !== 'DELETE') {
    const conflict = body.onConflictClause as SqlNode | undefined;
    const lists = [
      (command === 'UPDATE' ? body.targetList : body.cols) as SqlNode[] | undefined,
      conflict?.targetList as SqlNode[] | undefined,
    ];
    if (!lists.some((list) => list?.some((item) => written.has(targetName(item))))) return undefined;
    const relation = body.relation as SqlNode;
    const ref = ((relation.alias as { aliasname?: string } | undefined)?.aliasname ?? relation.relname) as string;
    for (const list of lists) refuseSelfComputed(table, ref, modes, list, refuse);
  }
  const clause = body.returningClause as SqlNode | undefined;
  const returning = (clause?.exprs ?? body.returningList) as SqlNode[] | undefined;
  delete body.returningClause;
  delete body.returningList;
  return new MovedWrite(body, command, table, returning);
}

/**
 * Refuses a moved column computed from a moved column (`SET bio = bio || $1`) while the
 * side table serves it: the value would be read from the side table as the statement
 * started, so two such updates of one row at once would lose one (PostgreSQL re-reads a
 * row an UPDATE waited for, but not a sub-query's). Served from the main table, the main
 * row's lock orders them and the side row gets the written value.
 */
function refuseSelfComputed(
  table: MigratedTable,
  ref: string,
  modes: ReadonlyMap<string, Mode>,
  list: readonly SqlNode[] | undefined,
  refuse: Refuse,
): void {
  for (const item of list ?? []) {
    const column = table.newColumns.get(targetName(item));
    if (column?.side === undefined || modes.get(column.migration.name)!.serves !== 'new') continue;
    forEachNode((item.ResTarget as SqlNode | undefined)?.val ?? item, (object) => {
      const names = object.ColumnRef !== undefined ? refNames(object.ColumnRef as SqlNode) : undefined;
      // Unqualified, or qualified by the written table: a column of another relation (UPDATE ... FROM) is read as it is.
      const own = names !== undefined && (names.length === 1 || names[names.length - 2] === ref);
      const read = own ? table.newColumns.get(names[names.length - 1]!) : undefined;
      if (read?.side !== undefined) {
        refuse(
          `a value of the moved column "${column.name}" computed from the moved column "${read.name}" while the side table serves it (two such writes of one row at once could lose one); read the row FOR UPDATE in a transaction and write the value`,
        );
      }
    });
  }
}

/** What {@link movedStatement} needs of the rewrite. */
export interface MovedContext {
  readonly modes: ReadonlyMap<string, Mode>;
  readonly parser: SqlParser;
  readonly forms: FormCache;
  readonly refuse: Refuse;
}

/** One side table the statement writes, and the moved columns of it this statement sets. */
interface SideWrite {
  readonly side: SideColumn;
  readonly columns: MigratedColumn[];
}

/**
 * The one statement that writes `write` on both tables: `WITH main AS (<the write>
 * RETURNING ...), side AS (<upsert or delete>) SELECT <RETURNING list> FROM main`.
 */
export function movedStatement(ctx: MovedContext, write: MovedWrite): SqlNode {
  const { body, table } = write;
  const relation = body.relation as SqlNode;
  const ref = ((relation.alias as { aliasname?: string } | undefined)?.aliasname ?? relation.relname) as string;
  const mode = (column: MigratedColumn) => ctx.modes.get(column.migration.name)!;
  const appWith = ((body.withClause as SqlNode | undefined)?.WithClause ?? body.withClause) as SqlNode | undefined;
  delete body.withClause;
  for (const cte of (appWith?.ctes as SqlNode[] | undefined) ?? []) {
    const name = (cte.CommonTableExpr as SqlNode).ctename as string;
    if (name.startsWith(HIDDEN_PREFIX)) ctx.refuse(`a WITH query named "${name}"`);
  }
  if (ref.startsWith(HIDDEN_PREFIX)) ctx.refuse(`a relation named "${ref}"`);

  const sides = sideWrites(write, mode);
  // Complete: the old side isn't written, so an INSERT's side rows take their values from its VALUES.
  const fromValues = write.command === 'INSERT' && sides.some((s) => s.columns.some((c) => !mode(c).writesOld));
  if (fromValues) checkValuesInsert(ctx, write, sides, mode);
  else if (write.command === 'INSERT') checkConflict(ctx, write);

  const { targets, needed } = finalTargets(ctx, write, ref);
  const mainList: SqlNode[] = [];
  const listed = new Set<string>();
  const add = (name: string, val: SqlNode) => {
    if (listed.has(name)) return;
    listed.add(name);
    mainList.push(resTarget(name, val));
  };
  const movedValue = (column: MigratedColumn): SqlNode | undefined => {
    if (!write.assigned.has(column) && !write.conflict.has(column)) return undefined;
    if (mode(column).writesOld) return forwardExpression(ctx.parser, ctx.forms, column, [ref]);
    if (write.command === 'UPDATE') return updatedValue(ctx, write, column);
    return undefined;
  };
  for (const key of table.keyColumns) add(key, columnRefNode([ref, key]));
  const fromSide = new Set<string>();
  for (const name of [...needed, ...sides.flatMap((s) => s.columns.map((c) => c.name))]) {
    const column = table.newColumns.get(name);
    if (column === undefined) {
      add(name, columnRefNode([ref, name]));
      continue;
    }
    const value = write.command === 'DELETE' ? undefined : movedValue(column);
    if (value !== undefined) add(name, value);
    else if (fromValues && column.side !== undefined && write.assigned.has(column)) fromSide.add(name);
    else add(name, sideForm(ctx.parser, ctx.forms, column, mode(column).serves, table.keyColumns, [ref]));
  }
  if (write.command === 'UPDATE' && ((body.targetList as SqlNode[] | undefined) ?? []).length === 0) {
    // Only moved columns were set: the main row is still updated (its lock, its triggers, its count).
    body.targetList = [resTarget(table.keyColumns[0]!, columnRefNode([ref, table.keyColumns[0]!]))];
  }
  body.returningClause = { exprs: mainList };

  const sideTexts = sides.map(
    (s, index) => `${quoted(`${HIDDEN_PREFIX}side${index}`)} AS (${sideText(write, s, index, fromValues, ref)})`,
  );
  // A DELETE's side rows go first (its main CTE waits for them); the others' follow the main rows.
  const mainText = `${quoted(MAIN)} AS (SELECT 1)`;
  const cteTexts = write.command === 'DELETE' ? [...sideTexts, mainText] : [mainText, ...sideTexts];
  const finalFrom =
    fromValues && write.returning !== undefined
      ? joinedMain(sides, table.keyColumns, fromSide, ref)
      : `${quoted(MAIN)} AS ${quoted(ref)}`;
  const text = `WITH ${cteTexts.join(', ')} ${
    write.returning === undefined
      ? `SELECT count(*) AS ${quoted(ROWS)} FROM ${quoted(MAIN)}`
      : `SELECT 1 FROM ${finalFrom}`
  }`;
  const select = ctx.parser.parse(text).stmts![0]!.stmt.SelectStmt as SqlNode;
  const withClause = select.withClause as SqlNode;
  const ctes = withClause.ctes as SqlNode[];
  const kind = `${write.command[0]}${write.command.slice(1).toLowerCase()}Stmt`;
  const mainAt = write.command === 'DELETE' ? sides.length : 0;
  (ctes[mainAt]!.CommonTableExpr as SqlNode).ctequery = { [kind]: body };
  if (write.command === 'DELETE') lockedDeletes(ctx, write, ctes, sides.length);
  if (fromValues) sideValues(write, sides, ctes.slice(1));
  if (write.returning !== undefined) select.targetList = targets;
  if (appWith !== undefined) {
    withClause.ctes = [...(appWith.ctes as SqlNode[]), ...ctes];
    if (appWith.recursive) withClause.recursive = true;
  }
  return { SelectStmt: select };
}

/** The side tables the statement writes: for a DELETE every one of a migration writing it. */
function sideWrites(write: MovedWrite, mode: (column: MigratedColumn) => Mode): SideWrite[] {
  const byTable = new Map<string, SideWrite>();
  const columns =
    write.command === 'DELETE'
      ? [...write.table.newColumns.values()].filter((c) => c.side !== undefined && mode(c).writesNew)
      : write.written;
  for (const column of columns) {
    const side = column.side!;
    let entry = byTable.get(side.table);
    if (entry === undefined) {
      entry = { side, columns: [] };
      byTable.set(side.table, entry);
    }
    if (write.command !== 'DELETE') entry.columns.push(column);
  }
  return [...byTable.values()];
}

/**
 * An INSERT ... ON CONFLICT DO UPDATE must set each moved column both ways or neither: a
 * side row written from a row the statement only inserted (or only updated) would take a
 * value the caller didn't write.
 */
function checkConflict(ctx: MovedContext, write: MovedWrite): void {
  const conflict = write.body.onConflictClause as SqlNode | undefined;
  if (conflict?.action !== 'ONCONFLICT_UPDATE') return;
  for (const column of write.written) {
    if (write.assigned.has(column) !== write.conflict.has(column)) {
      ctx.refuse(
        `an INSERT ... ON CONFLICT DO UPDATE that sets the moved column "${column.name}" ${write.assigned.has(column) ? 'when it inserts but not when it updates' : 'when it updates but not when it inserts'}; set it in both`,
      );
    }
  }
}

/** `complete`'s INSERT writes side rows from its VALUES: each must give its key, and a conflict must replace them. */
function checkValuesInsert(
  ctx: MovedContext,
  write: MovedWrite,
  sides: readonly SideWrite[],
  mode: (column: MigratedColumn) => Mode,
): void {
  const { body, table } = write;
  const migration = write.written[0]!.migration.name;
  if (sides.some((s) => s.columns.some((c) => mode(c).writesOld))) {
    ctx.refuse(`an INSERT of columns moved to one table by migrations in different stages`);
  }
  const names = ((body.cols as SqlNode[] | undefined) ?? []).map(targetName);
  for (const key of table.keyColumns) {
    if (!names.includes(key)) {
      ctx.refuse(
        `an INSERT into ${table.name} without its key column "${key}" while migration "${migration}" writes the moved column on its own; the side row needs the key`,
      );
    }
  }
  const rows = valuesRows((body.selectStmt as SqlNode | undefined)?.SelectStmt as SqlNode | undefined);
  for (const row of rows) {
    for (const key of table.keyColumns) if (!plainValue(row[names.indexOf(key)]!)) refuseKey(ctx, key);
  }
  const conflict = body.onConflictClause as SqlNode | undefined;
  if (conflict !== undefined) {
    const keys = ((conflict.infer as SqlNode | undefined)?.indexElems as SqlNode[] | undefined)?.map(
      (element) => (element.IndexElem as SqlNode).name as string,
    );
    if (
      conflict.action !== 'ONCONFLICT_UPDATE' ||
      conflict.whereClause !== undefined ||
      keys === undefined ||
      keys.length !== table.keyColumns.length ||
      !table.keyColumns.every((key) => keys.includes(key))
    ) {
      ctx.refuse(
        `an INSERT ... ON CONFLICT other than ON CONFLICT (${table.keyColumns.join(', ')}) DO UPDATE without WHERE while migration "${migration}" writes the moved column on its own`,
      );
    }
    for (const column of write.assigned.keys()) {
      const value = write.conflict.get(column)?.ColumnRef as SqlNode | undefined;
      const names = value === undefined ? undefined : refNames(value);
      if (value?.[PROPOSED] !== true || names?.[names.length - 1] !== column.name) {
        ctx.refuse(
          `an ON CONFLICT DO UPDATE that doesn't set the moved column "${column.name}" to EXCLUDED."${column.name}" while migration "${migration}" writes it on its own`,
        );
      }
    }
  }
  if (hasProposed(body)) {
    ctx.refuse(
      `EXCLUDED's moved column outside "SET <column> = EXCLUDED.<column>" while migration "${migration}" writes it on its own`,
    );
  }
}

function refuseKey(ctx: MovedContext, key: string): never {
  return ctx.refuse(
    `a key value of "${key}" computed by the INSERT (DEFAULT or an expression) while the moved column is written on its own; pass the key`,
  );
}

/** A value that is the same wherever it is written: a parameter or a constant, maybe cast. */
function plainValue(node: SqlNode): boolean {
  if (node.ParamRef !== undefined || node.A_Const !== undefined) return true;
  const cast = node.TypeCast as SqlNode | undefined;
  return cast !== undefined && plainValue(cast.arg as SqlNode);
}

/** Whether an `excluded.<moved column>` reference (marked by the rewrite) is still in the statement. */
function hasProposed(node: unknown): boolean {
  let found = false;
  forEachNode(node, (object) => {
    if ((object.ColumnRef as SqlNode | undefined)?.[PROPOSED] === true) found = true;
  });
  return found;
}

/** The value an UPDATE gives a moved column in `complete`: evaluated over the updated row, so it can't read a column the UPDATE sets. */
function updatedValue(ctx: MovedContext, write: MovedWrite, column: MigratedColumn): SqlNode {
  const value = structuredClone(write.assigned.get(column)![0]!);
  const set = new Set(((write.body.targetList as SqlNode[] | undefined) ?? []).map(targetName));
  forEachNode(value, (object) => {
    if (object.SetToDefault !== undefined) ctx.refuse(`DEFAULT for the moved column "${column.name}"`);
    const names = object.ColumnRef !== undefined ? refNames(object.ColumnRef as SqlNode) : undefined;
    if (names !== undefined && set.has(names[names.length - 1]!)) {
      ctx.refuse(
        `a value of the moved column "${column.name}" computed from "${names.join('.')}", which the same UPDATE sets`,
      );
    }
  });
  // Typed as the side column: a parameter alone in a RETURNING list would be text.
  const side = column.side!;
  const alias = SIDE_ALIAS;
  const typed = ctx.parser.parse(
    `SELECT CASE WHEN false THEN (SELECT ${alias}.${quoted(column.name)} FROM ${side.table} AS ${alias}) END`,
  ).stmts![0]!.stmt.SelectStmt as SqlNode;
  const node = ((typed.targetList as SqlNode[])[0]!.ResTarget as SqlNode).val as SqlNode;
  (node.CaseExpr as SqlNode).defresult = value;
  return node;
}

/**
 * The caller's RETURNING list over the written rows (the main CTE, named as the target):
 * `*` expanded to the application's shape, references to the target requalified with its
 * name, and the columns they read.
 */
function finalTargets(ctx: MovedContext, write: MovedWrite, ref: string): { targets: SqlNode[]; needed: string[] } {
  const needed: string[] = [];
  const targets: SqlNode[] = [];
  const { table } = write;
  const scope = newScope(undefined);
  scope.entries.push(rangeEntry(write.body.relation as SqlNode, scope, new Map([[table.name, table]])));
  const need = (name: string) => {
    if (!needed.includes(name)) needed.push(name);
  };
  const visit = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(visit);
    if (node === null || typeof node !== 'object') return node;
    const object = node as SqlNode;
    if (object.SubLink !== undefined) ctx.refuse('a sub-query in the RETURNING list of a write of a moved column');
    const ref_ = object.ColumnRef as SqlNode | undefined;
    if (ref_ !== undefined) {
      const names = refNames(ref_);
      if (names === undefined)
        ctx.refuse('a * inside an expression of the RETURNING list of a write of a moved column');
      const column = names[names.length - 1]!;
      if (names.length > 1 && entryByQualifier(names.slice(0, -1), scope)?.table !== table) {
        ctx.refuse(
          `the reference ${names.join('.')} to another relation in the RETURNING list of a write of a moved column`,
        );
      }
      if (names.length === 1 && column === ref && !table.known.has(column)) {
        ctx.refuse(`the whole-row reference "${column}" in the RETURNING list of a write of a moved column`);
      }
      need(column);
      return columnRefNode([ref, column]);
    }
    const copy: SqlNode = {};
    for (const key in object) copy[key] = visit(object[key]);
    return copy;
  };
  for (const item of write.returning ?? []) {
    const target = item.ResTarget as SqlNode;
    const val = target.val as SqlNode;
    const star = val.ColumnRef !== undefined && refNames(val.ColumnRef as SqlNode) === undefined;
    if (star) {
      const fields = (val.ColumnRef as SqlNode).fields as SqlNode[];
      const qualifier = fields.slice(0, -1).map((field) => (field.String as { sval: string }).sval);
      if (qualifier.length > 0 && entryByQualifier(qualifier, scope)?.table !== table) {
        ctx.refuse(`${qualifier.join('.')}.* of another relation in the RETURNING list of a write of a moved column`);
      }
      const joined = (write.body.fromClause ?? write.body.usingClause) as SqlNode[] | undefined;
      if (qualifier.length === 0 && joined !== undefined && joined.length > 0) {
        // The original * would return the other relations' columns too.
        ctx.refuse('RETURNING * over a write joined to other relations (FROM, USING) with a moved column');
      }
      for (const { column } of table.shape) {
        need(column);
        targets.push(resTarget(column, columnRefNode([ref, column])));
      }
      continue;
    }
    const names = val.ColumnRef !== undefined ? refNames(val.ColumnRef as SqlNode) : undefined;
    const name = (target.name as string | undefined) ?? names?.[names.length - 1];
    targets.push(resTarget(name, visit(val) as SqlNode));
  }
  return { targets, needed };
}

/** The side CTE's text: an upsert from the main CTE's rows (or its VALUES), or a delete (its rows set later). */
function sideText(write: MovedWrite, side: SideWrite, index: number, fromValues: boolean, ref: string): string {
  const table = side.side.table;
  const keys = side.side.keyColumns.map(quoted);
  const alias = SIDE_ALIAS;
  if (write.command === 'DELETE') {
    const mainKeys = write.table.keyColumns.map((key) => `${quoted(ref)}.${quoted(key)}`);
    const tuple = keys.length === 1 ? keys[0]! : `(${keys.join(', ')})`;
    return `DELETE FROM ${table} AS ${alias} WHERE ${tuple} IN (SELECT ${mainKeys.join(', ')} FROM ${quoted(MAIN)} AS ${quoted(ref)} FOR UPDATE OF ${quoted(ref)}) RETURNING 1`;
  }
  const columns = side.columns.map((column) => quoted(column.name));
  const set = columns.map((column) => `${column} = EXCLUDED.${column}`).join(', ');
  const into = `INSERT INTO ${table} AS ${alias} (${[...keys, ...columns].join(', ')})`;
  const conflict = `ON CONFLICT (${keys.join(', ')}) DO UPDATE SET ${set}`;
  if (!fromValues) {
    const source = [...write.table.keyColumns.map(quoted), ...columns].join(', ');
    return `${into} SELECT ${source} FROM ${quoted(MAIN)} ${conflict}`;
  }
  const placeholders = [...keys, ...columns].map(() => 'NULL').join(', ');
  const returned = keys.map((key, k) => `${alias}.${key} AS ${quoted(`${HIDDEN_PREFIX}k${index}_${k}`)}`);
  const values = columns.map((column) => `${alias}.${column}`);
  return `${into} VALUES (${placeholders}) ${conflict} RETURNING ${[...returned, ...values].join(', ')}`;
}

/** The main CTE's rows with the values `complete`'s INSERT wrote on the side tables. */
function joinedMain(
  sides: readonly SideWrite[],
  mainKeys: readonly string[],
  fromSide: Set<string>,
  ref: string,
): string {
  const main = quoted(`${HIDDEN_PREFIX}m`);
  let from = `${quoted(MAIN)} AS ${main}`;
  const columns: string[] = [`${main}.*`];
  sides.forEach((side, index) => {
    const alias = quoted(`${HIDDEN_PREFIX}s${index}`);
    const on = mainKeys.map(
      (key, k) => `${alias}.${quoted(`${HIDDEN_PREFIX}k${index}_${k}`)} = ${main}.${quoted(key)}`,
    );
    from += ` LEFT JOIN ${quoted(`${HIDDEN_PREFIX}side${index}`)} AS ${alias} ON ${on.join(' AND ')}`;
    for (const column of side.columns) if (fromSide.has(column.name)) columns.push(`${alias}.${quoted(column.name)}`);
  });
  return `(SELECT ${columns.join(', ')} FROM ${from}) AS ${quoted(ref)}`;
}

/** A DELETE's side CTEs lock and read the rows the DELETE matches; the DELETE runs after them. */
function lockedDeletes(ctx: MovedContext, write: MovedWrite, ctes: SqlNode[], count: number): void {
  const { body } = write;
  if ((body.whereClause as SqlNode | undefined)?.CurrentOfExpr !== undefined) {
    ctx.refuse('DELETE ... WHERE CURRENT OF on a table with a moved column');
  }
  // The side rows are deleted by the same condition, evaluated again: it must give the same rows.
  const call = unstableCall([body.whereClause, body.usingClause]);
  if (call !== undefined) {
    ctx.refuse(
      `${call} in a DELETE from ${write.table.name}, whose condition is evaluated again to delete the side rows of the same rows`,
      'Select the keys first and delete by them',
    );
  }
  for (const cte of ctes.slice(0, count)) {
    const remove = (cte.CommonTableExpr as SqlNode).ctequery as SqlNode;
    const link = ((remove.DeleteStmt as SqlNode).whereClause as SqlNode).SubLink as SqlNode;
    const lock = (link.subselect as SqlNode).SelectStmt as SqlNode;
    lock.fromClause = [
      { RangeVar: structuredClone(body.relation) },
      ...structuredClone((body.usingClause as SqlNode[]) ?? []),
    ];
    if (body.whereClause !== undefined) lock.whereClause = structuredClone(body.whereClause);
  }
  // Joined to the count of every side CTE's rows: no main row is deleted before the side rows are.
  const after = Array.from(
    { length: count },
    (_, index) =>
      `(SELECT count(*) FROM ${quoted(`${HIDDEN_PREFIX}side${index}`)}) AS ${quoted(`${HIDDEN_PREFIX}after${index}`)}`,
  );
  const from = ctx.parser.parse(`SELECT FROM ${after.join(', ')}`).stmts![0]!.stmt.SelectStmt as SqlNode;
  body.usingClause = [...((body.usingClause as SqlNode[] | undefined) ?? []), ...(from.fromClause as SqlNode[])];
}

/** `complete`'s INSERT: each side CTE's VALUES rows, the statement's keys and moved values. */
function sideValues(write: MovedWrite, sides: readonly SideWrite[], ctes: SqlNode[]): void {
  const names = ((write.body.cols as SqlNode[] | undefined) ?? []).map(targetName);
  const rows = valuesRows((write.body.selectStmt as SqlNode | undefined)?.SelectStmt as SqlNode | undefined);
  sides.forEach((side, index) => {
    const insert = ((ctes[index]!.CommonTableExpr as SqlNode).ctequery as SqlNode).InsertStmt as SqlNode;
    const select = (insert.selectStmt as SqlNode).SelectStmt as SqlNode;
    select.valuesLists = rows.map((row, r) => ({
      List: {
        items: [
          ...write.table.keyColumns.map((key) => structuredClone(row[names.indexOf(key)]!)),
          ...side.columns.map((column) => write.assigned.get(column)![r]!),
        ],
      },
    }));
  });
}
