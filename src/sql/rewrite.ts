/**
 * The rewrite of one statement for one routing of its migrations: every reference to a
 * migrated column resolved to the side its stage serves, writes setting every side its
 * stage writes in the one statement, and, for a comparing read, the other side fetched in
 * hidden columns of the same statement. Pure: a parse tree in, SQL text and the facts the
 * result needs out.
 */
import type { Side } from '../model/index.js';
import { type MovedResult, movedStatement, movedWriteOf, PROPOSED } from './moved-writes.js';
import { columnRefNode, forEachNode, resTarget, type SqlNode, type SqlParser, valuesRows } from './parser.js';
import {
  type Entry,
  entryByQualifier,
  newScope,
  type Refuse,
  type Resolved,
  rangeEntry,
  refNames,
  resolveColumn,
  type Scope,
} from './scope.js';
import { type FormCache, forwardExpression, HIDDEN_PREFIX, SIDE_ALIAS_NAME, sideForm } from './sql-forms.js';
import type { MigratedColumn, MigratedTable, Mode } from './tables.js';
import { type WriteContext, writeColumns } from './write-columns.js';

/** A compared output column: where the served value is, where the other side's is. */
export interface ComparedColumn {
  /** Position among the original output columns, and its name. */
  readonly index: number;
  readonly name: string;
  readonly hidden: string;
  readonly column: MigratedColumn;
  /** Which entity the row belongs to: the hidden key columns of its relation. */
  readonly keys: readonly string[];
}

/** The statement rewritten for one routing. */
export interface Rewritten {
  /** The text to run; the original text when nothing changed. */
  readonly sql: string;
  /** Output columns of the original statement (when compared). */
  readonly outputs: number;
  /** Hidden columns appended after them, in order. */
  readonly hidden: readonly string[];
  readonly compared: readonly ComparedColumn[];
  /** A read that should have compared but compared nothing in one statement (grouped rows, expressions only...). */
  readonly skipped: boolean;
  /** Set for a write of a moved column on both tables: the command whose result the caller gets. */
  readonly moved?: MovedResult;
}

interface Context extends WriteContext {
  readonly tables: ReadonlyMap<string, MigratedTable>;
  /** The statement's own body (`SelectStmt`'s, `InsertStmt`'s, ...): its rows go to the caller. */
  readonly root: SqlNode;
  /** Bodies of `EXISTS (...)` sub-queries, whose columns nothing reads. */
  readonly exists: WeakSet<SqlNode>;
  /** Whether the statement writes anywhere (its body or a `WITH` query): rows of a sub-query may be written. */
  readonly writes: boolean;
}

/** Rewrites `statement` (a clone: it is changed in place) for `modes`, keyed by migration name. */
export function rewriteStatement(
  statement: SqlNode,
  text: string,
  modes: ReadonlyMap<string, Mode>,
  tables: ReadonlyMap<string, MigratedTable>,
  parser: SqlParser,
  forms: FormCache,
  refuse: Refuse,
  compare: boolean,
): Rewritten {
  const moved = movedWriteOf(statement, tables, modes, refuse);
  const root = statement[Object.keys(statement)[0]!] as SqlNode;
  const writes = containsWrite(statement);
  const ctx: Context = {
    tables,
    modes,
    parser,
    forms,
    refuse,
    changed: false,
    moved,
    root,
    exists: new WeakSet(),
    writes,
  };
  let compared: ComparedColumn[] = [];
  let hidden: string[] = [];
  let outputs = 0;
  const select = statement.SelectStmt as SqlNode | undefined;
  if (select !== undefined) {
    const top = selectStmt(ctx, select, undefined, compare);
    if (top !== undefined && top.compared.length > 0) {
      ({ compared, hidden, outputs } = top);
      ctx.changed = true;
    }
  } else {
    walk(ctx, statement, newScope(undefined));
    if (moved !== undefined) {
      const sql = parser.deparse(movedStatement(ctx, moved));
      return { sql, outputs: 0, hidden, compared, skipped: false, moved: moved.result };
    }
  }
  const skipped =
    compare && select !== undefined && compared.length === 0 && [...modes.values()].some((m) => m.compare);
  return { sql: ctx.changed ? parser.deparse(statement) : text, outputs, hidden, compared, skipped };
}

/** Walks any node, resolving column references and descending into statements with their scopes. */
function walk(ctx: Context, node: unknown, scope: Scope): unknown {
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) node[i] = walk(ctx, node[i], scope);
    return node;
  }
  if (node === null || typeof node !== 'object') return node;
  const wrapper = node as SqlNode;
  if (wrapper.ColumnRef !== undefined) return columnRef(ctx, wrapper, scope);
  const link = wrapper.SubLink as SqlNode | undefined;
  if (link?.subLinkType === 'EXISTS_SUBLINK') {
    const body = (link.subselect as SqlNode | undefined)?.SelectStmt as SqlNode | undefined;
    if (body !== undefined) ctx.exists.add(body);
  }
  if (wrapper.SelectStmt !== undefined) {
    selectStmt(ctx, wrapper.SelectStmt as SqlNode, scope, false);
    return node;
  }
  if (wrapper.InsertStmt !== undefined) {
    insertStmt(ctx, wrapper.InsertStmt as SqlNode, scope);
    return node;
  }
  if (wrapper.UpdateStmt !== undefined) {
    updateStmt(ctx, wrapper.UpdateStmt as SqlNode, scope);
    return node;
  }
  if (wrapper.DeleteStmt !== undefined) {
    deleteStmt(ctx, wrapper.DeleteStmt as SqlNode, scope);
    return node;
  }
  if (wrapper.MergeStmt !== undefined) {
    const target = rangeEntry((wrapper.MergeStmt as SqlNode).relation as SqlNode, scope, ctx.tables, true);
    if (target.table !== undefined) ctx.refuse('MERGE into a migrated table');
  }
  for (const key of Object.keys(wrapper)) wrapper[key] = walk(ctx, wrapper[key], scope);
  return node;
}

function columnRef(ctx: Context, node: SqlNode, scope: Scope): SqlNode {
  const body = node.ColumnRef as SqlNode;
  const names = refNames(body);
  if (names === undefined) {
    // `alias.*` outside a select list (a row constructor, a function argument).
    const fields = body.fields as SqlNode[];
    const qualifier = fields.slice(0, -1).map((field) => (field.String as { sval: string }).sval);
    if (qualifier.length > 0 && entryByQualifier(qualifier, scope)?.table !== undefined) {
      ctx.refuse(`the whole-row reference ${qualifier.join('.')}.* to a migrated table outside a select list`);
    }
    return node;
  }
  const resolved = resolveColumn(names, scope, ctx.refuse);
  return resolved === undefined ? node : served(ctx, resolved);
}

/** The expression of `resolved` on the side its migration serves. */
function served(ctx: Context, resolved: Resolved): SqlNode {
  const mode = ctx.modes.get(resolved.column.migration.name)!;
  if (resolved.entry.proposed) {
    if (resolved.column.side !== undefined) return proposedMoved(ctx, resolved, mode);
    // The INSERT wrote the new column too: EXCLUDED holds the value proposed, which the
    // old side's form would only approximate through a lossy mapping (a split's parts).
    if (mode.writesNew) return sideExpression(ctx, resolved, 'new');
  }
  return sideExpression(ctx, resolved, mode.serves);
}

/**
 * `excluded.<moved column>`: the value the INSERT proposed, which is on the main row's old
 * column while the old side is written, and on no main-table column in `complete`.
 */
function proposedMoved(ctx: Context, resolved: Resolved, mode: Mode): SqlNode {
  ctx.changed = true;
  if (mode.writesOld) return forwardExpression(ctx.parser, ctx.forms, resolved.column, ['excluded']);
  if (ctx.moved === undefined) {
    ctx.refuse(`EXCLUDED."${resolved.column.name}" of a moved column the INSERT doesn't write`);
  }
  const node = columnRefNode(['excluded', resolved.column.name]);
  (node.ColumnRef as SqlNode)[PROPOSED] = true;
  return node;
}

function sideExpression(ctx: Context, resolved: Resolved, side: Side): SqlNode {
  const qualifier = resolved.qualifier.length > 0 ? resolved.qualifier : [resolved.entry.ref!];
  const { column } = resolved;
  // Inside the sub-query the side table's alias would hide a relation of the same name.
  if (side === 'new' && column.side !== undefined && qualifier.includes(SIDE_ALIAS_NAME)) {
    ctx.refuse(`a relation named "${SIDE_ALIAS_NAME}"`);
  }
  if (side === 'old' || column.side !== undefined) ctx.changed = true;
  return sideForm(ctx.parser, ctx.forms, column, side, resolved.entry.table.keyColumns, qualifier);
}

/** The result of the top-level select: its compared columns. */
interface TopSelect {
  readonly compared: ComparedColumn[];
  readonly hidden: string[];
  readonly outputs: number;
}

function selectStmt(ctx: Context, select: SqlNode, outer: Scope | undefined, top: boolean): TopSelect | undefined {
  const scope = withClause(ctx, select.withClause as SqlNode | undefined, outer);
  if (select.op !== undefined && select.op !== 'SETOP_NONE') {
    selectStmt(ctx, select.larg as SqlNode, scope, false);
    selectStmt(ctx, select.rarg as SqlNode, scope, false);
    walk(ctx, [select.limitCount, select.limitOffset], scope);
    return undefined;
  }
  if (select.valuesLists !== undefined) walk(ctx, select.valuesLists, scope);
  for (const item of (select.fromClause as SqlNode[] | undefined) ?? []) fromItem(ctx, item, scope);
  const targets = select.targetList as SqlNode[] | undefined;
  const outputs = new Set<string>();
  const direct = targets === undefined ? [] : targetList(ctx, targets, scope, outputs, select);
  for (const key of ['whereClause', 'havingClause', 'windowClause', 'distinctClause', 'limitCount', 'limitOffset']) {
    if (select[key] !== undefined) select[key] = walk(ctx, select[key], scope);
  }
  // GROUP BY resolves a bare name as an input column first, as PostgreSQL does.
  if (select.groupClause !== undefined) select.groupClause = walk(ctx, select.groupClause, scope);
  // ORDER BY resolves a bare name as an output column first: it keeps its name, so it is left alone.
  for (const item of (select.sortClause as SqlNode[] | undefined) ?? []) {
    const sortBy = item.SortBy as SqlNode;
    const expression = sortBy.node as SqlNode;
    const names = expression.ColumnRef !== undefined ? refNames(expression.ColumnRef as SqlNode) : undefined;
    if (names?.length === 1 && outputs.has(names[0]!)) continue;
    sortBy.node = walk(ctx, sortBy.node, scope);
  }
  if (!top || targets === undefined) return undefined;
  return hideOtherSides(ctx, select, targets, direct);
}

function withClause(ctx: Context, clause: SqlNode | undefined, outer: Scope | undefined): Scope {
  if (clause === undefined) return newScope(outer);
  const body = (clause.WithClause ?? clause) as SqlNode;
  const names = new Set(outer?.ctes ?? []);
  for (const cte of body.ctes as SqlNode[]) {
    const expression = cte.CommonTableExpr as SqlNode;
    if (body.recursive) names.add(expression.ctename as string);
    walk(ctx, expression.ctequery, newScope(outer, new Set(names)));
    names.add(expression.ctename as string);
  }
  return newScope(outer, names);
}

function fromItem(ctx: Context, item: SqlNode, scope: Scope): void {
  if (item.RangeVar !== undefined) {
    scope.entries.push(rangeEntry(item.RangeVar as SqlNode, scope, ctx.tables));
    return;
  }
  if (item.JoinExpr !== undefined) {
    const join = item.JoinExpr as SqlNode;
    fromItem(ctx, join.larg as SqlNode, scope);
    fromItem(ctx, join.rarg as SqlNode, scope);
    if (join.usingClause !== undefined || join.isNatural) {
      scope.merged = true;
      const using = ((join.usingClause as SqlNode[] | undefined) ?? []).map((n) => (n.String as { sval: string }).sval);
      if (join.isNatural || using.some((name) => scope.entries.some((entry) => entry.table?.newColumns.has(name)))) {
        if (scope.entries.some((entry) => entry.table !== undefined)) {
          ctx.refuse('a NATURAL JOIN or JOIN ... USING over a migrated column');
        }
      }
    }
    if (join.quals !== undefined) join.quals = walk(ctx, join.quals, scope);
    if (join.alias !== undefined && scope.entries.some((entry) => entry.table !== undefined)) {
      ctx.refuse('an aliased JOIN over a migrated table');
    }
    return;
  }
  const sub = item.RangeSubselect as SqlNode | undefined;
  const alias = ((sub ?? (item.RangeFunction as SqlNode | undefined))?.alias as { aliasname?: string } | undefined)
    ?.aliasname;
  walk(ctx, item, scope);
  scope.entries.push({
    ref: alias,
    schema: undefined,
    relname: undefined,
    aliased: alias !== undefined,
    table: undefined,
  });
}

/** A select-list column taken straight from a migrated column (comparable). */
interface DirectColumn {
  readonly index: number;
  readonly name: string;
  readonly resolved: Resolved;
}

/**
 * Rewrites a select or RETURNING list: `*` expanded to the application's shape of each
 * migrated table, references resolved, and each rewritten column keeping its output name.
 */
function targetList(
  ctx: Context,
  targets: SqlNode[],
  scope: Scope,
  outputs: Set<string>,
  owner: SqlNode,
): DirectColumn[] {
  const direct: DirectColumn[] = [];
  for (let i = 0; i < targets.length; i++) {
    const target = targets[i]!.ResTarget as SqlNode;
    const value = target.val as SqlNode | undefined;
    const ref = value?.ColumnRef as SqlNode | undefined;
    if (ref !== undefined && refNames(ref) === undefined) {
      const expanded = expandStar(ctx, ref, scope);
      if (expanded !== undefined) {
        if (ctx.writes && owner !== ctx.root && !ctx.exists.has(owner)) {
          // Its rows would hold the application's fields only, and may be written somewhere.
          ctx.refuse(
            "a * over a migrated table inside a statement that writes (it stands for the application's fields only, not every column of the table, and the rows may be written on)",
            'List the columns',
          );
        }
        targets.splice(i, 1, ...expanded.map((entry) => entry.target));
        for (const [offset, entry] of expanded.entries()) {
          const name = (entry.target.ResTarget as SqlNode).name as string | undefined;
          if (name !== undefined) outputs.add(name);
          if (entry.resolved !== undefined) direct.push({ index: i + offset, name: name!, resolved: entry.resolved });
        }
        i += expanded.length - 1;
        ctx.changed = true;
        continue;
      }
    }
    const names = ref !== undefined ? refNames(ref) : undefined;
    const resolved = names !== undefined ? resolveColumn(names, scope, ctx.refuse) : undefined;
    if (resolved !== undefined) {
      target.val = served(ctx, resolved);
      target.name ??= resolved.column.name;
      direct.push({ index: i, name: target.name as string, resolved });
    } else if (value !== undefined) {
      const before = target.name === undefined ? columnName(value) : undefined;
      target.val = walk(ctx, value, scope);
      // `username::text` keeps the name PostgreSQL gives it, not its served column's.
      if (before !== undefined && columnName(target.val as SqlNode) !== before) target.name = before;
    }
    const name = (target.name as string | undefined) ?? names?.[names.length - 1];
    if (name !== undefined) outputs.add(name);
  }
  return direct;
}

/**
 * The output name PostgreSQL gives an unnamed select-list item when it comes from a
 * column reference (FigureColname's strongest case): the column, through casts, COLLATE
 * and a CASE's ELSE; `undefined` when the name comes from anything else, which the
 * rewrite doesn't change.
 */
function columnName(node: SqlNode | undefined): string | undefined {
  if (node === undefined) return undefined;
  if (node.ColumnRef !== undefined) return refNames(node.ColumnRef as SqlNode)?.at(-1);
  const inner = (node.TypeCast ?? node.CollateClause) as SqlNode | undefined;
  if (inner !== undefined) return columnName(inner.arg as SqlNode | undefined);
  if (node.CaseExpr !== undefined) return columnName((node.CaseExpr as SqlNode).defresult as SqlNode | undefined);
  return undefined;
}

/** `*` or `alias.*` over migrated tables, as the list of the application's columns; `undefined` to keep it. */
function expandStar(
  ctx: Context,
  ref: SqlNode,
  scope: Scope,
): { target: SqlNode; resolved: Resolved | undefined }[] | undefined {
  const fields = ref.fields as SqlNode[];
  const qualifier = fields.slice(0, -1).map((field) => (field.String as { sval: string }).sval);
  let entries: readonly Entry[];
  if (qualifier.length === 0) {
    entries = scope.entries.filter((entry) => !entry.qualifiedOnly);
    if (!entries.some((entry) => entry.table !== undefined)) return undefined;
    if (scope.merged) ctx.refuse('a * over a JOIN ... USING with a migrated table');
  } else {
    const entry = entryByQualifier(qualifier, scope);
    if (entry?.table === undefined) return undefined;
    entries = [entry];
  }
  const out: { target: SqlNode; resolved: Resolved | undefined }[] = [];
  for (const entry of entries) {
    if (entry.table === undefined) {
      if (entry.ref === undefined) ctx.refuse('a * over an unaliased sub-select next to a migrated table');
      out.push({
        target: resTarget(undefined, { ColumnRef: { fields: [{ String: { sval: entry.ref } }, { A_Star: {} }] } }),
        resolved: undefined,
      });
      continue;
    }
    const named = entry as Entry & { table: MigratedTable };
    const prefix = qualifier.length > 0 ? qualifier : [entry.ref!];
    for (const column of entry.table.shape) {
      if (column.migrated === undefined) {
        out.push({ target: resTarget(column.column, columnRefNode([...prefix, column.column])), resolved: undefined });
        continue;
      }
      const resolved: Resolved = { entry: named, column: column.migrated, qualifier: prefix };
      out.push({ target: resTarget(column.column, served(ctx, resolved)), resolved });
    }
  }
  return out;
}

/**
 * Appends hidden columns with the other side of each directly selected migrated column
 * of a comparing migration, and its relation's key columns. Statements whose rows don't
 * map one-to-one onto table rows (grouping, DISTINCT) are not compared.
 */
function hideOtherSides(ctx: Context, select: SqlNode, targets: SqlNode[], direct: DirectColumn[]): TopSelect {
  const outputs = targets.length;
  const compared: ComparedColumn[] = [];
  const hidden: string[] = [];
  for (const target of targets) {
    const name = (target.ResTarget as SqlNode).name as string | undefined;
    if (name?.startsWith(HIDDEN_PREFIX)) ctx.refuse(`an output column named "${name}"`);
  }
  const grouped =
    select.groupClause !== undefined ||
    select.havingClause !== undefined ||
    select.distinctClause !== undefined ||
    select.groupDistinct === true;
  if (grouped) return { compared, hidden, outputs };
  const keysOf = new Map<Entry, string[]>();
  for (const column of direct) {
    const mode = ctx.modes.get(column.resolved.column.migration.name)!;
    if (!mode.compare) continue;
    const { entry } = column.resolved;
    let keys = keysOf.get(entry);
    const qualifier = column.resolved.qualifier.length > 0 ? column.resolved.qualifier : [entry.ref!];
    if (keys === undefined) {
      keys = entry.table.keyColumns.map((key) => {
        const name = `${HIDDEN_PREFIX}${hidden.length}`;
        hidden.push(name);
        targets.push(resTarget(name, columnRefNode([...qualifier, key])));
        return name;
      });
      keysOf.set(entry, keys);
    }
    const name = `${HIDDEN_PREFIX}${hidden.length}`;
    hidden.push(name);
    const other = sideExpression(ctx, column.resolved, mode.serves === 'old' ? 'new' : 'old');
    targets.push(resTarget(name, other));
    compared.push({ index: column.index, name: column.name, hidden: name, column: column.resolved.column, keys });
  }
  return { compared, hidden, outputs };
}

// ---- writes ----

/** Entries of a write's target relation: by its alias or name, and `excluded` for ON CONFLICT. */
function targetScope(
  ctx: Context,
  relation: SqlNode,
  outer: Scope | undefined,
  withNode: unknown,
): { scope: Scope; entry: Entry } {
  const scope = withClause(ctx, withNode as SqlNode | undefined, outer);
  const entry = rangeEntry(relation, scope, ctx.tables, true);
  scope.entries.push(entry);
  return { scope, entry };
}

function insertStmt(ctx: Context, insert: SqlNode, outer: Scope | undefined): void {
  const { scope, entry } = targetScope(ctx, insert.relation as SqlNode, outer, insert.withClause);
  const table = entry.table;
  const cols = insert.cols as SqlNode[] | undefined;
  const source = (insert.selectStmt as SqlNode | undefined)?.SelectStmt as SqlNode | undefined;
  // The source rows see only the relations around the statement, not its target.
  if (source !== undefined) selectStmt(ctx, source, outer, false);
  if (table !== undefined) {
    if (cols === undefined && source !== undefined) ctx.refuse(`INSERT into ${table.name} without a column list`);
    const rows = valuesRows(source);
    const plain = source !== undefined && source.valuesLists !== undefined;
    writeColumns(ctx, insert, table, cols ?? [], plain ? rows : undefined, 'INSERT ... SELECT into a migrated column');
  }
  const conflict = insert.onConflictClause as SqlNode | undefined;
  if (conflict !== undefined) {
    for (const element of ((conflict.infer as SqlNode | undefined)?.indexElems as SqlNode[] | undefined) ?? []) {
      const name = (element.IndexElem as SqlNode).name as string | undefined;
      if (name !== undefined && table?.newColumns.has(name)) ctx.refuse(`ON CONFLICT (${name}) on a migrated column`);
    }
    const conflictScope = newScope(scope.parent, scope.ctes);
    conflictScope.entries.push(entry, { ...entry, ref: 'excluded', aliased: true, proposed: true });
    const sets = conflict.targetList as SqlNode[] | undefined;
    if (sets !== undefined) updateSets(ctx, insert, table, sets, conflictScope);
    if (conflict.whereClause !== undefined) conflict.whereClause = walk(ctx, conflict.whereClause, conflictScope);
  }
  returning(ctx, insert, scope, entry);
}

function updateStmt(ctx: Context, update: SqlNode, outer: Scope | undefined): void {
  const { scope, entry } = targetScope(ctx, update.relation as SqlNode, outer, update.withClause);
  for (const item of (update.fromClause as SqlNode[] | undefined) ?? []) fromItem(ctx, item, scope);
  updateSets(ctx, update, entry.table, update.targetList as SqlNode[], scope);
  if (update.whereClause !== undefined) update.whereClause = walk(ctx, update.whereClause, scope);
  returning(ctx, update, scope, entry);
}

function deleteStmt(ctx: Context, remove: SqlNode, outer: Scope | undefined): void {
  const { scope, entry } = targetScope(ctx, remove.relation as SqlNode, outer, remove.withClause);
  for (const migrated of entry.table?.newColumns.values() ?? []) {
    if (
      migrated.side !== undefined &&
      ctx.modes.get(migrated.migration.name)!.writesNew &&
      ctx.moved?.body !== remove
    ) {
      // The side row would outlive its main row: only the top-level DELETE deletes both.
      ctx.refuse(
        `a DELETE from ${entry.table!.name} inside another statement while migration "${migrated.migration.name}" writes ${migrated.side.display} too`,
      );
    }
  }
  for (const item of (remove.usingClause as SqlNode[] | undefined) ?? []) fromItem(ctx, item, scope);
  if (remove.whereClause !== undefined) remove.whereClause = walk(ctx, remove.whereClause, scope);
  returning(ctx, remove, scope, entry);
}

function returning(ctx: Context, statement: SqlNode, scope: Scope, target: Entry): void {
  const clause = statement.returningClause as SqlNode | undefined;
  const list = (clause?.exprs ?? statement.returningList) as SqlNode[] | undefined;
  if (list === undefined) return;
  let rows = scope;
  if (target.table !== undefined) {
    // PostgreSQL 18's `old` and `new` rows of the target, unless a relation takes the name.
    const names: Record<string, string> = { RETURNING_OPTION_OLD: 'old', RETURNING_OPTION_NEW: 'new' };
    for (const item of (clause?.options as SqlNode[] | undefined) ?? []) {
      const option = item.ReturningOption as { option: string; value: string };
      names[option.option] = option.value;
    }
    rows = newScope(scope.parent, scope.ctes);
    rows.entries.push(...scope.entries);
    rows.merged = scope.merged;
    for (const ref of Object.values(names)) {
      if (!scope.entries.some((entry) => entry.ref === ref)) {
        rows.entries.push({ ...target, ref, aliased: true, qualifiedOnly: true });
      }
    }
  }
  targetList(ctx, list, rows, new Set(), statement);
}

/** UPDATE's SET list (and ON CONFLICT DO UPDATE's) of `statement`: values resolved, then each side its stage writes set. */
function updateSets(
  ctx: Context,
  statement: SqlNode,
  table: MigratedTable | undefined,
  sets: SqlNode[],
  scope: Scope,
): void {
  for (const item of sets) {
    const target = item.ResTarget as SqlNode;
    const name = target.name as string;
    if (table?.newColumns.has(name) || table?.oldColumns.has(name)) {
      if (target.indirection !== undefined) ctx.refuse(`an assignment to a part of the migrated column "${name}"`);
      if ((target.val as SqlNode).MultiAssignRef !== undefined) {
        ctx.refuse(`a multi-column assignment to the migrated column "${name}"`);
      }
    }
    target.val = walk(ctx, target.val, scope);
  }
  if (table !== undefined) writeColumns(ctx, statement, table, sets, undefined, '');
}

/** Whether `statement` writes: an INSERT, UPDATE, DELETE or MERGE anywhere in it. */
function containsWrite(statement: SqlNode): boolean {
  let found = false;
  forEachNode(statement, (node) => {
    if (
      node.InsertStmt !== undefined ||
      node.UpdateStmt !== undefined ||
      node.DeleteStmt !== undefined ||
      node.MergeStmt !== undefined
    ) {
      found = true;
    }
  });
  return found;
}
