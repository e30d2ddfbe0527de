/**
 * The columns a write sets, made to set every side its stage writes: each value written to
 * a new column is copied into the old side's form in the same statement (or handed to the
 * moved column's write on its side table), and the sides the stage doesn't write dropped.
 */
import type { MovedWrite } from './moved-writes.js';
import { resTarget, type SqlNode, type SqlParser } from './parser.js';
import type { Refuse } from './scope.js';
import { backwardExpression, type FormCache } from './sql-forms.js';
import type { MigratedColumn, MigratedTable, Mode } from './tables.js';
import { unstableCall } from './volatility.js';

/** What a write's rewrite needs of the statement's: its routing, its parser and its refusals. */
export interface WriteContext {
  readonly modes: ReadonlyMap<string, Mode>;
  readonly parser: SqlParser;
  readonly forms: FormCache;
  readonly refuse: Refuse;
  /** Set once a write is rewritten. */
  changed: boolean;
  /** The top-level write of moved columns on their side table, when the statement is one. */
  readonly moved: MovedWrite | undefined;
}

/**
 * Makes a column list of `statement` set every side its stage writes. `rows` are an
 * INSERT's VALUES lists (in the order of `cols`); without them, `cols` are SET assignments
 * with their values. `refusal` names the construct when values can't be rewritten
 * (INSERT ... SELECT).
 */
export function writeColumns(
  ctx: WriteContext,
  statement: SqlNode,
  table: MigratedTable,
  cols: SqlNode[],
  rows: SqlNode[][] | undefined,
  refusal: string,
): void {
  const insert = refusal !== '';
  const setBy = new Map<string, number>();
  cols.forEach((item, index) => {
    const target = item.ResTarget as SqlNode;
    const name = target.name as string;
    if (table.oldColumns.has(name)) {
      ctx.refuse(`a write of the old column "${name}" of ${table.name}; the application names the new shape`);
    }
    if (table.newColumns.has(name)) {
      if (target.indirection !== undefined) ctx.refuse(`a write to a part of the migrated column "${name}"`);
      setBy.set(name, index);
    }
  });
  if (setBy.size === 0) return;
  const mappings = new Set<MigratedColumn['mapping']>();
  for (const name of setBy.keys()) mappings.add(table.newColumns.get(name)!.mapping);
  const drop = new Set<number>();
  for (const mapping of mappings) {
    const migration = table.newColumns.get(mapping.newColumns[0]!.name)!.migration;
    const mode = ctx.modes.get(migration.name)!;
    const moved = mapping.newTable !== undefined && mode.writesNew;
    if (moved && (ctx.moved === undefined || ctx.moved.body !== statement)) {
      ctx.refuse(
        `a write of the moved column ${[...setBy.keys()].map((name) => `"${name}"`).join(', ')} inside another statement while migration "${migration.name}" writes ${mapping.newTable!.table.display} too`,
      );
    }
    if (!mode.writesOld && !moved) continue;
    if (insert && rows === undefined) ctx.refuse(refusal);
    for (const column of mapping.newColumns) {
      if (!setBy.has(column.name)) {
        ctx.refuse(
          `a write of ${[...setBy.keys()].join(', ')} without "${column.name}", which the same mapping stores together`,
        );
      }
    }
    ctx.changed = true;
    const valueLists = rows ?? [cols.map((item) => (item.ResTarget as SqlNode).val as SqlNode)];
    if (moved) {
      const columns = mapping.newColumns.map((column) => table.newColumns.get(column.name)!);
      const values = valueLists.map((list) => mapping.newColumns.map((column) => list[setBy.get(column.name)!]!));
      ctx.moved!.assign(columns, insert, values);
      // The moved column isn't the main table's (a same-named one there is its old side).
      for (const column of mapping.newColumns) drop.add(setBy.get(column.name)!);
      if (!mode.writesOld) continue;
    }
    refuseUnstableCopies(ctx, table, mapping, mode.writesNew && !moved, valueLists, (name) => setBy.get(name)!);
    for (const values of valueLists) {
      const valueAt = (name: string) => values[setBy.get(name)!]!;
      const added = mapping.oldColumns.map((_, j) => backwardExpression(ctx.parser, ctx.forms, mapping, j, valueAt));
      if (rows !== undefined) values.push(...added);
      else for (const [j, value] of added.entries()) cols.push(resTarget(mapping.oldColumns[j]!.name, value));
    }
    if (rows !== undefined)
      for (const column of mapping.oldColumns) cols.push(resTarget(column.name, undefined as never));
    if (!mode.writesNew) for (const column of mapping.newColumns) drop.add(setBy.get(column.name)!);
  }
  if (rows !== undefined) {
    // INSERT's column list holds names only.
    for (const item of cols) delete (item.ResTarget as SqlNode).val;
  }
  if (drop.size === 0) return;
  const keep = (_: unknown, index: number) => !drop.has(index);
  const kept = cols.filter(keep);
  cols.splice(0, cols.length, ...kept);
  for (const values of rows ?? []) values.splice(0, values.length, ...values.filter(keep));
}

/**
 * Refuses a value that the write evaluates more than once (kept on the new column, and
 * copied into each old column's form that names it) when it calls a function that may
 * give another value each time: each side would store its own.
 */
function refuseUnstableCopies(
  ctx: WriteContext,
  table: MigratedTable,
  mapping: MigratedColumn['mapping'],
  keptOnNew: boolean,
  valueLists: readonly SqlNode[][],
  indexOf: (name: string) => number,
): void {
  for (const column of mapping.newColumns) {
    const reference = `{${column.name}}`;
    const copies = mapping.sql!.backward.reduce((n, form) => n + form.split(reference).length - 1, keptOnNew ? 1 : 0);
    if (copies < 2) continue;
    for (const values of valueLists) {
      const call = unstableCall(values[indexOf(column.name)]);
      if (call === undefined) continue;
      ctx.refuse(
        `${call} in the value written to the migrated column "${column.name}" of ${table.name}, which the old side's columns get too (each would get a value of its own)`,
        'Compute the value in the application and pass it as a parameter',
      );
    }
  }
}
