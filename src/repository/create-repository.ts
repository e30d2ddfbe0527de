/**
 * The repository: typed data access over a table whose fields are being migrated. Reads
 * go to the old or new columns by each migration's stage and read percentage, writes go
 * to every side the stage writes, shadow reads compare, and every operation reports
 * metric events. This module is the public entry: the types, {@link createRepository}
 * and the handle behind {@link Repository}; the data path is in the modules of `repository/`.
 */
import type { z } from 'zod';
import type { MigrationColumnState } from '../catalog/columns.js';
import type { FlagContext, FlagSource } from '../flags/flag-source.js';
import { createStageResolver, type FlagDecision, type StageResolver } from '../flags/stage-resolver.js';
import { canNest, type Driver, type Queryable } from '../kernel/driver.js';
import { ConfigurationError, FlagshiftError, toDriverError, ValidationError } from '../kernel/errors.js';
import type { MetricsSink } from '../metrics/events.js';
import type { Migration } from '../model/migration.js';
import type { EntitySchema, TableDefinition } from '../model/table.js';
import { type CallState, type Entity, type Handle, RepositoryCore } from './core.js';
import { findRows } from './find.js';
import { type Key, validateKey } from './keys.js';
import { firstEntity, readByKeys } from './reads.js';
import { deleteRow, lockRow, type Statement } from './statements.js';
import { validateEntity, validatePatch, validateQuery } from './validation.js';
import { routesFor, runWrite, touchedRow, updateEntity, writeEntity } from './writes.js';

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
   * splits a transaction between stages. `tx.transaction()` runs under a savepoint: when
   * its callback throws, only its own writes are rolled back.
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

/**
 * A {@link Repository} on one connection (the driver, or a transaction). Its methods validate
 * their input and hand over to the data path of `repository/`, passing the handle itself.
 */
class RepositoryHandle implements Handle {
  readonly core: RepositoryCore;
  readonly db: Queryable;
  readonly call: CallState;
  readonly inTransaction: boolean;

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
      return readByKeys(this, [validateKey(this.core, key)], 'get', this.callState(options), false, firstEntity);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async getMany(keys: readonly unknown[], options?: CallOptions): Promise<Entity[]> {
    if (!Array.isArray(keys))
      throw new ValidationError(`getMany of ${this.core.table.table.display}: keys must be an array`);
    const seen = new Map<string, Key>();
    for (const key of keys) {
      const normalized = validateKey(this.core, key);
      if (!seen.has(normalized.id)) seen.set(normalized.id, normalized);
    }
    if (seen.size === 0) return [];
    const unique = [...seen.values()];
    const entities: Entity[] = [];
    for (let start = 0; start < unique.length; start += 1000) {
      const found = await readByKeys(
        this,
        unique.slice(start, start + 1000),
        'getMany',
        this.callState(options),
        false,
      );
      for (const entity of found) if (entity !== undefined) entities.push(entity);
    }
    return entities;
  }

  async insert(entity: unknown, options?: CallOptions): Promise<Entity> {
    const valid = validateEntity(this.core, entity, 'insert');
    await writeEntity(this, valid, 'insert', this.callState(options));
    return valid;
  }

  async upsert(entity: unknown, options?: CallOptions): Promise<Entity> {
    const valid = validateEntity(this.core, entity, 'upsert');
    await writeEntity(this, valid, 'upsert', this.callState(options));
    return valid;
  }

  async update(key: unknown, patch: unknown, options?: CallOptions): Promise<boolean> {
    const normalized = validateKey(this.core, key);
    const valid = validatePatch(this.core, patch);
    return updateEntity(this, normalized, valid, this.callState(options));
  }

  async delete(key: unknown, options?: CallOptions): Promise<boolean> {
    const normalized = validateKey(this.core, key);
    const call = this.callState(options);
    const routes = await routesFor(this, normalized, call);
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
    const results = await runWrite(this, statements, 'delete', routes, undefined, (done) => touchedRow(done.at(-1)));
    return touchedRow(results.at(-1));
  }

  async find(query: unknown = {}, options?: CallOptions): Promise<Entity[]> {
    return findRows(this, validateQuery(this.core, query), this.callState(options));
  }

  async transaction<T>(fn: (tx: RepositoryHandle) => Promise<T>, options?: CallOptions): Promise<T> {
    const call: CallState = {
      context: options?.context ?? this.call.context,
      pinned: this.call.pinned ?? new Map<string, FlagDecision>(),
    };
    const body = (tx: Queryable) => fn(new RepositoryHandle(this.core, tx, call, true));
    try {
      if (!this.inTransaction) return await this.core.driver.transaction(body);
      // Nested: under a savepoint of this transaction. The pg and PGlite drivers' `tx`
      // opens it (and orders it with their own savepoints); with another driver's, the
      // handle does, on this transaction's connection.
      if (canNest(this.db)) return await this.db.transaction(body);
      return await underSavepoint(this.db, body);
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

  // ---- call state ----

  private callState(options: CallOptions | undefined): CallState {
    if (options?.context === undefined) return this.call;
    return { context: options.context, pinned: this.call.pinned };
  }
}

/** Savepoints the repository opened itself, for unique names. */
let savepoints = 0;

/**
 * The nested transactions running on each level of a transaction (the `Queryable` its
 * handles use), one at a time: releasing or rolling back one savepoint would end a
 * sibling's opened after it.
 */
const levelQueues = new WeakMap<Queryable, Promise<unknown>>();

/**
 * Runs `body` under a savepoint of the transaction `db` is a level of: rolled back to it
 * when `body` throws. `body` gets the new level, on which its own nested transactions
 * queue; a nested body must use its own handle, as one of an outer level would wait for it.
 */
function underSavepoint<T>(db: Queryable, body: (level: Queryable) => Promise<T>): Promise<T> {
  const run = async (): Promise<T> => {
    const name = `flagshift_nested_${++savepoints}`;
    await db.query(`SAVEPOINT ${name}`);
    const level: Queryable = { query: (sql, params) => db.query(sql, params) };
    let value: T;
    try {
      value = await body(level);
    } catch (error) {
      // A failed rollback leaves the outer transaction aborted: it fails loudly there.
      await db.query(`ROLLBACK TO SAVEPOINT ${name}`).catch(() => undefined);
      throw error;
    }
    await db.query(`RELEASE SAVEPOINT ${name}`);
    return value;
  };
  const previous = levelQueues.get(db) ?? Promise.resolve();
  const result = previous.then(run, run);
  levelQueues.set(
    db,
    result.catch(() => undefined),
  );
  return result;
}
