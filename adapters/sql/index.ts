/**
 * `flagshift/sql`: routes the SQL of any ORM. Wrap the pg pool (or PGlite database) the
 * application hands its ORM, and every statement touching a migrated table is rewritten
 * for its stage: reads served from the stage's side (compared with the other in the same
 * statement in `shadow` and `live`), writes setting both column sets in one statement.
 * Needs the optional peer dependencies `libpg-query` and `pgsql-deparser`.
 *
 * @example
 * ```ts
 * import pg from 'pg';
 * import { drizzle } from 'drizzle-orm/node-postgres';
 * import { routePool } from 'flagshift/sql';
 *
 * const pool = routePool(new pg.Pool(), { migrations: [usernameRename], flags, metrics });
 * const db = drizzle({ client: pool });
 * ```
 *
 * @module
 */
export type { SqlRouterOptions, SqlRouterStats } from '../../src/internal.js';
export { loadSqlParser } from './parser.js';
export { type PgModuleLike, pgModuleOf } from './pg-module.js';
export {
  type PgliteLike,
  type PgliteQueryLike,
  type PgliteResultLike,
  RoutedPglite,
  routePglite,
} from './routed-pglite.js';
export { type PgStyleResult, RoutedPgliteClient } from './routed-pglite-client.js';
export { type PoolClientLike, type PoolLike, routePool } from './routed-pool.js';
export { type StatementConfig, withFlagContext } from './session.js';
export { routerStats } from './stats.js';
