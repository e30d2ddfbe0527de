/**
 * Shared state of a repository and its transaction-scoped handles: the migrations laid out
 * as plans for the data path, the column state, metric and mismatch reporting, and the
 * shape of a handle that the data-path functions of the other modules take.
 */
import type { z } from 'zod';
import {
  type ColumnFacts,
  type ColumnGenerator,
  checkColumns,
  loadColumnFacts,
  type MigrationColumnState,
  tablesOf,
} from '../catalog/index.js';
import {
  type FlagContext,
  type FlagSource,
  heldRoute,
  MigrationRouter,
  type ReadGuard,
  type Route,
  type StageResolver,
} from '../flags/index.js';
import { ConfigurationError, type Driver, type Queryable, toDriverError } from '../kernel/index.js';
import type { MetricEvent, MetricsSink, Operation } from '../metrics/index.js';
import type { BoundColumn, BoundMapping, Migration, Side, TableDefinition } from '../model/index.js';
import type { FieldDiff } from '../shadow/index.js';
import { type DirectField, directFields } from './direct-compare.js';
import { numberKeyCheck } from './number-key-check.js';
import { reportMismatch } from './report-mismatch.js';
import type { CallOptions, CallState, Entity, RepositoryOptions } from './types.js';

/** One migration, laid out for the data path. */
export interface Plan {
  readonly migration: Migration;
  readonly router: MigrationRouter;
  /** Old columns of every mapping (always in the main table). */
  readonly oldColumns: readonly BoundColumn[];
  /** New columns of the same-row mappings. */
  readonly newColumns: readonly BoundColumn[];
  readonly crossTable: readonly BoundMapping[];
  /** The migration's fields, in mapping order, all `undefined`: the other side of a comparison fills a copy. */
  readonly fieldsTemplate: Readonly<Entity>;
  /** The fields as old and new column pairs, when a read can decode and compare them in one pass (see direct-compare.ts). */
  readonly direct: readonly DirectField[] | undefined;
  compareCounter: number;
  shadowCounter: number;
}

/**
 * A repository handle, as the functions of the data path take it: the shared core, the
 * connection (the driver, or a transaction), the call state and whether it runs inside a
 * transaction.
 */
export interface Handle {
  readonly core: RepositoryCore;
  readonly db: Queryable;
  readonly call: CallState;
  readonly inTransaction: boolean;
  transaction<T>(fn: (tx: Handle) => Promise<T>, options?: CallOptions): Promise<T>;
}

// How often a missing column is looked up again, so an expand run elsewhere is seen quickly.
const SCHEMA_REFRESH_MS = 200;

/** Shared state of a repository and its transaction-scoped handles. */
/**
 * Counts an entity served by `route` in `tally`, for {@link RepositoryCore.emitReads}.
 * Routes are shared frozen objects (one per stage and behaviour), so the route is the key.
 */
export function tallyServed(tally: Map<Route, number>, route: Route): void {
  tally.set(route, (tally.get(route) ?? 0) + 1);
}

export class RepositoryCore {
  readonly table: TableDefinition;
  readonly driver: Driver;
  readonly plans: readonly Plan[];
  readonly plainFields: readonly string[];
  readonly keyColumns: readonly BoundColumn[];
  /** The schema of the key field, for a one-field key. */
  readonly keySchema: z.ZodType | undefined;
  /** A number {@link keySchema} certainly accepts as it is, without a parse ({@link numberKeyCheck}). */
  readonly keyNumberCheck: ((value: number) => boolean) | undefined;
  /** Key and plain columns with their fields, in decode order. */
  readonly plainColumns: readonly (BoundColumn & { readonly field: string })[];
  /**
   * Every field of a whole entity, in the order a read sets them (key and plain fields,
   * then each migration's), all `undefined`: a read copies it and fills it in, so every
   * entity shares one shape instead of growing one property at a time.
   */
  readonly entityTemplate: Readonly<Entity>;
  readonly fieldToPlan: ReadonlyMap<string, { plan: Plan; mapping: BoundMapping }>;
  /** Whether any plan keeps new columns in another table (reads then also select side tables). */
  readonly hasSideTables: boolean;
  /** Mappings that store several fields together (split, multi-column custom): partial updates of them read first. */
  readonly groupMappings: readonly BoundMapping[];
  readonly metrics: MetricsSink | undefined;
  readonly flags: FlagSource | undefined;
  readonly resolver: StageResolver | undefined;
  readonly readGuard: ReadGuard | undefined;
  private readonly ownsResolver: boolean;
  private schema: Map<string, MigrationColumnState> | undefined;
  private schemaLoading: Promise<Map<string, MigrationColumnState>> | undefined;
  private schemaLoadedAt = 0;
  /** Whether {@link schema} has every column of every plan, on both sides: see {@link hasAllColumns}. */
  private allColumns = false;
  private readonly selectCache = new Map<string | number, string>();
  /** Per key column: how the database fills it when an insert leaves it out; loaded with the column state. */
  private generators: readonly (ColumnGenerator | undefined)[] = [];

  constructor(
    table: TableDefinition,
    migrations: readonly Migration[],
    options: RepositoryOptions,
    resolver: StageResolver | undefined,
    ownsResolver: boolean,
  ) {
    this.table = table;
    this.driver = options.driver;
    this.metrics = options.metrics;
    this.flags = options.flags;
    this.readGuard = options.readGuard;
    this.resolver = resolver;
    this.ownsResolver = ownsResolver;
    const baseContext = Object.freeze({ ...(options.context ?? {}) });
    const fieldToPlan = new Map<string, { plan: Plan; mapping: BoundMapping }>();
    this.plans = migrations.map((migration) => {
      const plan: Plan = {
        migration,
        router: new MigrationRouter(migration, resolver!, baseContext),
        oldColumns: migration.mappings.flatMap((mapping) => mapping.oldColumns),
        newColumns: migration.mappings.filter((mapping) => !mapping.newTable).flatMap((mapping) => mapping.newColumns),
        crossTable: migration.mappings.filter((mapping) => mapping.newTable),
        fieldsTemplate: Object.fromEntries(
          migration.mappings.flatMap((mapping) => mapping.fields.map((field) => [field, undefined])),
        ),
        direct: directFields(migration),
        compareCounter: 0,
        shadowCounter: 0,
      };
      for (const mapping of migration.mappings) {
        for (const field of mapping.fields) {
          if (fieldToPlan.has(field)) {
            throw new ConfigurationError(
              `createRepository: field "${field}" is mapped by migration "${fieldToPlan.get(field)!.plan.migration.name}" and by "${migration.name}"`,
            );
          }
          fieldToPlan.set(field, { plan, mapping });
        }
      }
      return plan;
    });
    this.fieldToPlan = fieldToPlan;
    this.hasSideTables = this.plans.some((plan) => plan.crossTable.length > 0);
    this.groupMappings = this.plans.flatMap((plan) =>
      plan.migration.mappings.filter((mapping) => mapping.fields.length > 1),
    );
    this.plainFields = table.fields.filter((field) => !fieldToPlan.has(field) && !table.keyFields.includes(field));
    this.keyColumns = table.keyFields.map((field) => table.columns[field]!);
    this.keySchema =
      table.keyFields.length === 1 ? (table.entity.shape[table.keyFields[0]!] as z.ZodType | undefined) : undefined;
    this.keyNumberCheck = numberKeyCheck(this.keySchema);
    this.plainColumns = [...table.keyFields, ...this.plainFields].map((field) => ({
      ...table.columns[field]!,
      field,
    }));
    this.entityTemplate = Object.assign(
      Object.fromEntries(this.plainColumns.map((column) => [column.field, undefined])),
      ...this.plans.map((plan) => plan.fieldsTemplate),
    );
    const names = new Map<string, string>();
    const claim = (column: BoundColumn, owner: string) => {
      const other = names.get(column.name);
      if (other !== undefined) {
        throw new ConfigurationError(
          `createRepository: column "${table.table.display}.${column.name}" is used by ${other} and by ${owner}`,
        );
      }
      names.set(column.name, owner);
    };
    for (const field of [...table.keyFields, ...this.plainFields]) claim(table.columns[field]!, `field "${field}"`);
    for (const plan of this.plans) {
      for (const column of [...plan.oldColumns, ...plan.newColumns])
        claim(column, `migration "${plan.migration.name}"`);
    }
  }

  close(): void {
    if (this.ownsResolver) this.resolver?.close();
  }

  /**
   * Emits a mismatch of `plan`'s migration, its sample stamped now, and reports it to flag
   * providers that track events (OpenFeature `track`). `key` goes into the sample as given
   * (redacted by the caller unless the migration opted into raw values; `null` for a
   * result-set comparison).
   */
  mismatch(
    plan: Plan,
    route: Route,
    operation: Operation,
    key: unknown,
    diffs: readonly FieldDiff[],
    context: FlagContext | undefined,
  ): void {
    reportMismatch((event) => this.emit(event), this.flags, {
      migration: plan.migration.name,
      route,
      operation,
      key,
      diffs,
      context: context ?? {},
    });
  }

  emit(event: MetricEvent): void {
    if (this.metrics === undefined) return;
    try {
      this.metrics.record(event);
    } catch {
      // A broken sink must never fail or slow a query.
    }
  }

  /** Reports the reads of `plan`'s migration counted in `tally`, one event per route. */
  emitReads(plan: Plan, tally: ReadonlyMap<Route, number>, operation: Operation): void {
    if (this.metrics === undefined) return;
    for (const [route, count] of tally) this.emitRead(plan, route, operation, count);
  }

  /**
   * When a statement is sent, for the latency reported once it is done: the clock with a
   * metrics sink, 0 without one (the events that would carry it are dropped then).
   */
  sendTime(): number {
    return this.metrics !== undefined ? performance.now() : 0;
  }

  /** Reports the latency of a read of `plan`'s migration, against the sides it fetched. */
  emitReadLatency(
    plan: Plan,
    fetchedOld: boolean,
    fetchedNew: boolean,
    operation: Operation,
    milliseconds: number,
  ): void {
    if (this.metrics === undefined) return;
    const side: Side | 'both' = fetchedOld && fetchedNew ? 'both' : fetchedOld ? 'old' : 'new';
    this.emit({ type: 'latency', migration: plan.migration.name, side, operation, milliseconds });
  }

  /** Reports `count` entities of `plan`'s migration served by `route`. */
  emitRead(plan: Plan, route: Route, operation: Operation, count: number): void {
    if (this.metrics === undefined) return;
    this.emit({
      type: 'read',
      migration: plan.migration.name,
      stage: route.stage,
      route: route.effective,
      served: route.serves,
      operation,
      count,
    });
  }

  /** Reports a comparison of `plan`'s migration, routed by `route`. */
  emitComparison(plan: Plan, route: Route, matched: boolean): void {
    if (this.metrics === undefined) return;
    this.emit({
      type: 'comparison',
      migration: plan.migration.name,
      stage: route.stage,
      route: route.effective,
      matched,
    });
  }

  /** Reports a failure on `side` of `plan`'s migration: `error`'s SQLSTATE (or code) is the event's code. */
  emitError(plan: Plan, route: Route, side: Side, operation: Operation, error: unknown): void {
    if (this.metrics === undefined) return;
    this.emit({
      type: 'error',
      migration: plan.migration.name,
      stage: route.stage,
      route: route.effective,
      side,
      operation,
      code: errorCode(error),
    });
  }

  /**
   * The column state, loaded at first use; with `refresh`, reloaded when the last load is
   * older than {@link SCHEMA_REFRESH_MS}, or always with `'force'`.
   */
  async columnState(db: Queryable, refresh: boolean | 'force' = false): Promise<Map<string, MigrationColumnState>> {
    const fresh = refresh === 'force' ? false : !refresh || Date.now() - this.schemaLoadedAt <= SCHEMA_REFRESH_MS;
    if (this.schema !== undefined && fresh) return this.schema;
    if (this.schemaLoading === undefined) {
      this.schemaLoading = (async () => {
        let facts: ColumnFacts;
        try {
          facts = await loadColumnFacts(
            db,
            tablesOf(
              this.table,
              this.plans.map((plan) => plan.migration),
            ),
          );
        } catch (error) {
          throw toDriverError(error);
        }
        const state = checkColumns(
          facts.sets,
          this.table,
          this.plainFields,
          this.plans.map((plan) => plan.migration),
        );
        this.schema = state;
        const filled = facts.generators.get(this.table.table.quoted);
        this.generators = this.keyColumns.map((column) => filled?.get(column.name));
        this.allColumns = this.plans.every((plan) => {
          const columns = state.get(plan.migration.name);
          return columns !== undefined && columns.missingOld.length === 0 && columns.missingNew.length === 0;
        });
        this.schemaLoadedAt = Date.now();
        return state;
      })().finally(() => {
        this.schemaLoading = undefined;
      });
    }
    return this.schemaLoading;
  }

  /** Resolves once the table's columns were checked; `undefined` (no await needed) after the first time. */
  ready(db: Queryable): Promise<unknown> | undefined {
    return this.schema === undefined ? this.columnState(db) : undefined;
  }

  /** Missing columns of `side` of `plan`, after one refresh if the cached state says some are missing. */
  async missing(db: Queryable, plan: Plan, side: Side): Promise<readonly string[]> {
    let state = (await this.columnState(db)).get(plan.migration.name)!;
    let missing = side === 'old' ? state.missingOld : state.missingNew;
    if (missing.length > 0) {
      state = (await this.columnState(db, true)).get(plan.migration.name)!;
      missing = side === 'old' ? state.missingOld : state.missingNew;
    }
    return missing;
  }

  /**
   * Whether the cached column state has every column of every plan, on both sides. Then
   * {@link missing} answers `[]` for every side without a query, so the data path can skip
   * awaiting it.
   */
  hasAllColumns(): boolean {
    return this.allColumns;
  }

  /**
   * How the database fills key column `index` when an insert leaves it out, or `undefined`
   * when it has no default. Without one cached, looks again (at most every
   * {@link SCHEMA_REFRESH_MS}), so a default added since is seen.
   */
  async keyGenerator(db: Queryable, index: number): Promise<ColumnGenerator | undefined> {
    await this.columnState(db);
    if (this.generators[index] === undefined) await this.columnState(db, true);
    return this.generators[index];
  }

  /**
   * The cached text of a select by keys, if there is one. A read looks it up first and
   * builds the text only on a miss ({@link cacheSelectSql}): no builder closure per read.
   */
  cachedSelectSql(signature: string | number): string | undefined {
    return this.selectCache.get(signature);
  }

  /** Caches (up to 512 texts) and returns `sql`, the select by keys of `signature`. */
  cacheSelectSql(signature: string | number, sql: string): string {
    if (this.selectCache.size < 512) this.selectCache.set(signature, sql);
    return sql;
  }

  /** `route`, held on the old side when the read guard says the new side must not serve. */
  guarded(plan: Plan, route: Route): Route {
    if (route.serves !== 'new' || route.stage === 'complete' || this.readGuard === undefined) return route;
    let allowed = true;
    try {
      allowed = this.readGuard.allowsNewReads(plan.migration.name);
    } catch {
      // A broken guard must not fail reads; it holds nothing back.
    }
    return allowed ? route : heldRoute(route);
  }

  nextCompare(plan: Plan): boolean {
    const n = plan.migration.sampleOneIn;
    if (n === 1) return true;
    plan.compareCounter = (plan.compareCounter + 1) % n;
    return plan.compareCounter === 0;
  }

  nextShadowRead(plan: Plan): boolean {
    const n = plan.migration.shadowReadOneIn;
    if (n === 1) return true;
    plan.shadowCounter = (plan.shadowCounter + 1) % n;
    return plan.shadowCounter === 0;
  }
}

/** The code an error event reports: the SQLSTATE or driver code of `error`, else `unknown`. */
function errorCode(error: unknown): string {
  const code =
    (error as { sqlState?: unknown; code?: unknown } | null)?.sqlState ?? (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'unknown';
}
