/**
 * Name resolution over a parse tree: which relation of which FROM list a column reference
 * means, the way PostgreSQL resolves it, and the refusals where the router can't tell
 * (an unqualified name that could belong to a table whose columns it doesn't know).
 */
import { ValidationError } from '../kernel/index.js';
import type { SqlNode } from './parser.js';
import type { MigratedColumn, MigratedTable } from './tables.js';

/** One relation of a FROM list (or the target of a write). */
export interface Entry {
  /** The name it is referenced by: its alias, else its table name; `undefined` for an unaliased sub-select. */
  readonly ref: string | undefined;
  readonly schema: string | undefined;
  readonly relname: string | undefined;
  readonly aliased: boolean;
  /** Set when the relation is a migrated table. */
  readonly table: MigratedTable | undefined;
  /** ON CONFLICT's `excluded`: the row the INSERT proposed, not a stored one. */
  readonly proposed?: boolean;
  /** RETURNING's `old` and `new`: the target's row before and after, named only when qualified. */
  readonly qualifiedOnly?: boolean;
}

/** The relations one query level sees, and the level around it. */
export interface Scope {
  readonly entries: Entry[];
  readonly parent: Scope | undefined;
  /** Names of common table expressions in force: a relation of that name is the CTE, not a table. */
  readonly ctes: ReadonlySet<string>;
  /** Whether a JOIN ... USING or NATURAL JOIN merges columns at this level (a `*` can't be expanded then). */
  merged: boolean;
}

/** A column reference that names a migrated column. */
export interface Resolved {
  readonly entry: Entry & { readonly table: MigratedTable };
  readonly column: MigratedColumn;
  /** The qualifier the reference was written with (`[]` when unqualified). */
  readonly qualifier: readonly string[];
}

/**
 * Throws the error of a construct the router can't rewrite safely; `remedy`, a sentence
 * saying what to write instead, follows the refusal.
 */
export type Refuse = (construct: string, remedy?: string) => never;

export function newScope(parent: Scope | undefined, ctes?: ReadonlySet<string>): Scope {
  return { entries: [], parent, ctes: ctes ?? parent?.ctes ?? new Set(), merged: false };
}

/**
 * The entry of a relation `RangeVar`, matched against the migrated tables unless a CTE
 * shadows it. The target of an INSERT, UPDATE, DELETE or MERGE (`target`) is always a
 * table: PostgreSQL never resolves it to a CTE of the same name.
 */
export function rangeEntry(
  rangeVar: SqlNode,
  scope: Scope,
  tables: ReadonlyMap<string, MigratedTable>,
  target = false,
): Entry {
  const relname = rangeVar.relname as string;
  const schema = rangeVar.schemaname as string | undefined;
  const alias = (rangeVar.alias as { aliasname?: string } | undefined)?.aliasname;
  let table: MigratedTable | undefined;
  if (rangeVar.catalogname === undefined && (target || schema !== undefined || !scope.ctes.has(relname))) {
    const candidate = tables.get(relname);
    if (candidate !== undefined && (schema === undefined || schema === (candidate.schema ?? 'public'))) {
      table = candidate;
    }
  }
  return { ref: alias ?? relname, schema, relname, aliased: alias !== undefined, table };
}

/** The strings of a ColumnRef's fields, or `undefined` when one is `*`. */
export function refNames(columnRef: SqlNode): string[] | undefined {
  const names: string[] = [];
  for (const field of columnRef.fields as SqlNode[]) {
    const text = (field.String as { sval?: string } | undefined)?.sval;
    if (text === undefined) return undefined;
    names.push(text);
  }
  return names;
}

function isMigrated(entry: Entry): entry is Entry & { table: MigratedTable } {
  return entry.table !== undefined;
}

/** The entry a qualifier (`alias`, or `schema.table`) names, searching outwards. */
export function entryByQualifier(qualifier: readonly string[], scope: Scope | undefined): Entry | undefined {
  for (let level = scope; level !== undefined; level = level.parent) {
    for (const entry of level.entries) {
      if (qualifier.length === 1 && entry.ref === qualifier[0]) return entry;
      if (
        qualifier.length === 2 &&
        !entry.aliased &&
        entry.relname === qualifier[1] &&
        (entry.schema ?? entry.table?.schema ?? 'public') === qualifier[0]
      ) {
        return entry;
      }
    }
  }
  return undefined;
}

/**
 * What a column reference names: a migrated column (resolved), or anything else
 * (`undefined`). Refuses a reference to an old column, an unqualified name the router
 * can't attribute, and a whole-row reference to a migrated table.
 */
export function resolveColumn(names: readonly string[], scope: Scope, refuse: Refuse): Resolved | undefined {
  const column = names[names.length - 1]!;
  const qualifier = names.slice(0, -1);
  if (qualifier.length > 0) {
    if (qualifier.length > 2) {
      const entry = entryByQualifier(qualifier.slice(-2), scope);
      if (entry?.table !== undefined) refuse(`the database-qualified reference ${names.join('.')}`);
      return undefined;
    }
    const entry = entryByQualifier(qualifier, scope);
    if (entry === undefined || !isMigrated(entry)) return undefined;
    return migratedColumn(entry, column, qualifier, refuse);
  }
  for (let level: Scope | undefined = scope; level !== undefined; level = level.parent) {
    const entries = level.entries.filter((entry) => !entry.qualifiedOnly);
    const owners = entries.filter(
      (entry) => entry.table?.newColumns.has(column) || entry.table?.oldColumns.has(column),
    );
    const unknown = entries.some((entry) => entry.table === undefined);
    if (owners.length > 1) refuse(`the unqualified column "${column}", which ${owners.length} migrated tables have`);
    if (owners.length === 1) {
      if (unknown) {
        refuse(
          `the unqualified column "${column}" next to relations whose columns the router doesn't know; qualify it`,
        );
      }
      return migratedColumn(owners[0] as Entry & { table: MigratedTable }, column, [], refuse);
    }
    if (entries.some((entry) => entry.table?.known.has(column))) return undefined;
    if (unknown) {
      for (let outer = level.parent; outer !== undefined; outer = outer.parent) {
        if (outer.entries.some((entry) => entry.table?.newColumns.has(column))) {
          refuse(
            `the unqualified column "${column}" in a sub-query over relations the router doesn't know; qualify it`,
          );
        }
      }
      return undefined;
    }
  }
  for (let level: Scope | undefined = scope; level !== undefined; level = level.parent) {
    if (level.entries.some((entry) => entry.table !== undefined && entry.ref === column)) {
      refuse(`the whole-row reference "${column}" to a migrated table`);
    }
  }
  return undefined;
}

function migratedColumn(
  entry: Entry & { table: MigratedTable },
  column: string,
  qualifier: readonly string[],
  refuse: Refuse,
): Resolved | undefined {
  const migrated = entry.table.newColumns.get(column);
  if (migrated !== undefined) return { entry, column: migrated, qualifier };
  if (entry.table.oldColumns.has(column)) {
    refuse(
      `the old column "${column}" of ${entry.table.name}; the application names the new shape and flagshift routes it`,
    );
  }
  return undefined;
}

/** Refuses with a {@link ValidationError} naming the statement and the construct. */
export function refuser(sql: string): Refuse {
  return (construct: string, remedy?: string) => {
    const preview = sql.length > 120 ? `${sql.slice(0, 120)}...` : sql;
    const instead = remedy === undefined ? '' : ` ${remedy}.`;
    throw new ValidationError(
      `routed SQL: can't rewrite ${construct} safely; nothing was run.${instead} Statement: ${preview}`,
    );
  };
}
