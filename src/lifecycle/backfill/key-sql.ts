/**
 * The SQL pieces over a migration's key that the data steps share: column lists, row
 * comparisons, orderings, and keys carried as JSON text.
 *
 * Keys travel as a JSON array of the key values' text forms (`["42","b"]`), built and
 * parsed in SQL. Text round-trips every key type exactly (bigint beyond 2^53, numeric,
 * timestamps, uuid), so the checkpoint never depends on how a driver maps types to JS.
 */
import type { BoundColumn } from '../../model/index.js';
import type { DataPlan } from './types.js';

/** `t."a", t."b"`. */
export function keyList(plan: DataPlan, alias: string): string {
  return plan.key.map((column) => `${alias}.${column.quoted}`).join(', ');
}

/** `(t."a", t."b")`, for row comparisons. */
export function keyRow(plan: DataPlan, alias: string): string {
  return `(${keyList(plan, alias)})`;
}

/** `t."a" DESC, t."b" DESC`. */
export function keyOrder(plan: DataPlan, alias: string, direction: 'ASC' | 'DESC' = 'ASC'): string {
  return plan.key.map((column) => `${alias}.${column.quoted} ${direction}`).join(', ');
}

/** A key carried as JSON text (`$1`), back as a row of the key's types. */
export function keyFromJson(plan: DataPlan, param: string): string {
  return `(${plan.key.map((column, index) => `(${param}::jsonb->>${index})::${column.type}`).join(', ')})`;
}

/**
 * The key of alias's row as a JSON array of texts. The text is JSON's (`to_jsonb`), not
 * the type's output function: timestamps come out in ISO 8601 whatever the session's
 * `DateStyle`, so a key written by one worker reads back the same in another.
 */
export function keyToJson(plan: DataPlan, alias: string): string {
  return `jsonb_build_array(${plan.key.map((column) => `to_jsonb(${alias}.${column.quoted}) #>> '{}'`).join(', ')})`;
}

/** `a."k" = b."k" AND ...`, with `rightColumns` naming b's key columns when they differ. */
export function keyJoin(plan: DataPlan, left: string, right: string, rightColumns?: readonly BoundColumn[]): string {
  return plan.key
    .map((column, index) => `${left}.${column.quoted} = ${right}.${rightColumns?.[index]?.quoted ?? column.quoted}`)
    .join(' AND ');
}
