/**
 * Validation of what callers pass in: entities, patches and find queries, checked against
 * the table's schemas before anything reaches the database.
 */
import type { z } from 'zod';
import { previewValue, ValidationError } from '../kernel/index.js';
import type { Operation } from '../metrics/index.js';
import type { RepositoryCore } from './core.js';
import { type FieldCondition, type Filters, isOperatorObject, parseOperators } from './filters.js';
import { parseCursor } from './keyset.js';
import type { Entity, FindQuery, OrderBy } from './types.js';

/** A query of `find`, `findPage` or `count`, checked against the entity schema. */
export interface ValidQuery extends Filters {
  readonly orderBy: readonly { field: string; direction: 'ASC' | 'DESC' }[];
  readonly limit: number | undefined;
  /** The cursor's values of the sort fields and the key fields: rows after them. */
  readonly after: readonly unknown[] | undefined;
  /** The fields to fetch and return; `undefined` for all. */
  readonly select: readonly string[] | undefined;
}

/**
 * The entity, validated; its key fields may be absent (left to the column's default, which
 * the write checks), all its other required fields must be present.
 */
export function validateEntity(core: RepositoryCore, entity: unknown, operation: Operation): Entity {
  let schema = core.table.writeSchema as z.ZodType;
  let input = entity;
  if (entity !== null && typeof entity === 'object') {
    const given = entity as Entity;
    const absent = core.table.keyFields.filter((field) => given[field] === undefined);
    if (absent.length > 0) {
      schema = withoutKeySchema(core, absent);
      input = { ...given };
      for (const field of absent) delete (input as Entity)[field];
    }
  }
  const result = schema.safeParse(input);
  if (!result.success) throw validationError(`${operation} into ${core.table.table.display}`, result.error, entity);
  const valid = withoutUndefined(result.data as Entity);
  rejectUnpairedSurrogates(valid, `${operation} into ${core.table.table.display}`);
  return valid;
}

// Per table, per list of absent key fields: the write schema without them.
const withoutKeySchemas = new WeakMap<object, Map<string, z.ZodType>>();

function withoutKeySchema(core: RepositoryCore, absent: readonly string[]): z.ZodType {
  let schemas = withoutKeySchemas.get(core.table);
  if (schemas === undefined) {
    schemas = new Map();
    withoutKeySchemas.set(core.table, schemas);
  }
  const id = absent.join('\u0000');
  let schema = schemas.get(id);
  if (schema === undefined) {
    schema = core.table.entity.omit(Object.fromEntries(absent.map((field) => [field, true]))).strict();
    schemas.set(id, schema);
  }
  return schema;
}

export function validatePatch(core: RepositoryCore, patch: unknown): Entity {
  const { table } = core;
  const result = table.patchSchema.safeParse(patch);
  if (!result.success) throw validationError(`update of ${table.table.display}`, result.error, patch);
  const valid = withoutUndefined(result.data as Entity);
  rejectUnpairedSurrogates(valid, `update of ${table.table.display}`);
  for (const field of table.keyFields) {
    if (field in valid) {
      throw new ValidationError(
        `update of ${table.table.display}: field "${field}" is part of the key and can't be updated`,
        {
          fields: [field],
        },
      );
    }
  }
  return valid;
}

/** A query of `find`, `findPage` or `count` (which name themselves in its errors), checked against the schema. */
export function validateQuery(core: RepositoryCore, query: unknown, method = 'find'): ValidQuery {
  const { table } = core;
  const what = `${method} in ${table.table.display}`;
  if (query === null || typeof query !== 'object') throw new ValidationError(`${what}: the query must be an object`);
  const q = query as FindQuery<Entity>;
  const unknownKeys = Object.keys(q).filter((name) => !['where', 'orderBy', 'limit', 'after', 'select'].includes(name));
  if (unknownKeys.length > 0) throw new ValidationError(`${what}: unknown query option "${unknownKeys[0]}"`);
  const where: Entity = {};
  const conditions: FieldCondition[] = [];
  if (q.where !== undefined) {
    if (q.where === null || typeof q.where !== 'object') throw new ValidationError(`${what}: where must be an object`);
    const nulls: string[] = [];
    const rest: Entity = {};
    for (const [field, value] of Object.entries(q.where)) {
      if (value === null) nulls.push(field);
      else if (table.fields.includes(field) && isOperatorObject(value, table.fieldKinds[field])) {
        conditions.push(...parseOperators(core, field, value, what));
      } else if (value !== undefined) rest[field] = value;
    }
    const result = table.patchSchema.safeParse(rest);
    if (!result.success) throw validationError(`${what}: where`, result.error, q.where);
    Object.assign(where, result.data);
    rejectUnpairedSurrogates(where, `${what}: where`);
    for (const { field, value } of conditions) {
      for (const item of Array.isArray(value) ? value : [value])
        rejectUnpairedSurrogates({ [field]: item }, `${what}: where`);
    }
    for (const field of nulls) {
      if (!table.fields.includes(field)) {
        throw new ValidationError(`${what}: where: "${field}" is not a field of the entity`, { fields: [field] });
      }
      where[field] = null;
    }
    for (const field of Object.keys(where)) {
      const mapped = core.fieldToPlan.get(field);
      if (mapped !== undefined && mapped.mapping.fields.length > 1) {
        const missing = mapped.mapping.fields.filter((f) => !(f in where));
        if (missing.length > 0) {
          throw new ValidationError(
            `${what}: where: "${field}" is stored together with ${missing.map((f) => `"${f}"`).join(', ')} by migration "${mapped.plan.migration.name}"; filter on all of them`,
            { fields: [field] },
          );
        }
      }
    }
  }
  const orderBy: { field: string; direction: 'ASC' | 'DESC' }[] = [];
  const orders = q.orderBy === undefined ? [] : Array.isArray(q.orderBy) ? q.orderBy : [q.orderBy];
  for (const order of orders as OrderBy<Entity>[]) {
    const field = typeof order === 'string' ? order : order?.field;
    const direction = typeof order === 'string' ? 'asc' : (order?.direction ?? 'asc');
    if (typeof field !== 'string' || !table.fields.includes(field)) {
      throw new ValidationError(`${what}: orderBy: ${previewValue(field)} is not a field of the entity`, {
        fields: [String(field)],
      });
    }
    if (direction !== 'asc' && direction !== 'desc') {
      throw new ValidationError(
        `${what}: orderBy: direction of "${field}" must be "asc" or "desc", got ${previewValue(direction)}`,
      );
    }
    const mapped = core.fieldToPlan.get(field);
    if (
      mapped !== undefined &&
      (mapped.mapping.newTable || mapped.mapping.oldColumns.length !== 1 || mapped.mapping.forward)
    ) {
      throw new ValidationError(
        `${what}: orderBy: "${field}" can't be ordered by while migration "${mapped.plan.migration.name}" stores it as a ${mapped.mapping.kind}; order by another field`,
        { fields: [field] },
      );
    }
    orderBy.push({ field, direction: direction === 'asc' ? 'ASC' : 'DESC' });
  }
  const limit = q.limit;
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 0)) {
    throw new ValidationError(`${what}: limit must be a non-negative integer, got ${previewValue(limit)}`);
  }
  const after = q.after === undefined ? undefined : parseCursor(core, orderBy, q.after, what);
  let select: string[] | undefined;
  if (q.select !== undefined) {
    if (!Array.isArray(q.select) || q.select.length === 0) {
      throw new ValidationError(`${what}: select must be a non-empty array of fields, got ${previewValue(q.select)}`);
    }
    for (const field of q.select) {
      if (typeof field !== 'string' || !table.fields.includes(field)) {
        throw new ValidationError(`${what}: select: ${previewValue(field)} is not a field of the entity`, {
          fields: [String(field)],
        });
      }
    }
    select = [...new Set(q.select as string[])];
  }
  return { where, conditions, orderBy, limit, after, select };
}

/**
 * `values` without its fields whose value is `undefined`. Such a field counts as absent, as
 * in Prisma: an update or upsert keeps its stored value and an insert leaves the column's
 * default, where writing it would store NULL (`{ ...patch, name: maybeName }` would clear
 * the name, even of a field the schema says is never null).
 */
function withoutUndefined(values: Entity): Entity {
  let absent = false;
  for (const field in values) {
    if (values[field] === undefined) {
      absent = true;
      break;
    }
  }
  if (!absent) return values;
  const present: Entity = {};
  for (const field in values) if (values[field] !== undefined) present[field] = values[field];
  return present;
}

/** `String.prototype.isWellFormed` (ES2024, native since Node 20; the compiler's lib predates it). */
function isWellFormed(value: string): boolean {
  return (value as unknown as { isWellFormed(): boolean }).isWellFormed();
}

/**
 * Throws a {@link ValidationError} for a string field holding an unpaired surrogate. A UTF-16
 * surrogate without its pair has no UTF-8 form: the drivers would store U+FFFD in its place,
 * so the value read back would differ from the one acknowledged. `isWellFormed` (native)
 * says so without a regular expression scan of every string written.
 */
export function rejectUnpairedSurrogates(values: Entity, what: string): void {
  for (const field in values) {
    const value = values[field];
    if (typeof value === 'string' && !isWellFormed(value)) {
      throw new ValidationError(
        `${what}: field "${field}" holds an unpaired UTF-16 surrogate, which PostgreSQL text can't store; nothing was written`,
        { fields: [field] },
      );
    }
  }
}

function validationError(what: string, error: z.ZodError, input: unknown): ValidationError {
  const fields = [...new Set(error.issues.map((issue) => issue.path.join('.') || '(entity)'))];
  const details = error.issues.slice(0, 5).map((issue) => {
    if (issue.code === 'unrecognized_keys') {
      return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    }
    const path = issue.path.join('.');
    const value = issue.path.reduce<unknown>((at, k) => (at as Record<PropertyKey, unknown> | undefined)?.[k], input);
    return `${path ? `field "${path}"` : 'entity'}: ${issue.message}${path ? ` (got ${previewValue(value)})` : ''}`;
  });
  const unknownFields = error.issues.flatMap((issue) => (issue.code === 'unrecognized_keys' ? issue.keys : []));
  return new ValidationError(`${what}: ${details.join('; ')}; nothing was written`, {
    cause: error,
    fields: [...fields.filter((f) => f !== '(entity)'), ...unknownFields],
  });
}
