/**
 * Reads by key: each key routed per migration, then one select of the main-table rows
 * (plus one per side table), decoded in its own continuation. The path from `get` down
 * is deliberately written without async functions and with continuation callbacks, so
 * that a read adds no promise hops of its own to the driver's.
 */
import { missingColumnsError } from '../catalog/index.js';
import { type FlagDecision, type Route, routeFor } from '../flags/index.js';
import {
  type Continuation,
  ErrorCode,
  type Queryable,
  type QueryResult,
  queryInto,
  toDriverError,
} from '../kernel/index.js';
import type { Operation } from '../metrics/index.js';
import type { BoundColumn, Side } from '../model/index.js';
import type { Handle, Plan } from './core.js';
import { decodeMigration, decodePlain, decodeRead } from './decode.js';
import { type Key, rowKeyId } from './keys.js';
import { blamedSide } from './retry-blame.js';
import { selectByKeys } from './statements.js';
import type { CallState, Entity, ReadRoute, SideRows } from './types.js';

/** What a select of main-table rows by key fetches, and what it reports a failure against. */
interface MainSelect {
  readonly keys: readonly Key[];
  /** Per plan: whether the old columns are fetched. */
  readonly fetchOld: readonly boolean[];
  /** Per plan: whether the (same-row) new columns are fetched. */
  readonly fetchNew: readonly boolean[];
  /** `FOR UPDATE`. */
  readonly lock: boolean;
  /** Per plan: the side fetched only to compare, dropped (and retried without) if the select fails. */
  readonly compareOnly: readonly (Side | undefined)[];
  readonly operation: Operation;
  /** Per plan: the route of its first key, for reporting. */
  readonly stages: readonly Route[];
  /** A projection's plain columns (after the key's); `undefined` for every plain column. */
  readonly plain?: readonly BoundColumn[] | undefined;
}

/** The side-table rows of a read without side tables. Never written to. */
const NO_SIDE_ROWS: SideRows = new Map();

/** The entity of a one-key read. */
export function firstEntity(entities: (Entity | undefined)[]): Entity | undefined {
  return entities[0];
}

/** The entities of a read, as they are. */
function allEntities(entities: (Entity | undefined)[]): (Entity | undefined)[] {
  return entities;
}

/** One read by keys, as it goes down the read path. */
interface ReadRequest<T> {
  readonly handle: Handle;
  readonly keys: readonly Key[];
  readonly operation: Operation;
  readonly call: CallState;
  /** `FOR UPDATE`. */
  readonly lock: boolean;
  /** What the caller gets of the entities, in key order (`undefined` for a key without a row). */
  readonly shape: (entities: (Entity | undefined)[]) => T;
}

/**
 * Reads `keys` in one statement (plus one per side table), routing and comparing each.
 * While the column state is loaded and every decision is cached, everything before the
 * statement runs synchronously and its result is decoded in the one continuation: a read
 * adds no promise hops of its own to the driver's.
 */
export function readByKeys<T = (Entity | undefined)[]>(
  handle: Handle,
  keys: readonly Key[],
  operation: Operation,
  call: CallState,
  lock: boolean,
  shape: (entities: (Entity | undefined)[]) => T = allEntities as (entities: (Entity | undefined)[]) => T,
): Promise<T> {
  if (keys.length === 0) return Promise.resolve(shape([]));
  const request: ReadRequest<T> = { handle, keys, operation, call, lock, shape };
  const ready = handle.core.ready(handle.db);
  if (ready !== undefined) return ready.then(() => routeRead(request));
  return routeRead(request);
}

/**
 * {@link readByKeys} of one key (`get`), taking a shorter way when the repository has one
 * migration and no side tables, the call runs outside a transaction, the column state is
 * loaded with every column present and the decision is cached: the same statement, decoded,
 * compared and reported as readByKeys does, without its per-plan and per-key arrays and
 * request records. Under load that bookkeeping cost about as much as the rest of a read
 * (it is memory touched on every call). Anything else goes the general way.
 */
export function readOne(handle: Handle, key: Key, operation: Operation, call: CallState): Promise<Entity | undefined> {
  const { core } = handle;
  // Every column present implies the column state is loaded (ready() is not asked here:
  // its promise, unawaited, would reject unhandled when the first load fails).
  if (core.plans.length !== 1 || core.hasSideTables || handle.inTransaction || !core.hasAllColumns()) {
    return readByKeys(handle, [key], operation, call, false, firstEntity);
  }
  const plan = core.plans[0]!;
  const decided = plan.router.decide(key.targeting, call.context, call.pinned);
  if (decided instanceof Promise) {
    const request: ReadRequest<Entity | undefined> = {
      handle,
      keys: [key],
      operation,
      call,
      lock: false,
      shape: firstEntity,
    };
    return routeReadFrom(request, 0, 0, decided, new Array(1));
  }
  const read = new PointRead(handle, plan, key, operation, plan.router.route(decided, key.targeting, call.context));
  return queryInto(handle.db, read.sql, key.params, read);
}

/**
 * {@link readOne}'s read, routed: everything its statement's continuation needs, and that
 * continuation, in one object. Under load the closures and records a read made instead
 * were a good part of the memory it touched.
 */
class PointRead implements Continuation<Entity, Entity | undefined>, Routing {
  route: Route;
  compare: boolean;
  side: boolean;
  readonly fetchOld: boolean;
  readonly fetchNew: boolean;
  /** When the statement was sent (with a metrics sink; else 0). */
  readonly started: number;
  readonly sql: string;

  constructor(
    readonly handle: Handle,
    readonly plan: Plan,
    readonly key: Key,
    readonly operation: Operation,
    unguarded: Route,
  ) {
    const { core } = handle;
    this.route = unguarded;
    this.compare = false;
    this.side = false;
    routeInto(this, handle, plan, unguarded);
    this.fetchOld = readsOld(this);
    this.fetchNew = readsNew(this) && plan.newColumns.length > 0;
    this.started = core.sendTime();
    const signature = packedSignature(fetchCode(this.fetchOld, this.fetchNew), false, 1);
    this.sql =
      core.cachedSelectSql(signature) ??
      mainSelectSql(handle, signature, [this.fetchOld], [this.fetchNew], [key], false, undefined);
  }

  done(result: QueryResult<Entity>): Entity | undefined {
    return this.decode(result.rows, undefined);
  }

  /** Decodes, compares and reports the statement's rows (the retry's, after a failure, with what it `dropped`). */
  decode(rows: Entity[], dropped: readonly boolean[] | undefined): Entity | undefined {
    const { handle, plan, operation } = this;
    const { core } = handle;
    if (core.metrics !== undefined) {
      core.emitReadLatency(plan, this.fetchOld, this.fetchNew, operation, performance.now() - this.started);
    }
    // The statement selected by this one key: any row it returned is this key's.
    const row = rows[rows.length - 1];
    if (row === undefined) return undefined;
    if (dropped?.[0]) this.compare = false;
    const entity = decodePlain(handle, row);
    decodeMigration(handle, plan, this, row, undefined, this.key, entity, operation);
    core.emitRead(plan, this.route, operation, 1);
    return entity;
  }

  failed(error: unknown): Promise<Entity | undefined> {
    const { route, fetchOld, fetchNew } = this;
    const compareOnly = compareOnlySide(route.serves === 'old', route.serves === 'new');
    const select: MainSelect = {
      keys: [this.key],
      fetchOld: [fetchOld],
      fetchNew: [fetchNew],
      lock: false,
      compareOnly: [compareOnly],
      operation: this.operation,
      stages: [route],
    };
    const dropping = fetchesCompareOnly(compareOnly, fetchOld, fetchNew);
    return selectMainFailed(this.handle, error, this.sql, select, dropping, (rows, dropped) =>
      this.decode(rows, dropped),
    );
  }
}

/** {@link readByKeys} once the column state is loaded: decides each key's route. */
function routeRead<T>(request: ReadRequest<T>): Promise<T> {
  const { handle, keys, call } = request;
  const plans = handle.core.plans;
  // routes[p][k]: plan p, key k. Sized up front: an array grown by push allocates room
  // for 17 elements at its first push, garbage on every read.
  const routes: ReadRoute[][] = new Array(plans.length);
  for (let p = 0; p < plans.length; p++) {
    const plan = plans[p]!;
    const perKey: ReadRoute[] = new Array(keys.length);
    routes[p] = perKey;
    for (let k = 0; k < keys.length; k++) {
      const key = keys[k]!;
      const pending = plan.router.decide(key.targeting, call.context, call.pinned);
      // Cached decisions come back synchronously: only wait once one doesn't.
      if (pending instanceof Promise) return routeReadFrom(request, p, k, pending, routes);
      perKey[k] = readRoute(handle, plan, plan.router.route(pending, key.targeting, call.context));
    }
  }
  return readRouted(request, routes);
}

/** {@link routeRead} from plan `p`, key `k` on, whose decision is `pending`. */
async function routeReadFrom<T>(
  request: ReadRequest<T>,
  p: number,
  k: number,
  pending: Promise<FlagDecision>,
  routes: ReadRoute[][],
): Promise<T> {
  const { handle, keys, call } = request;
  const plans = handle.core.plans;
  let next: Promise<FlagDecision> | undefined = pending;
  for (; p < plans.length; p++) {
    const plan = plans[p]!;
    routes[p] ??= new Array(keys.length);
    const perKey = routes[p]!;
    for (; k < keys.length; k++) {
      const key = keys[k]!;
      const decided = next ?? plan.router.decide(key.targeting, call.context, call.pinned);
      next = undefined;
      const decision = decided instanceof Promise ? await decided : decided;
      perKey[k] = readRoute(handle, plan, plan.router.route(decision, key.targeting, call.context));
    }
    k = 0;
  }
  return readRouted(request, routes);
}

/** The read of one key by one plan: the (guarded) route, and whether it compares. */
export function readRoute(handle: Handle, plan: Plan, unguarded: Route): ReadRoute {
  return routeInto({ route: unguarded, compare: false, side: false }, handle, plan, unguarded);
}

/** A {@link ReadRoute} being routed. */
type Routing = { -readonly [K in keyof ReadRoute]: ReadRoute[K] };

/** Routes `read`: its guarded route, whether it compares, and whether it reads the side tables. */
function routeInto<R extends Routing>(read: R, handle: Handle, plan: Plan, unguarded: Route): R {
  const { core } = handle;
  const route = core.guarded(plan, unguarded);
  const compare = route.compares && core.nextCompare(plan);
  read.route = route;
  read.compare = compare;
  // Inside a transaction a failed statement aborts the caller's transaction: a
  // side-table read made only to compare is skipped there.
  read.side =
    plan.crossTable.length > 0 &&
    (route.serves === 'new' || (compare && !handle.inTransaction && core.nextShadowRead(plan)));
  return read;
}

/** {@link readByKeys} once routed: selects and decodes. */
function readRouted<T>(request: ReadRequest<T>, routes: ReadRoute[][]): Promise<T> {
  const { handle } = request;
  // With every column present there is nothing to drop: skip the awaits.
  if (!handle.core.hasAllColumns()) {
    return dropUnavailableSides(handle, routes, request.operation).then(() => readSelected(request, routes));
  }
  return readSelected(request, routes);
}

/** {@link readByKeys} once routed and its columns are known: one select (and the side tables'), then decode. */
function readSelected<T>(request: ReadRequest<T>, routes: ReadRoute[][]): Promise<T> {
  const { handle, keys, operation, lock, shape } = request;
  const { core } = handle;
  const plans = core.plans;
  const fetchOld: boolean[] = new Array(plans.length);
  const fetchNew: boolean[] = new Array(plans.length);
  // Per plan, the side fetched only to compare, when every key is served from the other.
  const compareOnly: (Side | undefined)[] = new Array(plans.length);
  const stages: Route[] = new Array(plans.length);
  for (let p = 0; p < plans.length; p++) {
    let old = false;
    let fresh = false;
    let servesOld = false;
    let servesNew = false;
    const reads = routes[p]!;
    for (let k = 0; k < reads.length; k++) {
      const read = reads[k]!;
      if (read.route.serves === 'old') servesOld = true;
      else servesNew = true;
      if (readsOld(read)) old = true;
      if (readsNew(read)) fresh = true;
    }
    fetchOld[p] = old;
    fetchNew[p] = fresh && plans[p]!.newColumns.length > 0;
    compareOnly[p] = compareOnlySide(servesOld, servesNew);
    stages[p] = routes[p]![0]?.route ?? routeFor('off', false);
  }
  const started = core.sendTime();
  const select: MainSelect = { keys, fetchOld, fetchNew, lock, compareOnly, operation, stages };
  if (!core.hasSideTables) {
    return selectMain(handle, select, (rows, dropped) =>
      shape(decodeRead(handle, keys, routes, fetchOld, fetchNew, rows, dropped, NO_SIDE_ROWS, operation, started)),
    );
  }
  return Promise.all([
    selectMain(handle, select, (rows, dropped) => ({ rows, dropped })),
    selectSides(handle, keys, routes, operation),
  ]).then(([main, sides]) =>
    shape(decodeRead(handle, keys, routes, fetchOld, fetchNew, main.rows, main.dropped, sides, operation, started)),
  );
}

/** Drops compare-only reads of a side whose columns don't exist; fails a read served from one. */
async function dropUnavailableSides(handle: Handle, routes: ReadRoute[][], operation: Operation): Promise<void> {
  const { core } = handle;
  for (let p = 0; p < core.plans.length; p++) {
    const plan = core.plans[p]!;
    let needsOld = false;
    let needsNew = false;
    for (const read of routes[p]!) {
      if (readsOld(read)) needsOld = true;
      if (readsNew(read)) needsNew = true;
    }
    for (const side of ['old', 'new'] as const) {
      if (!(side === 'old' ? needsOld : needsNew)) continue;
      const missing = await core.missing(handle.db, plan, side);
      if (missing.length === 0) continue;
      const served = routes[p]!.find((read) => read.route.serves === side);
      if (served !== undefined) throw missingColumnsError(plan.migration, served.route.stage, side, missing);
      for (const read of routes[p]!) {
        if (read.compare) {
          read.compare = false;
          read.side = read.route.serves === 'new' && plan.crossTable.length > 0;
          core.emitError(plan, read.route, side, operation, { code: ErrorCode.UnknownColumn });
        }
      }
    }
  }
}

/**
 * Selects the main-table rows and hands them to `done`, in the statement's own
 * continuation. `compareOnly[p]` names the side of migration p whose columns are fetched
 * only to compare: if the statement fails, it is retried without them (a comparison never
 * fails the caller), and `done` gets `dropped[p]` set.
 */
export function selectMain<T>(
  handle: Handle,
  select: MainSelect,
  done: (rows: Entity[], dropped: readonly boolean[] | undefined) => T,
): Promise<T> {
  const { keys, fetchOld, fetchNew, lock, compareOnly } = select;
  const { core } = handle;
  // Drivers take parameters read-only, so one key's own array can go as it is.
  const params = keys.length === 1 ? keys[0]!.params : keys.flatMap((key) => key.params);
  // The text depends on what each plan fetches, the number of keys and the lock. Packed
  // into a number when that fits (a string would be built and hashed on every read).
  let signature: string | number;
  if (select.plain !== undefined) {
    signature = `${fetchOld.map((old, p) => (old ? 1 : 0) + (fetchNew[p] ? 2 : 0)).join('')}|${keys.length}|${lock ? 1 : 0}|${select.plain.map((column) => column.name).join('\u0000')}`;
  } else if (fetchOld.length <= 16 && keys.length < 1024) {
    let code = 0;
    for (let p = 0; p < fetchOld.length; p++) code = code * 4 + fetchCode(fetchOld[p]!, fetchNew[p]!);
    signature = packedSignature(code, lock, keys.length);
  } else {
    signature = '';
    for (let p = 0; p < fetchOld.length; p++) signature += fetchCode(fetchOld[p]!, fetchNew[p]!);
    signature += `|${keys.length}|${lock ? 1 : 0}`;
  }
  const sql =
    core.cachedSelectSql(signature) ?? mainSelectSql(handle, signature, fetchOld, fetchNew, keys, lock, select.plain);
  let dropping = false;
  for (let p = 0; p < compareOnly.length; p++) {
    if (fetchesCompareOnly(compareOnly[p], fetchOld[p]!, fetchNew[p]!)) dropping = true;
  }
  const next: Continuation<Entity, T | Promise<T>> = {
    done: (result) => done(result.rows, undefined),
    failed: (error) => selectMainFailed(handle, error, sql, select, dropping, done),
  };
  // Inside a transaction a failed statement would abort the caller's transaction: a
  // read that fetches columns only to compare runs under a savepoint there.
  if (!(handle.inTransaction && dropping)) return queryInto(handle.db, sql, params, next) as Promise<T>;
  const savepoint: Queryable = {
    query: <Row>(text: string, values?: readonly unknown[]) =>
      core.driver.transaction((tx) => tx.query<Row>(text, values)),
  };
  return queryInto(savepoint, sql, params, next) as Promise<T>;
}

/** {@link selectMain} after its statement failed: rethrows, or retries without the compare-only columns. */
async function selectMainFailed<T>(
  handle: Handle,
  error: unknown,
  sql: string,
  select: MainSelect,
  dropping: boolean,
  done: (rows: Entity[], dropped: readonly boolean[] | undefined) => T,
): Promise<T> {
  const { core } = handle;
  const { fetchOld, fetchNew, compareOnly, operation, stages } = select;
  if (!dropping) {
    reportReadFailure(handle, fetchOld, fetchNew, compareOnly, operation, stages, error);
    throw toDriverError(error, sql);
  }
  const dropped = core.plans.map((_, p) => fetchesCompareOnly(compareOnly[p], fetchOld[p]!, fetchNew[p]!));
  // Retry without the compare-only columns. The retry throws (and reports the served
  // side) when the served side is what failed; when it succeeds, `blamedSide` tells
  // whether the compare-only columns or a transient failure of the served side were to blame.
  const retry: MainSelect = {
    ...select,
    fetchOld: fetchOld.map((fetch, p) => fetch && !(dropped[p] && compareOnly[p] === 'old')),
    fetchNew: fetchNew.map((fetch, p) => fetch && !(dropped[p] && compareOnly[p] === 'new')),
    compareOnly: compareOnly.map(() => undefined),
  };
  const rows = await selectMain(handle, retry, (retried) => retried);
  for (let p = 0; p < core.plans.length; p++) {
    if (!dropped[p]) continue;
    const compared = compareOnly[p]!;
    const side = blamedSide(error, compared === 'old' ? 'new' : 'old', compared);
    core.emitError(core.plans[p]!, stages[p]!, side, operation, error);
  }
  return done(rows, dropped);
}

/** Reports a failed read against the side(s) it was served from, for each migration. */
function reportReadFailure(
  handle: Handle,
  fetchOld: readonly boolean[],
  fetchNew: readonly boolean[],
  compareOnly: readonly (Side | undefined)[],
  operation: Operation,
  stages: readonly Route[],
  error: unknown,
): void {
  const { core } = handle;
  for (let p = 0; p < core.plans.length; p++) {
    const sides: Side[] = [];
    if (fetchOld[p] && compareOnly[p] !== 'old') sides.push('old');
    if (fetchNew[p] && compareOnly[p] !== 'new') sides.push('new');
    for (const side of sides) core.emitError(core.plans[p]!, stages[p]!, side, operation, error);
  }
}

/** Whether a read of one entity fetches the old side: it serves it, or compares with it. */
function readsOld(read: ReadRoute): boolean {
  return read.route.serves === 'old' || read.compare;
}

/** Whether a read of one entity fetches the new side: it serves it, or compares with it. */
function readsNew(read: ReadRoute): boolean {
  return read.route.serves === 'new' || read.compare;
}

/**
 * The side of one migration a read fetches only to compare: the other one when every
 * entity is served from one side, none when some are served from each.
 */
function compareOnlySide(servesOld: boolean, servesNew: boolean): Side | undefined {
  return servesOld && !servesNew ? 'new' : servesNew && !servesOld ? 'old' : undefined;
}

/** Whether the compare-only side (see {@link compareOnlySide}) is among what a read fetches. */
function fetchesCompareOnly(compareOnly: Side | undefined, fetchOld: boolean, fetchNew: boolean): boolean {
  return compareOnly === 'new' ? fetchNew : compareOnly === 'old' ? fetchOld : false;
}

/** One plan's part of a select signature: which of its sides a read fetches. */
function fetchCode(fetchOld: boolean, fetchNew: boolean): number {
  return (fetchOld ? 1 : 0) + (fetchNew ? 2 : 0);
}

/** A select signature packed into a number: `code` holds each plan's {@link fetchCode}, two bits each (up to 16 plans); fewer than 1024 keys. */
function packedSignature(code: number, lock: boolean, keyCount: number): number {
  return (code * 2 + (lock ? 1 : 0)) * 1024 + keyCount;
}

/** Builds and caches the text of the main-table select of `signature`. */
function mainSelectSql(
  handle: Handle,
  signature: string | number,
  fetchOld: readonly boolean[],
  fetchNew: readonly boolean[],
  keys: readonly Key[],
  lock: boolean,
  plain: readonly BoundColumn[] | undefined,
): string {
  const { core } = handle;
  const columns = mainColumns(handle, fetchOld, fetchNew, plain);
  const params = keys.map((key) => key.params);
  return core.cacheSelectSql(signature, selectByKeys(core.table.table, columns, core.keyColumns, params, lock).sql);
}

function mainColumns(
  handle: Handle,
  fetchOld: readonly boolean[],
  fetchNew: readonly boolean[],
  plain: readonly BoundColumn[] | undefined,
): BoundColumn[] {
  const { core } = handle;
  const columns: BoundColumn[] = [...core.keyColumns];
  if (plain !== undefined) columns.push(...plain);
  else for (const field of core.plainFields) columns.push(core.table.columns[field]!);
  for (let p = 0; p < core.plans.length; p++) {
    const plan = core.plans[p]!;
    if (fetchOld[p]) columns.push(...plan.oldColumns);
    if (fetchNew[p]) columns.push(...plan.newColumns);
  }
  return columns;
}

/** Side-table reads, per plan: rows of each cross-table mapping's table by key id. */
export async function selectSides(
  handle: Handle,
  keys: readonly Key[],
  routes: ReadRoute[][],
  operation: Operation,
): Promise<Map<number, Map<string, Map<string, Entity>>>> {
  const { core } = handle;
  const out = new Map<number, Map<string, Map<string, Entity>>>();
  const reads: Promise<void>[] = [];
  for (let p = 0; p < core.plans.length; p++) {
    const plan = core.plans[p]!;
    if (plan.crossTable.length === 0) continue;
    const wanted = keys.filter((_, k) => routes[p]![k]!.side);
    if (wanted.length === 0) continue;
    const servesNew = routes[p]!.some((read) => read.route.serves === 'new');
    const reported = routes[p]!.find((read) => read.side)!.route;
    const perTable = new Map<string, Map<string, Entity>>();
    out.set(p, perTable);
    const params = wanted.flatMap((key) => key.params);
    for (const side of plan.migration.sideTables) {
      // Cached like the main select's text, by table and number of keys (a main-select
      // signature never starts with a letter).
      const signature = `side ${side.table.quoted} ${wanted.length}`;
      const sql =
        core.cachedSelectSql(signature) ??
        core.cacheSelectSql(
          signature,
          selectByKeys(
            side.table,
            [...side.keyColumns, ...side.mappings.flatMap((mapping) => mapping.newColumns)],
            side.keyColumns,
            wanted.map((key) => key.params),
            false,
          ).sql,
        );
      reads.push(
        handle.db.query<Entity>(sql, params).then(
          (result) => {
            const rows = new Map<string, Entity>();
            for (const row of result.rows) rows.set(rowKeyId(row, side.keyColumns), row);
            perTable.set(side.table.quoted, rows);
          },
          (error: unknown) => {
            if (servesNew) throw toDriverError(error, sql);
            out.delete(p);
            core.emitError(plan, reported, 'new', operation, error);
          },
        ),
      );
    }
  }
  await Promise.all(reads);
  return out;
}
