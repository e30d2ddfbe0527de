/**
 * Where flagshift keeps its state: the schema (one default, `flagshift`), the tables in
 * it, the kinds of entries in its event log, and which of the tables exist. Every module
 * of this folder names the state tables through here.
 */
import { existingRelations } from '../../catalog/index.js';
import { ConfigurationError, type Queryable } from '../../kernel/index.js';
import { identifierProblem } from '../../model/index.js';

/** The default schema of flagshift's state tables (events, verifications, backfill, fleet metrics). */
export const DEFAULT_STATE_SCHEMA = 'flagshift';

/** The lifecycle's state tables (the fleet metrics tables are created apart, by their publishers). */
export const STATE_TABLES = ['events', 'verifications', 'backfill_checkpoints', 'backfill_ranges'] as const;

/** One of {@link STATE_TABLES}. */
export type StateTable = (typeof STATE_TABLES)[number];

/** The kinds of entries of the event log. */
export const EVENT_KINDS = ['expand', 'contract', 'backfill', 'verify', 'stage', 'force'] as const;

/** What kind of step an entry of the event log records. */
export type LifecycleEventKind = (typeof EVENT_KINDS)[number];

/** Validates `schema` (a state schema name) and returns it double-quoted. */
export function quoteStateSchema(schema: string = DEFAULT_STATE_SCHEMA): string {
  const problem = identifierProblem(schema);
  if (problem !== undefined) {
    throw new ConfigurationError(`option "stateSchema": ${JSON.stringify(schema)} ${problem}`, {
      path: 'stateSchema',
    });
  }
  return `"${schema}"`;
}

/**
 * Which of `tables` exist in the state schema `schema`. Reads never create the state
 * tables: a read-only replica, or a role without CREATE, can run every read.
 */
export async function existingStateTables<T extends string = StateTable>(
  db: Queryable,
  schema: string,
  tables: readonly T[],
): Promise<Set<T>> {
  const s = quoteStateSchema(schema);
  const found = await existingRelations(
    db,
    tables.map((table) => `${s}."${table}"`),
  );
  return new Set(tables.filter((table) => found.has(`${s}."${table}"`)));
}

/** Whether every one of `tables` exists in the state schema `schema`. */
export async function stateTablesExist(db: Queryable, schema: string, tables: readonly string[]): Promise<boolean> {
  return (await existingStateTables(db, schema, tables)).size === tables.length;
}
