/**
 * The query side of the model: `find` with filter operators and projections, `count`,
 * keyset pages and inserts that leave the key to the table's identity. The model answers
 * each from both physical columns of every row, so it says exactly which rows a query must
 * return from the side that serves it, and whether comparing with the other side must
 * report a mismatch.
 */
import fc from 'fast-check';
import type { Side } from 'flagshift';
import type { UsersModel } from './model.js';

/** A field of the model's entity. */
export type ModelField = 'id' | 'username' | 'email';

/** One filter of a query: `eq` is a plain value (`null` matching NULL), the rest operators. */
export interface FieldFilter {
  readonly field: ModelField;
  readonly op: 'eq' | 'in' | 'notIn' | 'not' | 'null' | 'gt' | 'gte' | 'lt' | 'lte' | 'startsWith';
  readonly value: unknown;
}

/** The orders a page walk may take: only over values every collation orders alike. */
export const PAGE_ORDERS = {
  'id-desc': [{ field: 'id', direction: 'desc' }],
  'email-asc': [{ field: 'email', direction: 'asc' }],
  'email-desc': [{ field: 'email', direction: 'desc' }],
} as const;

/** A query command. `tk` is a call-context targeting key. */
export type QueryCommand =
  | {
      readonly op: 'findWhere';
      readonly filters: readonly FieldFilter[];
      readonly select?: readonly ModelField[];
      readonly tk?: string;
    }
  | { readonly op: 'count'; readonly filters: readonly FieldFilter[]; readonly tk?: string }
  | {
      readonly op: 'pages';
      readonly filters: readonly FieldFilter[];
      readonly order: keyof typeof PAGE_ORDERS;
      readonly limit: number;
      readonly select?: readonly ModelField[];
      readonly tk?: string;
    }
  /** An insert without the key: the table's identity supplies it. */
  | { readonly op: 'insertGenerated'; readonly username: string; readonly email: string };

/** The `where` object of `filters`. */
export function whereOf(filters: readonly FieldFilter[]): Record<string, unknown> {
  const where: Record<string, unknown> = {};
  for (const { field, op, value } of filters) where[field] = op === 'eq' ? value : { [op]: value };
  return where;
}

/** Whether `value` (a field's value on one side) passes `filter`: NULL passes only `eq null` and `null: true`. */
function passes(value: unknown, { op, value: operand }: FieldFilter): boolean {
  if (op === 'eq') return value === operand;
  if (op === 'null') return (value === null) === operand;
  if (value === null) return false;
  switch (op) {
    case 'in':
      return (operand as unknown[]).includes(value);
    case 'notIn':
      return !(operand as unknown[]).includes(value);
    case 'not':
      return operand === null || value !== operand;
    case 'startsWith':
      return (value as string).startsWith(operand as string);
    case 'gt':
      return (value as number) > (operand as number);
    case 'gte':
      return (value as number) >= (operand as number);
    case 'lt':
      return (value as number) < (operand as number);
    default:
      return (value as number) <= (operand as number);
  }
}

/** Whether the query touches the migration: then it runs as a whole on one side. */
export function touchesMigration(filters: readonly FieldFilter[]): boolean {
  return filters.some((filter) => filter.field === 'username');
}

/** Ids of the rows matching `filters` with `username` read from `side`, ascending. */
export function matchingIds(model: UsersModel, filters: readonly FieldFilter[], side: Side): number[] {
  return [...model.rows]
    .filter(([id, row]) =>
      filters.every((filter) => {
        const value =
          filter.field === 'id' ? id : filter.field === 'email' ? row.email : side === 'old' ? row.old : row.new;
        return passes(value, filter);
      }),
    )
    .map(([id]) => id)
    .sort((a, b) => a - b);
}

/** The entity `id` with `username` from `side`, as a projection to `select` returns it. */
export function entityOf(
  model: UsersModel,
  id: number,
  side: Side,
  select: readonly ModelField[] | undefined,
): Record<string, unknown> {
  const row = model.rows.get(id)!;
  const entity: Record<string, unknown> = { id, username: side === 'old' ? row.old : row.new, email: row.email };
  if (select === undefined) return entity;
  return Object.fromEntries([...new Set(select)].map((field) => [field, entity[field]]));
}

// ---- arbitraries ----

const ids = fc.oneof(fc.integer({ min: 0, max: 7 }), fc.constantFrom(1000, 1001, 1002));
const names = fc.constantFrom('ada', 'bob', 'cy', '', "o'hara", 'ünï ✓', '  ');
const prefixes = fc.constantFrom('', 'a', 'ad', 'b', "o'", 'ü', '%', '_');
const emails = fc.constantFrom('a@x', 'b@x', 'c@x', 'legacy@x');

const idFilter = fc.oneof(
  fc.record({ field: fc.constant('id' as const), op: fc.constant('eq' as const), value: ids }),
  fc.record({
    field: fc.constant('id' as const),
    op: fc.constantFrom('in' as const, 'notIn' as const),
    value: fc.array(ids, { maxLength: 4 }),
  }),
  fc.record({
    field: fc.constant('id' as const),
    op: fc.constantFrom('gt' as const, 'gte' as const, 'lt' as const, 'lte' as const, 'not' as const),
    value: ids,
  }),
);
const textFilter = <F extends 'username' | 'email'>(field: F, values: fc.Arbitrary<string>) =>
  fc.oneof(
    fc.record({ field: fc.constant(field), op: fc.constant('eq' as const), value: fc.option(values, { nil: null }) }),
    fc.record({
      field: fc.constant(field),
      op: fc.constantFrom('in' as const, 'notIn' as const),
      value: fc.array(values, { maxLength: 3 }),
    }),
    fc.record({ field: fc.constant(field), op: fc.constant('not' as const), value: fc.option(values, { nil: null }) }),
    fc.record({ field: fc.constant(field), op: fc.constant('null' as const), value: fc.boolean() }),
    fc.record({ field: fc.constant(field), op: fc.constant('startsWith' as const), value: prefixes }),
  );
/** Up to one filter per field. */
const filters: fc.Arbitrary<FieldFilter[]> = fc.uniqueArray(
  fc.oneof(idFilter, textFilter('username', names), textFilter('email', emails)),
  { maxLength: 3, selector: (filter) => filter.field },
);
const select = fc.option(fc.uniqueArray(fc.constantFrom<ModelField>('id', 'username', 'email'), { minLength: 1 }), {
  nil: undefined,
});
const targetingKeys = fc.option(fc.constantFrom('tenant-a', 'tenant-b', ''), { nil: undefined, freq: 2 });

function defined<T extends object>(command: T): T {
  return Object.fromEntries(Object.entries(command).filter(([, value]) => value !== undefined)) as T;
}

/** Query commands and generated-key inserts. */
export const queryCommand: fc.Arbitrary<QueryCommand> = fc.oneof(
  fc.record({ filters, select, tk: targetingKeys }).map((command) => defined({ op: 'findWhere' as const, ...command })),
  fc.record({ filters, tk: targetingKeys }).map((command) => defined({ op: 'count' as const, ...command })),
  fc
    .record({
      filters,
      order: fc.constantFrom(...(Object.keys(PAGE_ORDERS) as (keyof typeof PAGE_ORDERS)[])),
      limit: fc.integer({ min: 1, max: 3 }),
      select,
      tk: targetingKeys,
    })
    .map((command) => defined({ op: 'pages' as const, ...command })),
  fc.record({ op: fc.constant('insertGenerated' as const), username: names, email: emails }),
);
