/**
 * The shadow read's common case in one pass: a migration whose every field is one old
 * column and one new column of the main table (a rename, a type change), compared by the
 * default equality. Both sides are decoded field by field and compared as they are, with
 * no second entity built and no diff list; anything else, and any difference, takes the
 * general path in decode.ts, which decodes, reports and throws as it always does.
 */
import type { Route } from '../flags/index.js';
import type { BoundColumn, Migration } from '../model/index.js';
import { deepEqual } from '../shadow/index.js';
import type { Entity } from './types.js';

/** One field of a {@link directFields} migration: its old and its new column. */
export interface DirectField {
  readonly field: string;
  readonly oldColumn: BoundColumn;
  readonly newColumn: BoundColumn;
}

/**
 * The fields of `migration` as old and new column pairs, when the one-pass decode gives
 * exactly what the general path gives: every mapping keeps its new columns in the main
 * table and has no transform (one old and one new column per field), the migration has
 * no compare options, and no field is named `__proto__` (assigned to an entity, it sets
 * the prototype, and the general path's comparison reads such a field its own way).
 * `undefined` otherwise.
 */
export function directFields(migration: Migration): readonly DirectField[] | undefined {
  const { normalize, comparator, ignore } = migration.compare;
  if (normalize !== undefined || comparator !== undefined || ignore !== undefined) return undefined;
  const fields: DirectField[] = [];
  for (const mapping of migration.mappings) {
    if (mapping.newTable !== undefined || mapping.forward !== undefined) return undefined;
    if (mapping.oldColumns.length !== mapping.fields.length || mapping.newColumns.length !== mapping.fields.length) {
      return undefined;
    }
    for (let index = 0; index < mapping.fields.length; index++) {
      const field = mapping.fields[index]!;
      if (field === '__proto__') return undefined;
      fields.push({ field, oldColumn: mapping.oldColumns[index]!, newColumn: mapping.newColumns[index]! });
    }
  }
  return fields;
}

/**
 * The logical value of a field read from its one old column, without a transform: its
 * absence is `null`. The one-pass decode and the general path both read old values so.
 */
export function oldFieldValue(column: BoundColumn, row: Entity): unknown {
  return column.codec.decode(row[column.name]) ?? null;
}

/**
 * Puts the served values of `fields` from `row` into `entity` and, when `compare`, tells
 * whether the other side's values equal them. `false` when they differ or a decode
 * threw: the caller then runs the general path, which sets every field again (decoding
 * twice what is rare: a mismatch or a value that can't be decoded).
 */
export function decodeDirect(
  fields: readonly DirectField[],
  route: Route,
  compare: boolean,
  row: Entity,
  entity: Entity,
): boolean {
  const servesOld = route.serves === 'old';
  try {
    for (let index = 0; index < fields.length; index++) {
      const { field, oldColumn, newColumn } = fields[index]!;
      // As the general path decodes them: a new value as its column decodes it.
      const oldValue = servesOld || compare ? oldFieldValue(oldColumn, row) : undefined;
      const newValue = servesOld && !compare ? undefined : newColumn.codec.decode(row[newColumn.name]);
      entity[field] = servesOld ? oldValue : newValue;
      if (compare && !(oldValue == null ? newValue == null : deepEqual(oldValue, newValue))) return false;
    }
  } catch {
    return false;
  }
  return true;
}
