/**
 * The filters of `find`, `count` and pages: operator objects checked against the entity
 * schema, and the SQL of every condition on the side each migration is read from. On a
 * migration's old side an operator is only sent when the old columns answer it exactly as
 * the new ones would; otherwise {@link oldSideProblem} names it, and the caller refuses
 * the query or skips comparing it.
 */
import type { z } from 'zod';
import { previewValue, ValidationError } from '../kernel/index.js';
import type { BoundColumn, BoundMapping, Side } from '../model/index.js';
import type { RepositoryCore } from './core.js';
import type { Params } from './statements.js';
import type { Entity } from './types.js';

/** The operators of a field filter, as {@link FieldOperators} names them. */
export const OPERATORS = ['in', 'notIn', 'not', 'null', 'gt', 'gte', 'lt', 'lte', 'startsWith'] as const;

/** One of {@link OPERATORS}. */
export type Operator = (typeof OPERATORS)[number];

/** One validated operator on one field: `in` and `notIn` hold a list, `null` a boolean. */
export interface FieldCondition {
  readonly field: string;
  readonly operator: Operator;
  readonly value: unknown;
}

const RANGE: ReadonlySet<Operator> = new Set(['gt', 'gte', 'lt', 'lte']);
// Longest `in` / `notIn` list: each value is a bind parameter, and a statement takes 65535.
const MAX_LIST = 10000;

/** Whether `value`, given for a field of kind `kind`, is an operator object rather than a value. */
export function isOperatorObject(value: unknown, kind: string | undefined): value is Record<string, unknown> {
  if (kind === 'json' || value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** The conditions of one field's operator object, each value checked against the field's schema. */
export function parseOperators(
  core: RepositoryCore,
  field: string,
  ops: Record<string, unknown>,
  what: string,
): FieldCondition[] {
  const { table } = core;
  const schema = table.entity.shape[field] as z.ZodType;
  const kind = table.fieldKinds[field];
  const at = `${what}: where: "${field}"`;
  const names = Object.keys(ops).filter((name) => ops[name] !== undefined);
  if (names.length === 0)
    throw new ValidationError(`${at}: an operator object needs at least one operator`, { fields: [field] });
  const check = (operator: string, value: unknown): unknown => {
    if (value === null) {
      throw new ValidationError(`${at}: ${operator}: null is not a value to compare with; use { null: true }`, {
        fields: [field],
      });
    }
    const result = schema.safeParse(value);
    if (!result.success) {
      throw new ValidationError(`${at}: ${operator}: ${result.error.issues[0]!.message} (got ${previewValue(value)})`, {
        fields: [field],
      });
    }
    return result.data;
  };
  const conditions: FieldCondition[] = [];
  for (const name of names) {
    const value = ops[name];
    if (!(OPERATORS as readonly string[]).includes(name)) {
      throw new ValidationError(`${at}: unknown operator "${name}" (known: ${OPERATORS.join(', ')})`, {
        fields: [field],
      });
    }
    const operator = name as Operator;
    if (operator === 'in' || operator === 'notIn') {
      if (!Array.isArray(value)) {
        throw new ValidationError(`${at}: ${operator} takes an array, got ${previewValue(value)}`, { fields: [field] });
      }
      if (value.length > MAX_LIST) {
        throw new ValidationError(`${at}: ${operator} takes at most ${MAX_LIST} values, got ${value.length}`, {
          fields: [field],
        });
      }
      conditions.push({ field, operator, value: value.map((item) => check(operator, item)) });
    } else if (operator === 'null') {
      if (typeof value !== 'boolean') {
        throw new ValidationError(`${at}: null takes true or false, got ${previewValue(value)}`, { fields: [field] });
      }
      conditions.push({ field, operator, value });
    } else if (operator === 'not') {
      conditions.push({ field, operator, value: value === null ? null : check(operator, value) });
    } else if (operator === 'startsWith') {
      if (kind !== 'string' || typeof value !== 'string') {
        throw new ValidationError(
          `${at}: startsWith takes a string and a text field${kind === 'string' ? `, got ${previewValue(value)}` : `; "${field}" is a ${kind} field`}`,
          { fields: [field] },
        );
      }
      conditions.push({ field, operator, value });
    } else {
      if (kind === 'boolean' || kind === 'json') {
        throw new ValidationError(`${at}: ${operator} needs an ordered field; "${field}" is a ${kind} field`, {
          fields: [field],
        });
      }
      conditions.push({ field, operator, value: check(operator, value) });
    }
  }
  return conditions;
}

// Types whose order (and, for text, prefixes) agree: a change of type within one family
// answers ranges on the old column as the new one would.
const FAMILIES: readonly RegExp[] = [
  /^(smallint|int2|integer|int|int4|bigint|int8|real|float4|float8|double precision|numeric|decimal)\s*(\(.*\))?$/i,
  /^(text|varchar|character varying)\s*(\(.*\))?$/i,
  /^(timestamp|timestamptz)\s*(\(\s*\d+\s*\))?(\s+with(out)?\s+time\s+zone)?$/i,
];

function sameFamily(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined) return false;
  return FAMILIES.some((family) => family.test(a.trim()) && family.test(b.trim()));
}

function isTextType(type: string | undefined): boolean {
  return type !== undefined && FAMILIES[1]!.test(type.trim());
}

/**
 * Why `condition` on a migrated field can't be evaluated exactly on its mapping's old
 * columns, or `undefined` when it can. Old columns that hold the field unchanged (a
 * rename, a move, a type change within one family) answer every operator; other type
 * changes answer what compares values for equality; a mapping that transforms values
 * answers `in` and `null: true` through its backward form, as equality is answered.
 */
export function oldSideProblem(mapping: BoundMapping, condition: FieldCondition): string | undefined {
  const { operator } = condition;
  const reason = (why: string) =>
    `operator "${operator}" on field "${condition.field}" can't be answered exactly by the old side: ${why}`;
  if (mapping.fields.length > 1) return reason(`its ${mapping.kind} stores it together with other fields`);
  if (mapping.backward !== undefined) {
    if (operator === 'in' || (operator === 'null' && condition.value === true)) return undefined;
    return reason(`its ${mapping.kind} stores a transformed value`);
  }
  if (!RANGE.has(operator) && operator !== 'startsWith') return undefined;
  // A rename or a move keeps the values and their type.
  if (mapping.kind !== 'change-type') return undefined;
  const [from, to] = [mapping.oldColumns[0]!.type, mapping.newColumns[0]!.type];
  if (operator === 'startsWith' ? isTextType(from) && isTextType(to) : sameFamily(from, to)) return undefined;
  return reason(`it is stored there as ${from ?? 'another type'}, which orders values unlike ${to ?? 'the new type'}`);
}

/** The SQL of one operator on the expression `x` (a column of codec `column`). */
function operatorSql(x: string, column: BoundColumn, operator: Operator, value: unknown, params: Params): string {
  const { codec } = column;
  switch (operator) {
    case 'in':
    case 'notIn': {
      const list = value as unknown[];
      // An empty list matches nothing; its negation every row with a value (NULL never matches a comparison).
      if (list.length === 0) return operator === 'in' ? 'FALSE' : `${x} IS NOT NULL`;
      const placeholders = list.map((item) => params.add(codec.encode(item), codec.cast)).join(', ');
      return `${x} ${operator === 'in' ? 'IN' : 'NOT IN'} (${placeholders})`;
    }
    case 'not':
      return value === null ? `${x} IS NOT NULL` : `${x} <> ${params.add(codec.encode(value), codec.cast)}`;
    case 'null':
      return `${x} IS ${value ? '' : 'NOT '}NULL`;
    case 'startsWith':
      return `starts_with(${x}::text, ${params.add(value, '::text')})`;
    default: {
      const symbol = { gt: '>', gte: '>=', lt: '<', lte: '<=' }[operator];
      return `${x} ${symbol} ${params.add(codec.encode(value), codec.cast)}`;
    }
  }
}

/** `x IS NULL`, or `x = $n`. */
function equals(x: string, column: BoundColumn, value: unknown, params: Params): string {
  const encoded = column.codec.encode(value);
  return encoded === null || encoded === undefined
    ? `${x} IS NULL`
    : `${x} = ${params.add(encoded, column.codec.cast)}`;
}

/** What a query filters on: equalities (`null` for IS NULL) and operator conditions. */
export interface Filters {
  readonly where: Entity;
  readonly conditions: readonly FieldCondition[];
}

/**
 * The SQL conditions of `filters` over the main table aliased `alias`, each migrated field
 * on the side `sides` gives its plan (old when absent). An operator the old side can't
 * answer exactly is refused: callers check {@link oldSideProblem} first to decide.
 */
export function filterConditions(
  core: RepositoryCore,
  filters: Filters,
  sides: ReadonlyMap<number, Side>,
  params: Params,
  alias: string,
): string[] {
  const out: string[] = [];
  const one = (field: string, build: (x: string, column: BoundColumn) => string, isNullTest: boolean) => {
    const mapped = core.fieldToPlan.get(field);
    if (mapped === undefined) {
      const column = core.table.columns[field]!;
      out.push(build(`${alias}.${column.quoted}`, column));
      return;
    }
    const { mapping, plan } = mapped;
    const side = sides.get(core.plans.indexOf(plan)) ?? 'old';
    if (side === 'old') {
      out.push(build(`${alias}.${mapping.oldColumns[0]!.quoted}`, mapping.oldColumns[0]!));
      return;
    }
    const column = mapping.newColumns[mapping.fields.indexOf(field)]!;
    if (!mapping.newTable) {
      out.push(build(`${alias}.${column.quoted}`, column));
      return;
    }
    // A main row without its side row reads as NULL there: a test for NULL matches it too.
    const s = mapping.newTable;
    const join = s.keyColumns.map((k, i) => `s.${k.quoted} = ${alias}.${core.keyColumns[i]!.quoted}`).join(' AND ');
    const from = `FROM ${s.table.quoted} s WHERE ${join}`;
    out.push(
      isNullTest
        ? `NOT EXISTS (SELECT 1 ${from} AND s.${column.quoted} IS NOT NULL)`
        : `EXISTS (SELECT 1 ${from} AND ${build(`s.${column.quoted}`, column)})`,
    );
  };
  for (const [field, value] of Object.entries(filters.where)) {
    const mapped = core.fieldToPlan.get(field);
    const side = mapped === undefined ? undefined : (sides.get(core.plans.indexOf(mapped.plan)) ?? 'old');
    if (mapped !== undefined && side === 'old' && (mapped.mapping.backward || mapped.mapping.oldColumns.length > 1)) {
      // The old columns hold the whole group: filter once, on the group's first field.
      if (mapped.mapping.fields[0] === field) {
        out.push(
          ...backwardEquals(
            `${alias}.`,
            mapped.mapping,
            mapped.mapping.fields.map((f) => filters.where[f]),
            params,
          ),
        );
      }
      continue;
    }
    one(field, (x, column) => equals(x, column, value, params), value === null);
  }
  for (const condition of filters.conditions) {
    const { field, operator, value } = condition;
    const mapped = core.fieldToPlan.get(field);
    const side = mapped === undefined ? undefined : (sides.get(core.plans.indexOf(mapped.plan)) ?? 'old');
    if (mapped !== undefined && side === 'old') {
      const problem = oldSideProblem(mapped.mapping, condition);
      if (problem !== undefined)
        throw new ValidationError(`query on ${core.table.table.display}: ${problem}`, { fields: [field] });
      if (mapped.mapping.backward) {
        // `in` and `null: true` through the backward form: one equality of the old columns per value.
        const values = operator === 'in' ? (value as unknown[]) : [null];
        const groups = values.map(
          (item) => `(${backwardEquals(`${alias}.`, mapped.mapping, [item], params).join(' AND ')})`,
        );
        out.push(groups.length === 0 ? 'FALSE' : `(${groups.join(' OR ')})`);
        continue;
      }
    }
    const isNullTest = operator === 'null' && value === true;
    one(field, (x, column) => operatorSql(x, column, operator, value, params), isNullTest);
  }
  return out;
}

/** Equalities of `mapping`'s old columns with the old form of the logical `values`. */
function backwardEquals(prefix: string, mapping: BoundMapping, values: readonly unknown[], params: Params): string[] {
  const oldValues = mapping.backward ? mapping.backward(values) : values;
  return mapping.oldColumns.map((column, index) =>
    equals(`${prefix}${column.quoted}`, column, oldValues[index], params),
  );
}
