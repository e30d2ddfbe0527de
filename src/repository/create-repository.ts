/**
 * The repository: typed data access over a table whose fields are being migrated. Reads
 * go to the old or new columns by each migration's stage and read percentage, writes go
 * to every side the stage writes, shadow reads compare, and every operation reports
 * metric events. This module is the façade: {@link createRepository} and the handle behind
 * {@link Repository}, which validate their input and hand over to the data path (`reads`,
 * `find`, `writes`); the types are in `types.ts`.
 */
import type { z } from 'zod';
import type { MigrationColumnState } from '../catalog/index.js';
import { createStageResolver, type FlagDecision } from '../flags/index.js';
import {
  ConfigurationError,
  canNest,
  FlagshiftError,
  previewValue,
  type Queryable,
  toDriverError,
  underSavepoint,
  ValidationError,
} from '../kernel/index.js';
import type { EntitySchema, Migration, TableDefinition } from '../model/index.js';
import { type Handle, RepositoryCore } from './core.js';
import { countRows } from './count.js';
import { findRows } from './find.js';
import { type Key, validateKey } from './keys.js';
import { cursorOf } from './keyset.js';
import { readByKeys, readOne } from './reads.js';
import type { CallOptions, CallState, Entity, Page, Repository, RepositoryOptions } from './types.js';
import { validateEntity, validatePatch, validateQuery } from './validation.js';
import { deleteEntity, updateEntity, writeEntity } from './writes.js';

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

/** The `fields` of `entity`, in that order. */
function pick(entity: Entity, fields: readonly string[]): Entity {
  const out: Entity = {};
  for (const field of fields) out[field] = entity[field];
  return out;
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
      return readOne(this, validateKey(this.core, key), 'get', this.callState(options));
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
    return writeEntity(this, validateEntity(this.core, entity, 'insert'), 'insert', this.callState(options));
  }

  async upsert(entity: unknown, options?: CallOptions): Promise<Entity> {
    return writeEntity(this, validateEntity(this.core, entity, 'upsert'), 'upsert', this.callState(options));
  }

  update(key: unknown, patch: unknown, options?: CallOptions): Promise<boolean> {
    // Not async, as get(): what throws before the statement is sent still rejects.
    try {
      const normalized = validateKey(this.core, key);
      const valid = validatePatch(this.core, patch);
      return updateEntity(this, normalized, valid, this.callState(options));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  async delete(key: unknown, options?: CallOptions): Promise<boolean> {
    return deleteEntity(this, validateKey(this.core, key), this.callState(options));
  }

  async find(query: unknown = {}, options?: CallOptions): Promise<Entity[]> {
    const valid = validateQuery(this.core, query);
    const entities = await findRows(this, valid, this.callState(options));
    return valid.select === undefined ? entities : entities.map((entity) => pick(entity, valid.select!));
  }

  async findPage(query: unknown, options?: CallOptions): Promise<Page<Entity>> {
    const valid = validateQuery(this.core, query, 'findPage');
    const { limit, select, orderBy } = valid;
    if (limit === undefined || limit < 1) {
      throw new ValidationError(
        `findPage in ${this.core.table.table.display}: limit, the page size, must be a positive integer, got ${previewValue(limit)}`,
      );
    }
    // The cursor is made of the last entity's sort and key values: fetch them too.
    const needed =
      select === undefined
        ? undefined
        : [...new Set([...select, ...orderBy.map((o) => o.field), ...this.core.table.keyFields])];
    const entities = await findRows(this, { ...valid, select: needed }, this.callState(options));
    const last = entities.at(-1);
    return {
      items: select === undefined ? entities : entities.map((entity) => pick(entity, select)),
      next: entities.length === limit && last !== undefined ? cursorOf(this.core, orderBy, last) : undefined,
    };
  }

  async count(where: unknown = {}, options?: CallOptions): Promise<number> {
    const valid = validateQuery(this.core, { where }, 'count');
    return countRows(this, valid, this.callState(options));
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
