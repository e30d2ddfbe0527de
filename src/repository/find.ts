/**
 * `find`: equality queries on logical fields. Keys are selected with each touched
 * migration filtered on its served side, then their rows are read by key; when the query
 * compares, the same query on the other side is diffed against the served result set.
 * Migrations the query doesn't touch are routed and compared per entity, as by `getMany`.
 */
import { missingColumnsError } from '../catalog/index.js';
import { type Route, routeFor } from '../flags/index.js';
import { type QueryResult, toDriverError, ValidationError } from '../kernel/index.js';
import type { Side } from '../model/index.js';
import { diffResultSets, resultSetFieldDiffs } from '../shadow/index.js';
import { type Handle, tallyServed } from './core.js';
import { decodeMigration, decodePlain } from './decode.js';
import { filterConditions, oldSideProblem } from './filters.js';
import { type Key, keyOfEntity, makeKey, rowKeyId } from './keys.js';
import { afterCondition } from './keyset.js';
import { readByKeys, readRoute, selectMain, selectSides } from './reads.js';
import { Params } from './statements.js';
import type { CallState, Entity, ReadRoute } from './types.js';
import type { ValidQuery } from './validation.js';

/**
 * How a query is routed as a whole: the migrations it filters or orders on (`touched`),
 * the route of every migration by the context's targeting key, per touched migration the
 * side served and the side compared against (the same side when it doesn't compare).
 */
export interface QueryRoute {
  readonly touched: ReadonlySet<number>;
  readonly routes: readonly Route[];
  readonly servedSides: ReadonlyMap<number, Side>;
  readonly otherSides: ReadonlyMap<number, Side>;
  readonly compare: boolean;
}

/**
 * Routes a query as a whole (see {@link QueryRoute}); `undefined` when it touches no
 * migration. Refuses an operator the served old side can't answer exactly, and never
 * compares against an old side that can't; fails when a served side's columns are missing.
 */
export async function routeQuery(
  handle: Handle,
  query: Pick<ValidQuery, 'where' | 'conditions' | 'orderBy'>,
  call: CallState,
): Promise<QueryRoute | undefined> {
  const { core } = handle;
  const ready = core.ready(handle.db);
  if (ready !== undefined) await ready;
  const touched = new Set<number>();
  for (const field of [
    ...Object.keys(query.where),
    ...query.conditions.map((condition) => condition.field),
    ...query.orderBy.map((order) => order.field),
  ]) {
    const mapped = core.fieldToPlan.get(field);
    if (mapped !== undefined) touched.add(core.plans.indexOf(mapped.plan));
  }
  if (touched.size === 0) return undefined;
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
    const problem = oldProblem(core, query, p);
    if (route.serves === 'old' && problem !== undefined) {
      throw new ValidationError(`query on ${core.table.table.display}: ${problem.message}`, {
        fields: [problem.field],
      });
    }
    if (
      route.compares &&
      // An old side that can't answer the query exactly is not compared against.
      (otherSide === 'new' || problem === undefined) &&
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
  return { touched, routes, servedSides, otherSides, compare };
}

/**
 * The entities matching `query`, in its order: routed as a whole when it names a migrated
 * field (see {@link routeQuery}), and compared by result set when that route compares.
 */
export async function findRows(handle: Handle, query: ValidQuery, call: CallState): Promise<Entity[]> {
  const { core } = handle;
  const routed = await routeQuery(handle, query, call);
  if (routed === undefined) {
    // Filters and order don't depend on any migration: select keys, then read each row
    // by its own route, like getMany.
    if (query.select !== undefined) return readByQuery(handle, query, { sides: new Map(), routes: [] }, call);
    const keys = await selectKeys(handle, query, new Map());
    return (await readByKeys(handle, keys, 'find', call, false)).filter(
      (entity): entity is Entity => entity !== undefined,
    );
  }
  const { touched, routes, servedSides, otherSides, compare } = routed;
  const fixed = (sides: ReadonlyMap<number, Side>) => ({ sides, routes });
  const started = performance.now();
  const servedRead = readByQuery(handle, query, fixed(servedSides), call);
  const otherRead = compare
    ? readByQuery(handle, query, fixed(otherSides), undefined).then(
        (rows) => rows,
        (error: unknown) => {
          for (const p of touched) core.emitError(core.plans[p]!, routes[p]!, otherSides.get(p)!, 'find', error);
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
      stage: routes[p]!.stage,
      route: routes[p]!.effective,
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
      let diff: ReturnType<typeof diffResultSets>;
      try {
        diff = diffResultSets(
          keyOf,
          query.select === undefined
            ? plan.migration.fields
            : plan.migration.fields.filter((field) => query.select!.includes(field)),
          oldRows,
          newRows,
          plan.migration.compare,
          plan.migration.rawValues,
        );
      } catch (error) {
        // A compare option that throws fails the comparison, not the read (as in decode.ts).
        core.emitError(plan, routes[p]!, otherSides.get(p)!, 'find', error);
        continue;
      }
      const ordered = query.orderBy.length > 0 || query.limit !== undefined;
      const matched = diff.matched && !(ordered && diff.orderDiffers);
      core.emitComparison(plan, routes[p]!, matched);
      if (!matched) {
        const diffs = resultSetFieldDiffs(diff, { includeOrder: ordered });
        core.mismatch(plan, routes[p]!, 'find', null, diffs, call.context);
      }
    }
  }
  return served;
}

/**
 * Runs the query with each touched migration filtered on a fixed side; entities decoded
 * from that side. With `call` (the served read), every other migration is routed, compared
 * and counted per entity, as by `getMany`; without (the read only compared against), it
 * is read as the query is routed, and not counted.
 */
async function readByQuery(
  handle: Handle,
  query: ValidQuery,
  fixed: { sides: ReadonlyMap<number, Side>; routes: readonly Route[] },
  call: CallState | undefined,
): Promise<Entity[]> {
  const keys = await selectKeys(handle, query, fixed.sides);
  if (keys.length === 0) return [];
  // Every touched migration pinned to its side.
  const pinned = fixed.routes.map((route, p) => {
    const side = fixed.sides.get(p);
    if (side === undefined) return call === undefined ? route : undefined;
    return side === route.serves ? route : { ...route, serves: side };
  });
  // A projection reads only the migrations whose fields it selects.
  const select = query.select;
  const wanted = handle.core.plans.map(
    (plan) => select === undefined || plan.migration.fields.some((field) => select.includes(field)),
  );
  const reads = await routeByEntity(handle, keys, pinned, call, wanted);
  const entities = await readRouted(handle, keys, reads, pinned, wanted, select);
  return entities.filter((entity): entity is Entity => entity !== undefined);
}

/**
 * Per plan, per key, what the read fetches and serves: a pinned plan the same for every
 * key, without comparing (a touched migration is compared by result set); any other the
 * entity's own route, comparing as a read by key does. Without `call` every plan is pinned.
 */
async function routeByEntity(
  handle: Handle,
  keys: readonly Key[],
  pinned: readonly (Route | undefined)[],
  call: CallState | undefined,
  wanted: readonly boolean[],
): Promise<ReadRoute[][]> {
  const { core } = handle;
  const reads: ReadRoute[][] = [];
  for (let p = 0; p < core.plans.length; p++) {
    const plan = core.plans[p]!;
    if (!wanted[p]) {
      reads.push(keys.map(() => ({ route: UNREAD, compare: false, side: false })));
      continue;
    }
    const pin = pinned[p];
    if (pin !== undefined) {
      const route = { ...pin, compares: false };
      reads.push(
        keys.map(() => ({ route, compare: false, side: plan.crossTable.length > 0 && route.serves === 'new' })),
      );
      continue;
    }
    const perKey: ReadRoute[] = [];
    for (const key of keys) {
      const pending = plan.router.decide(key.targeting, call?.context, call?.pinned);
      const decision = pending instanceof Promise ? await pending : pending;
      perKey.push(readRoute(handle, plan, plan.router.route(decision, key.targeting, call?.context)));
    }
    reads.push(perKey);
  }
  return reads;
}

/** The route of a migration a projection doesn't read: fetches nothing, compares nothing. */
const UNREAD = routeFor('off', false);

/**
 * Reads rows by key as `reads` route them; compares and counts the plans not `pinned`.
 * Plans not `wanted` (a projection selects none of their fields) are not read at all.
 */
async function readRouted(
  handle: Handle,
  keys: readonly Key[],
  reads: ReadRoute[][],
  pinned: readonly (Route | undefined)[],
  wanted: readonly boolean[],
  select: readonly string[] | undefined,
): Promise<(Entity | undefined)[]> {
  const { core } = handle;
  const fetchOld: boolean[] = [];
  const fetchNew: boolean[] = [];
  const compareOnly: (Side | undefined)[] = [];
  const stages: Route[] = [];
  for (let p = 0; p < core.plans.length; p++) {
    if (!wanted[p]) {
      fetchOld.push(false);
      fetchNew.push(false);
      compareOnly.push(undefined);
      stages.push(UNREAD);
      continue;
    }
    let servesOld = false;
    let servesNew = false;
    let compares = false;
    for (const read of reads[p]!) {
      if (read.route.serves === 'old') servesOld = true;
      else servesNew = true;
      if (read.compare) compares = true;
    }
    fetchOld.push(servesOld || compares);
    fetchNew.push((servesNew || compares) && core.plans[p]!.newColumns.length > 0);
    // A side fetched only to compare is dropped (and the select retried) if it fails.
    compareOnly.push(compares && !servesNew ? 'new' : compares && !servesOld ? 'old' : undefined);
    stages.push(reads[p]![0]?.route ?? routeFor('off', false));
  }
  // A projection fetches the key's columns and the selected plain fields' only.
  const plain =
    select === undefined
      ? undefined
      : core.plainColumns.filter((column, index) => index < core.keyColumns.length || select.includes(column.field));
  const started = performance.now();
  const [main, sides] = await Promise.all([
    selectMain(
      handle,
      {
        keys,
        fetchOld,
        fetchNew,
        lock: false,
        compareOnly,
        operation: 'find',
        stages,
        plain: plain?.slice(core.keyColumns.length),
      },
      (rows, dropped) => ({ rows, dropped }),
    ),
    selectSides(handle, keys, reads, 'find'),
  ]);
  const elapsed = performance.now() - started;
  const byId = new Map<string, Entity>();
  for (const row of main.rows) byId.set(rowKeyId(row, core.keyColumns), row);
  // Per plan not pinned, per route: how many entities were served by it.
  const served = core.plans.map(() => new Map<Route, number>());
  const entities = keys.map((key, k) => {
    const row = byId.get(key.id);
    if (row === undefined) return undefined;
    const entity = decodePlain(handle, row, plain);
    core.plans.forEach((plan, p) => {
      if (!wanted[p]) return;
      const read = reads[p]![k]!;
      if (main.dropped?.[p]) read.compare = false;
      decodeMigration(handle, plan, read, row, sides.get(p), key, entity, 'find');
      if (pinned[p] === undefined) tallyServed(served[p]!, read.route);
    });
    return entity;
  });
  core.plans.forEach((plan, p) => {
    if (pinned[p] !== undefined || !wanted[p]) return;
    core.emitReadLatency(plan, fetchOld[p]!, fetchNew[p]! || sides.has(p), 'find', elapsed);
    core.emitReads(plan, served[p]!, 'find');
  });
  return entities;
}

/** The first condition of `query` on a field of plan `p` that the plan's old side can't answer exactly. */
function oldProblem(
  core: Handle['core'],
  query: Pick<ValidQuery, 'conditions'>,
  p: number,
): { field: string; message: string } | undefined {
  for (const condition of query.conditions) {
    const mapped = core.fieldToPlan.get(condition.field);
    if (mapped === undefined || core.plans.indexOf(mapped.plan) !== p) continue;
    const problem = oldSideProblem(mapped.mapping, condition);
    if (problem !== undefined) return { field: condition.field, message: problem };
  }
  return undefined;
}

/** Keys of the rows matching `query`, in query order; migrated fields filtered on `sides`. */
async function selectKeys(handle: Handle, query: ValidQuery, sides: ReadonlyMap<number, Side>): Promise<Key[]> {
  const { core } = handle;
  const params = new Params();
  const alias = 't';
  const conditions = filterConditions(core, query, sides, params, alias);
  const sorted = query.orderBy.map(({ field, direction }) => {
    const mapped = core.fieldToPlan.get(field);
    let column = core.table.columns[field]!;
    if (mapped !== undefined) {
      const side = sides.get(core.plans.indexOf(mapped.plan)) ?? 'old';
      column = side === 'new' ? mapped.mapping.newColumns[0]! : mapped.mapping.oldColumns[0]!;
    }
    const notNull = core.table.keyFields.includes(field);
    return {
      sql: `${alias}.${column.quoted}`,
      column,
      direction,
      notNull,
      // A date kept as text compares as text, the cursor's as it was written.
      instant: core.table.fieldKinds[field] === 'date' && !/char|text/i.test(column.type ?? ''),
    };
  });
  // Key order last, so equal sort values come back in a stable order on both sides.
  for (const column of core.keyColumns) {
    sorted.push({ sql: `${alias}.${column.quoted}`, column, direction: 'ASC', notNull: true, instant: false });
  }
  if (query.after !== undefined) {
    const after = query.after;
    conditions.push(
      afterCondition(
        sorted.map((item, index) => ({ ...item, value: after[index] })),
        params,
        { table: core.table.table.quoted, keys: core.keyColumns.length },
      ),
    );
  }
  const order = sorted.map((item) => `${item.sql} ${item.direction}`);
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
