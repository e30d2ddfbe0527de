/**
 * What a statement is, once per text: transaction control, a statement touching no
 * migrated table (passed through as it is), or a routed one with the migrations it
 * touches and where it pins one entity by its key (`WHERE id = $1`).
 */
import type { Operation } from '../metrics/index.js';
import type { Migration } from '../model/index.js';
import { forEachNode, type SqlNode } from './parser.js';
import type { Refuse } from './scope.js';
import type { MigratedTable } from './tables.js';

/** Where one key column's value comes from: a parameter (1-based) or a constant. */
export type KeySource = { readonly param: number } | { readonly constant: string };

/** A statement that touches migrated tables. */
export interface RoutedStatement {
  readonly kind: 'routed';
  readonly statement: SqlNode;
  readonly operation: Operation;
  readonly read: boolean;
  readonly migrations: readonly Migration[];
  /** Per migration name: the key of the one entity the statement pins, when it pins one. */
  readonly keys: ReadonlyMap<string, readonly KeySource[]>;
}

/** What a text is. */
export type Analysis = { readonly kind: 'pass' | 'begin' | 'end' } | RoutedStatement;

const PASS: Analysis = Object.freeze({ kind: 'pass' });

/** Analyzes the statements of one text. */
export function analyze(
  stmts: readonly { stmt: SqlNode }[],
  tables: ReadonlyMap<string, MigratedTable>,
  refuse: Refuse,
): Analysis {
  const touched = stmts.map((raw) => touchedTables(raw.stmt, tables));
  if (!touched.some((set) => set.size > 0)) {
    if (stmts.length !== 1) return PASS;
    const transaction = stmts[0]!.stmt.TransactionStmt as { kind?: string } | undefined;
    if (transaction === undefined) return PASS;
    if (transaction.kind === 'TRANS_STMT_BEGIN' || transaction.kind === 'TRANS_STMT_START') return { kind: 'begin' };
    if (
      [
        'TRANS_STMT_COMMIT',
        'TRANS_STMT_ROLLBACK',
        'TRANS_STMT_COMMIT_PREPARED',
        'TRANS_STMT_ROLLBACK_PREPARED',
        'TRANS_STMT_PREPARE',
      ].includes(transaction.kind ?? '')
    ) {
      return { kind: 'end' };
    }
    return PASS;
  }
  if (stmts.length !== 1) refuse('several statements in one text, one of them on a migrated table');
  const statement = stmts[0]!.stmt;
  const kind = Object.keys(statement)[0]!;
  const operation = operationOf(statement, kind, refuse);
  const migrations = [...touched[0]!].flatMap((table) => table.migrations);
  const keys = new Map<string, readonly KeySource[]>();
  for (const table of touched[0]!) {
    const key = pinnedKey(statement, kind, table);
    if (key !== undefined) for (const migration of table.migrations) keys.set(migration.name, key);
  }
  return { kind: 'routed', statement, operation, read: kind === 'SelectStmt', migrations, keys };
}

function operationOf(statement: SqlNode, kind: string, refuse: Refuse): Operation {
  switch (kind) {
    case 'SelectStmt':
      // The new table would take the rewritten statement's columns and persistence, hidden ones included.
      if ((statement.SelectStmt as SqlNode).intoClause !== undefined) {
        refuse(
          'SELECT ... INTO over a migrated table',
          'Create the table with CREATE TABLE, then fill it with INSERT INTO ... SELECT, which is routed',
        );
      }
      return 'find';
    case 'InsertStmt': {
      const conflict = (statement.InsertStmt as SqlNode).onConflictClause as { action?: string } | undefined;
      return conflict?.action === 'ONCONFLICT_UPDATE' ? 'upsert' : 'insert';
    }
    case 'UpdateStmt':
      return 'update';
    case 'DeleteStmt':
      return 'delete';
    default:
      return refuse(`a ${kind.replace(/Stmt$/, '').toUpperCase()} statement on a migrated table`);
  }
}

/** The migrated tables any relation of `node` names. */
function touchedTables(node: SqlNode, tables: ReadonlyMap<string, MigratedTable>): Set<MigratedTable> {
  const found = new Set<MigratedTable>();
  forEachNode(node, (object) => {
    // A FROM item is wrapped (`{ RangeVar }`); the target of INSERT, UPDATE, DELETE and MERGE is not.
    const range = (object.RangeVar ?? object.relation) as SqlNode | undefined;
    if (range !== undefined && typeof range.relname === 'string') {
      const table = tables.get(range.relname as string);
      if (table !== undefined) found.add(table);
    }
  });
  return found;
}

/** The key of the one row of `table` the statement pins: `WHERE key = $n` (ANDed), or one VALUES row. */
function pinnedKey(statement: SqlNode, kind: string, table: MigratedTable): KeySource[] | undefined {
  const body = statement[kind] as SqlNode;
  if (kind === 'InsertStmt') {
    const rows = ((body.selectStmt as SqlNode | undefined)?.SelectStmt as SqlNode | undefined)?.valuesLists as
      | SqlNode[]
      | undefined;
    if (rows?.length !== 1 || !isTable(body.relation as SqlNode, table)) return undefined;
    const names = ((body.cols as SqlNode[] | undefined) ?? []).map((col) => (col.ResTarget as SqlNode).name as string);
    const values = (rows[0]!.List as { items: SqlNode[] }).items;
    return collect(table, (column) => {
      const index = names.indexOf(column);
      return index < 0 ? undefined : source(values[index]!);
    });
  }
  const from = kind === 'SelectStmt' ? (body.fromClause as SqlNode[] | undefined) : [{ RangeVar: body.relation }];
  if (from?.length !== 1 || from[0]!.RangeVar === undefined || !isTable(from[0]!.RangeVar as SqlNode, table)) {
    return undefined;
  }
  const equalities = new Map<string, KeySource>();
  const where = body.whereClause as SqlNode | undefined;
  const conjuncts =
    (where?.BoolExpr as SqlNode | undefined)?.boolop === 'AND_EXPR'
      ? ((where!.BoolExpr as SqlNode).args as SqlNode[])
      : where === undefined
        ? []
        : [where];
  for (const conjunct of conjuncts) {
    const expression = conjunct.A_Expr as SqlNode | undefined;
    if (expression?.kind !== 'AEXPR_OP') continue;
    const operator = ((expression.name as SqlNode[])[0]!.String as { sval: string }).sval;
    if (operator !== '=') continue;
    for (const [left, right] of [
      [expression.lexpr, expression.rexpr],
      [expression.rexpr, expression.lexpr],
    ] as [SqlNode, SqlNode][]) {
      const fields = (left.ColumnRef as SqlNode | undefined)?.fields as SqlNode[] | undefined;
      const name = (fields?.[fields.length - 1]?.String as { sval?: string } | undefined)?.sval;
      const value = source(right);
      if (name !== undefined && value !== undefined) equalities.set(name, value);
    }
  }
  return collect(table, (column) => equalities.get(column));
}

function collect(table: MigratedTable, find: (column: string) => KeySource | undefined): KeySource[] | undefined {
  const sources: KeySource[] = [];
  for (const column of table.keyColumns) {
    const found = find(column);
    if (found === undefined) return undefined;
    sources.push(found);
  }
  return sources;
}

function isTable(range: SqlNode, table: MigratedTable): boolean {
  return range.relname === table.name;
}

function source(node: SqlNode): KeySource | undefined {
  const param = node.ParamRef as { number?: number } | undefined;
  if (param?.number !== undefined) return { param: param.number };
  const constant = node.A_Const as SqlNode | undefined;
  if (constant === undefined) return undefined;
  const integer = constant.ival as { ival?: number } | undefined;
  if (integer !== undefined) return { constant: String(integer.ival ?? 0) };
  const text = (constant.sval as { sval?: string } | undefined)?.sval;
  return text === undefined ? undefined : { constant: text };
}
