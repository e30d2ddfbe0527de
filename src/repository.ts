/**
 * The repository: typed data access over a table whose fields are being migrated. Reads
 * go to the old or new columns by each migration's stage and read percentage, writes go
 * to every side the stage writes, shadow reads compare, and every operation reports
 * metric events.
 */
import type { z } from 'zod';
import {
  type ColumnSets,
  checkColumns,
  loadColumns,
  type MigrationColumnState,
  missingColumnsError,
  tablesOf,
} from './catalog.js';
import { diffEntities, diffResultSets, resultSetFieldDiffs } from './compare.js';
import type { Driver, Queryable, QueryResult } from './driver.js';
import { ConfigurationError, ErrorCode, FlagshiftError, toDriverError, ValidationError } from './errors.js';
import type { FlagContext, FlagSource } from './flags.js';
import type { MetricEvent, MetricsSink, MismatchEvent, Operation } from './metrics-events.js';
import type { BoundMapping, Migration, SideTable } from './migration.js';
import { previewValue } from './preview-value.js';
import { redactValue } from './redact.js';
import { MigrationRouter, type PinnedDecisions, type Route, routeFor } from './router.js';
import { createStageResolver, type FlagDecision, type StageResolver } from './stage-resolver.js';
import type { Side, Stage } from './stages.js';
import {
  type Assignment,
  deleteRow,
  insertRow,
  lockRow,
  Params,
  type Statement,
  selectByKeys,
  updateRow,
} from './statements.js';
import type { BoundColumn, EntitySchema, TableDefinition } from './table.js';

/** Options of {@link createRepository}. */
export interface RepositoryOptions {
  /** The database, from `flagshift/pg` or `flagshift/pglite`. */
  readonly driver: Driver;
  /** Where stage and read-percentage flags come from, e.g. `createOpenFeatureFlags()`. Required when there are migrations. */
  readonly flags?: FlagSource;
  /** A resolver shared with other repositories (one flag cache for all). @default one per repository, over `flags` */
  readonly resolver?: StageResolver;
  /** Receives every metric event. @default none */
  readonly metrics?: MetricsSink;
  /** Evaluation context merged into every flag evaluation. @default {} */
  readonly context?: FlagContext;
  /** Flag decision cache. @default { size: 10000, ttlMs: 1000 } */
  readonly flagCache?: { readonly size?: number; readonly ttlMs?: number };
  /** Longest wait for one flag evaluation before its fallback is used, in ms. @default 50 */
  readonly flagTimeoutMs?: number;
  /**
   * Consulted on every read: while it says a migration's new side must not serve reads
   * (a guardrail tripped), reads that would be served new are served old and still
   * compared, and dual writes go on. `complete` is never held back: its old columns may
   * be gone. @default none
   */
  readonly readGuard?: ReadGuard;
}

/** Holds a migration's reads on the old side, e.g. after a guardrail tripped. */
export interface ReadGuard {
  /** Whether reads of `migration` may be served from the new side now. Must be fast and must not throw. */
  allowsNewReads(migration: string): boolean;
}

/** Per-call options. */
export interface CallOptions {
  /** Evaluation context of this call. Its `targetingKey`, when set, routes instead of the entity key. */
  readonly context?: FlagContext;
}

/** Sort order of {@link FindQuery}. */
export type OrderBy<E> = (keyof E & string) | { readonly field: keyof E & string; readonly direction?: 'asc' | 'desc' };

/** An equality query on logical fields. */
export interface FindQuery<E> {
  /** Fields and the values they must equal (`null` matches NULL). @default {} (every row) */
  readonly where?: { readonly [F in keyof E]?: E[F] | null };
  readonly orderBy?: OrderBy<E> | readonly OrderBy<E>[];
  /** At most this many rows. @default no limit */
  readonly limit?: number;
}

/** The key of an entity: the key field's value, or an object of the key fields. */
export type KeyInput<E, K extends keyof E> = Pick<E, K> | E[K];

/** Typed, flag-routed access to one table. Create with {@link createRepository}. */
export interface Repository<E, K extends keyof E = keyof E> {
  /** The entity with this key, or `undefined`. */
  get(key: KeyInput<E, K>, options?: CallOptions): Promise<E | undefined>;
  /** The entities with these keys that exist, in the order of `keys`. */
  getMany(keys: readonly KeyInput<E, K>[], options?: CallOptions): Promise<E[]>;
  /** Entities whose fields equal `query.where`, ordered and limited. */
  find(query?: FindQuery<E>, options?: CallOptions): Promise<E[]>;
  /** Inserts a complete entity, validated first. Returns the stored entity. */
  insert(entity: E, options?: CallOptions): Promise<E>;
  /** Sets some fields of one entity, validated first. Returns whether the entity exists. */
  update(key: KeyInput<E, K>, patch: Partial<Omit<E, K>>, options?: CallOptions): Promise<boolean>;
  /** Inserts the entity or replaces its fields. Returns the stored entity. */
  upsert(entity: E, options?: CallOptions): Promise<E>;
  /** Deletes one entity. Returns whether it existed. */
  delete(key: KeyInput<E, K>, options?: CallOptions): Promise<boolean>;
  /**
   * Runs `fn` in one database transaction. The flags are evaluated once per migration at
   * first use and that decision holds for everything inside, so a flag change never
   * splits a transaction between stages.
   */
  transaction<T>(fn: (tx: Repository<E, K>) => Promise<T>, options?: CallOptions): Promise<T>;
  /**
   * Checks that every column the table and its migrations name exists. Runs on first use
   * anyway; call it at startup to fail fast. Returns the missing columns per migration side.
   */
  check(): Promise<ReadonlyMap<string, MigrationColumnState>>;
  /** Releases the flag subscription of a resolver this repository created. */
  close(): void;
}

type Entity = Record<string, unknown>;

/** One migration, laid out for the data path. */
interface Plan {
  readonly migration: Migration;
  readonly router: MigrationRouter;
  /** Old columns of every mapping (always in the main table). */
  readonly oldColumns: readonly BoundColumn[];
  /** New columns of the same-row mappings. */
  readonly newColumns: readonly BoundColumn[];
  readonly sameRow: readonly BoundMapping[];
  readonly crossTable: readonly BoundMapping[];
  compareCounter: number;
  shadowCounter: number;
}

interface CallState {
  readonly context: FlagContext | undefined;
  readonly pinned: PinnedDecisions | undefined;
}

/** What one read fetches and does for one migration and one entity. */
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
  /** Per plan: the effective stage, for reporting. */
  readonly stages: readonly Stage[];
}

interface ReadRoute {
  readonly route: Route;
  /** Whether this read compares (the stage compares and the sample hit). */
  compare: boolean;
  /** Cross-table: whether the side-table read runs. */
  side: boolean;
}

// How often a missing column is looked up again, so an expand run elsewhere is seen quickly.
const SCHEMA_REFRESH_MS = 200;
/** A read held back from the new side: served old, still compared, writes unchanged (both). */
const HELD_ROUTE: Route = routeFor('shadow', false);

/**
 * Creates a repository for a table and the migrations on it.
 *
 * @example
 * ```ts
 * import { createRepository, createMemoryFlags } from 'flagshift';
 * import { openPglite } from 'flagshift/pglite';
 *
 * const { driver } = await openPglite();
 * const flags = createMemoryFlags({ 'flagshift.users-username.stage': 'dualwrite' });
 * const users = createRepository(usernameRename, { driver, flags });
 * await users.insert({ id: 1, username: 'ada', email: 'ada@example.com' });
 * const ada = await users.get(1);
 * ```
 */
export function createRepository<S extends EntitySchema, K extends string>(
  target: TableDefinition<S, K> | Migration<S, K> | readonly Migration<S, K>[],
  options: RepositoryOptions,
): Repository<z.infer<S>, K & keyof z.infer<S>> {
  const migrations: readonly Migration<S, K>[] = Array.isArray(target)
    ? target
    : (target as { kind: string }).kind === 'migration'
      ? [target as Migration<S, K>]
      : [];
  const table = migrations.length > 0 ? migrations[0]!.table : (target as TableDefinition<S, K>);
  if ((table as { kind?: unknown } | undefined)?.kind !== 'table') {
    throw new ConfigurationError(
      'createRepository: expected a table from defineTable(), a migration, or a list of migrations',
    );
  }
  if (options?.driver === undefined || typeof options.driver.query !== 'function') {
    throw new ConfigurationError(
      'createRepository: options.driver must be a driver from flagshift/pg or flagshift/pglite',
    );
  }
  for (const migration of migrations) {
    if (migration.table !== table) {
      throw new ConfigurationError(
        `createRepository: migration "${migration.name}" is on table ${migration.table.table.display}, not ${table.table.display}`,
      );
    }
  }
  let resolver = options.resolver;
  const ownsResolver = resolver === undefined && migrations.length > 0;
  if (resolver === undefined && migrations.length > 0) {
    if (options.flags === undefined) {
      throw new ConfigurationError('createRepository: options.flags is required when the repository has migrations');
    }
    resolver = createStageResolver({
      flags: options.flags,
      ...(options.metrics ? { metrics: options.metrics } : {}),
      ...(options.flagCache?.size !== undefined ? { cacheSize: options.flagCache.size } : {}),
      ...(options.flagCache?.ttlMs !== undefined ? { ttlMs: options.flagCache.ttlMs } : {}),
      ...(options.flagTimeoutMs !== undefined ? { timeoutMs: options.flagTimeoutMs } : {}),
    });
  }
  const core = new RepositoryCore(
    table as unknown as TableDefinition,
    migrations as readonly Migration[],
    options,
    resolver,
    ownsResolver,
  );
  return new RepositoryHandle(core, core.driver, { context: undefined, pinned: undefined }) as unknown as Repository<
    z.infer<S>,
    K & keyof z.infer<S>
  >;
}

/** Shared state of a repository and its transaction-scoped handles. */
class RepositoryCore {
  readonly table: TableDefinition;
  readonly driver: Driver;
  readonly plans: readonly Plan[];
  readonly plainFields: readonly string[];
  readonly keyColumns: readonly BoundColumn[];
  /** The schema of the key field, for a one-field key. */
  readonly keySchema: z.ZodType | undefined;
  /** Key and plain columns with their fields, in decode order. */
  readonly plainColumns: readonly (BoundColumn & { readonly field: string })[];
  readonly fieldToPlan: ReadonlyMap<string, { plan: Plan; mapping: BoundMapping }>;
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
  private readonly selectCache = new Map<string | number, string>();

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
        sameRow: migration.mappings.filter((mapping) => !mapping.newTable),
        crossTable: migration.mappings.filter((mapping) => mapping.newTable),
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
    this.groupMappings = this.plans.flatMap((plan) =>
      plan.migration.mappings.filter((mapping) => mapping.fields.length > 1),
    );
    this.plainFields = table.fields.filter((field) => !fieldToPlan.has(field) && !table.keyFields.includes(field));
    this.keyColumns = table.keyFields.map((field) => table.columns[field]!);
    this.keySchema =
      table.keyFields.length === 1 ? (table.entity.shape[table.keyFields[0]!] as z.ZodType | undefined) : undefined;
    this.plainColumns = [...table.keyFields, ...this.plainFields].map((field) => ({
      ...table.columns[field]!,
      field,
    }));
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

  /** Emits a mismatch and reports it to flag providers that track events (OpenFeature `track`). */
  mismatch(event: MismatchEvent, context: FlagContext | undefined): void {
    this.emit(event);
    if (this.flags?.track === undefined) return;
    try {
      this.flags.track('flagshift.mismatch', context ?? {}, {
        migration: event.migration,
        stage: event.stage,
        operation: event.sample.operation,
        fields: event.sample.diffs.map((diff) => diff.field).join(','),
      });
    } catch {
      // Tracking is best effort and never reaches the data path.
    }
  }

  emit(event: MetricEvent): void {
    if (this.metrics === undefined) return;
    try {
      this.metrics.record(event);
    } catch {
      // A broken sink must never fail or slow a query.
    }
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
        let sets: ColumnSets;
        try {
          sets = await loadColumns(
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
          sets,
          this.table,
          this.plainFields,
          this.plans.map((plan) => plan.migration),
        );
        this.schema = state;
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
    const schema = this.schema;
    if (schema === undefined) return false;
    for (const plan of this.plans) {
      const state = schema.get(plan.migration.name);
      if (state === undefined || state.missingOld.length > 0 || state.missingNew.length > 0) return false;
    }
    return true;
  }

  /** Cached text of a main-table select by keys. */
  selectSql(signature: string | number, build: () => string): string {
    let sql = this.selectCache.get(signature);
    if (sql === undefined) {
      sql = build();
      if (this.selectCache.size < 512) this.selectCache.set(signature, sql);
    }
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
    return allowed ? route : HELD_ROUTE;
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

/** A normalized entity key: encoded column values, and its string forms. */
interface Key {
  /** Logical values, in key field order. */
  readonly values: readonly unknown[];
  /** Encoded for bind parameters. */
  readonly params: readonly unknown[];
  /** Map key (unambiguous). */
  readonly id: string;
  /** Targeting key for flags and bucketing: the values joined by `:`. */
  readonly targeting: string;
}

class RepositoryHandle {
  private readonly core: RepositoryCore;
  private readonly db: Queryable;
  private readonly call: CallState;
  private readonly inTransaction: boolean;

  constructor(core: RepositoryCore, db: Queryable, call: CallState, inTransaction = false) {
    this.core = core;
    this.db = db;
    this.call = call;
    this.inTransaction = inTransaction;
  }

  // ---- public API ----

  get(key: unknown, options?: CallOptions): Promise<Entity | undefined> {
    // Not async (an async function's own promise would add a hop to every read); whatever
    // throws before the statement is sent still reaches the caller as a rejection.
    try {
      return this.readByKeys([this.key(key)], 'get', this.callState(options), false, firstEntity);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async getMany(keys: readonly unknown[], options?: CallOptions): Promise<Entity[]> {
    if (!Array.isArray(keys))
      throw new ValidationError(`getMany of ${this.core.table.table.display}: keys must be an array`);
    const seen = new Map<string, Key>();
    for (const key of keys) {
      const normalized = this.key(key);
      if (!seen.has(normalized.id)) seen.set(normalized.id, normalized);
    }
    if (seen.size === 0) return [];
    const unique = [...seen.values()];
    const entities: Entity[] = [];
    for (let start = 0; start < unique.length; start += 1000) {
      const found = await this.readByKeys(unique.slice(start, start + 1000), 'getMany', this.callState(options), false);
      for (const entity of found) if (entity !== undefined) entities.push(entity);
    }
    return entities;
  }

  async insert(entity: unknown, options?: CallOptions): Promise<Entity> {
    const valid = this.validateEntity(entity, 'insert');
    await this.writeEntity(valid, 'insert', this.callState(options));
    return valid;
  }

  async upsert(entity: unknown, options?: CallOptions): Promise<Entity> {
    const valid = this.validateEntity(entity, 'upsert');
    await this.writeEntity(valid, 'upsert', this.callState(options));
    return valid;
  }

  async update(key: unknown, patch: unknown, options?: CallOptions): Promise<boolean> {
    const normalized = this.key(key);
    const valid = this.validatePatch(patch);
    return this.updateEntity(normalized, valid, this.callState(options));
  }

  async delete(key: unknown, options?: CallOptions): Promise<boolean> {
    const normalized = this.key(key);
    const call = this.callState(options);
    const routes = await this.routesFor(normalized, call);
    const statements: Statement[] = [];
    // Side rows first: a side table usually references the main table.
    for (let index = 0; index < this.core.plans.length; index++) {
      const plan = this.core.plans[index]!;
      if (plan.crossTable.length === 0) continue;
      // Also in stages that don't write the new side, as long as it exists: a side row left
      // behind would be stale, and its foreign key would block the delete.
      if (!routes[index]!.writesNew && (await this.core.missing(this.db, plan, 'new')).length > 0) continue;
      for (const table of plan.migration.sideTables)
        statements.push(deleteRow(table.table, table.keyColumns, normalized.params));
    }
    if (statements.length > 0) {
      // Lock the main row before touching side rows, the order backfill batches and
      // updates take locks in, so a delete never deadlocks against them.
      statements.unshift(lockRow(this.core.table.table, this.core.keyColumns, normalized.params));
    }
    statements.push(deleteRow(this.core.table.table, this.core.keyColumns, normalized.params));
    const results = await this.runWrite(
      statements,
      'delete',
      routes,
      undefined,
      (done) => (done[done.length - 1]?.rowCount ?? 0) > 0,
    );
    const deleted = (results[results.length - 1]?.rowCount ?? 0) > 0;
    return deleted;
  }

  async find(query: unknown = {}, options?: CallOptions): Promise<Entity[]> {
    return this.findRows(this.validateQuery(query), this.callState(options));
  }

  async transaction<T>(fn: (tx: RepositoryHandle) => Promise<T>, options?: CallOptions): Promise<T> {
    const call: CallState = {
      context: options?.context ?? this.call.context,
      pinned: this.call.pinned ?? new Map<string, FlagDecision>(),
    };
    if (this.inTransaction) return fn(new RepositoryHandle(this.core, this.db, call, true));
    try {
      return await this.core.driver.transaction((tx) => fn(new RepositoryHandle(this.core, tx, call, true)));
    } catch (error) {
      throw error instanceof FlagshiftError ? error : toDriverError(error);
    }
  }

  async check(): Promise<ReadonlyMap<string, MigrationColumnState>> {
    return this.core.columnState(this.db, 'force');
  }

  close(): void {
    this.core.close();
  }

  // ---- validation ----

  private callState(options: CallOptions | undefined): CallState {
    if (options?.context === undefined) return this.call;
    return { context: options.context, pinned: this.call.pinned };
  }

  private key(input: unknown): Key {
    const { table } = this.core;
    const fields = table.keyFields;
    // One key field given as a number (the common `get(42)`): no records or loops to build.
    // Anything else, and any value the schema refuses, takes the general path below.
    if (typeof input === 'number' && fields.length === 1) {
      const column = this.core.keyColumns[0]!;
      const result = this.core.keySchema!.safeParse(input);
      if (result.success && typeof result.data === 'number') {
        const text = String(result.data);
        return { values: [result.data], params: [column.codec.encode(result.data)], id: text, targeting: text };
      }
    }
    let values: unknown[];
    if (input !== null && typeof input === 'object' && !(input instanceof Date)) {
      const object = input as Record<string, unknown>;
      values = fields.map((field) => object[field]);
      const extra = Object.keys(object).filter((field) => !fields.includes(field));
      if (extra.length > 0) {
        throw new ValidationError(
          `key of ${table.table.display}: ${extra.map((f) => `"${f}"`).join(', ')} is not a key field`,
          {
            fields: extra,
          },
        );
      }
    } else if (fields.length === 1) {
      values = [input];
    } else {
      throw new ValidationError(
        `key of ${table.table.display}: expected an object with ${fields.map((f) => `"${f}"`).join(', ')}`,
        {
          fields,
        },
      );
    }
    const params: unknown[] = [];
    for (let index = 0; index < fields.length; index++) {
      const field = fields[index]!;
      const schema = table.entity.shape[field] as z.ZodType;
      const result = schema.safeParse(values[index]);
      if (!result.success || values[index] === undefined || values[index] === null) {
        const message = result.success ? 'a key field is required' : result.error.issues[0]!.message;
        throw new ValidationError(
          `key of ${table.table.display}: field "${field}": ${message} (got ${previewValue(values[index])})`,
          {
            fields: [field],
          },
        );
      }
      values[index] = result.data;
      params.push(table.columns[field]!.codec.encode(result.data));
    }
    // Only a string can hold a surrogate: a numeric key skips building the record.
    let strings = false;
    for (const value of values) if (typeof value === 'string') strings = true;
    if (strings) {
      rejectUnpairedSurrogates(
        Object.fromEntries(fields.map((field, index) => [field, values[index]])),
        `key of ${table.table.display}`,
      );
    }
    return makeKey(values, params);
  }

  private validateEntity(entity: unknown, operation: Operation): Entity {
    const result = this.core.table.writeSchema.safeParse(entity);
    if (!result.success)
      throw validationError(`${operation} into ${this.core.table.table.display}`, result.error, entity);
    rejectUnpairedSurrogates(result.data as Entity, `${operation} into ${this.core.table.table.display}`);
    return result.data as Entity;
  }

  private validatePatch(patch: unknown): Entity {
    const { table } = this.core;
    const result = table.patchSchema.safeParse(patch);
    if (!result.success) throw validationError(`update of ${table.table.display}`, result.error, patch);
    const valid = result.data as Entity;
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

  private validateQuery(query: unknown): ValidQuery {
    const { table } = this.core;
    const what = `find in ${table.table.display}`;
    if (query === null || typeof query !== 'object') throw new ValidationError(`${what}: the query must be an object`);
    const q = query as FindQuery<Entity>;
    const unknownKeys = Object.keys(q).filter((name) => !['where', 'orderBy', 'limit'].includes(name));
    if (unknownKeys.length > 0) throw new ValidationError(`${what}: unknown query option "${unknownKeys[0]}"`);
    const where: Entity = {};
    if (q.where !== undefined) {
      if (q.where === null || typeof q.where !== 'object')
        throw new ValidationError(`${what}: where must be an object`);
      const nulls: string[] = [];
      const rest: Entity = {};
      for (const [field, value] of Object.entries(q.where)) {
        if (value === null) nulls.push(field);
        else if (value !== undefined) rest[field] = value;
      }
      const result = table.patchSchema.safeParse(rest);
      if (!result.success) throw validationError(`${what}: where`, result.error, q.where);
      Object.assign(where, result.data);
      rejectUnpairedSurrogates(where, `${what}: where`);
      for (const field of nulls) {
        if (!table.fields.includes(field)) {
          throw new ValidationError(`${what}: where: "${field}" is not a field of the entity`, { fields: [field] });
        }
        where[field] = null;
      }
      for (const field of Object.keys(where)) {
        const mapped = this.core.fieldToPlan.get(field);
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
      const mapped = this.core.fieldToPlan.get(field);
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
    return { where, orderBy, limit };
  }

  // ---- routing ----

  /** Routes of one entity, one per plan. */
  private routesFor(key: Key | undefined, call: CallState): Route[] | Promise<Route[]> {
    const plans = this.core.plans;
    const routes: Route[] = [];
    for (let p = 0; p < plans.length; p++) {
      const plan = plans[p]!;
      const pending = plan.router.decide(key?.targeting, call.context, call.pinned);
      // Cached decisions come back synchronously: only wait once one doesn't.
      if (pending instanceof Promise) return this.routesFrom(p, pending, routes, key, call);
      routes.push(plan.router.route(pending, key?.targeting, call.context));
    }
    return routes;
  }

  /** {@link routesFor} from plan `p` on, whose decision is `pending`. */
  private async routesFrom(
    p: number,
    pending: Promise<FlagDecision>,
    routes: Route[],
    key: Key | undefined,
    call: CallState,
  ): Promise<Route[]> {
    const plans = this.core.plans;
    routes.push(plans[p]!.router.route(await pending, key?.targeting, call.context));
    for (let q = p + 1; q < plans.length; q++) {
      const plan = plans[q]!;
      const next = plan.router.decide(key?.targeting, call.context, call.pinned);
      const decision = next instanceof Promise ? await next : next;
      routes.push(plan.router.route(decision, key?.targeting, call.context));
    }
    return routes;
  }

  // ---- reads ----

  /**
   * Reads `keys` in one statement (plus one per side table), routing and comparing each.
   * While the column state is loaded and every decision is cached, everything before the
   * statement runs synchronously and its result is decoded in the one continuation: a read
   * adds no promise hops of its own to the driver's.
   */
  private readByKeys<T = (Entity | undefined)[]>(
    keys: readonly Key[],
    operation: Operation,
    call: CallState,
    lock: boolean,
    shape: (entities: (Entity | undefined)[]) => T = allEntities as (entities: (Entity | undefined)[]) => T,
  ): Promise<T> {
    if (keys.length === 0) return Promise.resolve(shape([]));
    const ready = this.core.ready(this.db);
    if (ready !== undefined) return ready.then(() => this.routeRead(keys, operation, call, lock, shape));
    return this.routeRead(keys, operation, call, lock, shape);
  }

  /** {@link readByKeys} once the column state is loaded: decides each key's route. */
  private routeRead<T>(
    keys: readonly Key[],
    operation: Operation,
    call: CallState,
    lock: boolean,
    shape: (entities: (Entity | undefined)[]) => T,
  ): Promise<T> {
    const { core } = this;
    const plans = core.plans;
    // routes[p][k]: plan p, key k.
    const routes: ReadRoute[][] = [];
    for (let p = 0; p < plans.length; p++) {
      const plan = plans[p]!;
      const perKey: ReadRoute[] = [];
      for (let k = 0; k < keys.length; k++) {
        const key = keys[k]!;
        const pending = plan.router.decide(key.targeting, call.context, call.pinned);
        // Cached decisions come back synchronously: only wait once one doesn't.
        if (pending instanceof Promise) {
          return this.routeReadFrom(p, k, pending, routes, perKey, keys, operation, call, lock, shape);
        }
        perKey.push(this.readRoute(plan, plan.router.route(pending, key.targeting, call.context)));
      }
      routes.push(perKey);
    }
    return this.readRouted(keys, routes, operation, lock, shape);
  }

  /** {@link routeRead} from plan `p`, key `k` on, whose decision is `pending`. */
  private async routeReadFrom<T>(
    p: number,
    k: number,
    pending: Promise<FlagDecision>,
    routes: ReadRoute[][],
    perKey: ReadRoute[],
    keys: readonly Key[],
    operation: Operation,
    call: CallState,
    lock: boolean,
    shape: (entities: (Entity | undefined)[]) => T,
  ): Promise<T> {
    const plans = this.core.plans;
    let next: Promise<FlagDecision> | undefined = pending;
    for (; p < plans.length; p++) {
      const plan = plans[p]!;
      for (; k < keys.length; k++) {
        const key = keys[k]!;
        const decided = next ?? plan.router.decide(key.targeting, call.context, call.pinned);
        next = undefined;
        const decision = decided instanceof Promise ? await decided : decided;
        perKey.push(this.readRoute(plan, plan.router.route(decision, key.targeting, call.context)));
      }
      routes.push(perKey);
      perKey = [];
      k = 0;
    }
    return this.readRouted(keys, routes, operation, lock, shape);
  }

  /** The read of one key by one plan: the (guarded) route, and whether it compares. */
  private readRoute(plan: Plan, unguarded: Route): ReadRoute {
    const { core } = this;
    const route = core.guarded(plan, unguarded);
    const compare = route.compares && core.nextCompare(plan);
    // Inside a transaction a failed statement aborts the caller's transaction: a
    // side-table read made only to compare is skipped there.
    const side =
      plan.crossTable.length > 0 &&
      (route.serves === 'new' || (compare && !this.inTransaction && core.nextShadowRead(plan)));
    return { route, compare, side };
  }

  /** {@link readByKeys} once routed: selects and decodes. */
  private readRouted<T>(
    keys: readonly Key[],
    routes: ReadRoute[][],
    operation: Operation,
    lock: boolean,
    shape: (entities: (Entity | undefined)[]) => T,
  ): Promise<T> {
    const { core } = this;
    // With every column present there is nothing to drop: skip the awaits.
    if (!core.hasAllColumns()) {
      return this.dropUnavailableSides(routes, operation).then(() =>
        this.readSelected(keys, routes, operation, lock, shape),
      );
    }
    return this.readSelected(keys, routes, operation, lock, shape);
  }

  private readSelected<T>(
    keys: readonly Key[],
    routes: ReadRoute[][],
    operation: Operation,
    lock: boolean,
    shape: (entities: (Entity | undefined)[]) => T,
  ): Promise<T> {
    const { core } = this;
    const plans = core.plans;
    const fetchOld: boolean[] = [];
    const fetchNew: boolean[] = [];
    // Per plan, the side fetched only to compare, when every key is served from the other.
    const compareOnly: (Side | undefined)[] = [];
    const stages: Stage[] = [];
    for (let p = 0; p < plans.length; p++) {
      let old = false;
      let fresh = false;
      let servesOld = false;
      let servesNew = false;
      for (const read of routes[p]!) {
        if (read.route.serves === 'old') servesOld = true;
        else servesNew = true;
        if (read.route.serves === 'old' || read.compare) old = true;
        if (read.route.serves === 'new' || read.compare) fresh = true;
      }
      fetchOld.push(old);
      fetchNew.push(fresh && plans[p]!.newColumns.length > 0);
      compareOnly.push(servesOld && !servesNew ? 'new' : servesNew && !servesOld ? 'old' : undefined);
      stages.push(routes[p]![0]?.route.effective ?? 'off');
    }
    // Without a metrics sink, the clock readings and tallies would only feed emit()s that drop them.
    const started = core.metrics !== undefined ? performance.now() : 0;
    const decode = (rows: Entity[], dropped: readonly boolean[] | undefined, sides: SideRows) =>
      shape(this.decodeRead(keys, routes, fetchOld, fetchNew, rows, dropped, sides, operation, started));
    const select: MainSelect = { keys, fetchOld, fetchNew, lock, compareOnly, operation, stages };
    if (!hasSideTables(plans)) return this.selectMain(select, (rows, dropped) => decode(rows, dropped, NO_SIDE_ROWS));
    return Promise.all([
      this.selectMain(select, (rows, dropped) => ({ rows, dropped })),
      this.selectSides(keys, routes, operation),
    ]).then(([main, sides]) => decode(main.rows, main.dropped, sides));
  }

  /** Entities of `rows`, in `keys` order (`undefined` for a key without a row); compares and reports. */
  private decodeRead(
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
    const { core } = this;
    const plans = core.plans;
    const metered = core.metrics !== undefined;
    if (metered) {
      const elapsed = performance.now() - started;
      for (let p = 0; p < plans.length; p++) {
        const both = fetchOld[p]! && (fetchNew[p]! || sides.has(p));
        const side: Side | 'both' = both ? 'both' : fetchOld[p]! ? 'old' : 'new';
        core.emit({ type: 'latency', migration: plans[p]!.migration.name, side, operation, milliseconds: elapsed });
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
    const out: (Entity | undefined)[] = [];
    // Per plan, per label `stage:side`: how many entities were served so.
    const served: Map<string, { stage: Stage; side: Side; count: number }>[] | undefined = metered
      ? plans.map(() => new Map())
      : undefined;
    for (let k = 0; k < keys.length; k++) {
      const key = keys[k]!;
      const row = byId === undefined ? onlyRow : byId.get(key.id);
      if (row === undefined) {
        out.push(undefined);
        continue;
      }
      const entity = this.decodePlain(row);
      for (let p = 0; p < plans.length; p++) {
        const plan = plans[p]!;
        const read = routes[p]![k]!;
        const sideRows = sides.get(p);
        if (dropped?.[p]) read.compare = false;
        this.decodeMigration(plan, read, row, sideRows, key, entity, operation);
        if (served === undefined) continue;
        const tally = served[p]!;
        const label = `${read.route.effective}:${read.route.serves}`;
        const entry = tally.get(label);
        if (entry === undefined) tally.set(label, { stage: read.route.effective, side: read.route.serves, count: 1 });
        else entry.count++;
      }
      out.push(entity);
    }
    if (served !== undefined) {
      for (let p = 0; p < plans.length; p++) {
        for (const { stage, side, count } of served[p]!.values()) {
          core.emit({ type: 'read', migration: plans[p]!.migration.name, stage, served: side, operation, count });
        }
      }
    }
    return out;
  }

  /** Drops compare-only reads of a side whose columns don't exist; fails a read served from one. */
  private async dropUnavailableSides(routes: ReadRoute[][], operation: Operation): Promise<void> {
    const { core } = this;
    for (let p = 0; p < core.plans.length; p++) {
      const plan = core.plans[p]!;
      let needsOld = false;
      let needsNew = false;
      for (const read of routes[p]!) {
        if (read.route.serves === 'old' || read.compare) needsOld = true;
        if (read.route.serves === 'new' || read.compare) needsNew = true;
      }
      for (const side of ['old', 'new'] as const) {
        if (!(side === 'old' ? needsOld : needsNew)) continue;
        const missing = await core.missing(this.db, plan, side);
        if (missing.length === 0) continue;
        const served = routes[p]!.find((read) => read.route.serves === side);
        if (served !== undefined) throw missingColumnsError(plan.migration, served.route.stage, side, missing);
        for (const read of routes[p]!) {
          if (read.compare) {
            read.compare = false;
            read.side = read.route.serves === 'new' && plan.crossTable.length > 0;
            core.emit({
              type: 'error',
              migration: plan.migration.name,
              stage: read.route.effective,
              side,
              operation,
              code: ErrorCode.UnknownColumn,
            });
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
  private selectMain<T>(
    select: MainSelect,
    done: (rows: Entity[], dropped: readonly boolean[] | undefined) => T,
  ): Promise<T> {
    const { keys, fetchOld, fetchNew, lock, compareOnly } = select;
    const { core } = this;
    // Drivers take parameters read-only, so one key's own array can go as it is.
    const params = keys.length === 1 ? keys[0]!.params : keys.flatMap((key) => key.params);
    // The text depends on what each plan fetches, the number of keys and the lock. Packed
    // into a number when that fits (a string would be built and hashed on every read).
    let signature: string | number;
    if (fetchOld.length <= 16 && keys.length < 1024) {
      let code = 0;
      for (let p = 0; p < fetchOld.length; p++) code = code * 4 + (fetchOld[p] ? 1 : 0) + (fetchNew[p] ? 2 : 0);
      signature = (code * 2 + (lock ? 1 : 0)) * 1024 + keys.length;
    } else {
      signature = '';
      for (let p = 0; p < fetchOld.length; p++) signature += (fetchOld[p] ? 1 : 0) + (fetchNew[p] ? 2 : 0);
      signature += `|${keys.length}|${lock ? 1 : 0}`;
    }
    const sql = core.selectSql(
      signature,
      () =>
        selectByKeys(
          core.table.table,
          this.mainColumns(fetchOld, fetchNew),
          core.keyColumns,
          keys.map((key) => key.params),
          lock,
        ).sql,
    );
    let dropping = false;
    for (let p = 0; p < compareOnly.length; p++) {
      if (compareOnly[p] === 'new' ? fetchNew[p] : compareOnly[p] === 'old' ? fetchOld[p] : false) dropping = true;
    }
    // Inside a transaction a failed statement would abort the caller's transaction: a
    // read that fetches columns only to compare runs under a savepoint there.
    let query: Promise<QueryResult<Entity>>;
    try {
      query =
        this.inTransaction && dropping
          ? core.driver.transaction((savepoint) => savepoint.query<Entity>(sql, params))
          : this.db.query<Entity>(sql, params);
    } catch (error) {
      // A driver that throws instead of rejecting is handled like one that rejects.
      query = Promise.reject(error);
    }
    return query.then(
      (result) => done(result.rows, undefined),
      (error: unknown) => this.selectMainFailed(error, sql, select, dropping, done),
    );
  }

  /** {@link selectMain} after its statement failed: rethrows, or retries without the compare-only columns. */
  private async selectMainFailed<T>(
    error: unknown,
    sql: string,
    select: MainSelect,
    dropping: boolean,
    done: (rows: Entity[], dropped: readonly boolean[] | undefined) => T,
  ): Promise<T> {
    const { core } = this;
    const { fetchOld, fetchNew, compareOnly, operation, stages } = select;
    if (!dropping) {
      this.reportReadFailure(fetchOld, fetchNew, compareOnly, operation, stages, error);
      throw toDriverError(error, sql);
    }
    const dropped = core.plans.map((_, p) =>
      compareOnly[p] === 'new' ? fetchNew[p]! : compareOnly[p] === 'old' ? fetchOld[p]! : false,
    );
    // Retry without the compare-only columns. The retry throws (and reports the served
    // side) when the served side is what failed; only when it succeeds was the
    // compare-only side to blame.
    const retry: MainSelect = {
      ...select,
      fetchOld: fetchOld.map((fetch, p) => fetch && !(dropped[p] && compareOnly[p] === 'old')),
      fetchNew: fetchNew.map((fetch, p) => fetch && !(dropped[p] && compareOnly[p] === 'new')),
      compareOnly: compareOnly.map(() => undefined),
    };
    const rows = await this.selectMain(retry, (retried) => retried);
    for (let p = 0; p < core.plans.length; p++) {
      if (!dropped[p]) continue;
      const side = compareOnly[p]!;
      core.emit({
        type: 'error',
        migration: core.plans[p]!.migration.name,
        stage: stages[p]!,
        side,
        operation,
        code: errorCode(error),
      });
    }
    return done(rows, dropped);
  }

  /** Reports a failed read against the side(s) it was served from, for each migration. */
  private reportReadFailure(
    fetchOld: readonly boolean[],
    fetchNew: readonly boolean[],
    compareOnly: readonly (Side | undefined)[],
    operation: Operation,
    stages: readonly Stage[],
    error: unknown,
  ): void {
    const { core } = this;
    for (let p = 0; p < core.plans.length; p++) {
      const sides: Side[] = [];
      if (fetchOld[p] && compareOnly[p] !== 'old') sides.push('old');
      if (fetchNew[p] && compareOnly[p] !== 'new') sides.push('new');
      for (const side of sides) {
        core.emit({
          type: 'error',
          migration: core.plans[p]!.migration.name,
          stage: stages[p]!,
          side,
          operation,
          code: errorCode(error),
        });
      }
    }
  }

  private mainColumns(fetchOld: readonly boolean[], fetchNew: readonly boolean[]): BoundColumn[] {
    const { core } = this;
    const columns: BoundColumn[] = [...core.keyColumns];
    for (const field of core.plainFields) columns.push(core.table.columns[field]!);
    for (let p = 0; p < core.plans.length; p++) {
      const plan = core.plans[p]!;
      if (fetchOld[p]) columns.push(...plan.oldColumns);
      if (fetchNew[p]) columns.push(...plan.newColumns);
    }
    return columns;
  }

  /** Side-table reads, per plan: rows of each cross-table mapping's table by key id. */
  private async selectSides(
    keys: readonly Key[],
    routes: ReadRoute[][],
    operation: Operation,
  ): Promise<Map<number, Map<string, Map<string, Entity>>>> {
    const { core } = this;
    const out = new Map<number, Map<string, Map<string, Entity>>>();
    const reads: Promise<void>[] = [];
    for (let p = 0; p < core.plans.length; p++) {
      const plan = core.plans[p]!;
      if (plan.crossTable.length === 0) continue;
      const wanted = keys.filter((_, k) => routes[p]![k]!.side);
      if (wanted.length === 0) continue;
      const servesNew = routes[p]!.some((read) => read.route.serves === 'new');
      const perTable = new Map<string, Map<string, Entity>>();
      out.set(p, perTable);
      for (const side of plan.migration.sideTables) {
        const columns = [...side.keyColumns, ...side.mappings.flatMap((mapping) => mapping.newColumns)];
        const statement = selectByKeys(
          side.table,
          columns,
          side.keyColumns,
          wanted.map((key) => key.params),
          false,
        );
        reads.push(
          this.db.query<Entity>(statement.sql, statement.params).then(
            (result) => {
              const rows = new Map<string, Entity>();
              for (const row of result.rows) rows.set(rowKeyId(row, side.keyColumns), row);
              perTable.set(side.table.quoted, rows);
            },
            (error: unknown) => {
              if (servesNew) throw toDriverError(error, statement.sql);
              out.delete(p);
              core.emit({
                type: 'error',
                migration: plan.migration.name,
                stage: 'shadow',
                side: 'new',
                operation,
                code: errorCode(error),
              });
            },
          ),
        );
      }
    }
    await Promise.all(reads);
    return out;
  }

  private decodePlain(row: Entity): Entity {
    const entity: Entity = {};
    for (const column of this.core.plainColumns) entity[column.field] = column.codec.decode(row[column.name]);
    return entity;
  }

  /**
   * Puts the served values of `plan`'s fields into `entity` and compares when the route
   * says so. A served side that can't be decoded throws; the compared side only counts an error.
   */
  private decodeMigration(
    plan: Plan,
    read: ReadRoute,
    row: Entity,
    sideRows: Map<string, Map<string, Entity>> | undefined,
    key: Key,
    entity: Entity,
    operation: Operation,
  ): void {
    const { core } = this;
    const { route } = read;
    if (route.serves === 'old') {
      const failed = this.oldValuesInto(plan, row, entity);
      if (failed !== undefined) throw failed;
    } else {
      const served = this.valuesFromNew(plan, row, sideRows, key);
      if (served instanceof Error) throw served;
      // Served new from a side table whose row doesn't exist yet.
      if (served === undefined) for (const field of plan.migration.fields) entity[field] = null;
      else Object.assign(entity, served);
    }
    const sideMissing = plan.crossTable.length > 0 && (sideRows === undefined || !read.side);
    if (!read.compare || (sideMissing && route.serves === 'old')) return;
    let other: Entity | Error | undefined;
    if (route.serves === 'old') {
      other = this.valuesFromNew(plan, row, sideRows, key);
    } else {
      other = {};
      other = this.oldValuesInto(plan, row, other) ?? other;
    }
    if (other instanceof Error) {
      const side: Side = route.serves === 'old' ? 'new' : 'old';
      core.emit({
        type: 'error',
        migration: plan.migration.name,
        stage: route.effective,
        side,
        operation,
        code: errorCode(other),
      });
      return;
    }
    // The entity holds the served values of the migration's fields (and others, not compared).
    const oldValues = route.serves === 'old' ? entity : other;
    const newValues = route.serves === 'old' ? other : entity;
    const diffs = diffEntities(
      plan.migration.fields,
      oldValues,
      newValues,
      plan.migration.compare,
      plan.migration.rawValues,
    );
    const matched = diffs.length === 0;
    if (core.metrics !== undefined) {
      core.emit({ type: 'comparison', migration: plan.migration.name, stage: route.effective, matched });
    }
    if (!matched) {
      core.mismatch(
        {
          type: 'mismatch',
          migration: plan.migration.name,
          stage: route.effective,
          sample: {
            migration: plan.migration.name,
            stage: route.effective,
            operation,
            key: plan.migration.rawValues ? key.targeting : redactValue(key.targeting),
            diffs,
            at: new Date().toISOString(),
          },
        },
        // Redacted like the sample's key, unless the migration opted into raw values.
        { targetingKey: plan.migration.rawValues ? key.targeting : redactValue(key.targeting) },
      );
    }
  }

  /** Puts the logical values of `plan`'s fields from the old columns into `out`; returns the error a transform threw. */
  private oldValuesInto(plan: Plan, row: Entity, out: Entity): Error | undefined {
    try {
      for (const mapping of plan.migration.mappings) {
        const { fields, oldColumns, forward } = mapping;
        if (forward === undefined) {
          // No transform: one old column per field.
          for (let index = 0; index < fields.length; index++) {
            const column = oldColumns[index]!;
            out[fields[index]!] = column.codec.decode(row[column.name]) ?? null;
          }
          continue;
        }
        const raw: unknown[] = [];
        for (const column of oldColumns) raw.push(column.codec.decode(row[column.name]));
        const values = forward(raw);
        for (let index = 0; index < fields.length; index++) out[fields[index]!] = values[index] ?? null;
      }
    } catch (error) {
      return error instanceof Error ? error : new Error(String(error));
    }
    return undefined;
  }

  /** Logical values from the new columns; `undefined` when a side-table row is absent. */
  private valuesFromNew(
    plan: Plan,
    row: Entity,
    sideRows: Map<string, Map<string, Entity>> | undefined,
    key: Key,
  ): Entity | Error | undefined {
    const out: Entity = {};
    try {
      for (const mapping of plan.migration.mappings) {
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

  // ---- find ----

  private async findRows(query: ValidQuery, call: CallState): Promise<Entity[]> {
    const { core } = this;
    const ready = core.ready(this.db);
    if (ready !== undefined) await ready;
    const touched = new Set<number>();
    for (const field of [...Object.keys(query.where), ...query.orderBy.map((order) => order.field)]) {
      const mapped = core.fieldToPlan.get(field);
      if (mapped !== undefined) touched.add(core.plans.indexOf(mapped.plan));
    }
    if (touched.size === 0) {
      // Filters and order don't depend on any migration: select keys, then read each row
      // by its own route, like getMany.
      const keys = await this.selectKeys(query, new Map());
      return (await this.readByKeys(keys, 'find', call, false)).filter(
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
        !this.inTransaction &&
        (await core.missing(this.db, core.plans[p]!, otherSide)).length === 0 &&
        core.nextCompare(core.plans[p]!)
      ) {
        compare = true;
        otherSides.set(p, route.serves === 'old' ? 'new' : 'old');
      } else {
        otherSides.set(p, route.serves);
      }
    }
    for (const [p, side] of servedSides) {
      const missing = await core.missing(this.db, core.plans[p]!, side);
      if (missing.length > 0) throw missingColumnsError(core.plans[p]!.migration, routes[p]!.stage, side, missing);
    }
    const fixed = (sides: Map<number, Side>) => ({ sides, routes });
    const started = performance.now();
    const servedRead = this.readByQuery(query, fixed(servedSides));
    const otherRead = compare
      ? this.readByQuery(query, fixed(otherSides)).then(
          (rows) => rows,
          (error: unknown) => {
            for (const p of touched) {
              core.emit({
                type: 'error',
                migration: core.plans[p]!.migration.name,
                stage: routes[p]!.effective,
                side: otherSides.get(p)!,
                operation: 'find',
                code: errorCode(error),
              });
            }
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
          core.mismatch(
            {
              type: 'mismatch',
              migration: plan.migration.name,
              stage: routes[p]!.effective,
              sample: {
                migration: plan.migration.name,
                stage: routes[p]!.effective,
                operation: 'find',
                key: null,
                diffs: resultSetFieldDiffs(diff, { includeOrder: ordered }),
                at: new Date().toISOString(),
              },
            },
            call.context,
          );
        }
      }
    }
    return served;
  }

  /** Runs the query with each touched migration filtered on a fixed side; entities decoded from that side. */
  private async readByQuery(
    query: ValidQuery,
    fixed: { sides: Map<number, Side>; routes: Route[] },
  ): Promise<Entity[]> {
    const keys = await this.selectKeys(query, fixed.sides);
    if (keys.length === 0) return [];
    // Read the rows with every touched migration pinned to its side.
    const pinnedRoutes = fixed.routes.map((route, p) => {
      const side = fixed.sides.get(p);
      if (side === undefined) return route;
      return side === route.serves ? route : { ...route, serves: side };
    });
    const entities = await this.readFixed(keys, pinnedRoutes);
    return entities.filter((entity): entity is Entity => entity !== undefined);
  }

  /** Reads rows by key with given routes (no comparison). */
  private async readFixed(keys: readonly Key[], routes: Route[]): Promise<(Entity | undefined)[]> {
    const { core } = this;
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
      this.selectMain(
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
      this.selectSides(keys, reads, 'find'),
    ]);
    const byId = new Map<string, Entity>();
    for (const row of main) byId.set(rowKeyId(row, core.keyColumns), row);
    return keys.map((key) => {
      const row = byId.get(key.id);
      if (row === undefined) return undefined;
      const entity = this.decodePlain(row);
      core.plans.forEach((plan, p) => {
        this.decodeMigration(plan, reads[p]![0]!, row, sides.get(p), key, entity, 'find');
      });
      return entity;
    });
  }

  /** Keys of the rows matching `query`, in query order; migrated fields filtered on `sides`. */
  private async selectKeys(query: ValidQuery, sides: Map<number, Side>): Promise<Key[]> {
    const { core } = this;
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
          const join = s.keyColumns
            .map((k, i) => `s.${k.quoted} = ${alias}.${core.keyColumns[i]!.quoted}`)
            .join(' AND ');
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
      result = await this.db.query<Entity>(sql, params.values);
    } catch (error) {
      throw toDriverError(error, sql);
    }
    return result.rows.map((row) => {
      const values = core.keyColumns.map((column, index) =>
        core.table.columns[core.table.keyFields[index]!]!.codec.decode(row[column.name]),
      );
      return makeKey(
        values,
        core.keyColumns.map((column, index) => column.codec.encode(values[index])),
      );
    });
  }

  // ---- writes ----

  /** Assignments of the main table for the given fields, and side-table rows, by route. */
  private assignments(
    entity: Entity,
    routes: readonly Route[],
  ): { main: Assignment[]; sides: Map<string, { table: SideTable; assignments: Assignment[] }> } {
    const { core } = this;
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

  private async writeEntity(entity: Entity, operation: 'insert' | 'upsert', call: CallState): Promise<void> {
    const { core } = this;
    const key = keyFromEntity(entity, core);
    const routes = await this.routesFor(key, call);
    if (!core.hasAllColumns()) await this.requireWriteColumns(routes);
    const { main, sides } = this.assignments(entity, routes);
    const keyAssignments = core.keyColumns.map((column, index) => ({ column, value: key.params[index] }));
    const statements: Statement[] = [
      insertRow(core.table.table, [...keyAssignments, ...main], operation === 'upsert' ? core.keyColumns : undefined),
    ];
    for (const { table, assignments } of sides.values()) {
      const sideKey = table.keyColumns.map((column, index) => ({ column, value: key.params[index] }));
      // A side row may exist already (from a backfill, or a delete in a stage that didn't write the side).
      statements.push(insertRow(table.table, [...sideKey, ...assignments], table.keyColumns));
    }
    await this.runWrite(statements, operation, routes);
  }

  private async updateEntity(key: Key, patch: Entity, call: CallState): Promise<boolean> {
    const { core } = this;
    let partialGroups = false;
    for (const mapping of core.groupMappings) {
      let present = 0;
      for (const field of mapping.fields) if (field in patch) present++;
      if (present > 0 && present < mapping.fields.length) partialGroups = true;
    }
    if (partialGroups && !this.inTransaction) {
      // A field stored together with others (a split) needs the others' current values:
      // read and write them under one row lock.
      return this.transaction(
        (tx) => tx.updateEntity(key, patch, tx.call),
        call.context ? { context: call.context } : undefined,
      );
    }
    const pendingRoutes = this.routesFor(key, call);
    const routes = pendingRoutes instanceof Promise ? await pendingRoutes : pendingRoutes;
    if (!core.hasAllColumns()) await this.requireWriteColumns(routes);
    let full = patch;
    if (partialGroups) {
      const current = await this.readByKeys([key], 'update', call, true, firstEntity);
      if (current === undefined) return false;
      full = { ...patch };
      for (const mapping of core.groupMappings) {
        if (!mapping.fields.some((field) => field in patch)) continue;
        for (const field of mapping.fields) if (!(field in full)) full[field] = current[field];
      }
    }
    const { main, sides } = this.assignments(full, routes);
    const statements: Statement[] = [];
    if (main.length > 0) statements.push(updateRow(core.table.table, main, core.keyColumns, key.params));
    else statements.push(lockRow(core.table.table, core.keyColumns, key.params));
    for (const { table, assignments } of sides.values()) {
      const sideKey = table.keyColumns.map((column, index) => ({ column, value: key.params[index] }));
      statements.push(insertRow(table.table, [...sideKey, ...assignments], table.keyColumns));
    }
    const results = await this.runWrite(
      statements,
      'update',
      routes,
      (result) => (result.rowCount ?? result.rows.length) > 0,
      (done) => (done[0]?.rowCount ?? done[0]?.rows.length ?? 0) > 0,
    );
    return (results[0]?.rowCount ?? results[0]?.rows.length ?? 0) > 0;
  }

  private async requireWriteColumns(routes: readonly Route[]): Promise<void> {
    const { core } = this;
    for (let p = 0; p < core.plans.length; p++) {
      const route = routes[p]!;
      for (const side of ['old', 'new'] as const) {
        if (!(side === 'old' ? route.writesOld : route.writesNew)) continue;
        const missing = await core.missing(this.db, core.plans[p]!, side);
        if (missing.length > 0) throw missingColumnsError(core.plans[p]!.migration, route.stage, side, missing);
      }
    }
  }

  /** Runs `statements` in order on `db`; with `proceed`, those after the first only when it returns true. */
  private async runStatements(
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

  /**
   * Runs a write's statements (one alone, several in one transaction) and reports it:
   * errors against the side written, a write event when `wrote` says rows changed, latency.
   */
  private async runWrite(
    statements: readonly Statement[],
    operation: Operation,
    routes: readonly Route[],
    proceed?: (result: QueryResult) => boolean,
    wrote: (results: readonly QueryResult[]) => boolean = () => true,
  ): Promise<QueryResult[]> {
    const { core } = this;
    const ready = core.ready(this.db);
    if (ready !== undefined) await ready;
    // Without a metrics sink, the clock readings and events below would be dropped by emit().
    const metered = core.metrics !== undefined;
    const started = metered ? performance.now() : 0;
    let results: QueryResult[];
    try {
      results =
        statements.length === 1 || this.inTransaction
          ? await this.runStatements(this.db, statements, proceed)
          : await core.driver.transaction((tx) => this.runStatements(tx, statements, proceed));
    } catch (error) {
      const wrapped = error instanceof FlagshiftError ? error : toDriverError(error);
      for (let p = 0; p < core.plans.length; p++) {
        const route = routes[p]!;
        core.emit({
          type: 'error',
          migration: core.plans[p]!.migration.name,
          stage: route.effective,
          side: route.writesOld ? 'old' : 'new',
          operation,
          code: errorCode(wrapped),
        });
      }
      throw wrapped;
    }
    if (!metered) return results;
    const elapsed = performance.now() - started;
    for (let p = 0; p < core.plans.length; p++) {
      const route = routes[p]!;
      const sides: Side[] = route.writesOld && route.writesNew ? ['old', 'new'] : route.writesOld ? ['old'] : ['new'];
      const name = core.plans[p]!.migration.name;
      // An update or delete that found no row wrote nothing: it is timed, not counted.
      if (wrote(results))
        core.emit({ type: 'write', migration: name, stage: route.effective, sides, operation, count: 1 });
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
}

interface ValidQuery {
  readonly where: Entity;
  readonly orderBy: readonly { field: string; direction: 'ASC' | 'DESC' }[];
  readonly limit: number | undefined;
}

/** The side-table rows of a read without side tables. Never written to. */
const NO_SIDE_ROWS: SideRows = new Map();

/** Side-table rows of a read: per plan index, per quoted table, rows by key id. */
type SideRows = ReadonlyMap<number, Map<string, Map<string, Entity>>>;

/** The entity of a one-key read. */
function firstEntity(entities: (Entity | undefined)[]): Entity | undefined {
  return entities[0];
}

/** The entities of a read, as they are. */
function allEntities(entities: (Entity | undefined)[]): (Entity | undefined)[] {
  return entities;
}

/** Whether any plan keeps new columns in another table (reads then also select side tables). */
function hasSideTables(plans: readonly Plan[]): boolean {
  for (const plan of plans) if (plan.crossTable.length > 0) return true;
  return false;
}

/**
 * The text of one key value: the same for equal values in every process. `String` would
 * not do for a Date (second precision, the local time zone) or bytes.
 */
function keyText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
  return String(value);
}

function makeKey(values: readonly unknown[], params: readonly unknown[]): Key {
  if (values.length === 1) {
    const text = keyText(values[0]);
    return { values, params, id: text, targeting: text };
  }
  const texts = values.map(keyText);
  return { values, params, id: JSON.stringify(texts), targeting: texts.join(':') };
}

function keyFromEntity(entity: Entity, core: RepositoryCore): Key {
  const values = core.table.keyFields.map((field) => entity[field]);
  return makeKey(
    values,
    core.table.keyFields.map((field, index) => core.table.columns[field]!.codec.encode(values[index])),
  );
}

function keyOfEntity(entity: Entity, keyFields: readonly string[]): string {
  if (keyFields.length === 1) return keyText(entity[keyFields[0]!]);
  return JSON.stringify(keyFields.map((field) => keyText(entity[field])));
}

/** The map id of a row's key, decoded the same way as the caller's key. */
function rowKeyId(row: Entity, keyColumns: readonly BoundColumn[]): string {
  if (keyColumns.length === 1) {
    const column = keyColumns[0]!;
    return keyText(column.codec.decode(row[column.name]));
  }
  return JSON.stringify(keyColumns.map((column) => keyText(column.codec.decode(row[column.name]))));
}

// A UTF-16 surrogate without its pair has no UTF-8 form: the drivers would store U+FFFD in
// its place, so the value read back would differ from the one acknowledged.
const UNPAIRED_SURROGATE = /\p{Cs}/u;

/** Throws a {@link ValidationError} for a string field holding an unpaired surrogate. */
function rejectUnpairedSurrogates(values: Entity, what: string): void {
  for (const field of Object.keys(values)) {
    const value = values[field];
    if (typeof value === 'string' && UNPAIRED_SURROGATE.test(value)) {
      throw new ValidationError(
        `${what}: field "${field}" holds an unpaired UTF-16 surrogate, which PostgreSQL text can't store; nothing was written`,
        { fields: [field] },
      );
    }
  }
}

function equals(column: string, value: unknown, cast: string, params: Params): string {
  return value === null || value === undefined ? `${column} IS NULL` : `${column} = ${params.add(value, cast)}`;
}

function errorCode(error: unknown): string {
  const code =
    (error as { sqlState?: unknown; code?: unknown } | null)?.sqlState ?? (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'unknown';
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
