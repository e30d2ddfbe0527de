/**
 * The SQL router: rewrites the statements an application's ORM sends for the stage of
 * each migration they touch. Pure core; the pool wrappers live in `flagshift/sql`.
 */
export type { SqlNode, SqlParser } from './parser.js';
export {
  createSqlRouter,
  type RoutedQuery,
  type SqlResult,
  type SqlRouter,
  type SqlRouterOptions,
  type SqlRouterStats,
  type SqlSession,
} from './router.js';
