/** The counters of a routed pool or database, whichever kind it is. */
import type { SqlRouterStats } from '../../src/internal.js';
import { RoutedPglite } from './routed-pglite.js';
import { poolRouter } from './routed-pool.js';

/**
 * Plan-cache hits and misses, statements passed through and comparisons skipped of a
 * pool from `routePool` or a database from `routePglite`.
 *
 * @example
 * ```ts
 * const { planMisses } = routerStats(pool);
 * ```
 */
export function routerStats(routed: object): SqlRouterStats {
  if (routed instanceof RoutedPglite) return routed.stats();
  const handle = poolRouter(routed);
  if (handle === undefined)
    throw new TypeError('routerStats: expected a pool from routePool() or a database from routePglite()');
  return handle.router.stats();
}
