/**
 * `flagshift/pglite`: runs flagshift on PGlite, in-process PostgreSQL
 * (`@electric-sql/pglite`, an optional peer dependency). Handy for tests and local tools.
 *
 * @example
 * ```ts
 * import { openPglite } from 'flagshift/pglite';
 *
 * const { driver, close } = await openPglite();
 * await driver.query('CREATE TABLE users (id int PRIMARY KEY, name text)');
 * await close();
 * ```
 *
 * @module
 */
export { type OpenedPglite, type OpenedPgliteDb, type OpenPgliteOptions, openPglite } from './open-pglite.js';
export {
  createPgliteDriver,
  type PGliteLike,
  PgliteDriver,
  type PgliteQueryableLike,
  type PgliteResultLike,
} from './pglite-driver.js';
