/**
 * Writes: the routes of one entity, the assignments of each side its stages write, the
 * statements of insert, upsert, update and delete, and running a write's statements
 * and reporting them per migration.
 */
import { missingColumnsError } from '../catalog/index.js';
import type { FlagDecision, Route } from '../flags/index.js';
import {
  type Continuation,
  FlagshiftError,
  type Queryable,
  type QueryResult,
  queryInto,
  toDriverError,
  ValidationError,
} from '../kernel/index.js';
import type { Operation } from '../metrics/index.js';
import type { BoundMapping, Side, SideTable } from '../model/index.js';
import type { Handle } from './core.js';
import { mappingOldValuesInto } from './decode.js';
import { type Key, keyFromEntity } from './keys.js';
import { firstEntity, readByKeys } from './reads.js';
import {
  type Assignment,
  deleteRow,
  insertRow,
  lockRow,
  type Statement,
  selectByKeys,
  updateRow,
} from './statements.js';
import type { CallState, Entity } from './types.js';

/** Routes of one entity, one per plan. */
export function routesFor(handle: Handle, key: Key | undefined, call: CallState): Route[] | Promise<Route[]> {
  const plans = handle.core.plans;
  const routes: Route[] = [];
  for (let p = 0; p < plans.length; p++) {
    const plan = plans[p]!;
    const pending = plan.router.decide(key?.targeting, call.context, call.pinned);
    // Cached decisions come back synchronously: only wait once one doesn't.
    if (pending instanceof Promise) return routesFrom(handle, p, pending, routes, key, call);
    routes.push(plan.router.route(pending, key?.targeting, call.context));
  }
  return routes;
}

/** {@link routesFor} from plan `p` on, whose decision is `pending`. */
async function routesFrom(
  handle: Handle,
  p: number,
  pending: Promise<FlagDecision>,
  routes: Route[],
  key: Key | undefined,
  call: CallState,
): Promise<Route[]> {
  const plans = handle.core.plans;
  routes.push(plans[p]!.router.route(await pending, key?.targeting, call.context));
  for (let q = p + 1; q < plans.length; q++) {
    const plan = plans[q]!;
    const next = plan.router.decide(key?.targeting, call.context, call.pinned);
    const decision = next instanceof Promise ? await next : next;
    routes.push(plan.router.route(decision, key?.targeting, call.context));
  }
  return routes;
}

/** Assignments of the main table for the given fields, and side-table rows, by route. */
function assignmentsFor(
  handle: Handle,
  entity: Entity,
  routes: readonly Route[],
): { main: Assignment[]; sides: Map<string, { table: SideTable; assignments: Assignment[] }> } {
  const { core } = handle;
  const main: Assignment[] = [];
  const sides = new Map<string, { table: SideTable; assignments: Assignment[] }>();
  for (const field of core.plainFields) {
    if (!(field in entity)) continue;
    const column = core.table.columns[field]!;
    main.push({ column, value: column.codec.encode(entity[field]) });
  }
  for (let p = 0; p < core.plans.length; p++) {
    const plan = core.plans[p]!;
    const route = routes[p]!;
    for (const mapping of plan.migration.mappings) {
      let touched = false;
      for (const field of mapping.fields) {
        if (field in entity) {
          touched = true;
          break;
        }
      }
      if (!touched) continue;
      const logical: unknown[] = [];
      for (const field of mapping.fields) logical.push(entity[field] ?? null);
      if (route.writesOld) {
        const oldValues = mapping.backward ? mapping.backward(logical) : logical;
        for (let index = 0; index < mapping.oldColumns.length; index++) {
          const column = mapping.oldColumns[index]!;
          main.push({ column, value: column.codec.encode(oldValues[index]) });
        }
      }
      if (route.writesNew) {
        const values: Assignment[] = [];
        for (let index = 0; index < mapping.newColumns.length; index++) {
          const column = mapping.newColumns[index]!;
          values.push({ column, value: column.codec.encode(logical[index]) });
        }
        if (mapping.newTable) {
          const side = mapping.newTable;
          let entry = sides.get(side.table.quoted);
          if (entry === undefined) {
            entry = { table: side, assignments: [] };
            sides.set(side.table.quoted, entry);
          }
          entry.assignments.push(...values);
        } else {
          main.push(...values);
        }
      }
    }
  }
  return { main, sides };
}

/**
 * Inserts or upserts one entity in one statement (plus one upsert per side table written)
 * and returns what was written, with its key. An entity without (some of) its key takes
 * the key from the columns' defaults first, so that it is routed and bucketed by its own
 * key like any other; an upsert of it is an insert, since a fresh key has no row to replace.
 */
export async function writeEntity(
  handle: Handle,
  given: Entity,
  operation: 'insert' | 'upsert',
  call: CallState,
): Promise<Entity> {
  const { core } = handle;
  let entity = given;
  let overriding = false;
  if (core.table.keyFields.some((field) => !(field in given))) {
    const generated = await generateKey(handle, given, operation);
    entity = generated.entity;
    overriding = generated.overriding;
    operation = 'insert';
  }
  const partialGroups = operation === 'upsert' && hasPartialGroups(core, entity);
  if (partialGroups && !handle.inTransaction) {
    // Replacing an existing row must keep the group fields the entity omits, as update
    // does: read them under a row lock, in one transaction with the write.
    return handle.transaction(
      (tx) => writeEntity(tx, entity, operation, tx.call),
      call.context ? { context: call.context } : undefined,
    );
  }
  const key = keyFromEntity(entity, core);
  const routes = await routesFor(handle, key, call);
  if (!core.hasAllColumns()) await requireWriteColumns(handle, routes);
  // Without a stored row there is nothing to keep: the upsert inserts the entity as given.
  const values = partialGroups
    ? ((await withWholeGroups(handle, key, entity, routes, 'upsert', call)) ?? entity)
    : entity;
  const { main, sides } = assignmentsFor(handle, values, routes);
  const keyAssignments = core.keyColumns.map((column, index) => ({ column, value: key.params[index] }));
  const statements: Statement[] = [
    insertRow(
      core.table.table,
      [...keyAssignments, ...main],
      operation === 'upsert' ? core.keyColumns : undefined,
      overriding,
    ),
  ];
  pushSideUpserts(statements, sides, key);
  await runWrite(handle, statements, operation, routes);
  return entity;
}

/**
 * `entity` with the key fields it leaves out computed by their columns' defaults, in one
 * statement, and whether the insert must override an identity that is `GENERATED ALWAYS`.
 */
async function generateKey(
  handle: Handle,
  entity: Entity,
  operation: 'insert' | 'upsert',
): Promise<{ entity: Entity; overriding: boolean }> {
  const { core } = handle;
  const fields = core.table.keyFields;
  const wanted: { field: string; column: (typeof core.keyColumns)[number]; sql: string }[] = [];
  let overriding = false;
  for (let index = 0; index < fields.length; index++) {
    const field = fields[index]!;
    if (field in entity) continue;
    const column = core.keyColumns[index]!;
    const generator = await core.keyGenerator(handle.db, index);
    if (generator === undefined) {
      throw new ValidationError(
        `${operation} into ${core.table.table.display}: key field "${field}" is required: column "${core.table.table.display}.${column.name}" has no default to fill it; nothing was written`,
        { fields: [field] },
      );
    }
    if (generator.always) overriding = true;
    wanted.push({ field, column, sql: generator.sql });
  }
  const sql = `SELECT ${wanted.map((w, index) => `(${w.sql})${w.column.codec.cast} AS "k${index}"`).join(', ')}`;
  let row: Entity | undefined;
  try {
    row = (await handle.db.query<Entity>(sql, [])).rows[0];
  } catch (error) {
    throw toDriverError(error, sql);
  }
  const full = { ...entity };
  wanted.forEach((w, index) => {
    full[w.field] = w.column.codec.decode(row?.[`k${index}`]);
  });
  return { entity: full, overriding };
}

/**
 * One upsert per side table: a side row may exist already (from a backfill, or a delete in
 * a stage that didn't write the side), whether the main row is inserted or updated.
 */
function pushSideUpserts(statements: Statement[], sides: ReturnType<typeof assignmentsFor>['sides'], key: Key): void {
  for (const { table, assignments } of sides.values()) {
    const sideKey = table.keyColumns.map((column, index) => ({ column, value: key.params[index] }));
    statements.push(insertRow(table.table, [...sideKey, ...assignments], table.keyColumns));
  }
}

/** Whether a statement's result says it touched a row (its count, or the rows it returned). */
export function touchedRow(result: QueryResult<unknown> | undefined): boolean {
  return (result?.rowCount ?? result?.rows.length ?? 0) > 0;
}

/**
 * Updates one entity by key; resolves whether its row existed. An update of plain and
 * whole-group fields on warm state (column state loaded, decisions cached) is written
 * without async functions: the update adds no promise hops of its own to the driver's.
 */
export function updateEntity(handle: Handle, key: Key, patch: Entity, call: CallState): Promise<boolean> {
  const { core } = handle;
  if (hasPartialGroups(core, patch) || !core.hasAllColumns()) return updateChecked(handle, key, patch, call);
  const routes = routesFor(handle, key, call);
  if (routes instanceof Promise) return routes.then((decided) => writeUpdate(handle, key, patch, decided));
  return writeUpdate(handle, key, patch, routes);
}

/** {@link updateEntity} with its checks: missing columns, and fields stored together read first. */
async function updateChecked(handle: Handle, key: Key, patch: Entity, call: CallState): Promise<boolean> {
  const { core } = handle;
  const partialGroups = hasPartialGroups(core, patch);
  if (partialGroups && !handle.inTransaction) {
    // A field stored together with others (a split) needs the others' current values:
    // read and write them under one row lock.
    return handle.transaction(
      (tx) => updateEntity(tx, key, patch, tx.call),
      call.context ? { context: call.context } : undefined,
    );
  }
  const pendingRoutes = routesFor(handle, key, call);
  const routes = pendingRoutes instanceof Promise ? await pendingRoutes : pendingRoutes;
  if (!core.hasAllColumns()) await requireWriteColumns(handle, routes);
  let full = patch;
  if (partialGroups) {
    const whole = await withWholeGroups(handle, key, patch, routes, 'update', call);
    if (whole === undefined) return false;
    full = whole;
  }
  return writeUpdate(handle, key, full, routes);
}

/** The statements of an update of `full` (every group it touches whole) routed by `routes`, run. */
function writeUpdate(handle: Handle, key: Key, full: Entity, routes: readonly Route[]): Promise<boolean> {
  const { core } = handle;
  const { main, sides } = assignmentsFor(handle, full, routes);
  const statements: Statement[] = [];
  if (main.length > 0) statements.push(updateRow(core.table.table, main, core.keyColumns, key.params));
  else statements.push(lockRow(core.table.table, core.keyColumns, key.params));
  pushSideUpserts(statements, sides, key);
  return runWrite(handle, statements, 'update', routes, touchedRow, updatedRow).then(updatedRow);
}

/** Whether an update's first statement (the main row's) found its row. */
function updatedRow(results: readonly QueryResult[]): boolean {
  return touchedRow(results[0]);
}

/** Whether `values` has some but not all fields of a mapping that stores several together (a split). */
function hasPartialGroups(core: Handle['core'], values: Entity): boolean {
  for (const mapping of core.groupMappings) {
    let present = 0;
    for (const field of mapping.fields) if (field in values) present++;
    if (present > 0 && present < mapping.fields.length) return true;
  }
  return false;
}

/**
 * `values` with the fields it omits of each group it touches taken from the stored row,
 * read under a row lock (the caller is in a transaction); `undefined` when there is no row.
 */
async function withWholeGroups(
  handle: Handle,
  key: Key,
  values: Entity,
  routes: readonly Route[],
  operation: 'update' | 'upsert',
  call: CallState,
): Promise<Entity | undefined> {
  const { core } = handle;
  const current = await readByKeys(handle, [key], operation, call, true, firstEntity);
  if (current === undefined) return undefined;
  const full = { ...values };
  for (let p = 0; p < core.plans.length; p++) {
    const plan = core.plans[p]!;
    const route = routes[p]!;
    for (const mapping of plan.migration.mappings) {
      if (mapping.fields.length < 2 || !mapping.fields.some((field) => field in values)) continue;
      let source = current;
      // Served from the new side, a row the backfill hasn't reached yet (the flag moved on
      // early) has only NULLs there: rewriting the old column from them would destroy the
      // old value. The missing parts then come from the old column, which still holds it.
      if (route.serves === 'new' && route.writesOld && mapping.fields.every((field) => current[field] == null)) {
        source = (await oldValuesOf(handle, mapping, key)) ?? current;
      }
      for (const field of mapping.fields) if (!(field in full)) full[field] = source[field];
    }
  }
  return full;
}

/** The logical values of `mapping`'s fields from its old columns (always in the main table) for `key`. */
async function oldValuesOf(handle: Handle, mapping: BoundMapping, key: Key): Promise<Entity | undefined> {
  const { core } = handle;
  const statement = selectByKeys(core.table.table, mapping.oldColumns, core.keyColumns, [key.params], false);
  let result: QueryResult<Entity>;
  try {
    result = await handle.db.query<Entity>(statement.sql, statement.params);
  } catch (error) {
    throw toDriverError(error, statement.sql);
  }
  const row = result.rows[0];
  if (row === undefined) return undefined;
  const values: Entity = {};
  mappingOldValuesInto(mapping, row, values);
  return values;
}

async function requireWriteColumns(handle: Handle, routes: readonly Route[]): Promise<void> {
  const { core } = handle;
  for (let p = 0; p < core.plans.length; p++) {
    const route = routes[p]!;
    for (const side of ['old', 'new'] as const) {
      if (!(side === 'old' ? route.writesOld : route.writesNew)) continue;
      const missing = await core.missing(handle.db, core.plans[p]!, side);
      if (missing.length > 0) throw missingColumnsError(core.plans[p]!.migration, route.stage, side, missing);
    }
  }
}

/** Runs `statements` in order on `db`; with `proceed`, those after the first only when it returns true. */
async function runStatements(
  db: Queryable,
  statements: readonly Statement[],
  proceed: ((result: QueryResult) => boolean) | undefined,
): Promise<QueryResult[]> {
  const results: QueryResult[] = [];
  for (const statement of statements) {
    try {
      results.push(await db.query(statement.sql, statement.params));
    } catch (error) {
      throw toDriverError(error, statement.sql);
    }
    if (proceed !== undefined && results.length === 1 && !proceed(results[0]!)) break;
  }
  return results;
}

const wroteAlways = () => true;

/**
 * Runs a write's statements (one alone, several in one transaction) and reports it:
 * errors against the side written, a write event when `wrote` says rows changed, latency.
 * Not async: one statement goes to the driver at once and is reported in its own
 * continuation, so a write adds no promise hops of its own to the driver's.
 */
export function runWrite(
  handle: Handle,
  statements: readonly Statement[],
  operation: Operation,
  routes: readonly Route[],
  proceed?: (result: QueryResult) => boolean,
  wrote: (results: readonly QueryResult[]) => boolean = wroteAlways,
): Promise<QueryResult[]> {
  const { core } = handle;
  const ready = core.ready(handle.db);
  if (ready !== undefined) return ready.then(() => runWrite(handle, statements, operation, routes, proceed, wrote));
  if (statements.length === 1) {
    const statement = statements[0]!;
    return queryInto(
      handle.db,
      statement.sql,
      statement.params,
      new OneWrite(handle, statement.sql, operation, routes, wrote),
    );
  }
  const started = core.sendTime();
  const running = handle.inTransaction
    ? runStatements(handle.db, statements, proceed)
    : core.driver.transaction((tx) => runStatements(tx, statements, proceed));
  return running.then(
    (results) => reportWrite(handle, results, operation, routes, wrote, started),
    (error: unknown) => writeFailed(handle, error, operation, routes),
  );
}

/**
 * A write of one statement, sent: what its continuation reports, and that continuation,
 * in one object rather than a closure for each outcome.
 */
class OneWrite implements Continuation<Record<string, unknown>, QueryResult[]> {
  /** When the statement was sent (with a metrics sink; else 0). */
  readonly started: number;

  constructor(
    readonly handle: Handle,
    readonly sql: string,
    readonly operation: Operation,
    readonly routes: readonly Route[],
    readonly wrote: (results: readonly QueryResult[]) => boolean,
  ) {
    this.started = handle.core.sendTime();
  }

  done(result: QueryResult): QueryResult[] {
    return reportWrite(this.handle, [result], this.operation, this.routes, this.wrote, this.started);
  }

  failed(error: unknown): never {
    return writeFailed(this.handle, toDriverError(error, this.sql), this.operation, this.routes);
  }
}

/** Reports a failed write against the side each migration's route writes first, and throws it. */
function writeFailed(handle: Handle, error: unknown, operation: Operation, routes: readonly Route[]): never {
  const { core } = handle;
  const wrapped = error instanceof FlagshiftError ? error : toDriverError(error);
  for (let p = 0; p < core.plans.length; p++) {
    const route = routes[p]!;
    core.emitError(core.plans[p]!, route, route.writesOld ? 'old' : 'new', operation, wrapped);
  }
  throw wrapped;
}

/** Reports a write that ran (`started`: when, with a metrics sink) and hands back its results. */
function reportWrite(
  handle: Handle,
  results: QueryResult[],
  operation: Operation,
  routes: readonly Route[],
  wrote: (results: readonly QueryResult[]) => boolean,
  started: number,
): QueryResult[] {
  const { core } = handle;
  if (core.metrics === undefined) return results;
  const elapsed = performance.now() - started;
  for (let p = 0; p < core.plans.length; p++) {
    const route = routes[p]!;
    const sides: Side[] = route.writesOld && route.writesNew ? ['old', 'new'] : route.writesOld ? ['old'] : ['new'];
    const name = core.plans[p]!.migration.name;
    // An update or delete that found no row wrote nothing: it is timed, not counted.
    if (wrote(results))
      core.emit({
        type: 'write',
        migration: name,
        stage: route.stage,
        route: route.effective,
        sides,
        operation,
        count: 1,
      });
    core.emit({
      type: 'latency',
      migration: name,
      side: sides.length === 2 ? 'both' : sides[0]!,
      operation,
      milliseconds: elapsed,
    });
  }
  return results;
}

/**
 * Deletes one entity: its side-table rows first (a side table usually references the main
 * table), then the main row. Returns whether the entity existed.
 */
export async function deleteEntity(handle: Handle, normalized: Key, call: CallState): Promise<boolean> {
  const routes = await routesFor(handle, normalized, call);
  const statements: Statement[] = [];
  // Side rows first: a side table usually references the main table.
  for (let index = 0; index < handle.core.plans.length; index++) {
    const plan = handle.core.plans[index]!;
    if (plan.crossTable.length === 0) continue;
    // Also in stages that don't write the new side, as long as it exists: a side row left
    // behind would be stale, and its foreign key would block the delete.
    if (!routes[index]!.writesNew && (await handle.core.missing(handle.db, plan, 'new')).length > 0) continue;
    for (const table of plan.migration.sideTables)
      statements.push(deleteRow(table.table, table.keyColumns, normalized.params));
  }
  if (statements.length > 0) {
    // Lock the main row before touching side rows, the order backfill batches and
    // updates take locks in, so a delete never deadlocks against them.
    statements.unshift(lockRow(handle.core.table.table, handle.core.keyColumns, normalized.params));
  }
  statements.push(deleteRow(handle.core.table.table, handle.core.keyColumns, normalized.params));
  const results = await runWrite(handle, statements, 'delete', routes, undefined, (done) => touchedRow(done.at(-1)));
  return touchedRow(results.at(-1));
}
