/**
 * `find`: equality queries on logical fields. Keys are selected with each touched
 * migration filtered on its served side, then their rows are read by key; when the query
 * compares, the same query on the other side is diffed against the served result set.
 */
import { missingColumnsError } from '../catalog.js';
import { diffResultSets, resultSetFieldDiffs } from '../compare.js';
import type { QueryResult } from '../driver.js';
import { toDriverError } from '../errors.js';
import type { Route } from '../router.js';
import type { Side } from '../stages.js';
import { Params } from '../statements.js';
import type { CallState, Entity, Handle } from './core.js';
import { decodeMigration, decodePlain } from './decode.js';
import { type Key, keyOfEntity, makeKey, rowKeyId } from './keys.js';
import { type ReadRoute, readByKeys, selectMain, selectSides } from './reads.js';
import type { ValidQuery } from './validation.js';

export async function findRows(handle: Handle, query: ValidQuery, call: CallState): Promise<Entity[]> {
  const { core } = handle;
  const ready = core.ready(handle.db);
  if (ready !== undefined) await ready;
  const touched = new Set<number>();
  for (const field of [...Object.keys(query.where), ...query.orderBy.map((order) => order.field)]) {
    const mapped = core.fieldToPlan.get(field);
    if (mapped !== undefined) touched.add(core.plans.indexOf(mapped.plan));
  }
  if (touched.size === 0) {
    // Filters and order don't depend on any migration: select keys, then read each row
    // by its own route, like getMany.
    const keys = await selectKeys(handle, query, new Map());
    return (await readByKeys(handle, keys, 'find', call, false)).filter(
      (entity): entity is Entity => entity !== undefined,
    );
  }
  // The query as a whole is routed by the context's targeting key.
  const routes: Route[] = [];
  for (const plan of core.plans) {
    const pending = plan.router.decide(undefined, call.context, call.pinned);
    const decision = pending instanceof Promise ? await pending : pending;
    routes.push(core.guarded(plan, plan.router.route(decision, undefined, call.context)));
  }
  const servedSides = new Map<number, Side>();
  const otherSides = new Map<number, Side>();
  let compare = false;
  for (const p of touched) {
    const route = routes[p]!;
    servedSides.set(p, route.serves);
    // The other side's query would abort the caller's transaction if it failed; and a
    // side whose columns don't exist yet is not queried at all.
    const otherSide: Side = route.serves === 'old' ? 'new' : 'old';
    if (
      route.compares &&
      !handle.inTransaction &&
      (await core.missing(handle.db, core.plans[p]!, otherSide)).length === 0 &&
      core.nextCompare(core.plans[p]!)
    ) {
      compare = true;
      otherSides.set(p, route.serves === 'old' ? 'new' : 'old');
    } else {
      otherSides.set(p, route.serves);
    }
  }
  for (const [p, side] of servedSides) {
    const missing = await core.missing(handle.db, core.plans[p]!, side);
    if (missing.length > 0) throw missingColumnsError(core.plans[p]!.migration, routes[p]!.stage, side, missing);
  }
  const fixed = (sides: Map<number, Side>) => ({ sides, routes });
  const started = performance.now();
  const servedRead = readByQuery(handle, query, fixed(servedSides));
  const otherRead = compare
    ? readByQuery(handle, query, fixed(otherSides)).then(
        (rows) => rows,
        (error: unknown) => {
          for (const p of touched)
            core.emitError(core.plans[p]!, routes[p]!.effective, otherSides.get(p)!, 'find', error);
          return undefined;
        },
      )
    : Promise.resolve(undefined);
  const [served, other] = await Promise.all([servedRead, otherRead]);
  const elapsed = performance.now() - started;
  for (const p of touched) {
    const side = otherSides.get(p) !== servedSides.get(p) && other !== undefined ? 'both' : servedSides.get(p)!;
    core.emit({
      type: 'latency',
      migration: core.plans[p]!.migration.name,
      side,
      operation: 'find',
      milliseconds: elapsed,
    });
    core.emit({
      type: 'read',
      migration: core.plans[p]!.migration.name,
      stage: routes[p]!.effective,
      served: servedSides.get(p)!,
      operation: 'find',
      count: served.length,
    });
  }
  if (other !== undefined) {
    const keyOf = (entity: Entity) => keyOfEntity(entity, core.table.keyFields);
    for (const p of touched) {
      if (otherSides.get(p) === servedSides.get(p)) continue;
      const plan = core.plans[p]!;
      const [oldRows, newRows] = servedSides.get(p) === 'old' ? [served, other] : [other, served];
      const diff = diffResultSets(
        keyOf,
        plan.migration.fields,
        oldRows,
        newRows,
        plan.migration.compare,
        plan.migration.rawValues,
      );
      const ordered = query.orderBy.length > 0 || query.limit !== undefined;
      const matched = diff.matched && !(ordered && diff.orderDiffers);
      core.emit({ type: 'comparison', migration: plan.migration.name, stage: routes[p]!.effective, matched });
      if (!matched) {
        const diffs = resultSetFieldDiffs(diff, { includeOrder: ordered });
        core.mismatch(plan, routes[p]!.effective, 'find', null, diffs, call.context);
      }
    }
  }
  return served;
}

/** Runs the query with each touched migration filtered on a fixed side; entities decoded from that side. */
async function readByQuery(
  handle: Handle,
  query: ValidQuery,
  fixed: { sides: Map<number, Side>; routes: Route[] },
): Promise<Entity[]> {
  const keys = await selectKeys(handle, query, fixed.sides);
  if (keys.length === 0) return [];
  // Read the rows with every touched migration pinned to its side.
  const pinnedRoutes = fixed.routes.map((route, p) => {
    const side = fixed.sides.get(p);
    if (side === undefined) return route;
    return side === route.serves ? route : { ...route, serves: side };
  });
  const entities = await readFixed(handle, keys, pinnedRoutes);
  return entities.filter((entity): entity is Entity => entity !== undefined);
}

/** Reads rows by key with given routes (no comparison). */
async function readFixed(handle: Handle, keys: readonly Key[], routes: Route[]): Promise<(Entity | undefined)[]> {
  const { core } = handle;
  const reads: ReadRoute[][] = core.plans.map((plan, p) =>
    keys.map(() => ({
      route: { ...routes[p]!, compares: false },
      compare: false,
      side: plan.crossTable.length > 0 && routes[p]!.serves === 'new',
    })),
  );
  const fetchOld = core.plans.map((_, p) => routes[p]!.serves === 'old');
  const fetchNew = core.plans.map((plan, p) => routes[p]!.serves === 'new' && plan.newColumns.length > 0);
  const noRetry = core.plans.map(() => undefined);
  const [main, sides] = await Promise.all([
    selectMain(
      handle,
      {
        keys,
        fetchOld,
        fetchNew,
        lock: false,
        compareOnly: noRetry,
        operation: 'find',
        stages: routes.map((route) => route.effective),
      },
      (rows) => rows,
    ),
    selectSides(handle, keys, reads, 'find'),
  ]);
  const byId = new Map<string, Entity>();
  for (const row of main) byId.set(rowKeyId(row, core.keyColumns), row);
  return keys.map((key) => {
    const row = byId.get(key.id);
    if (row === undefined) return undefined;
    const entity = decodePlain(handle, row);
    core.plans.forEach((plan, p) => {
      decodeMigration(handle, plan, reads[p]![0]!, row, sides.get(p), key, entity, 'find');
    });
    return entity;
  });
}

/** Keys of the rows matching `query`, in query order; migrated fields filtered on `sides`. */
async function selectKeys(handle: Handle, query: ValidQuery, sides: Map<number, Side>): Promise<Key[]> {
  const { core } = handle;
  const params = new Params();
  const conditions: string[] = [];
  const alias = 't';
  for (const [field, value] of Object.entries(query.where)) {
    const mapped = core.fieldToPlan.get(field);
    if (mapped === undefined) {
      const column = core.table.columns[field]!;
      conditions.push(equals(`${alias}.${column.quoted}`, column.codec.encode(value), column.codec.cast, params));
      continue;
    }
    const side = sides.get(core.plans.indexOf(mapped.plan)) ?? 'old';
    const { mapping } = mapped;
    if (side === 'new') {
      const index = mapping.fields.indexOf(field);
      const column = mapping.newColumns[index]!;
      const encoded = column.codec.encode(value);
      if (mapping.newTable) {
        const s = mapping.newTable;
        const join = s.keyColumns.map((k, i) => `s.${k.quoted} = ${alias}.${core.keyColumns[i]!.quoted}`).join(' AND ');
        conditions.push(
          `EXISTS (SELECT 1 FROM ${s.table.quoted} s WHERE ${join} AND ${equals(`s.${column.quoted}`, encoded, column.codec.cast, params)})`,
        );
      } else {
        conditions.push(equals(`${alias}.${column.quoted}`, encoded, column.codec.cast, params));
      }
    } else if (mapping.fields[0] === field) {
      // The old columns hold the whole group: filter once, on the group's first field.
      const logical = mapping.fields.map((f) => query.where[f]);
      const oldValues = mapping.backward ? mapping.backward(logical) : logical;
      mapping.oldColumns.forEach((column, index) => {
        conditions.push(
          equals(`${alias}.${column.quoted}`, column.codec.encode(oldValues[index]), column.codec.cast, params),
        );
      });
    }
  }
  const order = query.orderBy.map(({ field, direction }) => {
    const mapped = core.fieldToPlan.get(field);
    let column = core.table.columns[field]!;
    if (mapped !== undefined) {
      const side = sides.get(core.plans.indexOf(mapped.plan)) ?? 'old';
      column = side === 'new' ? mapped.mapping.newColumns[0]! : mapped.mapping.oldColumns[0]!;
    }
    return `${alias}.${column.quoted} ${direction}`;
  });
  // Key order last, so equal sort values come back in a stable order on both sides.
  for (const column of core.keyColumns) order.push(`${alias}.${column.quoted} ASC`);
  const keyList = core.keyColumns.map((column) => `${alias}.${column.quoted}`).join(', ');
  let sql = `SELECT ${keyList} FROM ${core.table.table.quoted} ${alias}`;
  if (conditions.length > 0) sql += ` WHERE ${conditions.join(' AND ')}`;
  sql += ` ORDER BY ${order.join(', ')}`;
  if (query.limit !== undefined) sql += ` LIMIT ${params.add(query.limit)}`;
  let result: QueryResult<Entity>;
  try {
    result = await handle.db.query<Entity>(sql, params.values);
  } catch (error) {
    throw toDriverError(error, sql);
  }
  return result.rows.map((row) => {
    const values = core.keyColumns.map((column) => column.codec.decode(row[column.name]));
    return makeKey(
      values,
      core.keyColumns.map((column, index) => column.codec.encode(values[index])),
    );
  });
}

function equals(column: string, value: unknown, cast: string, params: Params): string {
  return value === null || value === undefined ? `${column} IS NULL` : `${column} = ${params.add(value, cast)}`;
}
