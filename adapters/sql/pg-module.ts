/**
 * A stand-in for the `pg` module, for ORMs that build their pool from the module they are
 * given (TypeORM's `driver` option) rather than take a pool.
 */

/** The part of the `pg` module TypeORM's postgres driver uses: a `Pool` to construct. */
export interface PgModuleLike<P extends object> {
  /** Constructs nothing: `new Pool(config)` returns the routed pool, whatever the config. */
  readonly Pool: new (
    config?: unknown,
  ) => P;
}

/**
 * A `pg` module whose `new Pool()` returns `pool`: hand it to TypeORM as its `driver`, and
 * TypeORM runs on the routed pool (`routePool`) or the routed PGlite (`routePglite`)
 * instead of a pool of its own. TypeORM's connection options (host, `poolSize`, `extra`)
 * are then ignored: `pool` is already configured.
 *
 * @example
 * ```ts
 * import { PGlite } from '@electric-sql/pglite';
 * import { DataSource } from 'typeorm';
 * import { pgModuleOf, routePglite } from 'flagshift/sql';
 *
 * const db = routePglite(new PGlite(), { migrations: [usernameRename], flags });
 * const source = new DataSource({ type: 'postgres', driver: pgModuleOf(db), entities: [User] });
 * await source.initialize();
 * ```
 */
export function pgModuleOf<P extends object>(pool: P): PgModuleLike<P> {
  // A constructor that returns an object makes `new` return that object.
  const Pool = function Pool() {
    return pool;
  } as unknown as new (
    config?: unknown,
  ) => P;
  return { Pool };
}
