/**
 * Decoding of selected rows into entities: the plain fields, the served side of each
 * migration's fields, and the comparison with the other side when the read compares.
 */

import type { Route } from '../flags/index.js';
import type { Operation } from '../metrics/index.js';
import type { BoundColumn, BoundMapping } from '../model/index.js';
import { diffEntities, redactValue } from '../shadow/index.js';
import { type Handle, type Plan, tallyServed } from './core.js';
import { decodeDirect, oldFieldValue } from './direct-compare.js';
import { type Key, rowKeyId } from './keys.js';
import type { Entity, ReadRoute, SideRows } from './types.js';

/** Entities of `rows`, in `keys` order (`undefined` for a key without a row); compares and reports. */
export function decodeRead(
  handle: Handle,
  keys: readonly Key[],
  routes: ReadRoute[][],
  fetchOld: readonly boolean[],
  fetchNew: readonly boolean[],
  rows: Entity[],
  dropped: readonly boolean[] | undefined,
  sides: SideRows,
  operation: Operation,
  started: number,
): (Entity | undefined)[] {
  const { core } = handle;
  const plans = core.plans;
  const metered = core.metrics !== undefined;
  if (metered) {
    const elapsed = performance.now() - started;
    for (let p = 0; p < plans.length; p++) {
      core.emitReadLatency(plans[p]!, fetchOld[p]!, fetchNew[p]! || sides.has(p), operation, elapsed);
    }
  }

  // Rows by key id, the last row of an id winning; one key (a get) needs no map.
  let byId: Map<string, Entity> | undefined;
  let onlyRow: Entity | undefined;
  if (keys.length === 1) {
    // The statement selected by this one key: any row it returned is this key's.
    onlyRow = rows[rows.length - 1];
  } else {
    byId = new Map<string, Entity>();
    for (const row of rows) byId.set(rowKeyId(row, core.keyColumns), row);
  }
  const out: (Entity | undefined)[] = new Array(keys.length);
  // Per plan, per route: how many entities were served by it.
  const served: Map<Route, number>[] | undefined = metered ? plans.map(() => new Map()) : undefined;
  for (let k = 0; k < keys.length; k++) {
    const key = keys[k]!;
    const row = byId === undefined ? onlyRow : byId.get(key.id);
    if (row === undefined) {
      out[k] = undefined;
      continue;
    }
    const entity = decodePlain(handle, row);
    for (let p = 0; p < plans.length; p++) {
      const plan = plans[p]!;
      const read = routes[p]![k]!;
      const sideRows = sides.get(p);
      if (dropped?.[p]) read.compare = false;
      decodeMigration(handle, plan, read, row, sideRows, key, entity, operation);
      if (served !== undefined) tallyServed(served[p]!, read.route);
    }
    out[k] = entity;
  }
  if (served !== undefined) for (let p = 0; p < plans.length; p++) core.emitReads(plans[p]!, served[p]!, operation);
  return out;
}

/**
 * The key and plain fields of `row`: all of them (in a copy of the whole entity's
 * template, whose migration fields the caller then sets), or the `columns` a projection fetched.
 */
export function decodePlain(
  handle: Handle,
  row: Entity,
  columns: readonly (BoundColumn & { readonly field: string })[] = handle.core.plainColumns,
): Entity {
  const entity: Entity = columns === handle.core.plainColumns ? { ...handle.core.entityTemplate } : {};
  for (let c = 0; c < columns.length; c++) {
    const column = columns[c]!;
    entity[column.field] = column.codec.decode(row[column.name]);
  }
  return entity;
}

/**
 * Puts the served values of `plan`'s fields into `entity` and compares when the route
 * says so. A served side that can't be decoded throws; the compared side only counts an error.
 */
export function decodeMigration(
  handle: Handle,
  plan: Plan,
  read: ReadRoute,
  row: Entity,
  sideRows: Map<string, Map<string, Entity>> | undefined,
  key: Key,
  entity: Entity,
  operation: Operation,
): void {
  const { core } = handle;
  const { route } = read;
  if (plan.direct !== undefined && decodeDirect(plan.direct, route, read.compare, row, entity)) {
    if (read.compare) core.emitComparison(plan, route, true);
    return;
  }
  if (route.serves === 'old') {
    const failed = oldValuesInto(plan, row, entity);
    if (failed !== undefined) throw failed;
  } else {
    const served = newValuesInto(plan, row, sideRows, key, entity);
    if (served instanceof Error) throw served;
    // Served new from a side table whose row doesn't exist yet.
    if (served === undefined) for (const field of plan.migration.fields) entity[field] = null;
  }
  const sideMissing = plan.crossTable.length > 0 && (sideRows === undefined || !read.side);
  if (!read.compare || (sideMissing && route.serves === 'old')) return;
  let other: Entity | Error | undefined;
  if (route.serves === 'old') {
    other = newValuesInto(plan, row, sideRows, key, { ...plan.fieldsTemplate });
  } else {
    const fromOld: Entity = { ...plan.fieldsTemplate };
    other = oldValuesInto(plan, row, fromOld) ?? fromOld;
  }
  if (other instanceof Error) {
    core.emitError(plan, route, route.serves === 'old' ? 'new' : 'old', operation, other);
    return;
  }
  // The entity holds the served values of the migration's fields (and others, not compared).
  const oldValues = route.serves === 'old' ? entity : other;
  const newValues = route.serves === 'old' ? other : entity;
  let diffs: ReturnType<typeof diffEntities>;
  try {
    diffs = diffEntities(plan.migration.fields, oldValues, newValues, plan.migration.compare, plan.migration.rawValues);
  } catch (error) {
    // A compare option that throws (a normalize that expects a string and gets NULL) fails
    // the comparison, not the read: the served value is already decoded. Counted against
    // the compared side, as a failure to decode it would be.
    core.emitError(plan, route, route.serves === 'old' ? 'new' : 'old', operation, error);
    return;
  }
  const matched = diffs.length === 0;
  core.emitComparison(plan, route, matched);
  if (!matched) {
    // The sample's key and the flag context's targeting key alike: redacted unless the
    // migration opted into raw values.
    const shown = plan.migration.rawValues ? key.targeting : redactValue(key.targeting);
    core.mismatch(plan, route, operation, shown, diffs, { targetingKey: shown });
  }
}

/** Puts the logical values of `plan`'s fields from the old columns into `out`; returns the error a transform threw. */
function oldValuesInto(plan: Plan, row: Entity, out: Entity): Error | undefined {
  const { mappings } = plan.migration;
  try {
    for (let m = 0; m < mappings.length; m++) mappingOldValuesInto(mappings[m]!, row, out);
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
  return undefined;
}

/** Puts the logical values of `mapping`'s fields from its old columns in `row` into `out`; throws what a transform throws. */
export function mappingOldValuesInto(mapping: BoundMapping, row: Entity, out: Entity): void {
  const { fields, oldColumns, forward } = mapping;
  if (forward === undefined) {
    // No transform: one old column per field.
    for (let index = 0; index < fields.length; index++) out[fields[index]!] = oldFieldValue(oldColumns[index]!, row);
    return;
  }
  const raw: unknown[] = [];
  for (const column of oldColumns) raw.push(column.codec.decode(row[column.name]));
  const values = forward(raw);
  for (let index = 0; index < fields.length; index++) out[fields[index]!] = values[index] ?? null;
}

/**
 * Puts the logical values from the new columns into `out` and returns it; `undefined` when
 * a side-table row is absent, the error a decode threw (`out` then holds part of them).
 */
function newValuesInto(
  plan: Plan,
  row: Entity,
  sideRows: Map<string, Map<string, Entity>> | undefined,
  key: Key,
  out: Entity,
): Entity | Error | undefined {
  const { mappings } = plan.migration;
  try {
    for (let m = 0; m < mappings.length; m++) {
      const mapping = mappings[m]!;
      let source: Entity | undefined = row;
      if (mapping.newTable) {
        source = sideRows?.get(mapping.newTable.table.quoted)?.get(key.id);
        if (source === undefined) return undefined;
      }
      for (let index = 0; index < mapping.fields.length; index++) {
        const column = mapping.newColumns[index]!;
        out[mapping.fields[index]!] = column.codec.decode(source[column.name]);
      }
    }
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
  return out;
}
